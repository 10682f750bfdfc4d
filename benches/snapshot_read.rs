//! Reading a section through the [`SnapshotCache`] against two baselines.
//!
//! Every case loads the current value and reads the dashboard section's body
//! length and ETag, first with no writer (`idle`) and then while a second OS
//! thread stores fresh values as fast as it can (`swapping`):
//!
//! * `snapshot_cache`: `SnapshotCache::load()`, then `Snapshot::data`.
//! * `arcswap_bare`: a bare `ArcSwap<Sections>` `load()`, the floor.
//! * `rwlock_arc`: `RwLock<Arc<Sections>>`: read lock, clone the `Arc`,
//!   unlock, read.
//! * `user_cache` and `user_arcswap_bare`: the same two reads of a user's
//!   own section set (`SnapshotCache<UserSections>` against a bare
//!   `ArcSwap<Loaded<UserSections>>`), so genericity is measured too.
//!
//! The values are real rendered snapshots of the mock source, built before
//! measuring; the writer cycles through them, so it measures swapping, not
//! rendering. Run with `cargo bench --bench snapshot_read`.
//!
//! The writer stores as fast as it can, millions of times a second, which is
//! the worst case for readers (the refresher stores once per TTL). To see the
//! readers at a gentler rate, set `SNAPSHOT_READ_SWAP_PAUSE_US` to a pause
//! in microseconds between stores; the writer's rate is printed either way.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use time::OffsetDateTime;
use warmcache::{
    Loaded, MockSource, Mode, Section, SectionSet, Sections, Snapshot, SnapshotCache, Timestamp,
};

/// What the baselines hold: the same rendered sections the cache points to.
type Payload = Sections;

/// Distinct snapshots the writer cycles through.
const VERSIONS: usize = 3;

/// The read every case measures: the dashboard body's length and its ETag.
#[inline(always)]
fn read_dashboard(sections: &Sections) -> usize {
    let section = &sections.dashboard;
    black_box(section.body().len()) + black_box(section.etag().as_bytes()).len()
}

/// `VERSIONS` rendered snapshots (refreshes 0, 1, 2 of the mock source).
fn rendered() -> Vec<Arc<Payload>> {
    let source = MockSource::new(42);
    let now = OffsetDateTime::now_utc();
    let ttl = Duration::from_secs(30);
    (0..VERSIONS as u64)
        .map(|refresh| {
            let sections = Sections::render(
                refresh + 1,
                source.generate(now, refresh),
                Timestamp::now(),
                ttl,
            )
            .unwrap_or_else(|e| panic!("mock data renders: {e}"));
            Arc::new(sections)
        })
        .collect()
}

/// The writer's pause between stores: none unless `SNAPSHOT_READ_SWAP_PAUSE_US` says.
fn swap_pause() -> Option<Duration> {
    let micros: u64 = std::env::var("SNAPSHOT_READ_SWAP_PAUSE_US")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (micros > 0).then(|| Duration::from_micros(micros))
}

/// A thread that calls `swap(i)` for i = 1, 2, 3, ... until it is dropped.
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicU64>,
    started: Instant,
    handle: Option<JoinHandle<()>>,
}

impl Swapper {
    fn start(mut swap: impl FnMut(usize) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicU64::new(0));
        let pause = swap_pause();
        let handle = std::thread::spawn({
            let stop = Arc::clone(&stop);
            let swaps = Arc::clone(&swaps);
            move || {
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    swap(n as usize);
                    if let Some(pause) = pause {
                        std::thread::sleep(pause);
                    }
                }
                swaps.store(n, Ordering::Relaxed);
            }
        });
        Self {
            stop,
            swaps,
            started: Instant::now(),
            handle: Some(handle),
        }
    }
}

impl Drop for Swapper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take()
            && handle.join().is_err()
        {
            eprintln!("swapper thread panicked");
        }
        let swaps = self.swaps.load(Ordering::Relaxed);
        let seconds = self.started.elapsed().as_secs_f64();
        eprintln!(
            "    (writer: {swaps} stores in {seconds:.1} s, {:.0} stores/s)",
            swaps as f64 / seconds
        );
    }
}

/// Benchmarks `read` as `<name>/idle`, then as `<name>/swapping` with `swap`
/// running on a second thread for the whole benchmark.
fn idle_and_swapping(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    read: impl Fn() -> usize,
    swap: impl FnMut(usize) + Send + 'static,
) {
    group.bench_function(format!("{name}/idle"), |b| b.iter(&read));
    let swapper = Swapper::start(swap);
    group.bench_function(format!("{name}/swapping"), |b| b.iter(&read));
    drop(swapper);
}

