//! L1 coherence across instances against real redis-server processes:
//! server-assisted invalidation (client tracking), FLUSHDB, the stale-set
//! race, connection loss, and the pub/sub fallback.
//!
//! Real sockets, so the real clock: waits are bounded polls that fail with a
//! message, never timing assertions.

mod support;

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use support::{RedisServer, age_record, eventually};
use tokio::sync::Notify;
use warmcache::records::{AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE};
use warmcache::{
    InvalidationListener, InvalidationMode, InvalidationOptions, RedisConfig, RedisHandle, Tier,
    TieredCache,
};

/// One warmcache instance: its own Redis handle, caches and listener.
struct Instance {
    ages: TieredCache<AgeVerification>,
    profiles: TieredCache<AgeVerification>,
    listener: InvalidationListener,
}

impl Instance {
    async fn start(config: &RedisConfig, options: InvalidationOptions) -> Self {
        let redis = RedisHandle::connect_lazy(config).expect("valid settings");
        let ages = TieredCache::builder(AGE_VERIFICATION)
            .redis(redis.clone())
            .build()
            .expect("cache");
        let profiles = TieredCache::builder(CUSTOMER_PROFILE)
            .redis(redis.clone())
            .build()
            .expect("cache");
        let listener = redis.start_invalidation(options);
        let instance = Self {
            ages,
            profiles,
            listener,
        };
        instance.wait_mode(InvalidationMode::Tracking).await;
        instance
    }

    async fn wait_mode(&self, mode: InvalidationMode) {
        eventually(&format!("listener mode {mode:?}"), || async {
            self.listener.mode() == mode
        })
        .await;
    }
}

fn options() -> InvalidationOptions {
    InvalidationOptions {
        grace: Duration::from_millis(300),
        ..InvalidationOptions::default()
    }
}

async fn node_setex(server: &RedisServer, key: &str, value: &AgeVerification, ttl: u64) {
    let json = serde_json::to_string(value).expect("json");
    let () = server
        .foreign()
        .await
        .set_ex(key, json, ttl)
        .await
        .expect("setex");
}

