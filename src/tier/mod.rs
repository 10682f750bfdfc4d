//! The two-tier keyed cache: moka in process (L1) in front of Redis (L2).
//!
//! [`TieredCache`] serves one keyspace (`age_verification:`, ...). Reads go
//! L1, then Redis (`GET` and `PTTL` in one round trip), then the caller's
//! loader; concurrent callers for one id share one Redis read and one loader
//! call. Values in Redis are the JSON text Node services write with
//! `JSON.stringify`, and L1 keeps those exact bytes next to the decoded
//! value, so an HTTP layer can send them as they are.
//!
//! Coherence: an L1 entry is served only while it is unexpired, its id's
//! invalidation generation ([`stripes`]) is unchanged since its fill began,
//! and the invalidation listener's lease (if one is started) runs. The fill
//! logic lives in [`fill`].
//!
//! Writes: `insert` installs its value with the generation it read before
//! the write, moved on by one in a compare-and-swap; if anything else
//! touched the id meanwhile (another insert, an invalidation, a push), it
//! installs nothing and ends the id's entry instead, so L1 never keeps a
//! value older than the last write Redis applied. `insert` and
//! `invalidate` run in a task of their own: when the caller's future is
//! dropped (a client that went away), the write and the bookkeeping after
//! it still complete.

mod builder;
mod cached;
mod error;
mod fill;
mod id;
mod in_flight;
mod stats;
pub(crate) mod stripes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

pub use builder::{DEFAULT_L1_MAX_BYTES, DEFAULT_L1_TTL, TieredCacheBuilder};
pub use cached::{Cached, Tier};
pub use error::{CacheError, LoaderError};
pub use id::{CacheId, InvalidId, MAX_ID_LEN};
pub use stats::CacheStats;

use crate::fnv::tagged;
use crate::l2::Erasure;

use crate::l2::hub::{Hub, InvalidationTarget};
use crate::l2::{L2Error, RedisHandle};
use crate::records::Keyspace;
use cached::{L1Entry, Stored};
use fill::FillOutcome;
use in_flight::InFlight;
use stats::{Counters, L2Op};
use stripes::Stripes;

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
    /// Heaviest entry L1 keeps ([`builder::L1_ENTRY_SHARE`] of the budget);
    /// heavier values are served but not kept.
    l1_max_entry_weight: u64,
    /// Whether entries keep their decoded value
    /// ([`TieredCacheBuilder::l1_keeps_decoded`]).
    keeps_decoded: bool,
    /// moka's synchronous cache, bounded by bytes: a hit is a plain call.
    l1: moka::sync::Cache<CacheId, L1Entry<V>>,
    /// The fills in flight, which concurrent misses of one id share.
    in_flight: InFlight<FillOutcome<V>>,
    redis: Option<RedisHandle>,
    /// The handle's hub: is L1 trusted, and what bounds new entries.
    hub: Option<Arc<Hub>>,
    /// Per-id invalidation generations (atomics: bumped from the listener
    /// task and read on every hit, never locked).
    stripes: Stripes,
    counters: Counters,
}

