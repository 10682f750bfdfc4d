//! Counters of one keyed cache, ready for the metrics exporter.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters; relaxed atomics, one increment per event.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) l1_hits: AtomicU64,
    pub(crate) l2_hits: AtomicU64,
    pub(crate) misses: AtomicU64,
    pub(crate) loads: AtomicU64,
    pub(crate) load_errors: AtomicU64,
    pub(crate) l2_errors: AtomicU64,
    pub(crate) corrupt_values: AtomicU64,
    pub(crate) invalidations: AtomicU64,
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
    /// `invalidate` calls.
    pub invalidations: u64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
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
            invalidations: get(&self.invalidations),
        }
    }
}
