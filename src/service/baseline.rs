//! `GET /_bench/constant`: the baseline of the HTTP load measurement.
//!
//! Serves a constant byte string as large as the current dashboard body from
//! the same server, so `benches/http_load.sh` can compare `/dashboard`
//! against the cheapest possible handler in one run. Only mounted when the
//! binary is started with the hidden `--bench-baseline` flag.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::{ApiError, AppState};

#[derive(Clone)]
struct Baseline {
    state: AppState,
    body: Arc<OnceLock<Bytes>>,
}

pub(super) fn router(state: AppState) -> Router {
    let baseline = Baseline {
        state,
        body: Arc::new(OnceLock::new()),
    };
    Router::new()
        .route("/_bench/constant", get(constant))
        .with_state(baseline)
}

async fn constant(State(baseline): State<Baseline>) -> Response {
    let body = match baseline.body.get() {
        Some(body) => body.clone(),
        None => {
            let Some(size) = baseline
                .state
                .snapshots
                .load()
                .data
                .as_ref()
                .map(|d| d.dashboard.body().len())
            else {
                return ApiError::SnapshotNotLoaded { last_error: None }.into_response();
            };
            baseline
                .body
                .get_or_init(|| Bytes::from(vec![b' '; size]))
                .clone()
        }
    };
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
