//! One warmcache instance (an age-verification [`TieredCache`] on its own
//! [`RedisHandle`] and invalidation listener), as the cluster and sentinel
//! tests run two of, with the waits they share.
//!
//! Real sockets, so the real clock: every wait is a bounded poll
//! ([`super::eventually_within`]) that fails with a message.

use std::time::Duration;

use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{
    InvalidationListener, InvalidationMode, InvalidationOptions, RedisConfig, RedisHandle, Tier,
    TieredCache,
};

use super::eventually_within;

/// Long enough for a failover on a loaded machine.
pub const FAILOVER_BOUND: Duration = Duration::from_secs(20);

/// The L1 lease grace of the instances.
pub const GRACE: Duration = Duration::from_millis(300);

/// One warmcache instance.
pub struct Instance {
    /// The cache.
    pub ages: TieredCache<AgeVerification>,
    /// Its handle.
    pub redis: RedisHandle,
    /// Its listener.
    pub listener: InvalidationListener,
}

impl Instance {
    /// Starts one and waits until its listener tracks (and L1 is trusted).
    pub async fn start(config: &RedisConfig) -> Self {
        Self::start_with(
            config,
            InvalidationOptions {
                grace: GRACE,
                ..InvalidationOptions::default()
            },
        )
        .await
    }

    /// [`Instance::start`] with the listener's `options`.
    pub async fn start_with(config: &RedisConfig, options: InvalidationOptions) -> Self {
        let redis = RedisHandle::connect_lazy(config).expect("valid settings");
        let ages = TieredCache::builder(AGE_VERIFICATION)
            .redis(redis.clone())
            .build()
            .expect("cache");
        let listener = redis.start_invalidation(options);
        let instance = Self {
            ages,
            redis,
            listener,
        };
        eventually("the listener to track", || async {
            instance.listener.mode() == InvalidationMode::Tracking && instance.listener.l1_trusted()
        })
        .await;
        instance
    }

    /// Waits until a read of `id` returns `method` from L1.
    pub async fn cached(&self, id: &str, method: &str) {
        eventually(&format!("{id} = {method} served from L1"), || async {
            let got = self.ages.get(id).await;
            matches!(got, Ok(Some(c)) if c.tier() == Tier::L1 && c.value().method.as_deref() == Some(method))
        })
        .await;
    }

    /// Waits until reads of `id` return `method` (`None`: absent).
    pub async fn reads(&self, id: &str, method: Option<&str>) {
        eventually(&format!("{id} to read {method:?}"), || async {
            match self.ages.get(id).await {
                Ok(found) => found.and_then(|c| c.value().method.clone()).as_deref() == method,
                Err(_) => false,
            }
        })
        .await;
    }
}

/// [`eventually_within`] the [`FAILOVER_BOUND`].
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_within(what, FAILOVER_BOUND, check).await;
}

/// The Redis key of age-verification record `id`.
pub fn key(id: &str) -> String {
    format!("{}:{id}", AGE_VERIFICATION.name)
}

/// The JSON a foreign writer stores for `id` with `method`.
pub fn record_json(id: &str, method: &str) -> String {
    serde_json::to_string(&super::age_record(id, method)).expect("json")
}

/// warmcache's own writes on `a` reach `b`'s L1, and an erasure of the
/// first id on `a` (confirmed by one replica through `WAIT`) reaches it
/// too. Returns the erased id, for the caller's checks in Redis.
pub async fn own_writes_and_erasure_reach<'a>(
    a: &Instance,
    b: &Instance,
    ids: &'a [String],
) -> &'a str {
    for id in ids {
        a.ages
            .insert(id, super::age_record(id, "mine"))
            .await
            .expect("insert");
    }
    for id in ids {
        b.reads(id, Some("mine")).await;
    }
    let erased = &ids[0];
    b.cached(erased, "mine").await;
    let erasure = a.ages.erase(erased).await.expect("erase");
    assert_eq!(
        erasure.replicas_confirmed, 1,
        "WAIT ran on the key's primary"
    );
    b.reads(erased, None).await;
    erased
}
