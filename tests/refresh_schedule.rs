//! The refresher's timetable on tokio's paused clock, with a slow source:
//! rounds start a TTL apart start to start (not a TTL after the previous one
//! ends), each snapshot is replaced before its `expiresAt`, and a round that
//! overruns its slot is followed at once, never by two rounds at a time.

mod support;

use std::time::Duration;

use support::scripted::{Scripted, Step, start};
use tokio::time::{Instant, sleep};
use warmcache::{Mode, Refresher, SnapshotCache};

const TTL: Duration = Duration::from_secs(10);
/// 30 % of the TTL: well within the refresher's 5 s timeout.
const SLOW: Duration = Duration::from_secs(3);
/// Virtual time allowed between where a round should start and where it does.
const SLACK: Duration = Duration::from_millis(5);

fn slow_rounds(n: usize) -> Vec<Step> {
    vec![Step::Slow(SLOW); n]
}

fn near(actual: Duration, expected: Duration) -> bool {
    actual.abs_diff(expected) <= SLACK
}

#[tokio::test(start_paused = true)]
async fn rounds_start_a_ttl_apart_start_to_start_with_a_slow_source() {
    let source = Scripted::new(&slow_rounds(20));
    let (_refresher, _cache) = start(&source, TTL.as_secs(), 0.0);
    sleep(TTL * 10).await;

    let intervals = source.fetch_intervals();
    assert!(intervals.len() >= 9, "{intervals:?}");
    // The first round has no recent duration to lead by: the second starts
    // that much earlier than a TTL after it, then the timetable holds.
    assert!(intervals[0] < TTL, "{intervals:?}");
    for (i, interval) in intervals.iter().enumerate().skip(1) {
        assert!(
            near(*interval, TTL),
            "round {} started {interval:?} after the one before (TTL {TTL:?}): {intervals:?}",
            i + 1
        );
    }
}

/// Samples the cache every 50 ms for `ttls` TTLs once the first snapshot is
/// in; panics at the first instant it serves data past its `expiresAt`.
/// Returns the generations seen.
async fn assert_never_served_past_expiry(cache: &SnapshotCache, ttls: u32) -> u64 {
    while cache.load().data.is_none() {
        sleep(Duration::from_millis(50)).await;
    }
    let origin = Instant::now();
    let mut last_generation = 0;
    while origin.elapsed() < TTL * ttls {
        let snapshot = cache.load_full();
        let data = snapshot.data.as_ref().expect("loaded stays loaded");
        let now = Instant::now();
        assert!(
            now <= data.expires_at.instant,
            "generation {} served {:?} past its expiresAt ({:?} after the first load)",
            data.generation,
            now - data.expires_at.instant,
            now - origin,
        );
        last_generation = data.generation;
        sleep(Duration::from_millis(50)).await;
    }
    last_generation
}

#[tokio::test(start_paused = true)]
async fn a_slow_source_is_never_served_past_its_expires_at() {
    let source = Scripted::new(&slow_rounds(30));
    let (_refresher, cache) = start(&source, TTL.as_secs(), 0.0);
    let generation = assert_never_served_past_expiry(&cache, 8).await;
    assert!(
        generation >= 8,
        "the data kept being replaced: {generation}"
    );
}

#[tokio::test(start_paused = true)]
async fn with_jitter_too_the_next_snapshot_is_in_before_expiry() {
    let source = Scripted::new(&slow_rounds(60));
    let (_refresher, cache) = start(&source, TTL.as_secs(), 0.5);
    let generation = assert_never_served_past_expiry(&cache, 20).await;
    assert!(generation >= 16, "{generation}");
    let intervals = source.fetch_intervals();
    let (min, max) = (intervals.iter().min(), intervals.iter().max());
    let (min, max) = (min.copied().expect("some"), max.copied().expect("some"));
    assert!(
        max - min > Duration::from_secs(1),
        "jitter moves the starts: {intervals:?}"
    );
    assert!(
        intervals
            .iter()
            .skip(1)
            .all(|i| *i <= TTL.mul_f64(1.5) + SLACK),
        "periods within TTL × (1 ± jitter): {intervals:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn expires_at_is_the_next_slot_and_counts_from_the_round_start() {
    let source = Scripted::new(&slow_rounds(10));
    let (_refresher, cache) = start(&source, TTL.as_secs(), 0.0);
    sleep(TTL * 3).await;
    let starts = source.fetch_times();
    let snapshot = cache.load_full();
    let data = snapshot.data.as_ref().expect("loaded");
    assert!(data.generation >= 3, "{}", data.generation);
    let round = usize::try_from(data.generation - 1).expect("small");
    assert_eq!(
        data.refreshed_at.instant, starts[round],
        "as of its round's start"
    );
    // Rounds after the first start 5/4 × 3 s ahead of their slot, and a
    // snapshot expires at the slot of the next one: TTL after its own slot.
    let lead = SLOW.mul_f64(1.25);
    let lifetime = data.expires_at.instant - data.refreshed_at.instant;
    assert!(near(lifetime, TTL + lead), "{lifetime:?}");
    let wall = data.expires_at.wall.duration_since(data.refreshed_at.wall);
    assert_eq!(wall.expect("expires after it was refreshed"), lifetime);
}

#[tokio::test(start_paused = true)]
async fn a_round_that_overruns_its_slot_is_followed_at_once_never_two_at_a_time() {
    let overrun = Duration::from_secs(12);
    let source = Scripted::new(&[Step::Slow(overrun); 5]);
    let cache = SnapshotCache::new(Mode::Mock);
    let _refresher = Refresher::builder()
        .ttl(TTL)
        .timeout(Duration::from_secs(20))
        .jitter(0.0)
        .spawn(source.clone(), cache.clone())
        .expect("valid settings");
    sleep(Duration::from_secs(80)).await;

    // Lead: 5/4 × 12 s, capped at 5 s. Round 1 (0 to 12 s) misses the 10 s
    // slot and is followed at once, for the 20 s slot; round 2 (12 to 24)
    // makes the 25 s start of the 30 s slot; round 3 (25 to 37) ends past
    // the 35 s start of the 40 s slot, so round 4 starts at once, and so on;
    // round 6 answers at once, and round 7 starts 5 s before the 80 s slot.
    let origin = Instant::now() - Duration::from_secs(80);
    assert_eq!(source.fetch_seconds(origin), [0, 12, 25, 37, 49, 61, 75]);
    assert_eq!(source.most_in_flight(), 1, "never two rounds at once");
    let generation = cache.load().data.as_ref().map(|d| d.generation);
    assert_eq!(generation, Some(7));
}