async fn method_of(cache: &TieredCache<AgeVerification>, id: &str) -> Option<String> {
    cache
        .get(id)
        .await
        .expect("reads")
        .and_then(|c| c.value().method.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_follows_foreign_del_setex_and_expire() {
    let server = RedisServer::start();
    let mut instances = Vec::new();
    for _ in 0..3 {
        instances.push(Instance::start(&server.config(), options()).await);
    }
    let key = "age_verification:c1";
    node_setex(&server, key, &age_record("c1", "v1"), 3600).await;
    // Let the push of this first write land, or it would end the first fill.
    for instance in &instances {
        eventually("the first push", || async {
            instance.ages.stats().remote_invalidations == 1
        })
        .await;
    }
    for instance in &instances {
        assert_eq!(method_of(&instance.ages, "c1").await.as_deref(), Some("v1"));
        let again = instance
            .ages
            .get("c1")
            .await
            .expect("reads")
            .expect("present");
        assert_eq!(again.tier(), Tier::L1, "warm in every L1");
    }

    // DEL by a fourth, plain client (a Node service): every L1 drops it.
    let () = server.foreign().await.del(key).await.expect("del");
    for instance in &instances {
        eventually("L1 to drop the deleted key", || async {
            instance.ages.l1_time_to_live("c1").await.is_none()
        })
        .await;
        assert_eq!(method_of(&instance.ages, "c1").await, None);
    }

    // SETEX of a new value: every L1 drops the old one, reads return the new.
    node_setex(&server, key, &age_record("c1", "v2"), 3600).await;
    for instance in &instances {
        assert_eq!(method_of(&instance.ages, "c1").await.as_deref(), Some("v2"));
    }
    node_setex(&server, key, &age_record("c1", "v3"), 3600).await;
    for instance in &instances {
        eventually("L1 to drop the replaced value", || async {
            instance.ages.l1_time_to_live("c1").await.is_none()
        })
        .await;
        assert_eq!(method_of(&instance.ages, "c1").await.as_deref(), Some("v3"));
    }

    // EXPIRE shortens the key's life (to 20 s, under the 60 s L1 bound, and
    // long enough not to lapse on a loaded machine): L1 follows the new TTL.
    let () = server
        .foreign()
        .await
        .expire(key, 20)
        .await
        .expect("expire");
    for instance in &instances {
        eventually("L1 to drop the key whose TTL changed", || async {
            instance.ages.l1_time_to_live("c1").await.is_none()
        })
        .await;
        // Read until the value is back in L1: on a loaded machine a missed
        // PING can make the listener reconnect, which rightly drops L1 once.
        let mut life = None;
        for _ in 0..500 {
            assert_eq!(method_of(&instance.ages, "c1").await.as_deref(), Some("v3"));
            life = instance.ages.l1_time_to_live("c1").await;
            if life.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let life = life.expect("back in L1 within 5 s");
        assert!(
            life <= Duration::from_secs(20),
            "L1 follows the new TTL: {life:?}"
        );
        assert!(instance.ages.stats().remote_invalidations >= 3);
    }
}

#[tokio::test]
async fn flushdb_clears_every_l1() {
    let server = RedisServer::start();
    let a = Instance::start(&server.config(), options()).await;
    let b = Instance::start(&server.config(), options()).await;
    node_setex(
        &server,
        "age_verification:c2",
        &age_record("c2", "v1"),
        3600,
    )
    .await;
    node_setex(&server, "customer_profile:c2", &age_record("c2", "p1"), 300).await;
    for instance in [&a, &b] {
        assert!(instance.ages.get("c2").await.expect("reads").is_some());
        assert!(instance.profiles.get("c2").await.expect("reads").is_some());
    }
    let () = redis::cmd("FLUSHDB")
        .query_async(&mut server.foreign().await)
        .await
        .expect("flushdb");
    for instance in [&a, &b] {
        eventually("FLUSHDB to clear L1", || async {
            instance.ages.l1_time_to_live("c2").await.is_none()
                && instance.profiles.l1_time_to_live("c2").await.is_none()
        })
        .await;
        assert_eq!(method_of(&instance.ages, "c2").await, None);
    }
}

/// A loader blocked until released, to hold a fill open across an invalidation.
fn gated_loader(
    gate: Arc<Notify>,
    started: Arc<Notify>,
    value: AgeVerification,
) -> impl FnOnce(
    warmcache::CacheId,
) -> std::pin::Pin<
    Box<dyn Future<Output = Result<AgeVerification, std::io::Error>> + Send>,
> {
    move |_| {
        Box::pin(async move {
            started.notify_one();
            gate.notified().await;
            Ok(value)
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_overtaken_by_an_erasure_puts_nothing_back() {
    let server = RedisServer::start();
    let instance = Instance::start(&server.config(), options()).await;
    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let load = tokio::spawn({
        let ages = instance.ages.clone();
        let loader = gated_loader(
            Arc::clone(&gate),
            Arc::clone(&started),
            age_record("c3", "old"),
        );
        async move { ages.get_or_load("c3", loader).await }
    });
    started.notified().await; // the loader is running, its value not yet returned
    instance.ages.invalidate("c3").await.expect("erased");
    gate.notify_one();

    let loaded = load
        .await
        .expect("no panic")
        .expect("the caller still gets its value");
    assert_eq!(loaded.value().method.as_deref(), Some("old"));
    assert_eq!(instance.ages.l1_time_to_live("c3").await, None, "not in L1");
    let exists: bool = server
        .foreign()
        .await
        .exists("age_verification:c3")
        .await
        .expect("exists");
    assert!(!exists, "not written back to Redis");
    assert_eq!(
        method_of(&instance.ages, "c3").await,
        None,
        "a later read does not see it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_overtaken_by_a_foreign_write_is_not_installed() {
    let server = RedisServer::start();
    let instance = Instance::start(&server.config(), options()).await;
    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let load = tokio::spawn({
        let ages = instance.ages.clone();
        let loader = gated_loader(
            Arc::clone(&gate),
            Arc::clone(&started),
            age_record("c4", "stale"),
        );
        async move { ages.get_or_load("c4", loader).await }
    });
    started.notified().await;
    // Another writer stores a newer value while the load runs; its
    // invalidation push reaches the instance before the load returns.
    node_setex(
        &server,
        "age_verification:c4",
        &age_record("c4", "fresh"),
        3600,
    )
    .await;
    eventually("the push to arrive", || async {
        instance.ages.stats().remote_invalidations > 0
    })
    .await;
    gate.notify_one();
    load.await.expect("no panic").expect("loaded");

    assert_eq!(instance.ages.l1_time_to_live("c4").await, None);
    let stored: String = server
        .foreign()
        .await
        .get("age_verification:c4")
        .await
        .expect("kept");
    assert!(
        stored.contains("fresh"),
        "the newer value was not overwritten: {stored}"
    );
    assert_eq!(
        method_of(&instance.ages, "c4").await.as_deref(),
        Some("fresh")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_tracking_connection_withdraws_trust_until_tracking_is_back() {
    let server = RedisServer::start();
    let instance = Instance::start(&server.config(), options()).await;
    node_setex(
        &server,
        "age_verification:c5",
        &age_record("c5", "before"),
        3600,
    )
    .await;
    assert_eq!(
        method_of(&instance.ages, "c5").await.as_deref(),
        Some("before")
    );

    // Kill the listener's connection (the one with the tracking flag `t`).
    let mut admin = server.foreign().await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .expect("client list");
    let tracking_id = clients
        .lines()
        .find(|line| {
            line.split(' ')
                .any(|field| field.starts_with("flags=") && field.contains('t'))
        })
        .and_then(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
        .expect("a tracking client")
        .to_owned();
    let () = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&tracking_id)
        .query_async(&mut admin)
        .await
        .expect("kill");
    // A change made while the listener may be disconnected.
    node_setex(
        &server,
        "age_verification:c5",
        &age_record("c5", "during"),
        3600,
    )
    .await;

    instance.wait_mode(InvalidationMode::Tracking).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut admin)
        .await
        .expect("client list");
    assert!(
        !clients.contains(&format!("id={tracking_id} ")),
        "a new tracking connection replaced the old"
    );
    assert_eq!(
        method_of(&instance.ages, "c5").await.as_deref(),
        Some("during"),
        "the change is not hidden by L1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_server_restart_nothing_from_before_is_served() {
    let mut server = RedisServer::start();
    let instance = Instance::start(&server.config(), options()).await;
    node_setex(
        &server,
        "age_verification:c6",
        &age_record("c6", "before"),
        3600,
    )
    .await;
    eventually("the push of the write", || async {
        instance.ages.stats().remote_invalidations == 1
    })
    .await;
    assert_eq!(
        method_of(&instance.ages, "c6").await.as_deref(),
        Some("before")
    );
    assert_eq!(
        instance
            .ages
            .get("c6")
            .await
            .expect("reads")
            .expect("present")
            .tier(),
        Tier::L1
    );

    server.kill();
    instance.wait_mode(InvalidationMode::Off).await;
    // Past the grace bound, L1 is no longer trusted: the read goes to Redis (down).
    tokio::time::sleep(options().grace + Duration::from_millis(100)).await;
    assert!(
        instance.ages.get("c6").await.is_err(),
        "L1 is not served once the grace bound has passed"
    );

    server.restart();
    node_setex(
        &server,
        "age_verification:c6",
        &age_record("c6", "after"),
        3600,
    )
    .await;
    instance.wait_mode(InvalidationMode::Tracking).await;
    eventually("the cache to read the new value", || async {
        matches!(instance.ages.get("c6").await, Ok(Some(c)) if c.value().method.as_deref() == Some("after"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_tracking_instances_fall_back_to_pub_sub() {
    let server = RedisServer::start();
    let config = server.config_denying(&["client|tracking"]).await;
    let fallback = InvalidationOptions {
        fallback_l1_ttl: Duration::from_millis(800),
        ..options()
    };
    let redis_a = RedisHandle::connect_lazy(&config).expect("settings");
    let redis_b = RedisHandle::connect_lazy(&config).expect("settings");
    let a: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
        .redis(redis_a.clone())
        .build()
        .expect("cache");
    let b: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
        .redis(redis_b.clone())
        .build()
        .expect("cache");
    let listener_a = redis_a.start_invalidation(fallback);
    let listener_b = redis_b.start_invalidation(fallback);
    for listener in [&listener_a, &listener_b] {
        eventually("the pub/sub fallback", || async {
            listener.mode() == InvalidationMode::PubSub
        })
        .await;
    }

    a.insert("c7", age_record("c7", "v1"))
        .await
        .expect("stored");
    eventually("the published write", || async {
        b.stats().remote_invalidations == 1
    })
    .await;
    assert_eq!(method_of(&b, "c7").await.as_deref(), Some("v1"));
    assert!(
        b.l1_time_to_live("c7")
            .await
            .is_some_and(|life| life <= Duration::from_millis(800)),
        "short L1 bound"
    );

    // A warmcache writer publishes: the other instance drops its copy.
    a.insert("c7", age_record("c7", "v2"))
        .await
        .expect("stored");
    eventually("the published invalidation", || async {
        b.l1_time_to_live("c7").await.is_none()
    })
    .await;
    assert_eq!(method_of(&b, "c7").await.as_deref(), Some("v2"));

    // A Node writer does not publish: seen once the short bound expires.
    node_setex(
        &server,
        "age_verification:c7",
        &age_record("c7", "node"),
        3600,
    )
    .await;
    eventually("the fallback bound to expire the copy", || async {
        method_of(&b, "c7").await.as_deref() == Some("node")
    })
    .await;
}
