//! `CacheError`: what a keyed-cache call can fail with, one variant per action a caller can take.

use std::sync::Arc;

use super::id::InvalidId;
use crate::l2::L2Error;

/// A loader's error, shared by every caller waiting on that load.
pub type LoaderError = Arc<dyn std::error::Error + Send + Sync>;

/// Why a keyed-cache call failed. Cheap to clone: every caller coalesced on
/// one load receives a copy of the same error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// The id is malformed (a 400 for an HTTP caller).
    #[error(transparent)]
    InvalidId(#[from] InvalidId),
    /// Redis could not be used, and nothing else could answer.
    #[error(transparent)]
    L2(#[from] L2Error),
    /// Redis holds a value for `key` that is not valid JSON of the expected
    /// shape. The value is never served, logged or deleted. The message
    /// shows the key as keyspace and id hash (it may reach a log).
    #[error("the value stored at {} is corrupt: {reason}", crate::redact::key(.key))]
    Corrupt {
        /// The Redis key.
        key: String,
        /// The parse error (position and kind, not the value).
        reason: String,
    },
    /// The loader failed.
    #[error("loading failed: {0}")]
    Loader(LoaderError),
    /// The value could not be serialized.
    #[error("cannot serialize the value: {0}")]
    Encode(Arc<serde_json::Error>),
}

impl From<Arc<CacheError>> for CacheError {
    fn from(shared: Arc<CacheError>) -> Self {
        Arc::unwrap_or_clone(shared)
    }
}
