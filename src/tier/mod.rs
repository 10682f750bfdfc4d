//! The two-tier keyed cache: moka in process (L1) in front of Redis (L2).
//!
//! [`TieredCache`] serves one keyspace (`age_verification:`, ...). Reads go
//! L1, then Redis (`GET` and `PTTL` in one round trip), then the caller's
//! loader; concurrent callers for one id share one Redis read and one loader
//! call. Values in Redis are the JSON text Node services write with
//! `JSON.stringify`, and L1 keeps those exact bytes next to the decoded
//! value, so an HTTP layer can send them as they are.

mod builder;
mod error;
mod id;
mod stats;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

pub use builder::{DEFAULT_L1_MAX_BYTES, DEFAULT_L1_TTL, TieredCacheBuilder};
pub use error::{CacheError, LoaderError};
pub use id::{CacheId, InvalidId, MAX_ID_LEN};
pub use stats::CacheStats;

use crate::records::Keyspace;
use crate::redis::RedisHandle;
use stats::Counters;

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
#[derive(Debug)]
pub struct Cached<V> {
    /// The decoded value.
    pub value: Arc<V>,
    /// The JSON text, exactly as stored in Redis. Cloning copies no data.
    pub json: Bytes,
    /// Which tier answered.
    pub tier: Tier,
}

/// One L1 entry.
#[derive(Debug)]
struct L1Entry<V> {
    value: Arc<V>,
    json: Bytes,
    /// On tokio's clock; never later than the Redis key's expiry.
    expires_at: Instant,
    /// The tier it was filled from.
    origin: Tier,
}

impl<V> Clone for L1Entry<V> {
    fn clone(&self) -> Self {
        Self {
            value: Arc::clone(&self.value),
            json: self.json.clone(),
            expires_at: self.expires_at,
            origin: self.origin,
        }
    }
}

impl<V> L1Entry<V> {
    fn remaining(&self) -> Duration {
        self.expires_at.saturating_duration_since(Instant::now())
    }

    fn cached(&self, tier: Tier) -> Cached<V> {
        Cached {
            value: Arc::clone(&self.value),
            json: self.json.clone(),
            tier,
        }
    }
}

/// A two-tier cache of one keyspace. Cloning is cheap and shares the cache.
pub struct TieredCache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for TieredCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

impl<V> std::fmt::Debug for TieredCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TieredCache")
            .field("keyspace", &self.inner.keyspace)
            .field("l1_ttl", &self.inner.l1_ttl)
            .field("redis", &self.inner.redis)
            .finish_non_exhaustive()
    }
}

struct Inner<V> {
    keyspace: Keyspace,
    /// `name:`, the Redis key prefix.
    prefix: String,
    /// Upper bound of an L1 entry's life (at most the keyspace TTL).
    l1_ttl: Duration,
    /// moka: bounded by bytes, coalesces concurrent fills of one id.
    l1: moka::future::Cache<CacheId, L1Entry<V>>,
    redis: Option<RedisHandle>,
    counters: Counters,
}

/// Why a fill inside `try_get_with` produced no entry.
#[derive(Debug)]
enum NoEntry {
    Absent,
    Failed(CacheError),
}

