//! Filling L1 on a miss: Redis, then the loader, one fill per id at a time
//! (`in_flight`).
//!
//! Each fill notes the id's invalidation generation before it reads
//! anything. If the generation has moved when the fill ends (an
//! invalidation, local or pushed by Redis, overtook it), the result goes to
//! the caller that ran the fill but is installed neither in L1 nor, for a
//! loaded value, in Redis. Callers that merely joined such a fill try again,
//! so a read that starts after an invalidation never gets the old value.
//!
//! A caller that joined a fill in flight takes its value when the fill
//! completed after the caller arrived and no invalidation came since, even
//! while L1 is not trusted (the lease lapsed): concurrent reads stay
//! coalesced into one Redis read or loader call when the listener is down.
//! Such a value may have been read up to one fill's duration (bounded by
//! the Redis timeout, or the loader) before the joiner arrived.
//!
//! A loaded value is written back to Redis by a script that refuses while
//! the key's erasure tombstone exists ([`crate::l2`]), and only while
//! this instance's lease runs (a lapsed lease may hide an erasure's push).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::stats::L2Op;
use super::stripes::Stripes;
use super::{CacheError, CacheId, Cached, L1Entry, Stored, Tier, TieredCache};
use crate::fnv::tagged;
use crate::l2::WriteBack;

/// Fills that an invalidation overtook before a caller gives up on L1.
const ATTEMPTS: usize = 3;

/// A fill's outcome, shared by every caller that joined it.
pub(super) type FillOutcome<V> = Result<L1Entry<V>, Arc<NoEntry<V>>>;

/// Why a fill produced no entry for L1.
pub(super) enum NoEntry<V> {
    /// Neither Redis nor a loader has the id.
    Absent,
    Failed(CacheError),
    /// An invalidation of the id happened while the fill ran.
    Overtaken(L1Entry<V>),
    /// Too big for L1: served to every caller of this fill, kept nowhere.
    Oversize(L1Entry<V>),
}

