//! Redis Sentinel (`REDIS_MODE=sentinel`): find the primary, follow every
//! failover, and never keep a connection on a demoted primary.
//!
//! **Discovery** ([`sentinels`]). The [`Follower`] asks the sentinels in the configured
//! order, each under the connect timeout, `SENTINEL get-master-addr-by-name
//! <master>`, and trusts an answer only once the named server itself says
//! `ROLE` master (a sentinel may be stale, or cut off from the others). The
//! first answer that passes wins, as the Sentinel client guidelines advise.
//!
//! **Following.** Three things make it look again: a `+switch-master`
//! message (one subscription per sentinel, each a task with its own
//! connection, time-bounded, PINGed, and reconnecting with the listener's
//! backoff, [`super::tracking::wait`]); an operation that met `READONLY` or
//! lost its connection ([`Follower::demoted`], [`Follower::suspect`]); and a
//! `ROLE` check of the current primary every `REDIS_SENTINEL_ROLE_CHECK_MS`
//! (1 s), which catches a missed message. A switch (or a primary found
//! demoted) first **unsets** the primary: the epoch moves on, the L1 lease
//! is withdrawn at once, the listener's write connection is dropped and the
//! listener told to reconnect. Only the verified new primary is then installed, with a fresh
//! main connection (the old one is dropped with the last operation using
//! it), and the handle's breaker forgets the old primary's failures.
//! The listener ([`super::tracking`]) tracks the primary of one epoch, and
//! every renewal of the lease checks that this epoch is still current
//! ([`Follower::confirm`]), so L1 is trusted again only once tracking is in
//! place on the new primary (and everything cached was dropped then).
//!
//! **Why not redis-rs's `sentinel` feature.** `SentinelClient` (redis 1.8)
//! finds a master by `SENTINEL MASTERS` and checks its role, but its sentinel
//! connections have none of our time bounds, it needs `&mut self` (a lock
//! held across every lookup), it hands back a `Client` per lookup without the
//! RESP3 tracking client we need beside it, and it does not follow
//! `+switch-master` at all. The part we would use is the two commands above;
//! they are written here with our timeouts, TLS settings and credentials.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisConnectionInfo, RedisError, Role};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

mod sentinels;

use super::MainConnection;
use super::breaker::Breaker;
use super::cluster::{Node, NodeClients};
use super::hub::Hub;
use super::tracking::wait;
use super::{RedisConfig, Secret};

/// The channel the sentinels announce a new primary on.
const SWITCH_CHANNEL: &str = "+switch-master";
/// A subscription PINGs its sentinel this often (a silent loss ends it).
const SUBSCRIPTION_PING_EVERY: Duration = Duration::from_secs(2);
/// First pause before connecting again; [`wait`] doubles it up to 1 s.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);

/// The error of an operation that found no verified primary in time.
pub(crate) fn no_primary() -> super::L2Error {
    super::L2Error::Connection("no redis primary verified yet (asking the sentinels)".to_owned())
}

/// The primary of one epoch and its clients.
pub(crate) struct Primary {
    pub(crate) node: Node,
    pub(crate) epoch: u64,
    /// Reads and, while the listener has none, writes.
    pub(crate) main: Arc<MainConnection>,
    /// For the listener's tracking connection and dedicated connections.
    pub(crate) resp3: Client,
    /// For the pub/sub fallback (servers that refuse `HELLO 3`).
    pub(crate) resp2: Client,
}

/// How to reach the sentinels and the data nodes.
pub(crate) struct Settings {
    /// Sentinel credentials (`REDIS_SENTINEL_*`), RESP2, no database.
    sentinels: NodeClients,
    addresses: Vec<Node>,
    master: String,
    /// The data nodes' settings (credentials, database), RESP2 and RESP3.
    data_resp2: NodeClients,
    data_resp3: NodeClients,
    manager_config: ConnectionManagerConfig,
    connect_timeout: Duration,
    op_timeout: Duration,
    /// How often the current primary's `ROLE` is checked.
    role_check: Duration,
}

impl Settings {
    pub(crate) fn new(
        config: &RedisConfig,
        scheme: &'static str,
        data: &RedisConnectionInfo,
        root_cert: Option<Vec<u8>>,
        manager_config: ConnectionManagerConfig,
    ) -> Self {
        let mut sentinel = RedisConnectionInfo::default();
        if let Some(username) = &config.sentinel_username {
            sentinel = sentinel.set_username(username);
        }
        if let Some(password) = config.sentinel_password.as_ref().map(Secret::expose) {
            sentinel = sentinel.set_password(password);
        }
        let resp3 = data.clone().set_protocol(redis::ProtocolVersion::RESP3);
        Self {
            sentinels: NodeClients::new(scheme, sentinel, root_cert.clone()),
            addresses: config
                .sentinels
                .iter()
                .map(|(host, port)| Node {
                    host: host.clone(),
                    port: *port,
                })
                .collect(),
            master: config.sentinel_master.clone(),
            data_resp2: NodeClients::new(scheme, data.clone(), root_cert.clone()),
            data_resp3: NodeClients::new(scheme, resp3, root_cert),
            manager_config,
            connect_timeout: config.connect_timeout,
            op_timeout: config.op_timeout,
            role_check: config.sentinel_role_check,
        }
    }
}

