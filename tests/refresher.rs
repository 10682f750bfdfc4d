//! The refresher on tokio's paused clock: schedule, jitter, backoff,
//! stale-if-error, timeouts, coalescing of `refresh_now`, and shutdown.

mod support;

use std::sync::Arc;
use std::time::Duration;

use support::scripted::{Scripted, Step, start};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep};
use warmcache::{Mode, RefreshError, Refresher, SnapshotCache};

fn generation(cache: &SnapshotCache) -> Option<u64> {
    cache.load().data.as_ref().map(|d| d.generation)
}

#[tokio::test(start_paused = true)]
async fn reads_never_fetch_one_fetch_per_ttl_window() {
    let source = Scripted::new(&[]);
    let (_refresher, cache) = start(&source, 10, 0.0);
    let mut reads = 0u64;
    // 3 TTL windows, 100,000 reads spread evenly over them.
    for _ in 0..300 {
        sleep(Duration::from_millis(100)).await;
        for _ in 0..334 {
            let snapshot = cache.load();
            assert!(snapshot.data.is_some());
            reads += 1;
        }
    }
    assert!(reads >= 100_000);
    let fetches = source.fetches();
    assert!(
        (3..=4).contains(&fetches),
        "{fetches} fetches for 3 windows"
    );
    assert_eq!(generation(&cache), Some(fetches as u64));
}

