//! The shared second tier: a Redis connection with timeouts and a breaker.
//!
//! [`RedisHandle`] wraps the `redis` crate's reconnecting
//! `ConnectionManager`. Every operation runs under a short timeout and
//! through a [`breaker::Breaker`], so an outage costs callers one timeout,
//! not one per request, and the handle recovers by itself when Redis returns.
//! The connection is lazy: a service starts even when Redis is down.

mod breaker;
mod config;
pub(crate) mod hub;
mod tracking;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    Client, ConnectionInfo, ErrorKind, IntoConnectionInfo, ProtocolVersion, RedisConnectionInfo,
    RedisError, TlsCertificates, Value,
};
use bytes::Bytes;

pub use config::{RedisConfig, Secret};
pub use hub::InvalidationMode;
pub use tracking::{INVALIDATION_CHANNEL, InvalidationListener, InvalidationOptions};

use breaker::Breaker;
use hub::Hub;

/// Failures in a row that open the breaker.
const BREAKER_THRESHOLD: u32 = 3;
/// How long an open breaker fails calls before it lets a probe through.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(1);

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
    /// The server answered with an error (e.g. no permission for the key).
    #[error("redis refused the command: {0}")]
    Refused(String),
}

impl L2Error {
    /// Whether the operation may have been applied although it failed
    /// (the answer was lost), so cached copies can no longer be trusted.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Timeout(_) | Self::Connection(_))
    }
}

/// Why a [`RedisHandle`] could not be built.
#[derive(Debug, thiserror::Error)]
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
}

/// A cheap-to-clone handle on one Redis server.
#[derive(Clone)]
pub struct RedisHandle {
    inner: Arc<Inner>,
}

