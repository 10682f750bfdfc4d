//! The shared second tier: a Redis connection with timeouts and a breaker.
//!
//! [`RedisHandle`] wraps the `redis` crate's reconnecting
//! `ConnectionManager`. Every operation runs under a short timeout and
//! through a [`breaker::Breaker`], so an outage costs callers one timeout,
//! not one per request, and the handle recovers by itself when Redis returns.
//! The connection is lazy: a service starts even when Redis is down.
//!
//! Reads use the main connection; writes use the invalidation listener's
//! tracking connection while it runs (`NOLOOP`, see [`tracking`]), else the
//! main one. A server that answers as a replica (`READONLY`, after a
//! failover) or redirects (`MOVED`) makes the handle replace its main
//! connection and the listener reconnect, so no connection stays on a
//! demoted primary; `LOADING` is retried a bounded number of times.
//!
//! With `REDIS_MODE=cluster` ([`cluster`]) every operation goes through a
//! Redis Cluster connection instead (it follows `MOVED`/`ASK`), and the
//! listener tracks every primary ([`topology`]). With `REDIS_MODE=sentinel`
//! ([`sentinel`]) the main connection is the one of the primary the
//! sentinels name, replaced on every failover; an operation waits for a
//! verified primary within its own timeout, and `READONLY` or a lost
//! connection makes the follower look again.

mod breaker;
mod cluster;
mod config;
mod conn;
mod erasure;
mod error;
pub(crate) mod hub;
mod push;
mod run;
mod sentinel;
mod session;
mod topology;
mod tracking;

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo, RedisError};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use config::{RedisConfig, RedisMode, Secret};
pub(crate) use erasure::WriteBack;
pub use erasure::{Erasure, TOMBSTONE_PREFIX};
pub use error::{L2Error, RedisSetupError};
pub use hub::InvalidationMode;
pub use tracking::{
    INVALIDATION_CHANNEL, InvalidationListener, InvalidationOptions, PUSH_CAPACITY,
};

use breaker::Breaker;
use conn::make_client;
use error::classify;
use hub::Hub;
pub(crate) use run::MainConnection;
use run::Target;
use tracking::ListenerClients;

/// Failures in a row that open the breaker.
const BREAKER_THRESHOLD: u32 = 3;
/// How long an open breaker fails calls before it lets a probe through.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(1);
/// Tries of an operation the server answers with `LOADING`.
const LOADING_TRIES: u32 = 3;
/// Pause between two of them.
const LOADING_PAUSE: Duration = Duration::from_millis(100);

/// A cheap-to-clone handle on one Redis server.
///
/// # TLS and the rustls crypto provider
///
/// With `use_tls`, connections use rustls through the `redis` crate, which
/// builds its configuration with rustls' process-wide default
/// `CryptoProvider`. warmcache does not install one: that is the host
/// process's choice. When the process compiles in exactly one provider
/// (warmcache itself enables only `ring`), rustls installs that one on the
/// first TLS connection and nothing needs doing. When the process compiles
/// in several (another dependency enables rustls' `aws-lc-rs` feature, its
/// default, for example), rustls cannot choose and panics on the first TLS
/// connection; install one at the start of `main`, before connecting:
///
/// ```no_run
/// // or rustls::crypto::aws_lc_rs::default_provider()
/// let _ = rustls::crypto::ring::default_provider().install_default();
/// ```
#[derive(Clone)]
pub struct RedisHandle {
    inner: Arc<Inner>,
}

struct Inner {
    /// Reconnects by itself after a lost connection; cloning shares the
    /// multiplexed connection. Replaced when the server turns out demoted.
    manager: ArcSwap<MainConnection>,
    /// To build a fresh manager.
    client: Client,
    manager_config: ConnectionManagerConfig,
    /// Shared by every clone, so all callers learn of an outage together
    /// (and, in sentinel mode, with the follower, which resets it).
    breaker: Arc<Breaker>,
    /// The clients of the invalidation listener's own connection.
    listener_clients: ListenerClients,
    /// Erasure settings (tombstone life, replicas to wait for).
    erasure: erasure::ErasureSettings,
    /// In cluster mode, the connection every operation goes through.
    cluster: Option<redis::cluster_async::ClusterConnection>,
    /// In sentinel mode, the primary now (the main connection is its).
    sentinel: Option<Arc<sentinel::Follower>>,
    /// Stops the sentinel tasks with the last clone of the handle.
    _stop_following: Option<DropGuard>,
    /// The caches built on this handle, and whether their L1 is trusted.
    hub: Arc<Hub>,
    op_timeout: Duration,
    endpoint: String,
}

impl std::fmt::Debug for RedisHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHandle")
            .field("endpoint", &self.inner.endpoint)
            .field("op_timeout", &self.inner.op_timeout)
            .field("breaker_open", &self.inner.breaker.is_open())
            .finish_non_exhaustive()
    }
}

