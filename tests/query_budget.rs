//! How many queries one process sends, however many requests it serves.
//!
//! On tokio's paused clock: ten simulated minutes at the default settings
//! (`BQ_CACHE_TTL_MS=30000`, jitter 0.1), serving 10,000 requests per
//! simulated second, with a source that counts its fetches. A live fetch is
//! exactly three queries (`tests/bigquery.rs` checks
//! `BigQueryStats::queries() == 3 * refreshes` against the emulator), so the
//! query count is three times the fetch count.
//!
//! Of each 100 requests, one goes through the real router (`app`) and 99 do
//! what the snapshot handlers do (one `SnapshotCache::load` and a clone of
//! the pre-rendered body): six million router calls would take many
//! minutes in a debug build. The router cannot reach the source anyway: its
//! state holds only the snapshot cell.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tokio::time::{Instant, sleep_until};
use tower::ServiceExt;
use warmcache::service::{AppState, app};
use warmcache::{
    Config, MockSource, Mode, ReferenceSections, Refresher, SnapshotCache, SnapshotData,
    SnapshotSource, SourceError,
};

/// Queries one live fetch sends (dashboard, historical, products).
const QUERIES_PER_FETCH: u64 = 3;

/// Counts fetches of the source it wraps.
#[derive(Clone)]
struct Counting {
    mock: Arc<MockSource>,
    fetches: Arc<AtomicU64>,
}

impl SnapshotSource for Counting {
    type Set = ReferenceSections;

    async fn fetch(&self) -> Result<SnapshotData, SourceError> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        self.mock.fetch().await
    }
}

/// Serves `per_second` requests per simulated second for `duration` and
/// returns the number of fetches, the number of requests and how many of
/// them were answered 200.
async fn serve(jitter: Option<f64>, duration: Duration, per_second: u64) -> (u64, u64, u64) {
    let mut config = Config::from_lookup(|_| None).expect("the defaults are valid");
    if let Some(jitter) = jitter {
        config.refresh.jitter = jitter;
    }
    assert_eq!(
        config.refresh.ttl,
        Duration::from_secs(30),
        "the default TTL"
    );
    let source = Counting {
        mock: Arc::new(MockSource::new(42)),
        fetches: Arc::new(AtomicU64::new(0)),
    };
    let snapshots = SnapshotCache::new(Mode::Live);
    let refresher = Refresher::builder()
        .config(&config.refresh)
        .spawn(source.clone(), snapshots.clone())
        .expect("valid settings");
    let router = app(AppState {
        snapshots: snapshots.clone(),
        ttl: config.refresh.ttl,
        max_staleness: config.max_staleness,
        keyed: None,
    });

    // Requests arrive in 100 batches a second, spread over the whole time.
    let batches_per_second = 100;
    let per_batch = per_second / batches_per_second;
    let step = Duration::from_secs(1) / batches_per_second as u32;
    let start = Instant::now();
    let (mut requests, mut ok) = (0u64, 0u64);
    let mut at = start;
    while at + step < start + duration {
        at += step;
        sleep_until(at).await;
        if per_batch > 0 {
            let path =
                ["/dashboard", "/historical", "/products", "/snapshot"][(requests % 4) as usize];
            let request = Request::get(path).body(Body::empty()).expect("a request");
            let response = router.clone().oneshot(request).await.expect("infallible");
            requests += 1;
            ok += u64::from(response.status() == StatusCode::OK);
        }
        for _ in 1..per_batch {
            let snapshot = snapshots.load();
            let body = snapshot.data.as_ref().map(|d| d.dashboard.body().clone());
            requests += 1;
            ok += u64::from(body.is_some_and(|b| !b.is_empty()));
        }
    }
    refresher.shutdown().await;
    (source.fetches.load(Ordering::Relaxed), requests, ok)
}

#[tokio::test(start_paused = true)]
async fn ten_minutes_at_10_000_requests_a_second_send_20_rounds_of_3_queries() {
    let ten_minutes = Duration::from_secs(600);

    // Without jitter the schedule is exact: a fetch at 0 s, 30 s, ... 570 s.
    let (fetches, requests, ok) = serve(Some(0.0), ten_minutes, 10_000).await;
    assert_eq!(
        requests,
        6_000_000 - 100,
        "every 10 ms for 10 minutes but the last"
    );
    assert_eq!(ok, requests, "every request answered from the snapshot");
    assert_eq!(fetches, 20);
    assert_eq!(fetches * QUERIES_PER_FETCH, 60);

    // With the default jitter (±10 %) the count varies a little around 20,
    // and never depends on the request rate.
    let (fetches, _, _) = serve(None, ten_minutes, 10_000).await;
    let (idle_fetches, _, _) = serve(None, ten_minutes, 0).await;
    eprintln!(
        "10 simulated minutes at the default TTL: {fetches} refresh rounds ({} queries) at \
         10,000 requests/s, {idle_fetches} rounds with no requests",
        fetches * QUERIES_PER_FETCH
    );
    for count in [fetches, idle_fetches] {
        // 600 s / 33 s per period at most, 600 s / 27 s at least.
        assert!((19..=23).contains(&count), "{count} fetches");
    }
}
