//! Readers never see a mix of two refreshes, however fast snapshots swap.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use http::HeaderValue;
use time::macros::datetime;
use warmcache::{MockSource, Mode, Sections, Snapshot, SnapshotCache, Timestamp};

const GENERATIONS: u64 = 4;
const READERS: usize = 3;
const READS_PER_READER: usize = 1_000_000;

type Etags = (HeaderValue, HeaderValue, HeaderValue);

#[test]
fn every_read_sees_three_sections_of_one_refresh() {
    let source = MockSource::new(9);
    let now = datetime!(2026-06-30 23:30 UTC);
    let snapshots: Vec<Snapshot> = (1..=GENERATIONS)
        .map(|generation| {
            let data = source.generate(now, generation);
            let sections =
                Sections::render(generation, data, Timestamp::now(), Duration::from_secs(30))
                    .expect("renders");
            Snapshot {
                mode: Mode::Mock,
                data: Some(Arc::new(sections)),
                last_error: None,
            }
        })
        .collect();
    let expected: HashMap<u64, Etags> = snapshots
        .iter()
        .filter_map(|s| s.data.as_ref())
        .map(|d| {
            (
                d.generation,
                (
                    d.dashboard.etag().clone(),
                    d.historical.etag().clone(),
                    d.products.etag().clone(),
                ),
            )
        })
        .collect();
    let distinct_dashboards: HashSet<_> = expected.values().map(|e| e.0.clone()).collect();
    assert_eq!(
        distinct_dashboards.len(),
        GENERATIONS as usize,
        "each refresh has its own dashboard"
    );

    let cache = SnapshotCache::new(Mode::Mock);
    cache.store(snapshots[0].clone());
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (cache, stop) = (cache.clone(), Arc::clone(&stop));
        thread::spawn(move || {
            let mut swaps = 0u64;
            for snapshot in snapshots.iter().cycle() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                cache.store(snapshot.clone());
                swaps += 1;
            }
            swaps
        })
    };

    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let (cache, expected) = (cache.clone(), expected.clone());
            thread::spawn(move || {
                let mut seen = HashSet::new();
                for _ in 0..READS_PER_READER {
                    let snapshot = cache.load();
                    let d = snapshot.data.as_ref().expect("always loaded");
                    let generation = d.generation;
                    assert_eq!(d.dashboard.generation(), generation);
                    assert_eq!(d.historical.generation(), generation);
                    assert_eq!(d.products.generation(), generation);
                    let (dashboard, historical, products) = &expected[&generation];
                    assert_eq!(d.dashboard.etag(), dashboard);
                    assert_eq!(d.historical.etag(), historical);
                    assert_eq!(d.products.etag(), products);
                    seen.insert(generation);
                }
                seen
            })
        })
        .collect();

    let mut seen = HashSet::new();
    for reader in readers {
        seen.extend(reader.join().expect("reader saw only consistent snapshots"));
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = writer.join().expect("writer ran");
    assert!(swaps > 1_000, "the writer swapped {swaps} times");
    assert!(seen.len() > 1, "readers saw swaps happen: {seen:?}");
}
