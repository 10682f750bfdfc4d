//! What L1 holds and what a read returns: [`Cached`], a handle on one L1
//! entry ([`Stored`]: the stored JSON, its ETag and the decoded value, or a
//! place for it, in one allocation), and [`Tier`], which tier answered.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

/// Which tier answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Process memory.
    L1,
    /// Redis.
    L2,
    /// The loader (the source of truth).
    Loader,
}

/// A value as served: decoded, and as the JSON bytes stored in Redis.
///
/// A handle on the L1 entry it came from: cloning it, or serving it, is one
/// reference count, and an L1 hit copies nothing but that handle (the
/// decoded value, the JSON and its ETag share one allocation).
pub struct Cached<V> {
    entry: L1Entry<V>,
    tier: Tier,
}

impl<V> Cached<V> {
    /// The decoded value. An entry that keeps its JSON alone (a cache
    /// built with
    /// [`l1_keeps_decoded(false)`](super::TieredCacheBuilder::l1_keeps_decoded))
    /// decodes it on the first call, and keeps it from then on.
    pub fn value(&self) -> &V
    where
        V: DeserializeOwned,
    {
        self.entry.value()
    }

    /// The JSON text, exactly as stored in Redis. Cloning it copies no data.
    pub fn json(&self) -> &Bytes {
        &self.entry.json
    }

    /// The strong ETag of [`Cached::json`] (length and FNV-1a, as every
    /// instance computes it), worked out once per fill rather than on every hit.
    pub fn etag(&self) -> &HeaderValue {
        &self.entry.etag
    }

    /// Which tier answered.
    pub fn tier(&self) -> Tier {
        self.tier
    }
}

/// The decoded value, as [`Cached::value`].
impl<V: DeserializeOwned> std::ops::Deref for Cached<V> {
    type Target = V;

    fn deref(&self) -> &V {
        self.value()
    }
}

impl<V> Clone for Cached<V> {
    fn clone(&self) -> Self {
        Self {
            entry: self.entry.clone(),
            tier: self.tier,
        }
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Cached<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            // Not decoded here when the entry keeps its JSON alone.
            .field("value", &self.entry.value.get())
            .field("json", self.json())
            .field("etag", self.etag())
            .field("tier", &self.tier)
            .finish()
    }
}

/// One L1 entry: one allocation, so that moka's clone on every hit is a
/// single reference count (with 10,000 records read at random, separate
/// counts for the value, the JSON and the ETag were three cold cache lines
/// per hit).
pub(super) type L1Entry<V> = Arc<Stored<V>>;

/// What an L1 entry holds.
///
/// `repr(C)` keeps declaration order: what an L1 hit reads (the deadline,
/// the generation, the stripe and the JSON handle) comes first, next to the
/// `Arc`'s counts, so that over many ids a hit touches one or two cold
/// cache lines of the entry rather than fields scattered after the value.
#[derive(Debug)]
#[repr(C)]
pub(super) struct Stored<V> {
    /// On tokio's clock; never later than the Redis key's expiry.
    pub(super) expires_at: Instant,
    /// The id's invalidation generation when the fill began.
    pub(super) generation: u64,
    /// The id's stripe ([`Stripes::index`](super::stripes::Stripes::index)),
    /// so a hit does not hash the id.
    pub(super) stripe: usize,
    pub(super) json: Bytes,
    /// [`Cached::etag`] of `json`.
    pub(super) etag: HeaderValue,
    /// When the value was read (from Redis or the loader).
    pub(super) fetched_at: Instant,
    /// The tier it was filled from.
    pub(super) origin: Tier,
    /// The decoded value; empty until first asked for when the cache keeps
    /// the JSON alone.
    pub(super) value: OnceLock<V>,
}

impl<V: DeserializeOwned> Stored<V> {
    /// The decoded value, decoded now if the entry was kept without it.
    pub(super) fn value(&self) -> &V {
        self.value.get_or_init(|| {
            // Every entry's JSON decoded into `V` before it was stored (a
            // value that does not is corrupt and never kept), and decoding
            // the same bytes again gives the same result.
            serde_json::from_slice(&self.json).expect("L1 keeps only JSON that decoded when filled")
        })
    }
}

impl<V> Stored<V> {
    pub(super) fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    pub(super) fn cached(self: &Arc<Self>, tier: Tier) -> Cached<V> {
        Arc::clone(self).into_cached(tier)
    }

    /// As [`Stored::cached`], moving rather than cloning (an L1 hit's
    /// entry is moka's clone already).
    pub(super) fn into_cached(self: Arc<Self>, tier: Tier) -> Cached<V> {
        Cached { entry: self, tier }
    }
}
