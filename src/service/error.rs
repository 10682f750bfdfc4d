//! `ApiError`: every error the HTTP API returns, as `{"error":{"code","message"}}`.
//!
//! Handlers return it; `IntoResponse` logs the detail and picks the status.
//! Codes are stable: clients may match on them.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No snapshot has loaded yet (503).
    #[error("the snapshot has not loaded yet{}", last_error_suffix(.last_error))]
    SnapshotNotLoaded {
        /// Why the last attempt failed, if one did.
        last_error: Option<String>,
    },
    /// The snapshot is older than the staleness bound (503, readiness only).
    #[error("the snapshot is {} s old, over the {} s bound{}", .age.as_secs(), .bound.as_secs(), last_error_suffix(.last_error))]
    SnapshotStale {
        /// Age of the data.
        age: Duration,
        /// The configured bound.
        bound: Duration,
        /// Why refreshes fail, if they do.
        last_error: Option<String>,
    },
    /// No route matches the path (404).
    #[error("no route for {0}")]
    NotFound(String),
    /// The route exists but not for this method (405).
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
}

fn last_error_suffix(last_error: &Option<String>) -> String {
    last_error
        .as_ref()
        .map(|e| format!("; last error: {e}"))
        .unwrap_or_default()
}

impl ApiError {
    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::SnapshotNotLoaded { .. } => "snapshot_not_loaded",
            Self::SnapshotStale { .. } => "snapshot_stale",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed(_) => "method_not_allowed",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SnapshotNotLoaded { .. } | Self::SnapshotStale { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::debug!(code = self.code(), "{self}");
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
