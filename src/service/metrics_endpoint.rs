//! `GET /metrics` on its own listen address, and the exporter's upkeep.
//!
//! Kept off the API port so that scrapes and API traffic can be exposed
//! (and firewalled) separately. The snapshot age gauge is set at each
//! scrape, so it is exact whenever Prometheus looks.

use std::time::Duration;

use ::metrics::{Gauge, gauge};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::{
    SNAPSHOT_AGE_SECONDS, SNAPSHOT_MAX_STALENESS_SECONDS, SNAPSHOT_MODE, SNAPSHOT_TTL_SECONDS,
};
use crate::snapshot::{Mode, SnapshotCache};

/// How often histograms are drained into their summaries.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    snapshots: SnapshotCache,
    age: Gauge,
}

/// Sets the constant snapshot gauges and returns the `/metrics` router.
pub(super) fn router(
    handle: PrometheusHandle,
    snapshots: SnapshotCache,
    ttl: Duration,
    max_staleness: Duration,
) -> Router {
    gauge!(SNAPSHOT_TTL_SECONDS).set(ttl.as_secs_f64());
    gauge!(SNAPSHOT_MAX_STALENESS_SECONDS).set(max_staleness.as_secs_f64());
    let mode = snapshots.load().mode;
    for candidate in [Mode::Live, Mode::Mock] {
        gauge!(SNAPSHOT_MODE, "mode" => candidate.as_str()).set(if candidate == mode {
            1.0
        } else {
            0.0
        });
    }
    let scrape = Scrape {
        handle,
        snapshots,
        age: gauge!(SNAPSHOT_AGE_SECONDS),
    };
    Router::new()
        .route("/metrics", get(render))
        .with_state(scrape)
}

async fn render(State(scrape): State<Scrape>) -> Response {
    // Before the first load the age is unknown: leave the gauge unset (absent).
    if let Some(age) = scrape.snapshots.load().age() {
        scrape.age.set(age.as_secs_f64());
    }
    let mut response = scrape.handle.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// Runs the exporter's upkeep until `stop` is cancelled.
pub(super) fn spawn_upkeep(
    handle: PrometheusHandle,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = every.tick() => handle.run_upkeep(),
            }
        }
    })
}