struct Inner {
    /// Reconnects by itself after a lost connection; cloning shares the
    /// multiplexed connection.
    manager: ConnectionManager,
    /// Shared by every clone, so all callers learn of an outage together.
    breaker: Breaker,
    /// A RESP3 client for the invalidation listener's own connection.
    tracking_client: Client,
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

impl RedisHandle {
    /// Builds the handle without connecting; the first operation connects.
    ///
    /// # Errors
    /// An unreadable CA file or settings the client rejects.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect_lazy(config: &RedisConfig) -> Result<Self, RedisSetupError> {
        // Exactly one rustls crypto provider is compiled in; make it the default
        // (an error only means another part of the process already chose one).
        let _ = rustls::crypto::ring::default_provider().install_default();

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
            .set_redis_settings(redis_settings);
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
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let tracking_client =
            make_client(info.set_redis_settings(resp3), root_cert).map_err(client_error)?;

        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(Some(config.op_timeout))
            // Our breaker decides when to try again; the manager only retries once.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(100));
        let manager = ConnectionManager::new_lazy_with_config(client, manager_config)
            .map_err(client_error)?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                breaker: Breaker::new(BREAKER_THRESHOLD, BREAKER_COOLDOWN),
                tracking_client,
                hub: Hub::new(),
                op_timeout: config.op_timeout,
                endpoint: config.endpoint(),
            }),
        })
    }

    /// Starts the invalidation listener for the caches built on this handle
    /// so far (build the caches first). Needs a tokio runtime.
    pub fn start_invalidation(&self, options: InvalidationOptions) -> InvalidationListener {
        InvalidationListener::spawn(
            self.inner.tracking_client.clone(),
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
                ::redis::cmd("PUBLISH")
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

    /// `host:port` of the server.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Whether the breaker currently fails operations fast.
    pub fn is_unavailable(&self) -> bool {
        self.inner.breaker.is_open()
    }

    /// The underlying connection (shared), for commands this handle does not wrap.
    pub fn connection(&self) -> ConnectionManager {
        self.inner.manager.clone()
    }

    /// Sends `PING` (connecting first if needed).
    ///
    /// # Errors
    /// See [`L2Error`].
    pub async fn ping(&self) -> Result<(), L2Error> {
        self.run(|mut c| async move { ::redis::cmd("PING").query_async::<()>(&mut c).await })
            .await
    }

    /// `GET` of `key`, for reads that do not fill L1 (no TTL needed).
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Bytes>, L2Error> {
        let value: Option<Vec<u8>> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(key).query_async(&mut c).await })
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
            .run(
                |mut c| async move { ::redis::pipe().get(key).pttl(key).query_async(&mut c).await },
            )
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
        self.run(|mut c| async move {
            ::redis::cmd("SETEX")
                .arg(key)
                .arg(seconds)
                .arg(value)
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// `SET key value EX ttl NX`: fills the key only if nobody wrote it
    /// meanwhile. Returns whether it was written.
    pub(crate) async fn set_ex_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, L2Error> {
        let seconds = ttl.as_secs().max(1);
        let reply: Value = self
            .run(|mut c| async move {
                ::redis::cmd("SET")
                    .arg(key)
                    .arg(value)
                    .arg("EX")
                    .arg(seconds)
                    .arg("NX")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(matches!(reply, Value::Okay | Value::SimpleString(_)))
    }

    /// `EVAL script` with `keys` and `args`, through the breaker and under
    /// the timeout. (The `redis` crate's `Script`, which sends `EVALSHA`,
    /// needs a feature this build does not enable; Redis caches the
    /// compiled script either way.)
    pub(crate) async fn eval<T: ::redis::FromRedisValue>(
        &self,
        script: &str,
        keys: &[&str],
        args: &[&str],
    ) -> Result<T, L2Error> {
        self.run(|mut c| async move {
            ::redis::cmd("EVAL")
                .arg(script)
                .arg(keys.len())
                .arg(keys)
                .arg(args)
                .query_async(&mut c)
                .await
        })
        .await
    }

    /// A new connection of its own (RESP3), for a task that blocks on it
    /// (`XREAD BLOCK`); `response_timeout` must exceed the longest block.
    pub(crate) async fn dedicated_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<::redis::aio::MultiplexedConnection, L2Error> {
        let config = ::redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.op_timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(response_timeout));
        self.inner
            .tracking_client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| classify(&e))
    }

    /// `DEL key`.
    pub(crate) async fn del(&self, key: &str) -> Result<(), L2Error> {
        self.run(
            |mut c| async move { ::redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await },
        )
        .await
    }

    /// Runs one operation through the breaker and under the timeout.
    async fn run<T, F, Fut>(&self, op: F) -> Result<T, L2Error>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, RedisError>>,
    {
        let Some(permit) = self.inner.breaker.try_acquire() else {
            return Err(L2Error::Unavailable);
        };
        let outcome =
            tokio::time::timeout(self.inner.op_timeout, op(self.inner.manager.clone())).await;
        let error = match outcome {
            Ok(Ok(value)) => {
                permit.success();
                return Ok(value);
            }
            // The manager's response timeout is also `op_timeout` and usually
            // fires first, as an I/O "timed out" error: the same event as ours.
            Ok(Err(e)) if e.is_timeout() => L2Error::Timeout(self.inner.op_timeout),
            Ok(Err(e)) => classify(&e),
            Err(_) => L2Error::Timeout(self.inner.op_timeout),
        };
        if matches!(error, L2Error::Refused(_)) {
            // The server answered: it is up.
            permit.success();
        } else if permit.failure() {
            tracing::warn!(endpoint = %self.inner.endpoint, error = %error, "redis marked unavailable; failing fast for {} ms", BREAKER_COOLDOWN.as_millis());
        }
        Err(error)
    }
}

fn make_client(info: ConnectionInfo, root_cert: Option<Vec<u8>>) -> Result<Client, RedisError> {
    match root_cert {
        Some(root_cert) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            },
        ),
        None => Client::open(info),
    }
}

fn classify(e: &RedisError) -> L2Error {
    let text = e.to_string();
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
