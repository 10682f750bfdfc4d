//! The invalidation hub: which keyspaces listen, and whether L1 is trusted.
//!
//! Every [`crate::TieredCache`] built on a [`super::RedisHandle`] registers
//! here. The invalidation listener ([`super::tracking`]) routes each pushed
//! key to the cache whose prefix it carries and renews the hub's **lease**.
//!
//! Trust in L1 is a lease, not a flag: it runs until the send time of the
//! last PING whose PONG was read (in order, after every push Redis sent
//! before it) plus the grace. A connection that dies in any way, silently
//! included, stops the renewals, so L1 stops being trusted at most `grace`
//! after the last moment Redis was known to have delivered everything. The
//! hit path reads the lease with one atomic load.
//!
//! A cache registered after the listener started withdraws the lease and
//! wakes the listener, which tracks again with the new prefix set before it
//! trusts anything; a server found demoted (READONLY) also wakes it.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use arc_swap::ArcSwapOption;

use super::breaker::Breaker;
use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;
use tokio::time::Instant;

/// What a cache offers the listener.
pub(crate) trait InvalidationTarget: Send + Sync {
    /// `name:`.
    fn prefix(&self) -> &str;
    /// Another writer changed `id`: end its L1 entry and in-flight fills.
    fn invalidate_remote(&self, id: &str);
    /// Everything may have changed (a flush, or a reconnect).
    fn invalidate_all(&self);
}

/// Where this instance's writes go so that their pushes do not come back:
/// the tracking connections, which track with `NOLOOP`.
pub(crate) enum WriteRoute {
    /// Standalone or Sentinel: the one tracking connection.
    One(MultiplexedConnection),
    /// Cluster: each slot range (first, last) and its primary's tracking
    /// connection, sorted by first slot.
    BySlot(Vec<(u16, u16, MultiplexedConnection)>),
}

impl WriteRoute {
    /// The connection for a write of `key`: in a cluster, the one to the
    /// primary of `key`'s slot (none if no tracked primary serves it).
    fn connection_for(&self, key: &str) -> Option<&MultiplexedConnection> {
        match self {
            Self::One(connection) => Some(connection),
            Self::BySlot(ranges) => super::cluster::serving(ranges, key),
        }
    }
}

/// How invalidations reach this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum InvalidationMode {
    /// No listener: L1 entries live until their time bound.
    Off = 0,
    /// Redis client tracking (BCAST): every writer's change is pushed.
    Tracking = 1,
    /// Pub/sub fallback: only warmcache writers publish their changes.
    PubSub = 2,
}

/// Shared by the handle, its caches and the listener.
pub(crate) struct Hub {
    targets: Mutex<Vec<Weak<dyn InvalidationTarget>>>,
    /// L1 entries may be served while tokio's clock, in ns since `origin`,
    /// is below this. `u64::MAX`: no listener runs.
    lease_until_ns: AtomicU64,
    mode: AtomicU8,
    /// Set once the listener runs.
    listening: AtomicBool,
    /// The listener is connected and invalidations arrive.
    connected: AtomicBool,
    /// Longest L1 life in the pub/sub fallback, in ms.
    fallback_l1_ttl_ms: AtomicU64,
    /// Bumped by every registration: the listener's prefix set is stale.
    registrations: AtomicU64,
    /// Asks the listener to reconnect (the server was found demoted).
    reconnect: AtomicBool,
    /// The listener found the server a replica: the main connection must
    /// be replaced too (standalone mode).
    demoted: AtomicBool,
    /// Wakes the listener after a registration or a reconnect request.
    wake: Notify,
    /// The tracking connections (`NOLOOP`), for this instance's writes.
    write_route: ArcSwapOption<WriteRoute>,
    /// In a cluster, each slot range's primary's breaker, from the last
    /// topology the listener tracked (kept while a primary is down).
    node_breakers: ArcSwapOption<Vec<(u16, u16, Arc<Breaker>)>>,
    origin: Instant,
    remote_invalidations: AtomicU64,
    /// `warmcache_invalidation_connected`.
    connected_gauge: ::metrics::Gauge,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("mode", &self.mode())
            .field("connected", &self.is_connected())
            .field("remote_invalidations", &self.remote_invalidations())
            .finish_non_exhaustive()
    }
}