impl<V> TieredCache<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// A builder for `keyspace` (prefix and TTL).
    pub fn builder(keyspace: Keyspace) -> TieredCacheBuilder<V> {
        TieredCacheBuilder::new(keyspace)
    }

    /// The keyspace.
    pub fn keyspace(&self) -> Keyspace {
        self.inner.keyspace
    }

    /// The Redis key of `id`.
    pub fn key(&self, id: &CacheId) -> String {
        format!("{}{}", self.inner.prefix, id)
    }

    /// Counters since the cache was built.
    pub fn stats(&self) -> CacheStats {
        self.inner.counters.snapshot()
    }

    /// The value of `id` from L1 or Redis, `None` if neither has it.
    ///
    /// # Errors
    /// A malformed id; Redis unreachable on an L1 miss; a corrupt value.
    pub async fn get(&self, id: &str) -> Result<Option<Cached<V>>, CacheError> {
        let id = CacheId::parse(id)?;
        if let Some(hit) = self.l1_get(&id).await {
            return Ok(Some(hit));
        }
        let fill = async {
            match self.read_l2(&id).await {
                Ok(Some(entry)) => Ok(entry),
                Ok(None) => Err(NoEntry::Absent),
                Err(e) => Err(NoEntry::Failed(e)),
            }
        };
        match self.inner.l1.try_get_with(id.clone(), fill).await {
            Ok(entry) => Ok(Some(entry.cached(entry.origin))),
            Err(shared) => match &*shared {
                NoEntry::Absent => Ok(None),
                NoEntry::Failed(e) => Err(e.clone()),
            },
        }
    }

    /// The value of `id` from L1, Redis, or else `loader`, whose result is
    /// stored in Redis (`SET .. EX ttl NX`) and L1. Concurrent callers for one
    /// id share one Redis read and one loader call. When Redis is down or
    /// holds a corrupt value, the loader answers (a corrupt value is then
    /// overwritten with the loaded one).
    ///
    /// # Errors
    /// A malformed id, the loader's error, or a value that cannot be encoded.
    pub async fn get_or_load<F, Fut, E>(&self, id: &str, loader: F) -> Result<Cached<V>, CacheError>
    where
        F: FnOnce(CacheId) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let id = CacheId::parse(id)?;
        if let Some(hit) = self.l1_get(&id).await {
            return Ok(hit);
        }
        let entry = self
            .inner
            .l1
            .try_get_with(id.clone(), self.fill_or_load(&id, loader))
            .await?;
        Ok(entry.cached(entry.origin))
    }

    /// Stores `value` in Redis (`SETEX`), then in L1. If Redis does not take
    /// it, the call fails and L1 does not get the value (if the outcome is
    /// unknown, e.g. a timeout, the old L1 copy is dropped too).
    ///
    /// # Errors
    /// A malformed id, a value that cannot be encoded, or Redis failing.
    pub async fn insert(&self, id: &str, value: V) -> Result<Cached<V>, CacheError> {
        let id = CacheId::parse(id)?;
        let json = encode(&value)?;
        if let Some(redis) = &self.inner.redis {
            if let Err(e) = redis
                .set_ex(&self.key(&id), &json, self.inner.keyspace.ttl)
                .await
            {
                Counters::bump(&self.inner.counters.l2_errors);
                if e.is_ambiguous() {
                    self.inner.l1.invalidate(&id).await;
                }
                return Err(e.into());
            }
        }
        let entry = L1Entry {
            value: Arc::new(value),
            json,
            expires_at: self.l1_deadline(None),
            origin: Tier::L1,
        };
        self.inner.l1.insert(id, entry.clone()).await;
        Ok(entry.cached(Tier::L1))
    }

    /// Deletes `id` from Redis and from this process's L1. L1 is cleared
    /// even when Redis fails, and the failure is returned.
    ///
    /// # Errors
    /// A malformed id, or Redis failing (the key may still be in Redis).
    pub async fn invalidate(&self, id: &str) -> Result<(), CacheError> {
        let id = CacheId::parse(id)?;
        Counters::bump(&self.inner.counters.invalidations);
        let deleted = match &self.inner.redis {
            Some(redis) => redis.del(&self.key(&id)).await,
            None => Ok(()),
        };
        self.inner.l1.invalidate(&id).await;
        deleted.map_err(|e| {
            Counters::bump(&self.inner.counters.l2_errors);
            e.into()
        })
    }

    /// Time left before the L1 copy of `id` expires; `None` when L1 has none.
    pub async fn l1_time_to_live(&self, id: &str) -> Option<Duration> {
        let id = CacheId::parse(id).ok()?;
        let entry = self.inner.l1.get(&id).await?;
        Some(entry.remaining()).filter(|d| !d.is_zero())
    }

    /// Reads `id` from Redis alone, neither using nor filling L1.
    ///
    /// # Errors
    /// As [`TieredCache::get`].
    pub async fn get_from_l2(&self, id: &str) -> Result<Option<Cached<V>>, CacheError> {
        let id = CacheId::parse(id)?;
        Ok(self.read_l2(&id).await?.map(|entry| entry.cached(Tier::L2)))
    }

    /// An unexpired L1 entry. An expired one is dropped, so the caller's
    /// `try_get_with` fills afresh instead of returning it.
    async fn l1_get(&self, id: &CacheId) -> Option<Cached<V>> {
        let entry = self.inner.l1.get(id).await?;
        if entry.expires_at <= Instant::now() {
            self.inner.l1.invalidate(id).await;
            return None;
        }
        Counters::bump(&self.inner.counters.l1_hits);
        Some(entry.cached(Tier::L1))
    }

    /// Redis read for an L1 fill; counts and logs every outcome.
    async fn read_l2(&self, id: &CacheId) -> Result<Option<L1Entry<V>>, CacheError> {
        let Some(redis) = &self.inner.redis else {
            Counters::bump(&self.inner.counters.misses);
            return Ok(None);
        };
        let key = self.key(id);
        let found = redis.get_with_ttl(&key).await.map_err(|e| {
            Counters::bump(&self.inner.counters.l2_errors);
            tracing::debug!(key, error = %e, "redis read failed");
            CacheError::from(e)
        })?;
        let Some((json, ttl)) = found else {
            Counters::bump(&self.inner.counters.misses);
            return Ok(None);
        };
        match serde_json::from_slice::<V>(&json) {
            Ok(value) => {
                Counters::bump(&self.inner.counters.l2_hits);
                Ok(Some(L1Entry {
                    value: Arc::new(value),
                    json,
                    expires_at: self.l1_deadline(ttl),
                    origin: Tier::L2,
                }))
            }
            Err(e) => {
                Counters::bump(&self.inner.counters.corrupt_values);
                // The position and kind only: serde's message may quote the value.
                let reason = format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                );
                tracing::warn!(key, reason, "corrupt value in redis; not served");
                Err(CacheError::Corrupt { key, reason })
            }
        }
    }

    /// Redis, then the loader; writes a loaded value back to Redis.
    async fn fill_or_load<F, Fut, E>(
        &self,
        id: &CacheId,
        loader: F,
    ) -> Result<L1Entry<V>, CacheError>
    where
        F: FnOnce(CacheId) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let overwrite = match self.read_l2(id).await {
            Ok(Some(entry)) => return Ok(entry),
            Ok(None) | Err(CacheError::L2(_)) => false,
            Err(CacheError::Corrupt { .. }) => true,
            Err(other) => return Err(other),
        };
        let value = loader(id.clone()).await.map_err(|e| {
            Counters::bump(&self.inner.counters.load_errors);
            CacheError::Loader(Arc::from(e.into()))
        })?;
        Counters::bump(&self.inner.counters.loads);
        let json = encode(&value)?;
        let entry = L1Entry {
            value: Arc::new(value),
            json,
            expires_at: self.l1_deadline(None),
            origin: Tier::Loader,
        };
        let Some(redis) = &self.inner.redis else {
            return Ok(entry);
        };
        let (key, ttl) = (self.key(id), self.inner.keyspace.ttl);
        let written = if overwrite {
            redis.set_ex(&key, &entry.json, ttl).await.map(|()| true)
        } else {
            redis.set_ex_if_absent(&key, &entry.json, ttl).await
        };
        match written {
            Ok(true) => Ok(entry),
            // Another writer stored the key while we loaded: theirs is newer.
            Ok(false) => Ok(self.read_l2(id).await.ok().flatten().unwrap_or(entry)),
            Err(e) => {
                Counters::bump(&self.inner.counters.l2_errors);
                tracing::debug!(key, error = %e, "could not store the loaded value in redis");
                Ok(entry)
            }
        }
    }

    /// Deadline of a new L1 entry: the L1 bound, or the Redis key's remaining
    /// TTL if sooner.
    fn l1_deadline(&self, redis_ttl: Option<Duration>) -> Instant {
        Instant::now() + redis_ttl.map_or(self.inner.l1_ttl, |ttl| ttl.min(self.inner.l1_ttl))
    }
}

fn encode<V: Serialize>(value: &V) -> Result<Bytes, CacheError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| CacheError::Encode(Arc::new(e)))
}
