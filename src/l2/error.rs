//! `L2Error`: why a Redis operation failed, one variant per reaction (and
//! `RedisSetupError`: why a handle could not be built).
//!
//! The server's error replies are told apart by kind: `READONLY` and
//! `MOVED` mean the connection reached a server that is no longer (or not)
//! the primary for the key, so the handle reconnects; `LOADING` means the
//! server is starting and is retried a bounded number of times; anything
//! else (`OOM`, `NOPERM`, ...) is a refusal by a server that is up.

use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// Why a Redis operation did not succeed. Messages never contain the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum L2Error {
    /// Redis is known to be down: the breaker is open, nothing was sent.
    #[error("redis is unavailable (recent operations failed; retrying shortly)")]
    Unavailable,
    /// No answer within the operation timeout.
    #[error("redis did not answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The connection could not be made or was lost.
    #[error("redis connection failed: {0}")]
    Connection(String),
    /// The server refused the credentials.
    #[error("redis refused the credentials: {0}")]
    Auth(String),
    /// The server is not the primary (`READONLY`: a replica, e.g. a demoted
    /// primary after a failover; `MOVED`: another node owns the key). The
    /// command was not applied; the handle reconnects.
    #[error("redis is not the primary: {0}")]
    NotPrimary(String),
    /// The server is loading its data set (`LOADING`), still after retries.
    #[error("redis is loading its data: {0}")]
    Loading(String),
    /// The server answered with an error (e.g. `OOM`, no permission for the key).
    #[error("redis refused the command: {0}")]
    Refused(String),
}

impl L2Error {
    /// Whether the operation may have been applied although it failed
    /// (the answer was lost), so cached copies can no longer be trusted.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connection(_))
    }

    /// Whether the server that answered is up and serving (the breaker
    /// counts such an answer as a success).
    pub(crate) fn server_is_up(&self) -> bool {
        matches!(self, Self::Refused(_))
    }
}

pub(crate) fn classify(e: &RedisError) -> L2Error {
    let text = e.to_string();
    match e.kind() {
        ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::Moved) => {
            return L2Error::NotPrimary(text);
        }
        ErrorKind::Server(ServerErrorKind::BusyLoading) => return L2Error::Loading(text),
        _ => {}
    }
    if e.kind() == ErrorKind::AuthenticationFailed
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
    {
        L2Error::Auth(text)
    } else if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || e.is_timeout()
    {
        L2Error::Connection(text)
    } else {
        L2Error::Refused(text)
    }
}

/// Why a [`super::RedisHandle`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisSetupError {
    /// `REDIS_TLS_CA_FILE` could not be read.
    #[error("cannot read REDIS_TLS_CA_FILE {path}: {source}")]
    CaFile {
        /// The path.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The client rejected the settings.
    #[error("invalid redis settings: {0}")]
    Client(String),
    /// Called outside a tokio runtime: the handle's tasks (Sentinel
    /// discovery, the connections' I/O) need one to run on.
    #[error("a redis handle must be built inside a tokio runtime")]
    NoRuntime,
}
