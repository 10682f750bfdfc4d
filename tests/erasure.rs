//! Final erasure (issue 11, item 8): a delete wins over every instance's
//! in-flight load, in Redis too, and can wait for replicas. Real
//! redis-server processes (a primary and a replica); races are ordered with
//! Notify, never sleeps.

mod support;

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncCommands;
use support::{RedisServer, age_record, eventually};
use tokio::sync::Notify;
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{
    InvalidationMode, InvalidationOptions, RedisConfig, RedisHandle, TOMBSTONE_PREFIX, TieredCache,
};

fn ages(config: &RedisConfig) -> (RedisHandle, TieredCache<AgeVerification>) {
    let redis = RedisHandle::connect_lazy(config).expect("settings");
    let cache = TieredCache::builder(AGE_VERIFICATION)
        .redis(redis.clone())
        .build()
        .expect("cache");
    (redis, cache)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_racing_a_blocked_loader_on_another_instance_is_never_undone() {
    let server = RedisServer::start();
    let (_, eraser) = ages(&server.config());
    // The loading instance has not received the erasure's push (here: it
    // has no listener at all), so only Redis can stop its write-back.
    let (_, loading) = ages(&server.config());
    // A third instance watches the keyspace.
    let (watcher_redis, watcher) = ages(&server.config());
    let listener = watcher_redis.start_invalidation(InvalidationOptions::default());
    eventually("the watcher to track", || async {
        listener.mode() == InvalidationMode::Tracking
    })
    .await;

    let (gate, started) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let load = tokio::spawn({
        let (gate, started) = (Arc::clone(&gate), Arc::clone(&started));
        async move {
            loading
                .get_or_load("e1", |_| async move {
                    started.notify_one();
                    gate.notified().await; // read the old value, not yet returned
                    Ok::<_, std::io::Error>(age_record("e1", "old"))
                })
                .await
        }
    });
    started.notified().await;
    eraser.invalidate("e1").await.expect("erased");
    gate.notify_one();
    let loaded = load
        .await
        .expect("no panic")
        .expect("its caller gets the value");
    assert_eq!(loaded.value().method.as_deref(), Some("old"));

    let mut foreign = server.foreign().await;
    let exists: bool = foreign.exists("age_verification:e1").await.expect("exists");
    assert!(!exists, "the loader did not write the erased value back");
    assert!(
        eraser.get("e1").await.expect("reads").is_none(),
        "a tombstoned id reads as absent"
    );
    let tombstone = format!("{TOMBSTONE_PREFIX}age_verification:e1");
    let life: i64 = foreign.pttl(&tombstone).await.expect("pttl");
    assert!(
        (1..=60_000).contains(&life),
        "a tombstone with a bounded life: {life} ms"
    );
    let held: String = foreign.get(&tombstone).await.expect("get");
    assert_eq!(held, "1", "the tombstone holds nothing but its key");

    // Tracking does not take the tombstone for a record: after a later
    // foreign write, the watcher has seen exactly that one push.
    let () = foreign
        .set_ex("age_verification:later", "{}", 60)
        .await
        .expect("setex");
    eventually("the later push", || async {
        watcher.stats().remote_invalidations >= 1
    })
    .await;
    assert_eq!(watcher.stats().remote_invalidations, 1);
}

async fn replica_of(primary: &RedisServer) -> RedisServer {
    let replica =
        RedisServer::start_with(&["--replicaof", "127.0.0.1", &primary.port().to_string()]);
    let admin = primary.foreign().await;
    eventually("the replica to be in sync", || async {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut admin.clone())
            .await
            .unwrap_or_default();
        info.contains("connected_slaves:1") && info.contains("state=online")
    })
    .await;
    replica
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_waits_for_a_replica_and_reports_when_none_confirms() {
    // No diskless-sync delay: the replica is in sync at once.
    let primary = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let mut replica = replica_of(&primary).await;
    let mut config = primary.config();
    config.erasure_replicas = 1;
    config.erasure_wait = Duration::from_secs(2);
    let (_, cache) = ages(&config);
    cache
        .insert("e2", age_record("e2", "v"))
        .await
        .expect("stored");
    let erasure = cache.erase("e2").await.expect("erased");
    assert!(erasure.is_replicated(), "{erasure:?}");
    assert_eq!(erasure.replicas_confirmed, 1);
    assert_eq!(cache.stats().erasures_replicated, 1);

    // Without a replica able to confirm, the wait times out and says so.
    replica.kill();
    let mut config = primary.config();
    config.erasure_replicas = 1;
    config.erasure_wait = Duration::from_millis(100);
    let (_, cache) = ages(&config);
    cache
        .insert("e3", age_record("e3", "v"))
        .await
        .expect("stored");
    let erasure = cache.erase("e3").await.expect("erased on the primary");
    assert_eq!(
        (erasure.replicas_wanted, erasure.replicas_confirmed),
        (1, 0)
    );
    assert!(!erasure.is_replicated());
    assert_eq!(cache.stats().erasures_unreplicated, 1);
    let exists: bool = primary
        .foreign()
        .await
        .exists("age_verification:e3")
        .await
        .expect("exists");
    assert!(!exists, "the primary erased it all the same");
}