#[tokio::test(start_paused = true)]
async fn failures_keep_the_last_good_data_and_record_the_error() {
    let source = Scripted::new(&[
        Step::Succeed,
        Step::Fail("bigquery said no"),
        Step::Fail("still no"),
    ]);
    let (_refresher, cache) = start(&source, 10, 0.0);
    sleep(Duration::from_millis(1)).await;
    let good = cache.load_full();
    let good_data = good.data.clone().expect("first load succeeded");
    assert!(good.last_error.is_none());

    sleep(Duration::from_secs(10)).await; // second fetch fails
    let after = cache.load_full();
    let kept = after.data.clone().expect("data kept");
    assert!(
        Arc::ptr_eq(&kept, &good_data),
        "the last good sections are served as they were"
    );
    let error = after.last_error.clone().expect("error recorded");
    assert!(
        error.message.contains("bigquery said no"),
        "{}",
        error.message
    );
    assert_eq!(error.consecutive_failures, 1);

    sleep(Duration::from_secs(1)).await; // retry after 1 s also fails
    let error = cache.load().last_error.clone().expect("error recorded");
    assert!(error.message.contains("still no"));
    assert_eq!(error.consecutive_failures, 2);
    assert_eq!(generation(&cache), Some(1));

    sleep(Duration::from_secs(2)).await; // the retry after 2 s succeeds
    assert_eq!(generation(&cache), Some(2));
    assert!(
        cache.load().last_error.is_none(),
        "success clears the error"
    );
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_exponentially_up_to_the_ttl() {
    let origin = Instant::now();
    let source = Scripted::new(&[Step::Fail("down"); 7]);
    let (_refresher, cache) = start(&source, 30, 0.0);
    sleep(Duration::from_secs(125)).await;
    // Failures at 0, 1, 3, 7, 15, 31 (wait capped at 30), 61; success at 91;
    // then back on the timetable of the first round (0, 30, 60, 90, 120).
    assert_eq!(
        source.fetch_seconds(origin),
        [0, 1, 3, 7, 15, 31, 61, 91, 120]
    );
    assert_eq!(generation(&cache), Some(2));
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_its_bounds_and_varies() {
    let source = Scripted::new(&[]);
    let (_refresher, _cache) = start(&source, 10, 0.2);
    sleep(Duration::from_secs(2_000)).await;
    let intervals = source.fetch_intervals();
    assert!(intervals.len() >= 150, "{} intervals", intervals.len());
    let (min, max) = (
        intervals.iter().min().copied(),
        intervals.iter().max().copied(),
    );
    let (min, max) = (min.expect("some"), max.expect("some"));
    assert!(
        min >= Duration::from_secs(8) && max <= Duration::from_secs(12),
        "{min:?}..{max:?}"
    );
    assert!(
        max - min > Duration::from_secs(2),
        "jitter spreads the periods: {min:?}..{max:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hanging_source_times_out_and_the_old_data_stays() {
    let source = Scripted::new(&[Step::Succeed, Step::Hang]);
    let (refresher, cache) = start(&source, 10, 0.0);
    sleep(Duration::from_millis(1)).await;
    let result = refresher.refresh_now().await;
    let error = result.expect_err("the fetch hangs");
    assert!(
        matches!(*error, RefreshError::Timeout(d) if d == Duration::from_secs(5)),
        "{error}"
    );
    let snapshot = cache.load();
    assert_eq!(snapshot.data.as_ref().map(|d| d.generation), Some(1));
    let message = &snapshot.last_error.as_ref().expect("recorded").message;
    assert!(message.contains("timed out after 5000 ms"), "{message}");
}

#[tokio::test(start_paused = true)]
async fn a_thousand_concurrent_refresh_now_calls_cause_one_fetch() {
    let source = Scripted::new(&[]);
    let (refresher, cache) = start(&source, 30, 0.0);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(source.fetches(), 1);

    let refresher = Arc::new(refresher);
    let mut callers = JoinSet::new();
    for _ in 0..1_000 {
        let refresher = Arc::clone(&refresher);
        callers.spawn(async move { refresher.refresh_now().await });
    }
    while let Some(result) = callers.join_next().await {
        result.expect("no panic").expect("refresh succeeded");
    }
    assert_eq!(source.fetches(), 2);
    assert_eq!(generation(&cache), Some(2));
}

#[tokio::test(start_paused = true)]
async fn refresh_now_waits_for_a_fetch_that_starts_after_the_call() {
    let origin = Instant::now();
    let source = Scripted::new(&[Step::Succeed, Step::Slow(Duration::from_secs(3))]);
    let (refresher, cache) = start(&source, 30, 0.0);
    sleep(Duration::from_millis(1)).await;
    let refresher = Arc::new(refresher);

    let first = tokio::spawn({
        let refresher = Arc::clone(&refresher);
        async move { refresher.refresh_now().await }
    });
    sleep(Duration::from_secs(1)).await; // the slow fetch is in flight
    let late = refresher.refresh_now().await;
    late.expect("refresh succeeded");
    first.await.expect("no panic").expect("refresh succeeded");
    // The late caller did not settle for the fetch already in flight.
    assert_eq!(source.fetch_seconds(origin), [0, 0, 3]);
    assert_eq!(generation(&cache), Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_manual_refresh_restarts_the_period() {
    let origin = Instant::now();
    let source = Scripted::new(&[]);
    let (refresher, _cache) = start(&source, 10, 0.0);
    sleep(Duration::from_secs(4)).await;
    refresher.refresh_now().await.expect("refresh succeeded");
    sleep(Duration::from_secs(11)).await;
    assert_eq!(source.fetch_seconds(origin), [0, 4, 14]);
}

#[tokio::test(start_paused = true)]
async fn every_caller_of_a_failed_fetch_gets_the_same_error() {
    let source = Scripted::new(&[Step::Succeed, Step::Fail("quota exceeded")]);
    let (refresher, _cache) = start(&source, 30, 0.0);
    sleep(Duration::from_millis(1)).await;
    let (a, b) = tokio::join!(refresher.refresh_now(), refresher.refresh_now());
    let (a, b) = (a.expect_err("failed"), b.expect_err("failed"));
    assert!(Arc::ptr_eq(&a, &b));
    assert!(a.to_string().contains("quota exceeded"));
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_the_task_even_mid_fetch() {
    let source = Scripted::new(&[Step::Succeed, Step::Hang]);
    let (refresher, _cache) = start(&source, 10, 0.0);
    sleep(Duration::from_secs(11)).await; // second fetch is hanging (timeout 5 s, so 1 s in)
    assert_eq!(source.fetches(), 2);
    // On the paused clock a hang here would fire this timeout and fail the test.
    tokio::time::timeout(Duration::from_millis(10), refresher.shutdown())
        .await
        .expect("shutdown is prompt");
    sleep(Duration::from_secs(300)).await;
    assert_eq!(source.fetches(), 2, "no fetch after shutdown");
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_stops_the_task() {
    let source = Scripted::new(&[]);
    let (refresher, _cache) = start(&source, 10, 0.0);
    sleep(Duration::from_secs(15)).await;
    assert_eq!(source.fetches(), 2);
    drop(refresher);
    sleep(Duration::from_secs(300)).await;
    assert_eq!(source.fetches(), 2, "no fetch after drop");
    // The task released the source: only the test's handle is left.
    assert_eq!(source.clones(), 1);
}

#[tokio::test]
async fn bad_builder_settings_are_rejected() {
    let cache = SnapshotCache::new(Mode::Mock);
    let zero = Refresher::builder()
        .ttl(Duration::ZERO)
        .spawn(Scripted::new(&[]), cache.clone());
    assert_eq!(zero.expect_err("zero ttl").name, "ttl");
    let jitter = Refresher::builder()
        .jitter(0.9)
        .spawn(Scripted::new(&[]), cache);
    assert_eq!(jitter.expect_err("jitter too large").name, "jitter");
}
