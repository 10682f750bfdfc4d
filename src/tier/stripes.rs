//! Invalidation stripes: the per-key generation that makes invalidation final.
//!
//! Every id hashes to one of [`STRIPES`] counters. Invalidating an id (here,
//! or pushed by Redis from any writer) bumps its counter. An L1 entry records
//! the counter as it was when its fill *started*, and is valid only while the
//! counter is unchanged. So a fill that read Redis (or ran its loader) before
//! an invalidation can never install a value that outlives it, whatever the
//! order in which moka, Redis replies and invalidation pushes arrive.
//! Two ids sharing a stripe only cost each other an extra miss.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters per cache: 16,384 × 8 bytes.
pub(crate) const STRIPES: usize = 1 << 14;

pub(crate) struct Stripes {
    counters: Box<[AtomicU64]>,
}

impl Stripes {
    pub(crate) fn new() -> Self {
        Self {
            counters: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Which counter is `id`'s. An L1 entry keeps it, so a hit reads its
    /// generation without hashing the id again.
    pub(crate) fn index(id: &str) -> usize {
        let hash = crate::fnv::fnv1a64(id.as_bytes());
        (hash as usize) & (STRIPES - 1)
    }

    /// The generation of `id` now. Read it before a fill starts.
    pub(crate) fn generation(&self, id: &str) -> u64 {
        self.generation_at(Self::index(id))
    }

    /// The generation of the counter at `index` ([`Stripes::index`]).
    pub(crate) fn generation_at(&self, index: usize) -> u64 {
        self.counters[index & (STRIPES - 1)].load(Ordering::Acquire)
    }

    /// Moves `id`'s generation from `seen` to `seen + 1` if nothing bumped
    /// it since `seen` was read; `false` if something did.
    pub(crate) fn advance(&self, id: &str, seen: u64) -> bool {
        self.counters[Self::index(id)]
            .compare_exchange(seen, seen + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Ends every entry (and in-flight fill) of `id`.
    pub(crate) fn bump(&self, id: &str) {
        self.counters[Self::index(id)].fetch_add(1, Ordering::AcqRel);
    }

    /// Ends every entry and in-flight fill of the cache.
    pub(crate) fn bump_all(&self) {
        for counter in &self.counters {
            counter.fetch_add(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bump_changes_only_that_ids_generation_and_bump_all_changes_all() {
        let stripes = Stripes::new();
        let (a, b) = (stripes.generation("alpha"), stripes.generation("beta"));
        assert_ne!(Stripes::index("alpha"), Stripes::index("beta"));
        stripes.bump("alpha");
        assert_eq!(stripes.generation("alpha"), a + 1);
        assert_eq!(stripes.generation("beta"), b);
        stripes.bump_all();
        assert_eq!(stripes.generation("alpha"), a + 2);
        assert_eq!(stripes.generation("beta"), b + 1);
        assert!(stripes.advance("beta", b + 1));
        assert!(!stripes.advance("beta", b + 1), "moved since it was read");
        assert_eq!(stripes.generation("beta"), b + 2);
    }
}