/// Follows the primary the sentinels name. Shared by the handle (main
/// connection) and the listener (tracking connection).
pub(crate) struct Follower {
    settings: Settings,
    current: watch::Sender<Option<Arc<Primary>>>,
    /// Bumped before every change of `current`.
    epoch: AtomicU64,
    /// Look again (an operation failed, a subscription reconnected).
    wake: Notify,
    /// A sentinel announced this primary: verify it first.
    hint: Mutex<Option<Node>>,
    hinted: Notify,
    hub: Arc<Hub>,
    /// The handle's breaker: a new primary starts with a clean slate.
    breaker: Arc<Breaker>,
    metrics: crate::metrics::SentinelMetrics,
}

impl Follower {
    /// Starts following; the tasks stop when `cancel` is cancelled.
    pub(crate) fn start(
        settings: Settings,
        hub: Arc<Hub>,
        breaker: Arc<Breaker>,
        cancel: &CancellationToken,
    ) -> Arc<Self> {
        let follower = Arc::new(Self {
            settings,
            current: watch::Sender::new(None),
            epoch: AtomicU64::new(0),
            wake: Notify::new(),
            hint: Mutex::new(None),
            hinted: Notify::new(),
            hub,
            breaker,
            metrics: crate::metrics::SentinelMetrics::new(),
        });
        tokio::spawn(Arc::clone(&follower).follow(cancel.clone()));
        for index in 0..follower.settings.addresses.len() {
            tokio::spawn(Arc::clone(&follower).subscribe(index, cancel.clone()));
        }
        follower
    }

    /// `sentinel:<master>`, for log lines.
    pub(crate) fn endpoint(config: &RedisConfig) -> String {
        format!("sentinel:{}", config.sentinel_master)
    }

    /// The verified primary now, if any.
    pub(crate) fn current(&self) -> Option<Arc<Primary>> {
        self.current.borrow().clone()
    }

    /// The verified primary, waiting for one up to `timeout`.
    pub(crate) async fn primary_within(&self, timeout: Duration) -> Option<Arc<Primary>> {
        if let Some(primary) = self.current() {
            return Some(primary);
        }
        self.wake.notify_one();
        let mut receiver = self.current.subscribe();
        let found = tokio::time::timeout(timeout, receiver.wait_for(Option::is_some)).await;
        found.ok()?.ok()?.clone()
    }

    /// The verified primary, waiting as long as it takes (`None`: cancelled).
    pub(crate) async fn primary(&self, cancel: &CancellationToken) -> Option<Arc<Primary>> {
        let mut receiver = self.current.subscribe();
        tokio::select! {
            () = cancel.cancelled() => None,
            found = receiver.wait_for(Option::is_some) => found.ok()?.clone(),
        }
    }

    /// Resolves once the primary of `epoch` is no longer the current one
    /// (a switch, a demotion, or none verified); never while it is.
    pub(crate) async fn moved_from(&self, epoch: u64) {
        let mut receiver = self.current.subscribe();
        let gone = receiver
            .wait_for(|now| now.as_ref().is_none_or(|p| p.epoch != epoch))
            .await
            .is_err();
        if gone {
            // The follower is gone with its handle: nothing moves any more.
            std::future::pending::<()>().await;
        }
    }

    /// Whether the primary of `epoch` is still the current one; if not, the
    /// lease is withdrawn (call after renewing it: a switch that raced the
    /// renewal is then seen here, or withdraws it itself).
    pub(crate) fn confirm(&self, epoch: u64) -> bool {
        fence(Ordering::SeqCst);
        if self.epoch.load(Ordering::SeqCst) == epoch {
            return true;
        }
        self.hub.withdraw();
        false
    }

    /// An operation on the primary of `epoch` met `READONLY`: it is demoted.
    pub(crate) fn demoted(&self, epoch: u64) {
        if self.current().is_some_and(|p| p.epoch == epoch) {
            self.unset("the primary answered as a replica (READONLY)");
        }
        self.wake.notify_one();
    }

