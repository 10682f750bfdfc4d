//! `ApiError`: every error the HTTP API returns, as `{"error":{"code","message"}}`.
//!
//! Handlers return it; `IntoResponse` logs the detail and picks the status.
//! Codes are stable: clients may match on them. A server-side failure's
//! body names its kind only (code and a fixed message): what Redis said,
//! where it runs and which key was involved go to the log (keys as
//! keyspace and id hash at `warn` and above, see [`crate::redact`]).

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::l2::L2Error;
use crate::redact;
use crate::tier::{CacheError, InvalidId};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
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
    /// A malformed id (400).
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// The request body is not the JSON the route takes (400).
    #[error("invalid request body: {0}")]
    InvalidBody(String),
    /// The id in the body differs from the id in the path (400).
    #[error("the id in the body ({body}) differs from the id in the path ({path})")]
    IdMismatch {
        /// Id from the path.
        path: String,
        /// Id from the body.
        body: String,
    },
    /// Nothing stored under this id (404).
    #[error("no {what} for {id}")]
    NoSuchRecord {
        /// What was looked up.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// Redis cannot be used and nothing else can answer (503). The body
    /// says only that; the cause is in the log.
    #[error("redis is unavailable; retry shortly")]
    RedisUnavailable,
    /// The service runs without keyed caches (503).
    #[error("the keyed caches are not configured in this service")]
    KeyedCachesOff,
    /// The stored value is corrupt (502); the detail is in the log.
    #[error("the stored value is corrupt")]
    CorruptValue,
    /// The source of truth failed (502).
    #[error("loading the value failed")]
    LoadFailed,
    /// The BullMQ job hash is not of the shape BullMQ writes (502); the
    /// detail (field, never the value) is in the message and the log.
    #[error("{0}")]
    BullmqJobMalformed(String),
    /// A `waitMs` that is not a number of milliseconds up to 30,000 (400).
    #[error("invalid waitMs: {0}")]
    InvalidWait(String),
    /// `Accept-Encoding` refuses every coding a data route has (406).
    #[error("no acceptable content coding: this route sends br, gzip or identity")]
    NotAcceptable,
    /// A bug or an unserializable value (500); the detail is in the log.
    #[error("internal error")]
    Internal,
}

impl From<CacheError> for ApiError {
    fn from(error: CacheError) -> Self {
        match error {
            CacheError::InvalidId(e) => Self::InvalidId(e),
            CacheError::L2(e) => {
                // An open breaker was logged when it opened.
                if !matches!(e, L2Error::Unavailable) {
                    tracing::warn!(error = %e, "redis failed; answering 503");
                }
                Self::RedisUnavailable
            }
            CacheError::Corrupt { key, reason } => {
                tracing::debug!(key, reason, "corrupt value not served");
                tracing::error!(key = %redact::key(&key), reason, "corrupt value not served");
                Self::CorruptValue
            }
            CacheError::Loader(e) => {
                // Logged with keyspace and id hash where it failed; its
                // text may quote the id.
                tracing::debug!(error = %e, "loader failed");
                Self::LoadFailed
            }
            CacheError::Encode(e) => {
                tracing::error!(error = %e, "cannot encode a value");
                Self::Internal
            }
        }
    }
}

impl From<crate::bullmq::BullmqError> for ApiError {
    fn from(error: crate::bullmq::BullmqError) -> Self {
        match error {
            crate::bullmq::BullmqError::L2(e) => Self::from(CacheError::L2(e)),
            malformed @ crate::bullmq::BullmqError::Malformed { .. } => {
                Self::BullmqJobMalformed(malformed.to_string())
            }
        }
    }
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
            Self::InvalidId(_) => "invalid_id",
            Self::InvalidBody(_) => "invalid_body",
            Self::IdMismatch { .. } => "id_mismatch",
            Self::NoSuchRecord { .. } => "not_found",
            Self::RedisUnavailable => "redis_unavailable",
            Self::KeyedCachesOff => "keyed_caches_off",
            Self::CorruptValue => "corrupt_value",
            Self::LoadFailed => "load_failed",
            Self::BullmqJobMalformed(_) => "bullmq_job_malformed",
            Self::InvalidWait(_) => "invalid_wait",
            Self::NotAcceptable => "not_acceptable",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::SnapshotNotLoaded { .. }
            | Self::SnapshotStale { .. }
            | Self::RedisUnavailable
            | Self::KeyedCachesOff => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotFound(_) | Self::NoSuchRecord { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvalidId(_)
            | Self::InvalidBody(_)
            | Self::IdMismatch { .. }
            | Self::InvalidWait(_) => StatusCode::BAD_REQUEST,
            Self::CorruptValue | Self::LoadFailed | Self::BullmqJobMalformed(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
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
