//! Coherence under the faults that threaten it (issue 11): a silent loss of
//! the tracking connection, own writes, a cache added late, racing and
//! cancelled writes, a RESP2-only server, and coalescing while L1 is not
//! trusted. Real redis-server processes and the fault proxy of the test
//! support; waits are bounded polls, orderings are forced with Notify or by
//! polling futures by hand.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use redis::AsyncCommands;
use support::proxy::{Fault, FaultProxy};
use support::{RedisServer, age_record, eventually};
use tokio::sync::Notify;
use warmcache::records::{AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE, Keyspace};
use warmcache::{
    InvalidationListener, InvalidationMode, InvalidationOptions, RedisHandle, Tier, TieredCache,
};

fn cache(keyspace: Keyspace, redis: &RedisHandle) -> TieredCache<AgeVerification> {
    TieredCache::builder(keyspace)
        .redis(redis.clone())
        .build()
        .expect("cache")
}

async fn node_setex(server: &RedisServer, key: &str, value: &AgeVerification) {
    let json = serde_json::to_string(value).expect("json");
    let () = server
        .foreign()
        .await
        .set_ex(key, json, 3600)
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

async fn tier_of(cache: &TieredCache<AgeVerification>, id: &str) -> Option<Tier> {
    cache.get(id).await.ok().flatten().map(|c| c.tier())
}

async fn listening(redis: &RedisHandle, options: InvalidationOptions) -> InvalidationListener {
    let listener = redis.start_invalidation(options);
    eventually("the listener to track", || async {
        listener.mode() == InvalidationMode::Tracking
    })
    .await;
    listener
}

/// Polls `future` once (so that it sends its command), returning what that
/// poll gave.
async fn poll_once<F: Future>(mut future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx))).await
}