impl<V: Send + Sync + 'static> InvalidationTarget for Inner<V> {
    fn prefix(&self) -> &str {
        &self.prefix
    }

    fn invalidate_remote(&self, id: &str) {
        self.stripes.bump(id);
        self.counters.invalidation_remote();
    }

    fn invalidate_all(&self) {
        self.stripes.bump_all();
        self.l1.invalidate_all();
    }
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
        let id = CacheId::check(id)?;
        if let Some(hit) = self.l1_get(id.as_bytes()) {
            return Ok(Some(hit));
        }
        self.get_miss(&CacheId::from_checked(id)).await
    }

    /// [`TieredCache::get`] of an id already parsed ([`CacheId::parse`]):
    /// not checked again.
    ///
    /// # Errors
    /// Redis unreachable on an L1 miss; a corrupt value.
    pub async fn get_id(&self, id: &CacheId) -> Result<Option<Cached<V>>, CacheError> {
        if let Some(hit) = self.l1_get(id.as_bytes()) {
            return Ok(Some(hit));
        }
        self.get_miss(id).await
    }

    async fn get_miss(&self, id: &CacheId) -> Result<Option<Cached<V>>, CacheError> {
        // Boxed: inline, the fill's state would make every `get` future (an
        // L1 hit's too) that much bigger to move around.
        Box::pin(self.fill(
            id,
            None::<fn(CacheId) -> std::future::Ready<Result<V, CacheError>>>,
        ))
        .await
    }

    /// The value of `id` from L1, Redis, or else `loader`, whose result is
    /// stored in Redis (`SET .. EX ttl NX`) and L1. Concurrent callers for one
    /// id share one Redis read and one loader call. When Redis is down or
    /// holds a corrupt value, the loader answers (a corrupt value is then
    /// overwritten with the loaded one). A load that an invalidation of `id`
    /// overtakes returns its value to its caller but stores it nowhere.
    ///
    /// # Errors
    /// A malformed id, the loader's error, or a value that cannot be encoded.
    pub async fn get_or_load<F, Fut, E>(&self, id: &str, loader: F) -> Result<Cached<V>, CacheError>
    where
        F: FnOnce(CacheId) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let id = CacheId::check(id)?;
        if let Some(hit) = self.l1_get(id.as_bytes()) {
            return Ok(hit);
        }
        let id = CacheId::from_checked(id);
        let found = self.fill(&id, Some(loader)).await?;
        found.ok_or_else(|| {
            CacheError::Loader(Arc::new(std::io::Error::other("the loader found nothing")))
        })
    }

    /// Stores `value` in Redis (`SETEX`), then in L1. If Redis does not take
    /// it, the call fails and L1 does not get the value (if the outcome is
    /// unknown, e.g. a timeout, the old L1 copy is dropped too). Completes
    /// even if the returned future is dropped once the write was sent.
    ///
    /// # Errors
    /// A malformed id, a value that cannot be encoded, or Redis failing.
    pub async fn insert(&self, id: &str, value: V) -> Result<Cached<V>, CacheError> {
        let id = CacheId::parse(id)?;
        let json = fill::encode(&value)?;
        let this = self.clone();
        run_detached(async move { this.insert_now(id, value, json).await }).await
    }

    async fn insert_now(
        &self,
        id: CacheId,
        value: V,
        json: Bytes,
    ) -> Result<Cached<V>, CacheError> {
        let generation = self.inner.stripes.generation(id.as_str());
        if let Some(redis) = &self.inner.redis {
            let key = self.key(&id);
            if let Err(e) = redis.set_ex(&key, &json, self.inner.keyspace.ttl).await {
                self.inner.counters.l2_error(L2Op::Set);
                if e.is_ambiguous() {
                    self.inner.stripes.bump(id.as_str());
                    self.inner.l1.invalidate(&id);
                }
                return Err(e.into());
            }
            redis.publish_invalidation(&key).await;
        }
        let now = Instant::now();
        let (json, etag) = tagged(&json);
        let entry = Arc::new(Stored {
            value: self.decoded(value),
            etag,
            json,
            expires_at: self.l1_deadline(None),
            generation: generation.wrapping_add(1),
            stripe: Stripes::index(id.as_str()),
            fetched_at: now,
            origin: Tier::L1,
        });
        // Install only if nothing touched the id since the write was sent
        // (otherwise a later write may have reached Redis after this one),
        // and only if it fits L1 (else the old copy must not outlive the
        // write that replaced it).
        let advanced = self.inner.stripes.advance(id.as_str(), generation);
        if advanced && self.fits_l1(&id, &entry) {
            self.inner.l1.insert(id, entry.clone());
        } else {
            if !advanced {
                self.inner.stripes.bump(id.as_str());
            }
            self.inner.l1.invalidate(&id);
        }
        Ok(entry.cached(Tier::L1))
    }

    /// Deletes `id` from Redis and ends this process's L1 copy and every
    /// fill of `id` in flight here; other instances drop theirs when Redis
    /// pushes the change (or the fallback message) to them. For the
    /// age-verification keyspace this is the GDPR erasure (see
    /// [`TieredCache::erase`]). L1 is cleared even when Redis fails, and the
    /// failure is returned.
    ///
    /// # Errors
    /// A malformed id, or Redis failing (the key may still be in Redis).
    pub async fn invalidate(&self, id: &str) -> Result<(), CacheError> {
        self.erase(id).await.map(drop)
    }

    /// [`TieredCache::invalidate`], saying how many replicas confirmed it.
    /// The key is deleted and tombstoned in one script, so no loader on any
    /// instance can write the old value back for the tombstone's life
    /// (`WARMCACHE_TOMBSTONE_TTL_MS`); with `WARMCACHE_ERASURE_REPLICAS` set,
    /// the call then waits up to `WARMCACHE_ERASURE_WAIT_MS` for that many
    /// replicas. A shortfall is not an error: it is returned, counted
    /// (`stats().erasures_unreplicated`) and logged. Completes even if the
    /// returned future is dropped once the delete was sent.
    ///
    /// # Errors
    /// As [`TieredCache::invalidate`].
    pub async fn erase(&self, id: &str) -> Result<Erasure, CacheError> {
        let id = CacheId::parse(id)?;
        let this = self.clone();
        run_detached(async move { this.erase_now(id).await }).await
    }

    async fn erase_now(&self, id: CacheId) -> Result<Erasure, CacheError> {
        self.inner.counters.invalidation_local();
        let key = self.key(&id);
        let erased = match &self.inner.redis {
            Some(redis) => redis.erase(&key).await,
            None => Ok(Erasure {
                replicas_wanted: 0,
                replicas_confirmed: 0,
            }),
        };
        // After the DEL: a fill that read the old value started before this bump.
        self.inner.stripes.bump(id.as_str());
        self.inner.l1.invalidate(&id);
        match erased {
            Ok(erasure) => {
                if let Some(redis) = &self.inner.redis {
                    redis.publish_invalidation(&key).await;
                }
                if erasure.replicas_wanted > 0 {
                    self.inner
                        .counters
                        .erasure_replication(erasure.is_replicated());
                    if !erasure.is_replicated() {
                        tracing::warn!(
                            cache = self.inner.keyspace.name,
                            wanted = erasure.replicas_wanted,
                            confirmed = erasure.replicas_confirmed,
                            "an erasure was not confirmed by enough replicas in time; a failover now could bring it back"
                        );
                    }
                }
                Ok(erasure)
            }
            Err(e) => {
                self.inner.counters.l2_error(L2Op::Del);
                self.inner.counters.invalidation_failure();
                Err(e.into())
            }
        }
    }

    /// Time left before the L1 copy of `id` expires; `None` when L1 has no
    /// copy it would serve.
    pub async fn l1_time_to_live(&self, id: &str) -> Option<Duration> {
        let id = CacheId::parse(id).ok()?;
        let entry = self.inner.l1.get(&id)?;
        self.is_servable(&entry, Instant::now())
            .then(|| entry.remaining())
    }

    /// Reads `id` from Redis alone, neither using nor filling L1.
    ///
    /// # Errors
    /// As [`TieredCache::get`].
    pub async fn get_from_l2(&self, id: &str) -> Result<Option<Cached<V>>, CacheError> {
        let id = CacheId::parse(id)?;
        let generation = self.inner.stripes.generation(id.as_str());
        Ok(self
            .read_l2_with(&id, generation, false)
            .await?
            .map(|entry| entry.cached(Tier::L2)))
    }

    /// A servable L1 entry. One that is not is dropped, so the caller's
    /// fill finds nothing in L1 and fills afresh instead of returning it.
    /// `id`: the bytes of an id `CacheId::check` accepted.
    fn l1_get(&self, id: &[u8]) -> Option<Cached<V>> {
        let Some(entry) = self.inner.l1.get(id) else {
            self.inner.counters.l1_miss();
            return None;
        };
        if !self.is_servable(&entry, Instant::now()) {
            self.inner.counters.l1_miss();
            self.inner.l1.invalidate(id);
            return None;
        }
        self.inner.counters.l1_hit();
        Some(entry.into_cached(Tier::L1))
    }

    /// Whether L1 may keep `entry`; counts the values it may not.
    fn fits_l1(&self, id: &CacheId, entry: &L1Entry<V>) -> bool {
        let fits = builder::weight(id, entry) <= self.inner.l1_max_entry_weight;
        if !fits {
            self.inner.counters.l1_oversize();
        }
        fits
    }

    /// Unexpired, not invalidated since its fill began, and L1 trusted.
    fn is_servable(&self, entry: &L1Entry<V>, now: Instant) -> bool {
        entry.expires_at > now
            && entry.generation == self.inner.stripes.generation_at(entry.stripe)
            && self
                .inner
                .hub
                .as_ref()
                .is_none_or(|hub| hub.l1_trusted(now))
    }

    /// What an entry keeps of `value`: the value, or (a cache that keeps
    /// the JSON alone) a place it is decoded into on first use.
    fn decoded(&self, value: V) -> std::sync::OnceLock<V> {
        if self.inner.keeps_decoded {
            std::sync::OnceLock::from(value)
        } else {
            std::sync::OnceLock::new()
        }
    }

    /// Whether the invalidation lease (if any) runs now.
    fn l1_trusted_now(&self) -> bool {
        self.inner
            .hub
            .as_ref()
            .is_none_or(|hub| hub.l1_trusted(Instant::now()))
    }

    /// Deadline of a new L1 entry: the L1 bound, the fallback bound if the
    /// pub/sub fallback is active, or the Redis key's remaining TTL, whichever
    /// is soonest.
    fn l1_deadline(&self, redis_ttl: Option<Duration>) -> Instant {
        let mut life = redis_ttl.map_or(self.inner.l1_ttl, |ttl| ttl.min(self.inner.l1_ttl));
        if let Some(cap) = self.inner.hub.as_ref().and_then(|hub| hub.l1_cap()) {
            life = life.min(cap);
        }
        Instant::now() + life
    }
}

/// Runs `work` in a task of its own and waits for it: dropping the waiting
/// future does not stop the work (a write's bookkeeping must complete).
async fn run_detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, CacheError>> + Send + 'static,
) -> Result<T, CacheError> {
    match tokio::spawn(work).await {
        Ok(outcome) => outcome,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(CacheError::L2(L2Error::Unavailable)),
    }
}