    /// An operation lost its connection or timed out: look again.
    pub(crate) fn suspect(&self) {
        self.wake.notify_one();
    }

    /// A sentinel announced `node` as the primary.
    fn announce(&self, node: Node) {
        if self.current().is_some_and(|p| p.node == node) {
            return;
        }
        *self.hint.lock().unwrap_or_else(PoisonError::into_inner) = Some(node);
        self.unset("a sentinel announced a new primary (+switch-master)");
        self.hinted.notify_one();
    }

    /// No primary is trusted: L1 is withdrawn and the listener reconnects
    /// (it then waits for the next primary).
    fn unset(&self, why: &'static str) {
        let previous = self.current();
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.current.send_replace(None);
        fence(Ordering::SeqCst);
        self.hub.withdraw();
        self.hub.request_reconnect();
        self.metrics.known(false);
        if let Some(previous) = previous {
            tracing::warn!(
                primary = %previous.node.address(),
                reason = why,
                "redis primary no longer trusted; L1 is distrusted until tracking runs on the next one"
            );
        }
    }

    /// Makes the verified `node` the primary, with fresh connections.
    fn install(&self, node: Node, previous: Option<&Node>) -> Result<(), RedisError> {
        let resp2 = self.settings.data_resp2.client(&node)?;
        let resp3 = self.settings.data_resp3.client(&node)?;
        let manager = ConnectionManager::new_lazy_with_config(
            resp2.clone(),
            self.settings.manager_config.clone(),
        )?;
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        let primary = Arc::new(Primary {
            node: node.clone(),
            epoch,
            main: Arc::new(MainConnection { epoch, manager }),
            resp3,
            resp2,
        });
        self.current.send_replace(Some(primary));
        fence(Ordering::SeqCst);
        self.hub.withdraw();
        self.hub.request_reconnect();
        // Failures counted against the old primary say nothing of this one.
        self.breaker.reset();
        self.metrics.known(true);
        match previous {
            Some(previous) if *previous != node => {
                self.metrics.switched();
                tracing::warn!(from = %previous.address(), to = %node.address(), "redis primary switched (sentinel failover)");
            }
            _ => {
                tracing::info!(primary = %node.address(), master = %self.settings.master, "redis primary found by the sentinels")
            }
        }
        Ok(())
    }

    /// The follower task: looks again on every reason, retries with backoff.
    async fn follow(self: Arc<Self>, cancel: CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        // The last primary installed, even while unset: to tell a switch.
        let mut last: Option<Node> = None;
        loop {
            match self.check(&mut last).await {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        () = self.wake.notified() => {}
                        () = self.hinted.notified() => {}
                        () = tokio::time::sleep(self.settings.role_check) => {}
                    }
                }
                Err(why) => {
                    // Once per streak at warn; the retries at debug.
                    if backoff == FIRST_BACKOFF {
                        tracing::warn!(why, master = %self.settings.master, "no verified redis primary; asking the sentinels again");
                    } else {
                        tracing::debug!(why, master = %self.settings.master, "no verified redis primary yet; asking the sentinels again");
                    }
                    tokio::select! {
                        () = self.hinted.notified() => {}
                        next = wait(&cancel, backoff) => match next {
                            Some(next) => backoff = next,
                            None => return,
                        },
                    }
                }
            }
        }
    }

    /// One look: the announced primary, else the current one if it is still
    /// a master, else what the sentinels name.
    async fn check(&self, last: &mut Option<Node>) -> Result<(), String> {
        let hint = self
            .hint
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(hint) = hint {
            if self.current().is_none_or(|p| p.node != hint) {
                if let Ok(true) = self.is_primary(&hint).await {
                    return self.adopt(hint, last);
                }
            }
        }
        if let Some(current) = self.current() {
            let role = tokio::time::timeout(
                self.settings.op_timeout,
                redis::cmd("ROLE").query_async::<Role>(&mut current.main.manager.clone()),
            )
            .await;
            match role {
                Ok(Ok(Role::Primary { .. })) => return Ok(()),
                Ok(Ok(_)) if self.current().is_some_and(|p| p.epoch == current.epoch) => {
                    self.unset("the primary answers ROLE as a replica");
                }
                // Unreachable: the sentinels may know better.
                _ => {}
            }
        }
        let node = self.discover().await?;
        if self.current().is_some_and(|p| p.node == node) {
            return Ok(());
        }
        self.adopt(node, last)
    }

    fn adopt(&self, node: Node, last: &mut Option<Node>) -> Result<(), String> {
        self.install(node.clone(), last.as_ref())
            .map_err(|e| format!("cannot build a client of {}: {e}", node.address()))?;
        *last = Some(node);
        Ok(())
    }
}
