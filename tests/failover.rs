//! A failover behind a stable address (issue 11, item 7): a replica is
//! promoted with `REPLICAOF NO ONE` while the old primary becomes its
//! replica, and the address (the test's proxy, as a managed service's DNS
//! name would) now leads to the new primary. Connections opened before stay
//! on the demoted server, which answers writes with `READONLY`: warmcache
//! must drop them and reconnect by itself. An instance that only reads must
//! leave the demoted server too: it still answers reads (with its stale
//! data) and PINGs, so only its role gives it away.

mod support;

use std::time::Duration;

use redis::AsyncCommands;
use support::proxy::FaultProxy;
use support::{RedisServer, age_record, eventually};
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{
    InvalidationListener, InvalidationMode, InvalidationOptions, RedisHandle, TieredCache,
};

async fn replicaof(server: &RedisServer, primary: Option<u16>) {
    let mut cmd = redis::cmd("REPLICAOF");
    match primary {
        Some(port) => cmd.arg("127.0.0.1").arg(port),
        None => cmd.arg("NO").arg("ONE"),
    };
    let () = cmd
        .query_async(&mut server.foreign().await)
        .await
        .expect("replicaof");
}

/// A primary `a`, its replica `b`, the address (`proxy`) leading to `a`,
/// and an instance behind it whose listener tracks and trusts L1.
struct BehindOneAddress {
    a: RedisServer,
    b: RedisServer,
    proxy: FaultProxy,
    cache: TieredCache<AgeVerification>,
    listener: InvalidationListener,
}

async fn behind_one_address(options: InvalidationOptions) -> BehindOneAddress {
    // A full sync starts at once, not after Redis's default 5 s wait.
    let a = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    let b = RedisServer::start_with(&["--repl-diskless-sync-delay", "0"]);
    replicaof(&b, Some(a.port())).await;
    let proxy = FaultProxy::start(a.port()).await;
    let redis = RedisHandle::connect_lazy(&proxy.config()).expect("settings");
    let cache: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
        .redis(redis.clone())
        .build()
        .expect("cache");
    let listener = redis.start_invalidation(options);
    eventually("the listener to track", || async {
        listener.mode() == InvalidationMode::Tracking && listener.l1_trusted()
    })
    .await;
    BehindOneAddress {
        a,
        b,
        proxy,
        cache,
        listener,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_replica_is_promoted_writes_recover_by_themselves() {
    // The listener is bound, not left in the temporary: it would stop.
    let BehindOneAddress {
        a,
        b,
        proxy,
        cache,
        listener: _listener,
    } = behind_one_address(InvalidationOptions::default()).await;
    cache
        .insert("f1", age_record("f1", "before"))
        .await
        .expect("stored on A");

    // The failover.
    replicaof(&b, None).await;
    replicaof(&a, Some(b.port())).await;
    proxy.set_upstream(b.port());

    eventually("a write to succeed again", || async {
        cache.insert("f1", age_record("f1", "after")).await.is_ok()
    })
    .await;
    let on_b: String = b
        .foreign()
        .await
        .get("age_verification:f1")
        .await
        .expect("get");
    assert!(on_b.contains("after"), "written on the new primary: {on_b}");

    // Invalidations follow the new primary too.
    assert_eq!(
        cache
            .get("f1")
            .await
            .expect("reads")
            .and_then(|c| c.value().method.clone())
            .as_deref(),
        Some("after")
    );
    let () = b
        .foreign()
        .await
        .del("age_verification:f1")
        .await
        .expect("del");
    eventually("the delete on the new primary to reach L1", || async {
        matches!(cache.get("f1").await, Ok(None))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_leaves_a_demoted_primary_within_the_grace() {
    let options = InvalidationOptions {
        grace: Duration::from_millis(300),
        ..InvalidationOptions::default()
    };
    // The listener is bound, not left in the temporary: it would stop.
    let BehindOneAddress {
        a,
        b,
        proxy,
        cache,
        listener: _listener,
    } = behind_one_address(options).await;
    let json = |method: &str| serde_json::to_string(&age_record("r1", method)).expect("json");
    let () = a
        .foreign()
        .await
        .set_ex("age_verification:r1", json("before"), 600)
        .await
        .expect("set on A");
    eventually("B to have it", || async {
        let on_b: Option<String> = b
            .foreign()
            .await
            .get("age_verification:r1")
            .await
            .expect("get");
        on_b.is_some()
    })
    .await;
    let method = || async {
        cache
            .get("r1")
            .await
            .ok()
            .flatten()
            .and_then(|c| c.value().method.clone())
    };
    assert_eq!(method().await.as_deref(), Some("before"));

    // The failover, and the old primary cut off from the new one (it
    // replicates from a port nobody listens on): it keeps serving "before".
    replicaof(&b, None).await;
    replicaof(&a, Some(support::free_port())).await;
    proxy.set_upstream(b.port());
    let () = b
        .foreign()
        .await
        .set_ex("age_verification:r1", json("after"), 600)
        .await
        .expect("set on B");
    let changed = std::time::Instant::now();
    eventually("the reader to leave the demoted primary", || async {
        method().await.as_deref() == Some("after")
    })
    .await;
    let took = changed.elapsed();
    println!("a reader left the demoted primary {took:?} after the change");
    assert!(
        took < options.grace + options.timeout + Duration::from_millis(500),
        "{took:?}"
    );
    let stale: Option<String> = a
        .foreign()
        .await
        .get("age_verification:r1")
        .await
        .expect("get");
    assert!(
        stale.is_some_and(|v| v.contains("before")),
        "A still holds the old value"
    );
}