impl<V> TieredCache<V>
where
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Fills `id`, one fill per id at a time (`InFlight`).
    pub(super) async fn fill<F, Fut, E>(
        &self,
        id: &CacheId,
        loader: Option<F>,
    ) -> Result<Option<Cached<V>>, CacheError>
    where
        F: FnOnce(CacheId) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut loader = loader;
        for _ in 0..ATTEMPTS {
            let ran_here = AtomicBool::new(false);
            let joined_at = Instant::now();
            let generation = self.inner.stripes.generation(id.as_str());
            let init = async {
                ran_here.store(true, Ordering::Relaxed);
                // Boxed: inline, this future sits in `init`, in the
                // in-flight cell's closure and in its running future, and a
                // fill's future (boxed by `get`) was 11 KB.
                let entry = Box::pin(self.fill_once(id, loader.take(), generation)).await?;
                if self.fits_l1(id, &entry) {
                    self.inner.l1.insert(id.clone(), Arc::clone(&entry));
                    Ok(entry)
                } else {
                    Err(NoEntry::Oversize(entry))
                }
            };
            // What moka's `try_get_with` did: an entry L1 holds (servable
            // or not, judged below), else the outcome of the one fill of
            // the id in flight.
            let outcome = match self.inner.l1.get(id) {
                Some(entry) => Ok(entry),
                None => {
                    self.inner
                        .in_flight
                        .run(id, async { init.await.map_err(Arc::new) })
                        .await
                }
            };
            let ran_here = ran_here.load(Ordering::Relaxed);
            match outcome {
                Ok(entry)
                    if ran_here
                        || self.is_servable(&entry, Instant::now())
                        || fresh_for_joiner(&entry, generation, joined_at) =>
                {
                    return Ok(Some(entry.cached(entry.origin)));
                }
                // Installed by a fill that an invalidation ended since.
                Ok(_) => self.inner.l1.invalidate(id),
                Err(shared) => match &*shared {
                    NoEntry::Absent => return Ok(None),
                    NoEntry::Failed(e) => return Err(e.clone()),
                    NoEntry::Overtaken(entry) if ran_here => {
                        return Ok(Some(entry.cached(entry.origin)));
                    }
                    NoEntry::Oversize(entry)
                        if ran_here || self.is_servable(entry, Instant::now()) =>
                    {
                        return Ok(Some(entry.cached(entry.origin)));
                    }
                    NoEntry::Overtaken(_) | NoEntry::Oversize(_) => {}
                },
            }
        }
        // Invalidations keep overtaking: answer without L1.
        let generation = self.inner.stripes.generation(id.as_str());
        match Box::pin(self.fill_once(id, loader.take(), generation)).await {
            Ok(entry) => Ok(Some(entry.cached(entry.origin))),
            Err(NoEntry::Overtaken(entry) | NoEntry::Oversize(entry)) => {
                Ok(Some(entry.cached(entry.origin)))
            }
            Err(NoEntry::Absent) => Ok(None),
            Err(NoEntry::Failed(e)) => Err(e),
        }
    }

    /// One fill: Redis, then the loader (whose value is written to Redis).
    async fn fill_once<F, Fut, E>(
        &self,
        id: &CacheId,
        loader: Option<F>,
        generation: u64,
    ) -> Result<L1Entry<V>, NoEntry<V>>
    where
        F: FnOnce(CacheId) -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut read_failed = false;
        let overwrite = match self.read_l2(id, generation).await {
            Ok(Some(entry)) => return self.unless_overtaken(id, entry),
            Ok(None) => false,
            Err(e) if loader.is_none() => return Err(NoEntry::Failed(e)),
            Err(CacheError::L2(_)) => {
                read_failed = true;
                false
            }
            Err(CacheError::Corrupt { .. }) => true,
            Err(e) => return Err(NoEntry::Failed(e)),
        };
        let Some(loader) = loader else {
            return Err(NoEntry::Absent);
        };
        let started = Instant::now();
        let loaded = loader(id.clone()).await;
        self.inner.counters.load(loaded.is_ok(), started.elapsed());
        let value = loaded.map_err(|e| {
            let error: super::LoaderError = Arc::from(e.into());
            tracing::debug!(key = self.key(id), error = %error, "loader failed");
            tracing::warn!(keyspace = self.inner.keyspace.name, id_hash = %crate::redact::id_hash(id.as_str()), error = %crate::redact::scrub(&error.to_string(), id.as_str()), "loader failed");
            NoEntry::Failed(CacheError::Loader(error))
        })?;
        let json = encode(&value).map_err(NoEntry::Failed)?;
        let (json, etag) = tagged(&json);
        let entry = Arc::new(Stored {
            value: self.decoded(value),
            etag,
            json,
            expires_at: self.l1_deadline(None),
            generation,
            stripe: Stripes::index(id.as_str()),
            fetched_at: Instant::now(),
            origin: Tier::Loader,
        });
        // An erasure or update overtook the load: do not write it back.
        let entry = self.unless_overtaken(id, entry)?;
        let Some(redis) = &self.inner.redis else {
            return Ok(entry);
        };
        // A lapsed lease may hide the push of an erasure: write nothing back
        // (the value still goes to the callers of this fill).
        if !self.l1_trusted_now() {
            return self.unless_unverified(id, entry, read_failed);
        }
        let (key, ttl) = (self.key(id), self.inner.keyspace.ttl);
        match redis.write_back(&key, &entry.json, ttl, overwrite).await {
            Ok(WriteBack::Written) => {
                redis.publish_invalidation(&key).await;
                return self.unless_overtaken(id, entry);
            }
            // Erased while we loaded: the erasure wins, the value goes to the caller only.
            Ok(WriteBack::Erased) => return Err(NoEntry::Overtaken(entry)),
            // Another writer stored the key while we loaded: theirs is newer.
            Ok(WriteBack::Exists) => {
                if let Ok(Some(theirs)) = self.read_l2(id, generation).await {
                    return self.unless_overtaken(id, theirs);
                }
            }
            Err(e) => {
                self.inner.counters.l2_error(L2Op::Set);
                tracing::debug!(key, error = %e, "could not store the loaded value in redis");
            }
        }
        self.unless_unverified(id, entry, read_failed)
    }

    /// A loaded value that Redis never confirmed: when Redis could not be
    /// read before the load either, it may hold a newer value whose push
    /// reached this instance before the fill began (so no generation moved).
    /// With an invalidation listener (L1 promised coherent with Redis) the
    /// value goes to the fill's callers but not into L1; without one, L1 is
    /// only bounded in time, and keeps it.
    fn unless_unverified(
        &self,
        id: &CacheId,
        entry: L1Entry<V>,
        read_failed: bool,
    ) -> Result<L1Entry<V>, NoEntry<V>> {
        let coherent = self
            .inner
            .hub
            .as_ref()
            .is_some_and(|hub| hub.is_listening());
        if read_failed && coherent {
            Err(NoEntry::Overtaken(entry))
        } else {
            self.unless_overtaken(id, entry)
        }
    }

    fn unless_overtaken(&self, id: &CacheId, entry: L1Entry<V>) -> Result<L1Entry<V>, NoEntry<V>> {
        if entry.generation == self.inner.stripes.generation(id.as_str()) {
            Ok(entry)
        } else {
            Err(NoEntry::Overtaken(entry))
        }
    }

    /// Redis read for an L1 fill; counts and logs every outcome.
    pub(super) async fn read_l2(
        &self,
        id: &CacheId,
        generation: u64,
    ) -> Result<Option<L1Entry<V>>, CacheError> {
        self.read_l2_with(id, generation, true).await
    }

    /// Redis read; counts and logs every outcome. `for_l1`: also read the
    /// key's remaining TTL (`PTTL`, same round trip), which bounds an L1 copy.
    pub(super) async fn read_l2_with(
        &self,
        id: &CacheId,
        generation: u64,
        for_l1: bool,
    ) -> Result<Option<L1Entry<V>>, CacheError> {
        let Some(redis) = &self.inner.redis else {
            self.inner.counters.l2_miss();
            return Ok(None);
        };
        let key = self.key(id);
        let started = Instant::now();
        let found = if for_l1 {
            redis.get_with_ttl(&key).await
        } else {
            redis
                .get(&key)
                .await
                .map(|value| value.map(|json| (json, None)))
        };
        let found = found.map_err(|e| {
            self.inner.counters.l2_error(L2Op::Get);
            tracing::debug!(key, error = %e, "redis read failed");
            CacheError::from(e)
        })?;
        self.inner.counters.l2_round_trip(started.elapsed());
        let Some((json, ttl)) = found else {
            self.inner.counters.l2_miss();
            return Ok(None);
        };
        match serde_json::from_slice::<V>(&json) {
            Ok(value) => {
                self.inner.counters.l2_hit();
                let expires_at = self.l1_deadline(ttl);
                let (json, etag) = tagged(&json);
                Ok(Some(Arc::new(Stored {
                    value: self.decoded(value),
                    etag,
                    json,
                    expires_at,
                    generation,
                    stripe: Stripes::index(id.as_str()),
                    fetched_at: Instant::now(),
                    origin: Tier::L2,
                })))
            }
            Err(e) => {
                self.inner.counters.corrupt();
                // The position and kind only: serde's message may quote the value.
                let reason = format!(
                    "{:?} error at line {} column {}",
                    e.classify(),
                    e.line(),
                    e.column()
                );
                tracing::debug!(key, reason, "corrupt value in redis");
                tracing::warn!(keyspace = self.inner.keyspace.name, id_hash = %crate::redact::id_hash(id.as_str()), reason, "corrupt value in redis; not served");
                Err(CacheError::Corrupt { key, reason })
            }
        }
    }
}

