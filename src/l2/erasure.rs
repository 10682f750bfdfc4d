//! Final erasure: a delete that no in-flight load can undo, in Redis too.
//!
//! `invalidate` runs one Lua script that deletes the key and writes a
//! **tombstone** `warmcache:erased:<key>` (value `1`, nothing else; the
//! prefix is outside every tracked keyspace, so tracking never mistakes it
//! for a record) that lives `tombstone_ttl` (`WARMCACHE_TOMBSTONE_TTL_MS`,
//! 60 s by default). A loader's write-back is another script that refuses to
//! write while the tombstone exists. So an instance whose loader read the
//! old value before the erasure, and that has not yet received the push,
//! cannot put the value back: past the tombstone's life, its own
//! invalidation generation (bumped by the push, or by the reconnect that
//! follows a lost connection) or its lapsed lease refuses the write instead.
//!
//! Optionally the erasure waits for replicas (`WAIT n timeout`, on the same
//! connection, after the script): with `erasure_replicas > 0` an erasure the
//! primary acknowledged is also on that many replicas before `erase`
//! returns, or the shortfall is reported ([`Erasure`]) and counted.
//!
//! In cluster mode the tombstone is `warmcache:erased:{<key>}`, on the
//! record key's slot (one script may only touch one slot), and the pipeline
//! of the script and `WAIT` goes to that slot's primary, so `WAIT` counts the
//! replicas of the primary that took the erasure.

use std::time::Duration;

use redis::Value;

use super::run::Target;
use super::{L2Error, RedisConfig, RedisHandle};

/// Prefix of tombstone keys: `warmcache:erased:` + the record's key.
pub const TOMBSTONE_PREFIX: &str = "warmcache:erased:";

/// Deletes KEYS[1] and marks it erased for ARGV[1] ms.
const ERASE: &str = "redis.call('DEL', KEYS[1]) \
    redis.call('SET', KEYS[2], '1', 'PX', ARGV[1]) return 1";

/// Writes a loaded value unless KEYS[1] was erased (KEYS[2] exists):
/// -1 erased, 1 written, 0 another writer's value is there (NX).
const WRITE_BACK: &str = "if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end \
    if ARGV[3] == '1' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) return 1 end \
    if redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2], 'NX') then return 1 end \
    return 0";

/// How erasures are made final.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErasureSettings {
    tombstone_ttl: Duration,
    replicas: u32,
    wait: Duration,
    /// Cluster mode: tombstones are hash-tagged to their record's slot.
    cluster: bool,
}

impl ErasureSettings {
    pub(crate) fn from_config(config: &RedisConfig) -> Self {
        Self {
            tombstone_ttl: config.tombstone_ttl,
            replicas: config.erasure_replicas,
            wait: config.erasure_wait,
            cluster: config.mode == super::RedisMode::Cluster,
        }
    }
}

/// What an erasure reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// Replicas asked to confirm (`WARMCACHE_ERASURE_REPLICAS`).
    pub replicas_wanted: u32,
    /// Replicas that confirmed within `WARMCACHE_ERASURE_WAIT_MS`.
    pub replicas_confirmed: u32,
}

impl Erasure {
    /// Whether as many replicas as asked confirmed the erasure.
    pub fn is_replicated(&self) -> bool {
        self.replicas_confirmed >= self.replicas_wanted
    }
}

/// The outcome of a loader's write-back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteBack {
    /// Stored.
    Written,
    /// Another writer's value is there (`NX`): it is newer.
    Exists,
    /// The key was erased recently: nothing written.
    Erased,
}

impl RedisHandle {
    /// Deletes `key` and tombstones it (one script), then waits for the
    /// configured replicas.
    pub(crate) async fn erase(&self, key: &str) -> Result<Erasure, L2Error> {
        let settings = self.inner.erasure;
        let tombstone = super::cluster::tombstone_key(key, settings.cluster);
        let tombstone_ms = settings.tombstone_ttl.as_millis().max(1) as u64;
        let wait_ms = settings.wait.as_millis() as u64;
        let (tombstone, replicas) = (tombstone.as_str(), settings.replicas);
        let timeout = self.inner.op_timeout + settings.wait * u32::from(replicas > 0);
        let confirmed: i64 = self
            .run_on(Target::Write(key), timeout, |mut c| async move {
                let mut pipe = redis::pipe();
                pipe.cmd("EVAL")
                    .arg(ERASE)
                    .arg(2)
                    .arg(key)
                    .arg(tombstone)
                    .arg(tombstone_ms)
                    .ignore();
                if replicas == 0 {
                    pipe.query_async::<()>(&mut c).await.map(|()| 0)
                } else {
                    pipe.cmd("WAIT").arg(replicas).arg(wait_ms);
                    pipe.query_async::<(i64,)>(&mut c).await.map(|(n,)| n)
                }
            })
            .await?;
        Ok(Erasure {
            replicas_wanted: replicas,
            replicas_confirmed: u32::try_from(confirmed).unwrap_or(0),
        })
    }

    /// Writes a loaded value (`SET .. EX ttl`, with `NX` unless
    /// `overwrite`), unless `key` was erased within the tombstone's life.
    pub(crate) async fn write_back(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        overwrite: bool,
    ) -> Result<WriteBack, L2Error> {
        let seconds = ttl.as_secs().max(1);
        let tombstone = super::cluster::tombstone_key(key, self.inner.erasure.cluster);
        let tombstone = tombstone.as_str();
        let reply: Value = self
            .write(key, |mut c| async move {
                redis::cmd("EVAL")
                    .arg(WRITE_BACK)
                    .arg(2)
                    .arg(key)
                    .arg(tombstone)
                    .arg(value)
                    .arg(seconds)
                    .arg(if overwrite { "1" } else { "0" })
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(match reply {
            Value::Int(1) => WriteBack::Written,
            Value::Int(-1) => WriteBack::Erased,
            _ => WriteBack::Exists,
        })
    }
}
