//! `TieredCacheBuilder`: keyspace, L1 size and time bound, Redis handle.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::in_flight::InFlight;
use super::stats::Counters;
use super::stripes::Stripes;
use super::{Inner, L1Entry, TieredCache};
use crate::l2::RedisHandle;
use crate::l2::hub::InvalidationTarget;
use crate::records::Keyspace;
use crate::settings::ConfigError;
use crate::tier::id::CacheId;

/// Default L1 budget per keyspace.
pub const DEFAULT_L1_MAX_BYTES: u64 = 32 * 1024 * 1024;
/// Default upper bound of an L1 entry's life.
pub const DEFAULT_L1_TTL: Duration = Duration::from_secs(60);
/// L1 keeps no entry heavier than this fraction (1/64) of its budget: a
/// value that big would evict many others and thrash the cache. Such values
/// are served (from Redis) but not kept, and counted
/// (`warmcache_l1_oversize_total`).
pub(super) const L1_ENTRY_SHARE: u64 = 64;

/// What an entry costs L1: its JSON (twice when it keeps the decoded value
/// too: once as text, once decoded), its ETag, its key, and a fixed
/// overhead. Weighed when stored: a value decoded later, on first use,
/// adds to the memory, not to the weight.
pub(super) fn weight<V>(id: &CacheId, entry: &L1Entry<V>) -> u64 {
    let decoded = if entry.value.get().is_some() {
        entry.json.len()
    } else {
        0
    };
    (id.as_str().len() + entry.json.len() + decoded + entry.etag.len() + 96) as u64
}

/// Builds a [`TieredCache`]. See [`TieredCache::builder`].
#[must_use]
pub struct TieredCacheBuilder<V> {
    keyspace: Keyspace,
    l1_max_bytes: u64,
    l1_ttl: Duration,
    keeps_decoded: bool,
    redis: Option<RedisHandle>,
    _value: PhantomData<fn() -> V>,
}

impl<V> TieredCacheBuilder<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    pub(super) fn new(keyspace: Keyspace) -> Self {
        Self {
            keyspace,
            l1_max_bytes: DEFAULT_L1_MAX_BYTES,
            l1_ttl: DEFAULT_L1_TTL,
            keeps_decoded: true,
            redis: None,
            _value: PhantomData,
        }
    }

    /// L1 budget in bytes (default 32 MiB). An entry weighs its JSON twice
    /// (once as text, once decoded; once with
    /// [`l1_keeps_decoded(false)`](Self::l1_keeps_decoded)) plus its key;
    /// 0 keeps nothing in L1.
    /// An entry heavier than 1/64 of the budget is served but not kept.
    pub fn l1_max_bytes(mut self, bytes: u64) -> Self {
        self.l1_max_bytes = bytes;
        self
    }

    /// Upper bound of an entry's life in L1 (default 60 s). An entry also
    /// never outlives the remaining TTL of its Redis key.
    pub fn l1_ttl(mut self, l1_ttl: Duration) -> Self {
        self.l1_ttl = l1_ttl;
        self
    }

    /// Whether an L1 entry keeps its decoded value (default `true`: decoded
    /// once per fill, and kept). With `false` a fill from Redis still
    /// decodes the value, to check it (a corrupt value is never served),
    /// then L1 keeps the JSON alone, and so do writes; [`Cached::value`]
    /// decodes it on first use and keeps it from then on. For a cache whose
    /// reads serve the JSON as it is, as the reference service's do, this
    /// saves most of an entry's memory (10,000 Node-written age
    /// verifications: 0.58 KiB resident per entry against 1.96 KiB), and an
    /// entry weighs its JSON once rather than twice. `V`'s `Deserialize`
    /// must give the same answer for the same bytes every time (serde's
    /// derived impls do): the second decode cannot fail where the first
    /// succeeded.
    ///
    /// [`Cached::value`]: super::Cached::value
    pub fn l1_keeps_decoded(mut self, keep: bool) -> Self {
        self.keeps_decoded = keep;
        self
    }

    /// The Redis server of the second tier. Without one the cache is L1 only.
    pub fn redis(mut self, redis: RedisHandle) -> Self {
        self.redis = Some(redis);
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// A keyspace name that is not `[a-z0-9_]+`, a TTL under one second
    /// (Redis TTLs are whole seconds), or a zero L1 time bound.
    pub fn build(self) -> Result<TieredCache<V>, ConfigError> {
        let name = self.keyspace.name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(ConfigError::new(
                "keyspace",
                name,
                "a name of lowercase letters, digits and '_'",
            ));
        }
        if self.keyspace.ttl < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "ttl",
                format!("{:?}", self.keyspace.ttl),
                "at least one second",
            ));
        }
        if self.l1_ttl.is_zero() {
            return Err(ConfigError::new("l1_ttl", "0", "a positive duration"));
        }
        let l1_ttl = self.l1_ttl.min(self.keyspace.ttl);
        let l1 = moka::sync::Cache::builder()
            .name(name)
            .max_capacity(self.l1_max_bytes)
            .weigher(|id: &CacheId, entry: &L1Entry<V>| {
                u32::try_from(weight(id, entry)).unwrap_or(u32::MAX)
            })
            // Memory only: reads check each entry's own deadline on tokio's
            // clock. One TTL for all (moka's write-order queue) costs a hit
            // less than a per-entry `Expiry` (its timer wheel).
            .time_to_live(l1_ttl)
            .build();
        let hub = self.redis.as_ref().map(|redis| Arc::clone(redis.hub()));
        let inner = Arc::new(Inner {
            keyspace: self.keyspace,
            prefix: format!("{name}:"),
            l1_ttl,
            l1_max_entry_weight: self.l1_max_bytes / L1_ENTRY_SHARE,
            keeps_decoded: self.keeps_decoded,
            l1,
            in_flight: InFlight::new(),
            redis: self.redis,
            hub,
            stripes: Stripes::new(),
            counters: Counters::new(name),
        });
        if let Some(hub) = &inner.hub {
            let target: Arc<dyn InvalidationTarget> = inner.clone();
            hub.register(Arc::downgrade(&target));
        }
        Ok(TieredCache { inner })
    }
}