/// A connection of its own for a task that blocks on it, and the Sentinel
/// epoch of the primary it reached (see [`RedisHandle::primary_moved`]).
pub(crate) struct Dedicated {
    pub(crate) connection: redis::aio::MultiplexedConnection,
    /// `None` outside Sentinel mode.
    pub(crate) epoch: Option<u64>,
}

impl RedisHandle {
    /// Builds the handle without connecting; the first operation connects.
    ///
    /// The tasks it needs (Sentinel discovery) run on the current tokio
    /// runtime and stop when the last clone of the handle is dropped.
    ///
    /// # Errors
    /// An unreadable CA file, settings the client rejects, or no tokio
    /// runtime ([`RedisSetupError::NoRuntime`]; it never panics for that).
    pub fn connect_lazy(config: &RedisConfig) -> Result<Self, RedisSetupError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(RedisSetupError::NoRuntime);
        }
        let scheme = if config.use_tls { "rediss" } else { "redis" };
        let client_error = |e: RedisError| RedisSetupError::Client(e.to_string());
        let mut redis_settings = RedisConnectionInfo::default().set_db(i64::from(config.db));
        if let Some(username) = &config.username {
            redis_settings = redis_settings.set_username(username);
        }
        if let Some(password) = &config.password {
            redis_settings = redis_settings.set_password(password.expose());
        }
        let info = format!("{scheme}://{}", config.endpoint())
            .into_connection_info()
            .map_err(client_error)?
            .set_redis_settings(redis_settings.clone());
        let root_cert = match (&config.tls_ca_file, config.use_tls) {
            (Some(path), true) => {
                Some(
                    std::fs::read(path).map_err(|source| RedisSetupError::CaFile {
                        path: path.display().to_string(),
                        source,
                    })?,
                )
            }
            _ => None,
        };
        let client = make_client(info.clone(), root_cert.clone()).map_err(client_error)?;
        let resp2_client = client.clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let tracking_client =
            make_client(info.set_redis_settings(resp3.clone()), root_cert.clone())
                .map_err(client_error)?;
        let cluster = match config.mode {
            RedisMode::Standalone | RedisMode::Sentinel => None,
            RedisMode::Cluster => {
                let connection = cluster::data_connection(config, scheme, root_cert.clone())
                    .map_err(client_error)?;
                Some(cluster::ClusterClients {
                    connection,
                    nodes: cluster::NodeClients::new(scheme, resp3, root_cert.clone()),
                })
            }
        };

        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            // An erasure's WAIT may take its own time on top; every call
            // is bounded by our own timeout anyway.
            .set_response_timeout(Some(
                config.op_timeout + config.erasure_wait * u32::from(config.erasure_replicas > 0),
            ))
            // Our breaker decides when to try again; the manager only retries once.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let manager =
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config.clone())
                .map_err(client_error)?;
        let hub = Hub::new();
        let breaker = Arc::new(Breaker::new(BREAKER_THRESHOLD, BREAKER_COOLDOWN));
        if config.mode == RedisMode::Sentinel && config.sentinels.is_empty() {
            return Err(RedisSetupError::Client(
                "sentinel mode needs at least one sentinel (REDIS_SENTINELS)".to_owned(),
            ));
        }
        let (sentinel, stop_following, endpoint) = if config.mode == RedisMode::Sentinel {
            let settings = sentinel::Settings::new(
                config,
                scheme,
                &redis_settings,
                root_cert,
                manager_config.clone(),
            );
            let cancel = CancellationToken::new();
            let follower = sentinel::Follower::start(
                settings,
                Arc::clone(&hub),
                Arc::clone(&breaker),
                &cancel,
            );
            let endpoint = sentinel::Follower::endpoint(config);
            (Some(follower), Some(cancel.drop_guard()), endpoint)
        } else {
            (None, None, config.endpoint())
        };
        Ok(Self {
            inner: Arc::new(Inner {
                manager: ArcSwap::from_pointee(MainConnection { epoch: 0, manager }),
                client,
                manager_config,
                breaker,
                cluster: cluster.as_ref().map(|c| c.connection.clone()),
                listener_clients: ListenerClients {
                    resp3: tracking_client,
                    resp2: resp2_client,
                    cluster,
                    sentinel: sentinel.clone(),
                },
                sentinel,
                _stop_following: stop_following,
                erasure: erasure::ErasureSettings::from_config(config),
                hub,
                op_timeout: config.op_timeout,
                endpoint,
            }),
        })
    }

    /// Starts the invalidation listener for the caches built on this handle,
    /// now and later (a cache built later is tracked too; until it is, no L1
    /// entry is trusted).
    ///
    /// # Panics
    /// Outside a tokio runtime, as `tokio::spawn` does: the listener is a
    /// task of the caller's runtime.
    pub fn start_invalidation(&self, options: InvalidationOptions) -> InvalidationListener {
        InvalidationListener::spawn(
            self.inner.listener_clients.clone(),
            Arc::clone(&self.inner.hub),
            options,
        )
    }

    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.inner.hub
    }

    /// In the pub/sub fallback, tells the other instances that `key` changed.
    /// Best effort: a lost message costs at most the fallback L1 bound.
    pub(crate) async fn publish_invalidation(&self, key: &str) {
        if self.inner.hub.mode() != InvalidationMode::PubSub {
            return;
        }
        let published = self
            .run(|mut c| async move {
                redis::cmd("PUBLISH")
                    .arg(INVALIDATION_CHANNEL)
                    .arg(key)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await;
        if let Err(e) = published {
            tracing::debug!(key, error = %e, "could not publish an invalidation");
        }
    }

    /// `host:port` of the server (`sentinel:<master>` in sentinel mode).
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether the breaker currently fails operations fast. In cluster
    /// mode this is the breaker of operations without a key (`PING`); each
    /// primary's keys have their own once the invalidation listener knows
    /// the topology.
    pub fn is_unavailable(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// The underlying connection (shared), for commands this handle does not
    /// wrap. In cluster mode it reaches the seed node only; in sentinel mode
    /// it is the current primary's, `None` while no primary is verified.
    pub fn connection(&self) -> Option<ConnectionManager> {
        match &self.inner.sentinel {
            Some(follower) => follower.current().map(|p| p.main.manager.clone()),
            None => Some(self.inner.manager.load().manager.clone()),
        }
    }

    /// Sends `PING` (connecting first if needed).
    ///
    /// # Errors
    /// See [`L2Error`].
    pub async fn ping(&self) -> Result<(), L2Error> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// `GET` of `key`, for reads that do not fill L1 (no TTL needed).
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, L2Error> {
        let value: Option<Vec<u8>> = self
            .keyed(key, |mut c| async move {
                redis::cmd("GET").arg(key).query_async(&mut c).await
            })
            .await?;
        Ok(value.map(Bytes::from))
    }

    /// `GET` and `PTTL` of `key` in one round trip: the value and its
    /// remaining time to live (`None` when the key has no expiry).
    pub(crate) async fn get_with_ttl(
        &self,
        key: &str,
    ) -> Result<Option<(Bytes, Option<Duration>)>, L2Error> {
        let (value, pttl): (Option<Vec<u8>>, i64) = self
            .keyed(key, |mut c| async move {
                redis::pipe().get(key).pttl(key).query_async(&mut c).await
            })
            .await?;
        Ok(value.map(|v| {
            let ttl = u64::try_from(pttl).ok().map(Duration::from_millis);
            (Bytes::from(v), ttl)
        }))
    }

    /// `SET key value EX ttl` (what Node's `setex` sends, same effect).
    pub(crate) async fn set_ex(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), L2Error> {
        let seconds = ttl.as_secs().max(1);
        self.write(key, |mut c| async move {
            redis::cmd("SETEX")
                .arg(key)
                .arg(seconds)
                .arg(value)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// `EVAL script` with `keys` and `args`, through the breaker and under
    /// the timeout. (The `redis` crate's `Script`, which sends `EVALSHA`,
    /// needs a feature this build does not enable; Redis caches the
    /// compiled script either way.)
    pub(crate) async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, L2Error> {
        let op = |mut c: conn::Conn| async move {
            redis::cmd("EVAL")
                .arg(script)
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .query_async(&mut c)
                .await
        };
        let target = keys.first().map_or(Target::Server, |key| Target::Key(key));
        self.run_on(target, self.inner.op_timeout, op).await
    }

    /// A new connection of its own (RESP3), for a task that blocks on it
    /// (`XREAD BLOCK`); `response_timeout` must exceed the longest block.
    pub(crate) async fn dedicated_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<Dedicated, L2Error> {
        let connect_timeout = self.inner.op_timeout.max(Duration::from_secs(1));
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(response_timeout));
        let (client, epoch) = match &self.inner.sentinel {
            Some(follower) => match follower.primary_within(connect_timeout).await {
                Some(primary) => (primary.resp3.clone(), Some(primary.epoch)),
                None => return Err(sentinel::no_primary()),
            },
            None => (self.inner.listener_clients.resp3.clone(), None),
        };
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify(&e))?;
        Ok(Dedicated { connection, epoch })
    }

    /// Resolves once the primary of a [`Dedicated`] connection's `epoch` is
    /// no longer the primary (Sentinel: a switch or a demotion), so its user
    /// moves to the new one; never in the other modes (the address is fixed).
    pub(crate) async fn primary_moved(&self, epoch: Option<u64>) {
        match (&self.inner.sentinel, epoch) {
            (Some(follower), Some(epoch)) => follower.moved_from(epoch).await,
            _ => std::future::pending().await,
        }
    }
}