/// A joiner may take a fill's entry, trusted or not, when the fill completed
/// after it arrived and its id saw no invalidation since.
fn fresh_for_joiner<V>(entry: &L1Entry<V>, generation: u64, joined_at: Instant) -> bool {
    entry.generation == generation
        && entry.fetched_at >= joined_at
        && entry.expires_at > Instant::now()
}

/// The JSON text `JSON.stringify` would write for `value` (numbers and key
/// order as V8 writes them), which is what goes to Redis.
pub(super) fn encode<V: Serialize>(value: &V) -> Result<Bytes, CacheError> {
    crate::records::js_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| CacheError::Encode(Arc::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{AGE_VERIFICATION, AgeVerification};

    type NoLoader = fn(CacheId) -> std::future::Ready<Result<AgeVerification, CacheError>>;

    /// A fill's future is boxed on every L1 miss, and written to fresh
    /// memory each time. With `fill_once` inline (twice: once as the fill,
    /// once after the attempts) and `OnceCell::get_or_init` holding its
    /// future both as the closure and as the running future, it was 11,392
    /// bytes; boxed apart, `fill_once` runs only in the caller that fills.
    #[test]
    fn a_fills_future_stays_small() {
        let cache = TieredCache::<AgeVerification>::builder(AGE_VERIFICATION)
            .build()
            .expect("cache");
        let id = CacheId::parse("c1").expect("id");
        let size = std::mem::size_of_val(&cache.fill(&id, None::<NoLoader>));
        assert!(size <= 1024, "a fill's future is {size} bytes");
    }

    #[tokio::test]
    async fn get_id_reads_l1_like_get() {
        let cache = TieredCache::<AgeVerification>::builder(AGE_VERIFICATION)
            .build()
            .expect("cache");
        let loaded = cache
            .get_or_load("c1", |id| async move {
                serde_json::from_str::<AgeVerification>(&format!(
                    r#"{{"customerId":"{id}","verified":true}}"#
                ))
            })
            .await
            .expect("loaded");
        let id = CacheId::parse("c1").expect("id");
        let hit = cache.get_id(&id).await.expect("read").expect("held");
        assert_eq!(hit.tier(), Tier::L1);
        assert_eq!(hit.json(), loaded.json());
        let absent = CacheId::parse("c2").expect("id");
        assert!(cache.get_id(&absent).await.expect("read").is_none());
    }
}