/// Finishes a future [`poll_once`] already polled.
async fn finish<F: Future>(future: std::pin::Pin<&mut F>, polled: Poll<F::Output>) -> F::Output {
    match polled {
        Poll::Ready(output) => output,
        Poll::Pending => future.await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_silent_loss_an_erased_record_is_not_served_past_the_grace() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    let grace = Duration::from_millis(500);
    let options = InvalidationOptions {
        grace,
        ..InvalidationOptions::default()
    };
    let redis = RedisHandle::connect_lazy(&proxy.config()).expect("settings");
    let ages = cache(AGE_VERIFICATION, &redis);
    let _listener = listening(&redis, options).await;
    node_setex(&server, "age_verification:s1", &age_record("s1", "kept")).await;
    // Let the push of this write land first, or it would end the first fill.
    eventually("the push of the write", || async {
        ages.stats().remote_invalidations == 1
    })
    .await;
    eventually("the record in L1", || async {
        tier_of(&ages, "s1").await == Some(Tier::L1)
    })
    .await;

    // The loss falls at a random point of the PING cycle.
    let cycle = options.effective_ping_interval().as_micros() as u64;
    let offset = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .subsec_nanos() as u64
        % cycle;
    tokio::time::sleep(Duration::from_micros(offset)).await;
    assert!(
        ages.l1_time_to_live("s1").await.is_some(),
        "in L1 when the loss begins"
    );
    proxy.set(Fault::Blackhole);
    let lost_at = Instant::now();
    // A foreign client erases the record; the push cannot reach the instance.
    let () = server
        .foreign()
        .await
        .del("age_verification:s1")
        .await
        .expect("del");

    let mut last_served = None;
    while ages.l1_time_to_live("s1").await.is_some() {
        last_served = Some(Instant::now());
        assert!(lost_at.elapsed() < Duration::from_secs(5), "served for 5 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let served_after_loss = last_served.map_or(Duration::ZERO, |at| at - lost_at);
    // The protocol's bound: nothing is served later than the last answered
    // PING's send time (before the loss) plus the grace. The margin covers
    // the proxy noticing the switch and this loop's own step.
    assert!(
        served_after_loss <= grace + Duration::from_millis(100),
        "the erased record was served {served_after_loss:?} after the loss (grace {grace:?})"
    );
    assert!(
        !matches!(ages.get("s1").await, Ok(Some(_))),
        "not served once the lease lapsed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_then_a_get_is_an_l1_hit() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
    let ages = cache(AGE_VERIFICATION, &redis);
    let _listener = listening(&redis, InvalidationOptions::default()).await;
    ages.insert("w1", age_record("w1", "mine"))
        .await
        .expect("stored");
    // A foreign write after ours: its push comes after any push of ours.
    node_setex(&server, "age_verification:other", &age_record("other", "x")).await;
    eventually("the foreign write's push", || async {
        ages.stats().remote_invalidations >= 1
    })
    .await;
    let got = ages.get("w1").await.expect("reads").expect("present");
    assert_eq!(
        (got.tier(), got.value().method.as_deref()),
        (Tier::L1, Some("mine")),
        "our own write did not evict itself"
    );
    assert_eq!(
        ages.stats().remote_invalidations,
        1,
        "no push of our own write"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_built_after_the_listener_started_is_coherent() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
    let _ages = cache(AGE_VERIFICATION, &redis);
    let _listener = listening(&redis, InvalidationOptions::default()).await;
    let profiles = cache(CUSTOMER_PROFILE, &redis);
    node_setex(&server, "customer_profile:late", &age_record("late", "v1")).await;
    eventually("the late cache to be tracked and serve L1", || async {
        tier_of(&profiles, "late").await == Some(Tier::L1)
    })
    .await;
    node_setex(&server, "customer_profile:late", &age_record("late", "v2")).await;
    eventually("the foreign change to reach the late cache", || async {
        method_of(&profiles, "late").await.as_deref() == Some("v2")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_leave_the_last_write_redis_applied() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
    let ages = cache(AGE_VERIFICATION, &redis);
    assert_eq!(method_of(&ages, "r1").await, None, "connected");
    let mut first = Box::pin(ages.insert("r1", age_record("r1", "first")));
    let mut second = Box::pin(ages.insert("r1", age_record("r1", "second")));
    let first_polled = poll_once(first.as_mut()).await;
    let second_polled = poll_once(second.as_mut()).await;
    // The replies are taken in the opposite order to the one Redis applied.
    finish(second.as_mut(), second_polled)
        .await
        .expect("stored");
    finish(first.as_mut(), first_polled).await.expect("stored");
    let in_redis: String = server
        .foreign()
        .await
        .get("age_verification:r1")
        .await
        .expect("get");
    let in_redis: AgeVerification = serde_json::from_str(&in_redis).expect("json");
    assert_eq!(
        method_of(&ages, "r1").await,
        in_redis.method,
        "L1 agrees with the last write Redis applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_invalidate_and_insert_futures_still_finish_their_work() {
    let server = RedisServer::start();
    let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
    let ages = cache(AGE_VERIFICATION, &redis);
    ages.insert("d1", age_record("d1", "old"))
        .await
        .expect("stored");
    let mut erase = Box::pin(ages.invalidate("d1"));
    let _ = poll_once(erase.as_mut()).await;
    drop(erase); // the HTTP client went away after the DEL was sent
    eventually("the erasure to take effect in L1", || async {
        method_of(&ages, "d1").await.is_none()
    })
    .await;

    ages.insert("d2", age_record("d2", "old"))
        .await
        .expect("stored");
    let mut put = Box::pin(ages.insert("d2", age_record("d2", "new")));
    let _ = poll_once(put.as_mut()).await;
    drop(put);
    eventually("the dropped insert to replace the L1 copy", || async {
        method_of(&ages, "d2").await.as_deref() == Some("new")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_hello_3_gets_the_pub_sub_fallback() {
    let server = RedisServer::start();
    let proxy = FaultProxy::start(server.port()).await;
    proxy.refuse_hello(true);
    let options = InvalidationOptions {
        fallback_l1_ttl: Duration::from_millis(800),
        ..InvalidationOptions::default()
    };
    let (redis_a, redis_b) = (
        RedisHandle::connect_lazy(&proxy.config()).expect("settings"),
        RedisHandle::connect_lazy(&proxy.config()).expect("settings"),
    );
    let (a, b) = (
        cache(AGE_VERIFICATION, &redis_a),
        cache(AGE_VERIFICATION, &redis_b),
    );
    let listeners = [
        redis_a.start_invalidation(options),
        redis_b.start_invalidation(options),
    ];
    for listener in &listeners {
        eventually("the pub/sub fallback over RESP2", || async {
            listener.mode() == InvalidationMode::PubSub
        })
        .await;
    }
    a.insert("h1", age_record("h1", "v1"))
        .await
        .expect("stored");
    assert_eq!(method_of(&b, "h1").await.as_deref(), Some("v1"));
    assert!(
        b.l1_time_to_live("h1")
            .await
            .is_some_and(|life| life <= Duration::from_millis(800)),
        "the fallback bound applies"
    );
    a.insert("h1", age_record("h1", "v2"))
        .await
        .expect("stored");
    eventually("the published invalidation", || async {
        method_of(&b, "h1").await.as_deref() == Some("v2")
    })
    .await;
}

#[tokio::test(flavor = "current_thread")]
async fn reads_stay_coalesced_while_l1_is_not_trusted() {
    let server = RedisServer::start();
    // A user who may neither track nor subscribe: the listener never
    // connects, so L1 is never trusted.
    let config = server
        .config_denying(&["client|tracking", "subscribe"])
        .await;
    let redis = RedisHandle::connect_lazy(&config).expect("settings");
    let ages = cache(AGE_VERIFICATION, &redis);
    let listener = redis.start_invalidation(InvalidationOptions::default());
    assert!(!listener.l1_trusted());

    let (open, gate) = tokio::sync::watch::channel(false);
    let (started, calls) = (Arc::new(Notify::new()), Arc::new(AtomicUsize::new(0)));
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let (ages, mut gate, started, calls) = (
                ages.clone(),
                gate.clone(),
                Arc::clone(&started),
                Arc::clone(&calls),
            );
            tokio::spawn(async move {
                ages.get_or_load("co", |_| async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    started.notify_one();
                    let _ = gate.wait_for(|open| *open).await;
                    Ok::<_, std::io::Error>(age_record("co", "loaded"))
                })
                .await
            })
        })
        .collect();
    // One thread: every reader has run up to its wait before this resumes.
    started.notified().await;
    open.send_replace(true);
    for reader in readers {
        let got = reader.await.expect("no panic").expect("loaded");
        assert_eq!(got.value().method.as_deref(), Some("loaded"));
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one loader call for all readers"
    );
    let stats = ages.stats();
    assert_eq!(
        stats.l2_hits + stats.misses,
        1,
        "one Redis read for all readers: {stats:?}"
    );
}