/// A user's own section set: one section the size of a small dashboard.
struct UserSections {
    orders: Section<Vec<u64>>,
}

impl SectionSet for UserSections {
    type Data = Vec<u64>;

    async fn render(data: Vec<u64>, generation: u64) -> Result<Self, serde_json::Error> {
        Ok(Self {
            orders: Section::render_off_thread(generation, data).await?,
        })
    }
}

#[inline(always)]
fn read_orders(sections: &UserSections) -> usize {
    let section = &sections.orders;
    black_box(section.body().len()) + black_box(section.etag().as_bytes()).len()
}

/// `VERSIONS` rendered user snapshots, on the calling thread.
fn rendered_user() -> Vec<Arc<Loaded<UserSections>>> {
    (0..VERSIONS as u64)
        .map(|v| {
            let orders = Section::render(v + 1, (0..2_000).map(|i| i * (v + 1)).collect())
                .unwrap_or_else(|e| panic!("renders: {e}"));
            let sections = UserSections { orders };
            Arc::new(Loaded::new(
                v + 1,
                Timestamp::now(),
                Duration::from_secs(30),
                sections,
            ))
        })
        .collect()
}

/// The user's type: its cache against a bare `ArcSwap` of the same `Arc`s.
fn user_type(group: &mut BenchmarkGroup<'_, WallTime>) {
    let versions = rendered_user();
    let snapshots: Vec<Snapshot<UserSections>> = versions
        .iter()
        .map(|loaded| Snapshot {
            mode: Mode::Live,
            data: Some(Arc::clone(loaded)),
            last_error: None,
        })
        .collect();
    let cache: SnapshotCache<UserSections> = SnapshotCache::new(Mode::Live);
    cache.store(snapshots[0].clone());
    idle_and_swapping(
        group,
        "user_cache",
        || {
            let snapshot = cache.load();
            match snapshot.data.as_deref() {
                Some(loaded) => read_orders(loaded),
                None => 0,
            }
        },
        {
            let cache = cache.clone();
            move |i| cache.store(snapshots[i % VERSIONS].clone())
        },
    );
    let bare = Arc::new(ArcSwap::new(Arc::clone(&versions[0])));
    idle_and_swapping(group, "user_arcswap_bare", || read_orders(&bare.load()), {
        let bare = Arc::clone(&bare);
        move |i| bare.store(Arc::clone(&versions[i % VERSIONS]))
    });
}

fn snapshot_read(c: &mut Criterion) {
    let versions = rendered();
    let mut group = c.benchmark_group("snapshot_read");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // The real cache, holding snapshots as the refresher stores them.
    let snapshots: Vec<Snapshot> = versions
        .iter()
        .map(|sections| Snapshot {
            mode: Mode::Mock,
            data: Some(Arc::clone(sections)),
            last_error: None,
        })
        .collect();
    let cache = SnapshotCache::new(Mode::Mock);
    cache.store(snapshots[0].clone());
    idle_and_swapping(
        &mut group,
        "snapshot_cache",
        || {
            let snapshot = cache.load();
            match snapshot.data.as_deref() {
                Some(sections) => read_dashboard(sections),
                None => 0,
            }
        },
        {
            let cache = cache.clone();
            move |i| cache.store(snapshots[i % VERSIONS].clone())
        },
    );

    // The floor: a bare ArcSwap of the sections.
    let bare = Arc::new(ArcSwap::new(Arc::clone(&versions[0])));
    idle_and_swapping(
        &mut group,
        "arcswap_bare",
        || read_dashboard(&bare.load()),
        {
            let bare = Arc::clone(&bare);
            let versions = versions.clone();
            move |i| bare.store(Arc::clone(&versions[i % VERSIONS]))
        },
    );

    // The obvious alternative: a lock around an Arc.
    let locked = Arc::new(RwLock::new(Arc::clone(&versions[0])));
    idle_and_swapping(
        &mut group,
        "rwlock_arc",
        || {
            let sections = Arc::clone(&locked.read().unwrap_or_else(PoisonError::into_inner));
            read_dashboard(&sections)
        },
        {
            let locked = Arc::clone(&locked);
            let versions = versions.clone();
            move |i| {
                *locked.write().unwrap_or_else(PoisonError::into_inner) =
                    Arc::clone(&versions[i % VERSIONS]);
            }
        },
    );

    user_type(&mut group);
    group.finish();
}

criterion_group!(benches, snapshot_read);
criterion_main!(benches);