impl Hub {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            targets: Mutex::new(Vec::new()),
            lease_until_ns: AtomicU64::new(u64::MAX),
            mode: AtomicU8::new(InvalidationMode::Off as u8),
            listening: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            fallback_l1_ttl_ms: AtomicU64::new(u64::MAX),
            registrations: AtomicU64::new(0),
            reconnect: AtomicBool::new(false),
            demoted: AtomicBool::new(false),
            wake: Notify::new(),
            write_route: ArcSwapOption::empty(),
            node_breakers: ArcSwapOption::empty(),
            origin: Instant::now(),
            remote_invalidations: AtomicU64::new(0),
            connected_gauge: crate::metrics::invalidation_connected(),
        })
    }

    /// Adds a cache. After the listener started, this withdraws the lease
    /// until the listener tracks the new prefix too.
    pub(crate) fn register(&self, target: Weak<dyn InvalidationTarget>) {
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(target);
        self.registrations.fetch_add(1, Ordering::AcqRel);
        if self.listening.load(Ordering::Acquire) {
            self.lease_until_ns.store(0, Ordering::Release);
            self.wake.notify_one();
        }
    }

    /// The registration count and the prefixes of the live caches then.
    pub(crate) fn prefixes(&self) -> (u64, Vec<String>) {
        let epoch = self.registrations.load(Ordering::Acquire);
        let mut prefixes: Vec<String> = self
            .live_targets()
            .iter()
            .map(|t| t.prefix().to_owned())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        (epoch, prefixes)
    }

    /// Whether a cache registered since `epoch` (from [`Hub::prefixes`]).
    pub(crate) fn registered_since(&self, epoch: u64) -> bool {
        self.registrations.load(Ordering::Acquire) != epoch
    }

    fn live_targets(&self) -> Vec<Arc<dyn InvalidationTarget>> {
        let mut targets = self.targets.lock().unwrap_or_else(PoisonError::into_inner);
        targets.retain(|t| t.strong_count() > 0);
        targets.iter().filter_map(Weak::upgrade).collect()
    }

    /// Applies one pushed key; keys of other prefixes are ignored.
    pub(crate) fn invalidate_key(&self, key: &str) {
        for target in self.live_targets() {
            if let Some(id) = key.strip_prefix(target.prefix()) {
                target.invalidate_remote(id);
                self.remote_invalidations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn invalidate_all(&self) {
        for target in self.live_targets() {
            target.invalidate_all();
        }
    }

    /// The listener starts: until it connects, nothing is trusted.
    pub(crate) fn set_listening(&self, fallback_l1_ttl: Duration) {
        self.listening.store(true, Ordering::Release);
        self.fallback_l1_ttl_ms
            .store(fallback_l1_ttl.as_millis() as u64, Ordering::Release);
        self.lease_until_ns.store(0, Ordering::Release);
    }

    /// Whether an invalidation listener was started (L1 is then kept
    /// coherent with Redis, not only bounded in time).
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Whether the listener is connected.
    pub(crate) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    /// The longest life of a new L1 entry under the current mode, if bounded.
    pub(crate) fn l1_cap(&self) -> Option<Duration> {
        (self.mode() == InvalidationMode::PubSub)
            .then(|| Duration::from_millis(self.fallback_l1_ttl_ms.load(Ordering::Acquire)))
    }

    /// The listener is connected in `mode`; `writes` takes this
    /// instance's writes (tracking with `NOLOOP`), if any.
    pub(crate) fn connected(&self, mode: InvalidationMode, writes: Option<WriteRoute>) {
        self.mode.store(mode as u8, Ordering::Release);
        self.write_route.store(writes.map(Arc::new));
        self.connected.store(true, Ordering::Release);
        self.connected_gauge.set(1.0);
    }

    /// The listener lost its connection. The lease is left to lapse by
    /// itself: it already ends at most `grace` after the last answered PING.
    pub(crate) fn disconnected(&self) {
        self.write_route.store(None);
        self.connected.store(false, Ordering::Release);
        self.connected_gauge.set(0.0);
    }

    /// Everything Redis sent before a PING sent at `sent_at` has been
    /// applied: trust L1 until `sent_at + grace`, unless a cache registered
    /// since `epoch` (then the lease is withdrawn and `false` returned).
    pub(crate) fn renew(&self, sent_at: Instant, grace: Duration, epoch: u64) -> bool {
        let until = self
            .ns_since_origin(sent_at)
            .saturating_add(u64::try_from(grace.as_nanos()).unwrap_or(u64::MAX))
            .min(u64::MAX - 1);
        self.lease_until_ns.store(until, Ordering::Release);
        // Checked after the store: a registration racing this renewal
        // either sees the new lease (and withdraws it) or is seen here.
        if self.registered_since(epoch) {
            self.lease_until_ns.store(0, Ordering::Release);
            return false;
        }
        true
    }

    /// Ends the lease at once (the cluster's topology changed, or the
    /// sentinels switched the primary: it may not be tracked yet).
    pub(crate) fn withdraw(&self) {
        self.lease_until_ns.store(0, Ordering::Release);
    }

    /// Whether L1 entries may be served now (`now` on tokio's clock): one
    /// atomic load.
    pub(crate) fn l1_trusted(&self, now: Instant) -> bool {
        self.ns_since_origin(now) < self.lease_until_ns.load(Ordering::Acquire)
    }

    /// The connection a write of `key` should use, if the listener tracks
    /// with `NOLOOP` right now (in a cluster: on `key`'s primary).
    pub(crate) fn write_connection(&self, key: &str) -> Option<MultiplexedConnection> {
        self.write_route
            .load()
            .as_deref()?
            .connection_for(key)
            .cloned()
    }

    /// In a cluster: the breaker of each slot range's primary.
    pub(crate) fn set_node_breakers(&self, ranges: Vec<(u16, u16, Arc<Breaker>)>) {
        self.node_breakers.store(Some(Arc::new(ranges)));
    }

    /// The breaker of `key`'s primary, when the cluster's topology is known.
    pub(crate) fn breaker_for(&self, key: &str) -> Option<Arc<Breaker>> {
        super::cluster::serving(self.node_breakers.load().as_deref()?, key).cloned()
    }

    /// The server answered as a replica: the listener must reconnect.
    pub(crate) fn request_reconnect(&self) {
        self.write_route.store(None);
        self.reconnect.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// The listener's probe found the server a replica.
    pub(crate) fn saw_replica(&self) {
        self.demoted.store(true, Ordering::Release);
    }

    /// Takes the news that the server was found a replica.
    pub(crate) fn take_demoted(&self) -> bool {
        self.demoted.swap(false, Ordering::AcqRel)
    }

    /// Takes a pending reconnect request.
    pub(crate) fn take_reconnect_request(&self) -> bool {
        self.reconnect.swap(false, Ordering::AcqRel)
    }

    /// Resolves when a cache registers or a reconnect is requested.
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }

    pub(crate) fn mode(&self) -> InvalidationMode {
        match self.mode.load(Ordering::Acquire) {
            1 => InvalidationMode::Tracking,
            2 => InvalidationMode::PubSub,
            _ => InvalidationMode::Off,
        }
    }

    pub(crate) fn remote_invalidations(&self) -> u64 {
        self.remote_invalidations.load(Ordering::Relaxed)
    }

    fn ns_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_lease_ends_grace_after_the_last_answered_ping_was_sent() {
        let hub = Hub::new();
        assert!(hub.l1_trusted(Instant::now()), "no listener: trusted");
        hub.set_listening(Duration::from_secs(5));
        assert!(
            !hub.l1_trusted(Instant::now()),
            "nothing trusted before the first PONG"
        );
        let (epoch, _) = hub.prefixes();
        let grace = Duration::from_millis(300);
        // A PING sent now, answered 40 ms later.
        let sent = Instant::now();
        tokio::time::advance(Duration::from_millis(40)).await;
        assert!(hub.renew(sent, grace, epoch));
        // The connection dies silently right after: no more renewals. Trust
        // ends `grace` after the send time, whatever happens meanwhile.
        tokio::time::advance(Duration::from_millis(259)).await;
        assert!(hub.l1_trusted(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!hub.l1_trusted(Instant::now()), "lapsed at sent + grace");
        // A later PONG renews it again.
        let sent = Instant::now();
        assert!(hub.renew(sent, grace, epoch));
        assert!(hub.l1_trusted(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_registration_withdraws_the_lease_until_the_listener_retracks() {
        let hub = Hub::new();
        hub.set_listening(Duration::from_secs(5));
        let (epoch, _) = hub.prefixes();
        assert!(hub.renew(Instant::now(), Duration::from_secs(1), epoch));
        struct Dummy;
        impl InvalidationTarget for Dummy {
            fn prefix(&self) -> &str {
                "late:"
            }
            fn invalidate_remote(&self, _: &str) {}
            fn invalidate_all(&self) {}
        }
        let late: Arc<dyn InvalidationTarget> = Arc::new(Dummy);
        hub.register(Arc::downgrade(&late));
        assert!(!hub.l1_trusted(Instant::now()), "withdrawn at once");
        assert!(
            !hub.renew(Instant::now(), Duration::from_secs(1), epoch),
            "a renewal for the old prefix set is refused"
        );
        assert!(!hub.l1_trusted(Instant::now()));
        let (epoch, prefixes) = hub.prefixes();
        assert_eq!(prefixes, vec!["late:".to_owned()]);
        assert!(hub.renew(Instant::now(), Duration::from_secs(1), epoch));
        assert!(hub.l1_trusted(Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_grace_never_trusts_while_listening() {
        let hub = Hub::new();
        hub.set_listening(Duration::from_secs(5));
        let (epoch, _) = hub.prefixes();
        assert!(hub.renew(Instant::now(), Duration::ZERO, epoch));
        assert!(!hub.l1_trusted(Instant::now()));
    }
}
