//! How one operation runs on a [`RedisHandle`]: through the breaker, under
//! its timeout, on the right connection (the tracking one for writes, the
//! Sentinel primary's, or the cluster's), with `LOADING` retried and a
//! replica's answer (`READONLY`, `MOVED`) replacing the connections.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;
use redis::aio::ConnectionManager;

use super::conn::Conn;
use super::error::classify;
use super::{BREAKER_COOLDOWN, L2Error, LOADING_PAUSE, LOADING_TRIES, RedisHandle, sentinel};

/// What one operation touches, which picks its connection and breaker.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target<'a> {
    /// No key (`PING`, `PUBLISH`).
    Server,
    /// An operation on this key (a read, or a script), on the main or
    /// cluster connection.
    Key(&'a str),
    /// A write of this key, on the tracking connection when there is one.
    Write(&'a str),
}

impl<'a> Target<'a> {
    fn key(self) -> Option<&'a str> {
        match self {
            Self::Server => None,
            Self::Key(key) | Self::Write(key) => Some(key),
        }
    }
}

impl RedisHandle {
    /// Runs one operation without a key through the breaker and under the
    /// timeout, on the main connection.
    pub(super) async fn run<T, F, Fut>(&self, op: F) -> Result<T, L2Error>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_on(Target::Server, self.inner.op_timeout, op).await
    }

    /// Runs one read of `key` (in a cluster, through the breaker of `key`'s
    /// primary).
    pub(super) async fn keyed<T, F, Fut>(&self, key: &str, op: F) -> Result<T, L2Error>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_on(Target::Key(key), self.inner.op_timeout, op)
            .await
    }

    /// Runs one write of `key`, on the tracking connection (`NOLOOP`; in a
    /// cluster, the one to `key`'s primary) when the listener has one, else
    /// on the main or cluster connection.
    pub(super) async fn write<T, F, Fut>(&self, key: &str, op: F) -> Result<T, L2Error>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        self.run_on(Target::Write(key), self.inner.op_timeout, op)
            .await
    }

    /// Runs one operation on `target` through the breaker (in a cluster,
    /// the one of the key's primary, once the listener knows the topology)
    /// and under `timeout`; retries `LOADING` a bounded number of times; a
    /// `READONLY` or `MOVED` answer replaces the connections, except in a
    /// cluster, where a write the node redirects is sent again on the
    /// cluster connection.
    pub(super) async fn run_on<T, F, Fut>(
        &self,
        target: Target<'_>,
        timeout: Duration,
        op: F,
    ) -> Result<T, L2Error>
    where
        F: Fn(Conn) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let mut tries = 0;
        // Cleared when a cluster node redirected a write on its tracking
        // connection: the write goes again on the cluster connection.
        let mut write_route = match target {
            Target::Write(key) => Some(key),
            _ => None,
        };
        let breaker = target
            .key()
            .and_then(|key| self.inner.hub.breaker_for(key))
            .unwrap_or_else(|| Arc::clone(&self.inner.breaker));
        loop {
            tries += 1;
            let Some(permit) = breaker.try_acquire() else {
                return Err(L2Error::Unavailable);
            };
            let started = tokio::time::Instant::now();
            let main = match &self.inner.sentinel {
                Some(follower) => match follower.primary_within(timeout).await {
                    Some(primary) => Arc::clone(&primary.main),
                    None => {
                        let _ = permit.failure();
                        return Err(sentinel::no_primary());
                    }
                },
                None => {
                    let main = self.inner.manager.load_full();
                    if self.inner.cluster.is_none() && self.inner.hub.take_demoted() {
                        // The listener found the server behind our address
                        // a replica: reads must not stay on it either.
                        self.replace_connections(&main);
                        self.inner.manager.load_full()
                    } else {
                        main
                    }
                }
            };
            let remaining = timeout.saturating_sub(started.elapsed());
            let conn = match (
                write_route.and_then(|key| self.inner.hub.write_connection(key)),
                &self.inner.cluster,
            ) {
                (Some(tracking), _) => Conn::Tracking(tracking),
                (None, Some(cluster)) => Conn::Cluster(cluster.clone()),
                (None, None) => Conn::Main(main.manager.clone()),
            };
            let on_node = matches!(conn, Conn::Tracking(_)) && self.inner.cluster.is_some();
            let outcome = tokio::time::timeout(remaining, op(conn)).await;
            let error = match outcome {
                Ok(Ok(value)) => {
                    permit.success();
                    return Ok(value);
                }
                Ok(Err(e)) if on_node && is_redirect(&e) => {
                    // The node is up; the slot is elsewhere (or moving), or
                    // the node was demoted. Nothing was written.
                    permit.success();
                    tracing::debug!(error = %e, "cluster node redirected a write; sending it on the cluster connection");
                    write_route = None;
                    continue;
                }
                // The manager's response timeout is also `op_timeout` and usually
                // fires first, as an I/O "timed out" error: the same event as ours.
                Ok(Err(e)) if e.is_timeout() => L2Error::Timeout(timeout),
                Ok(Err(e)) => classify(&e),
                Err(_) => L2Error::Timeout(timeout),
            };
            if error.server_is_up() {
                // The server answered: it is up.
                permit.success();
                return Err(error);
            }
            let opened = permit.failure();
            match (&error, &self.inner.sentinel) {
                (L2Error::NotPrimary(_), Some(follower)) => follower.demoted(main.epoch),
                (L2Error::NotPrimary(_), None) => self.replace_connections(&main),
                (_, Some(follower)) if error.is_ambiguous() => follower.suspect(),
                (L2Error::Loading(_), _) if tries < LOADING_TRIES && !opened => {
                    tokio::time::sleep(LOADING_PAUSE).await;
                    continue;
                }
                _ => {}
            }
            if opened {
                tracing::warn!(endpoint = %self.inner.endpoint, error = %error, "redis marked unavailable; failing fast for {} ms", BREAKER_COOLDOWN.as_millis());
            }
            return Err(error);
        }
    }

    /// The server answered as a replica: drop the main connection `seen`
    /// (once, however many callers saw it) and have the listener reconnect.
    fn replace_connections(&self, seen: &Arc<MainConnection>) {
        self.inner.hub.request_reconnect();
        let fresh = match ConnectionManager::new_lazy_with_config(
            self.inner.client.clone(),
            self.inner.manager_config.clone(),
        ) {
            Ok(manager) => manager,
            Err(e) => {
                tracing::warn!(error = %e, "cannot build a new redis connection");
                return;
            }
        };
        let next = Arc::new(MainConnection {
            epoch: seen.epoch + 1,
            manager: fresh,
        });
        let previous = self.inner.manager.compare_and_swap(seen, next);
        if Arc::ptr_eq(&*previous, seen) {
            tracing::warn!(endpoint = %self.inner.endpoint, "redis answered as a replica (failover?); reconnecting");
        }
    }
}

/// A cluster node's answer that the write belongs elsewhere: `MOVED`,
/// `ASK` (the slot is migrating) or `READONLY` (the node is a replica now).
fn is_redirect(e: &RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    matches!(
        e.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved | ServerErrorKind::Ask | ServerErrorKind::ReadOnly
        )
    )
}

/// The main connection and how many times it was replaced.
pub(crate) struct MainConnection {
    pub(super) epoch: u64,
    pub(super) manager: ConnectionManager,
}
