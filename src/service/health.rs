//! `GET /healthz` (liveness) and `GET /readyz` (readiness).
//!
//! Liveness only says the process serves HTTP. Readiness is true while there
//! is snapshot data no older than the staleness bound, so a load balancer
//! takes an instance out before it serves data that is too old.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{ApiError, AppState};

pub(super) async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshots.load();
    let last_error = snapshot.last_error.as_ref().map(|e| e.message.to_string());
    match snapshot.age() {
        None => ApiError::SnapshotNotLoaded { last_error }.into_response(),
        Some(age) if age > state.max_staleness => ApiError::SnapshotStale {
            age,
            bound: state.max_staleness,
            last_error,
        }
        .into_response(),
        Some(age) => {
            Json(json!({ "status": "ready", "ageSeconds": age.as_secs_f64() })).into_response()
        }
    }
}
