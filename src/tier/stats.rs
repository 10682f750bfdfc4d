//! Counters of one keyed cache: `stats()` for callers, metrics for Prometheus.
//!
//! Each event bumps a relaxed atomic (read by [`CacheStats`]) and a metric
//! handle registered when the cache was built (no allocation, no lookup).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::metrics::CacheMetrics;

/// Which Redis operation failed, for `warmcache_l2_errors_total{op}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum L2Op {
    Get,
    Set,
    Del,
}

/// Live counters of one cache.
#[derive(Debug)]
pub(crate) struct Counters {
    l1_hits: AtomicU64,
    l2_hits: AtomicU64,
    misses: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    l2_errors: AtomicU64,
    corrupt_values: AtomicU64,
    l1_oversize: AtomicU64,
    invalidations: AtomicU64,
    invalidation_failures: AtomicU64,
    erasures_replicated: AtomicU64,
    erasures_unreplicated: AtomicU64,
    remote_invalidations: AtomicU64,
    metrics: CacheMetrics,
}

/// A snapshot of a cache's counters since it was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Answered from process memory.
    pub l1_hits: u64,
    /// Answered from Redis.
    pub l2_hits: u64,
    /// Found in neither tier (before any loader ran).
    pub misses: u64,
    /// Loader calls that succeeded.
    pub loads: u64,
    /// Loader calls that failed.
    pub load_errors: u64,
    /// Redis operations that failed (including fast failures of the breaker).
    pub l2_errors: u64,
    /// Values in Redis that could not be decoded.
    pub corrupt_values: u64,
    /// Values served but not kept in L1, being over its per-entry cap.
    pub l1_oversize: u64,
    /// `invalidate` calls (for the age-verification keyspace: erasures).
    pub invalidations: u64,
    /// `invalidate` calls that Redis did not confirm.
    pub invalidation_failures: u64,
    /// Erasures confirmed by as many replicas as `WARMCACHE_ERASURE_REPLICAS`.
    pub erasures_replicated: u64,
    /// Erasures that waited for replicas and timed out short of them.
    pub erasures_unreplicated: u64,
    /// Keys invalidated because Redis (or the fallback channel) said another
    /// writer changed them.
    pub remote_invalidations: u64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn new(cache: &'static str) -> Self {
        Self {
            l1_hits: AtomicU64::new(0),
            l2_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            load_errors: AtomicU64::new(0),
            l2_errors: AtomicU64::new(0),
            corrupt_values: AtomicU64::new(0),
            l1_oversize: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            invalidation_failures: AtomicU64::new(0),
            erasures_replicated: AtomicU64::new(0),
            erasures_unreplicated: AtomicU64::new(0),
            remote_invalidations: AtomicU64::new(0),
            metrics: CacheMetrics::register(cache),
        }
    }

    pub(crate) fn l1_hit(&self) {
        bump(&self.l1_hits);
        self.metrics.l1_hit.increment(1);
    }

    pub(crate) fn l1_miss(&self) {
        self.metrics.l1_miss.increment(1);
    }

    /// A Redis read answered (hit, miss or corrupt value) after `took`.
    pub(crate) fn l2_round_trip(&self, took: Duration) {
        self.metrics.l2_duration.record(took);
    }

    pub(crate) fn l2_hit(&self) {
        bump(&self.l2_hits);
        self.metrics.l2_hit.increment(1);
    }

    /// Neither tier has the id (also counted when there is no Redis).
    pub(crate) fn l2_miss(&self) {
        bump(&self.misses);
        self.metrics.l2_miss.increment(1);
    }

    pub(crate) fn l2_error(&self, op: L2Op) {
        bump(&self.l2_errors);
        match op {
            L2Op::Get => &self.metrics.l2_errors_get,
            L2Op::Set => &self.metrics.l2_errors_set,
            L2Op::Del => &self.metrics.l2_errors_del,
        }
        .increment(1);
    }

    pub(crate) fn load(&self, ok: bool, took: Duration) {
        if ok {
            bump(&self.loads);
            self.metrics.loads_ok.increment(1);
        } else {
            bump(&self.load_errors);
            self.metrics.loads_error.increment(1);
        }
        self.metrics.load_duration.record(took);
    }

    pub(crate) fn corrupt(&self) {
        bump(&self.corrupt_values);
        self.metrics.corrupt_values.increment(1);
    }

    pub(crate) fn l1_oversize(&self) {
        bump(&self.l1_oversize);
        self.metrics.l1_oversize.increment(1);
    }

    pub(crate) fn invalidation_local(&self) {
        bump(&self.invalidations);
        self.metrics.invalidations_local.increment(1);
    }

    pub(crate) fn invalidation_failure(&self) {
        bump(&self.invalidation_failures);
        self.metrics.invalidation_failures.increment(1);
    }

    /// An erasure that waited for replicas: `confirmed` if enough did.
    pub(crate) fn erasure_replication(&self, confirmed: bool) {
        if confirmed {
            bump(&self.erasures_replicated);
            self.metrics.erasures_confirmed.increment(1);
        } else {
            bump(&self.erasures_unreplicated);
            self.metrics.erasures_unconfirmed.increment(1);
        }
    }

    pub(crate) fn invalidation_remote(&self) {
        bump(&self.remote_invalidations);
        self.metrics.invalidations_remote.increment(1);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            l1_hits: get(&self.l1_hits),
            l2_hits: get(&self.l2_hits),
            misses: get(&self.misses),
            loads: get(&self.loads),
            load_errors: get(&self.load_errors),
            l2_errors: get(&self.l2_errors),
            corrupt_values: get(&self.corrupt_values),
            l1_oversize: get(&self.l1_oversize),
            invalidations: get(&self.invalidations),
            invalidation_failures: get(&self.invalidation_failures),
            erasures_replicated: get(&self.erasures_replicated),
            erasures_unreplicated: get(&self.erasures_unreplicated),
            remote_invalidations: get(&self.remote_invalidations),
        }
    }
}
