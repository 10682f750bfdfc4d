//! The invalidation hub: which keyspaces listen, and whether L1 is trusted.
//!
//! Every [`crate::TieredCache`] built on a [`super::RedisHandle`] registers
//! here. The invalidation listener ([`super::tracking`]) routes each pushed
//! key to the cache whose prefix it carries, and tells the hub whether its
//! connection is up: while it is down, invalidations may be missed, so L1
//! entries are served only for a short grace period after the loss.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

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
    /// L1 entries may be served while tokio's clock, in ms since `origin`,
    /// is below this. `u64::MAX`: the listener is connected (or off).
    trusted_until_ms: AtomicU64,
    mode: AtomicU8,
    /// Set once the listener runs: caches registered later are not tracked.
    listening: AtomicBool,
    /// The listener is connected and invalidations arrive.
    connected: AtomicBool,
    /// Longest L1 life in the pub/sub fallback, in ms.
    fallback_l1_ttl_ms: AtomicU64,
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
            trusted_until_ms: AtomicU64::new(u64::MAX),
            mode: AtomicU8::new(InvalidationMode::Off as u8),
            listening: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            fallback_l1_ttl_ms: AtomicU64::new(u64::MAX),
            origin: Instant::now(),
            remote_invalidations: AtomicU64::new(0),
            connected_gauge: crate::metrics::invalidation_connected(),
        })
    }

    pub(crate) fn register(&self, target: Weak<dyn InvalidationTarget>) {
        if self.listening.load(Ordering::Acquire) {
            tracing::warn!(
                "a keyed cache was built after the invalidation listener started; its keyspace is not tracked"
            );
        }
        self.targets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(target);
    }

    /// Prefixes of the live caches.
    pub(crate) fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = self
            .live_targets()
            .iter()
            .map(|t| t.prefix().to_owned())
            .collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes
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

    /// The listener starts: until it connects, nothing new is trusted.
    pub(crate) fn set_listening(&self, fallback_l1_ttl: Duration) {
        self.listening.store(true, Ordering::Release);
        self.fallback_l1_ttl_ms
            .store(fallback_l1_ttl.as_millis() as u64, Ordering::Release);
        self.distrust_after(Duration::ZERO);
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

    /// The listener lost its connection: trust L1 for `grace` more.
    pub(crate) fn distrust_after(&self, grace: Duration) {
        self.connected.store(false, Ordering::Release);
        self.connected_gauge.set(0.0);
        let until = self.now_ms().saturating_add(grace.as_millis() as u64);
        // Keep an earlier deadline if trust was already being withdrawn.
        let _ =
            self.trusted_until_ms
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |current| {
                    (current == u64::MAX || until < current).then_some(until)
                });
    }

    /// The listener is connected and receiving again.
    pub(crate) fn trust(&self, mode: InvalidationMode) {
        self.mode.store(mode as u8, Ordering::Release);
        self.trusted_until_ms.store(u64::MAX, Ordering::Release);
        self.connected.store(true, Ordering::Release);
        self.connected_gauge.set(1.0);
    }

    /// Whether L1 entries may be served now (`now` on tokio's clock).
    pub(crate) fn l1_trusted(&self, now: Instant) -> bool {
        let until = self.trusted_until_ms.load(Ordering::Acquire);
        until == u64::MAX || (now.saturating_duration_since(self.origin).as_millis() as u64) < until
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

    fn now_ms(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.origin)
            .as_millis() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn trust_is_withdrawn_after_the_grace_period_and_restored() {
        let hub = Hub::new();
        assert!(hub.l1_trusted(Instant::now()), "no listener: trusted");
        hub.distrust_after(Duration::from_millis(500));
        assert!(hub.l1_trusted(Instant::now()));
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(hub.l1_trusted(Instant::now()));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!hub.l1_trusted(Instant::now()));
        // A second loss does not push the deadline out.
        hub.distrust_after(Duration::from_secs(10));
        assert!(!hub.l1_trusted(Instant::now()));
        hub.trust(InvalidationMode::Tracking);
        assert!(hub.l1_trusted(Instant::now()));
        assert_eq!(hub.mode(), InvalidationMode::Tracking);
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_grace_distrusts_at_once() {
        let hub = Hub::new();
        hub.distrust_after(Duration::ZERO);
        assert!(!hub.l1_trusted(Instant::now()));
    }
}
