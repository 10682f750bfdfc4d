//! The two-tier cache under faults, against real `redis-server` processes:
//! an outage (kill) and recovery on the same port. (A server that stops
//! answering: tier_faults_hang.rs; ACL and TLS: tier_faults_acl_tls.rs.)
//!
//! Every cache call made while Redis is faulty is wrapped in `bounded`
//! (tests/support/faults.rs): the call must end within the operation
//! timeout plus one second of scheduling slack; that is the required
//! behaviour, not a speed measurement.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use support::RedisServer;
use support::faults::{
    POLL_EVERY, POLL_FOR, age, bounded, cache, get_raw, hit, json, l2_error, open_breaker,
    sent_and_failed, setex,
};
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{CacheError, L2Error, RedisHandle, Tier};

// ---------------------------------------------------------------------------
// 1. Outage
// ---------------------------------------------------------------------------

/// Redis is killed. L1 keeps answering, the loader answers for cold ids, and
/// every Redis-bound call fails with `CacheError::L2` within the timeout;
/// failed writes never leave the new value in L1, `invalidate` still clears
/// L1, and after three failures the breaker fails calls without sending.
#[tokio::test]
async fn an_outage_fails_bounded_serves_l1_and_the_loader_and_opens_the_breaker() {
    let mut server = RedisServer::start();
    let config = server.config();
    let op = config.op_timeout;
    let handle = RedisHandle::connect_lazy(&config).expect("handle");
    let cache = cache::<AgeVerification>(AGE_VERIFICATION, &handle);
    let mut foreign = server.foreign().await;

    // Warm: two ids in L1 (and Redis), one only in Redis.
    cache
        .insert("in-l1", age("in-l1", "id_document"))
        .await
        .expect("insert while up");
    cache
        .insert("in-l1-b", age("in-l1-b", "id_document"))
        .await
        .expect("insert while up");
    setex(
        &mut foreign,
        "age_verification:only-in-redis",
        3600,
        &json(&age("only-in-redis", "credit_card")),
    )
    .await;
    assert!(
        cache.l1_time_to_live("only-in-redis").await.is_none(),
        "never read, so not in L1"
    );
    assert!(!handle.is_unavailable());
    drop(foreign);

    server.kill();

    // L1 answers without Redis.
    let (value, tier) = hit(
        "get in-l1",
        bounded("get in-l1", op, cache.get("in-l1")).await,
    );
    assert_eq!((value, tier), (age("in-l1", "id_document"), Tier::L1));

    // Failure 1: a Redis-only id is a Redis error, not a hang, not a panic, not a miss.
    let e = l2_error(
        "get only-in-redis",
        bounded("get only-in-redis", op, cache.get("only-in-redis")).await,
    );
    assert!(
        sent_and_failed(&e),
        "the breaker is still closed, so the read was tried: {e:?}"
    );
    assert!(
        !handle.is_unavailable(),
        "one failure does not open the breaker"
    );

    // Failure 2: a write fails, and L1 does not get the new value.
    let e = l2_error(
        "insert new-id",
        bounded(
            "insert new-id",
            op,
            cache.insert("new-id", age("new-id", "credit_card")),
        )
        .await,
    );
    assert!(sent_and_failed(&e), "{e:?}");
    assert!(
        cache.l1_time_to_live("new-id").await.is_none(),
        "a failed insert leaves L1 without the value"
    );
    let after = bounded("get new-id", op, cache.get("new-id")).await;
    assert!(
        !matches!(after, Ok(Some(_))),
        "the value whose insert failed is not served: {after:?}"
    );
    // (That get was failure 3: the breaker is open from here on.)
    assert!(
        matches!(after, Err(CacheError::L2(ref e)) if sent_and_failed(e)),
        "{after:?}"
    );
    assert!(
        handle.is_unavailable(),
        "three failures in a row open the breaker"
    );

    // Open breaker: Redis calls fail fast with `Unavailable` (nothing sent).
    let e = l2_error(
        "get only-in-redis (open)",
        bounded("get only-in-redis", op, cache.get("only-in-redis")).await,
    );
    assert_eq!(e, L2Error::Unavailable);
    assert_eq!(
        bounded("ping", op, handle.ping()).await,
        Err(L2Error::Unavailable)
    );

    // `invalidate` reports the failure but still removes the L1 copy.
    assert!(cache.l1_time_to_live("in-l1").await.is_some());
    let e = l2_error(
        "invalidate in-l1",
        bounded("invalidate in-l1", op, cache.invalidate("in-l1")).await,
    );
    assert_eq!(e, L2Error::Unavailable);
    assert!(
        cache.l1_time_to_live("in-l1").await.is_none(),
        "invalidate clears L1 even when Redis fails"
    );
    let gone = bounded("get in-l1 after invalidate", op, cache.get("in-l1")).await;
    assert!(
        !matches!(gone, Ok(Some(_))),
        "the invalidated value is not served: {gone:?}"
    );

    // A write refused by the open breaker was never sent, so the old L1 copy
    // still matches Redis and stays; the new value is not served.
    let e = l2_error(
        "insert in-l1-b",
        bounded(
            "insert in-l1-b",
            op,
            cache.insert("in-l1-b", age("in-l1-b", "NEW")),
        )
        .await,
    );
    assert_eq!(e, L2Error::Unavailable);
    let (value, tier) = hit(
        "get in-l1-b",
        bounded("get in-l1-b", op, cache.get("in-l1-b")).await,
    );
    assert_eq!(
        (value, tier),
        (age("in-l1-b", "id_document"), Tier::L1),
        "old copy, not the unwritten new value"
    );

    // A cold id is answered by the loader, once, and then from L1.
    let loads = Arc::new(AtomicUsize::new(0));
    let loader = |loads: Arc<AtomicUsize>| {
        move |id: warmcache::CacheId| async move {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(age(&id.to_string(), "loader"))
        }
    };
    let loaded = bounded(
        "get_or_load cold",
        op,
        cache.get_or_load("cold", loader(Arc::clone(&loads))),
    )
    .await
    .expect("the loader answers");
    assert_eq!(
        (loaded.value(), loaded.tier()),
        (&age("cold", "loader"), Tier::Loader)
    );
    let again = bounded(
        "get_or_load cold again",
        op,
        cache.get_or_load("cold", loader(Arc::clone(&loads))),
    )
    .await
    .expect("L1 answers");
    assert_eq!(
        (again.value(), again.tier()),
        (&age("cold", "loader"), Tier::L1)
    );
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    let stats = cache.stats();
    assert_eq!(stats.loads, 1);
    // Every failed Redis operation is counted, fast failures included: three
    // gets, two inserts, one invalidate, and the read and the write-back of
    // the get_or_load that the loader answered.
    assert_eq!(stats.l2_errors, 9, "{stats:?}");
    assert_eq!(stats.invalidations, 1);
}

// ---------------------------------------------------------------------------
// 2. Recovery
// ---------------------------------------------------------------------------

/// After an outage that opened the breaker, Redis comes back on the same
/// port (empty). The same cache instance, never rebuilt, writes again within
/// a bounded number of tries and reads a value a foreign client wrote.
#[tokio::test]
async fn the_same_cache_recovers_when_redis_returns() {
    let mut server = RedisServer::start();
    let config = server.config();
    let op = config.op_timeout;
    let handle = RedisHandle::connect_lazy(&config).expect("handle");
    let cache = cache::<AgeVerification>(AGE_VERIFICATION, &handle);
    cache
        .insert("before", age("before", "id_document"))
        .await
        .expect("insert while up");

    server.kill();
    open_breaker(&cache, &handle, op).await;
    let e = l2_error(
        "insert while open",
        bounded(
            "insert while open",
            op,
            cache.insert("after", age("after", "x")),
        )
        .await,
    );
    assert_eq!(e, L2Error::Unavailable);

    server.restart();

    // Poll: the breaker lets a probe through after its 1 s cooldown; the
    // first probe may still meet the connection attempt that failed during
    // the outage, so recovery can take a second cooldown.
    let started = std::time::Instant::now();
    let mut tries = 0_u32;
    loop {
        tries += 1;
        match bounded(
            "insert during recovery",
            op,
            cache.insert("after", age("after", "credit_card")),
        )
        .await
        {
            Ok(written) => {
                assert_eq!(written.tier(), Tier::L1);
                break;
            }
            Err(CacheError::L2(e)) => {
                assert!(
                    started.elapsed() < POLL_FOR,
                    "no successful write within {POLL_FOR:?} after restart ({tries} tries); last error: {e}"
                );
            }
            Err(other) => panic!("only Redis errors are expected while it recovers, got {other:?}"),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
    assert!(!handle.is_unavailable(), "a success closes the breaker");
    assert_eq!(bounded("ping", op, handle.ping()).await, Ok(()));

    // The write reached the new server...
    let mut foreign = server.foreign().await;
    assert_eq!(
        get_raw(&mut foreign, "age_verification:after").await,
        Some(json(&age("after", "credit_card")))
    );
    // ... which kept nothing from before the restart...
    assert!(
        cache
            .get_from_l2("before")
            .await
            .expect("redis read")
            .is_none(),
        "the restarted server is empty"
    );
    // ... and the same cache reads what a foreign client writes now.
    let fresh = age("foreign", "bank_id");
    setex(
        &mut foreign,
        "age_verification:foreign",
        3600,
        &json(&fresh),
    )
    .await;
    let (value, tier) = hit("get foreign", cache.get("foreign").await);
    assert_eq!((value, tier), (fresh, Tier::L2));
    let ttl = cache.l1_time_to_live("foreign").await.expect("now in L1");
    assert!(
        ttl <= Duration::from_secs(60),
        "L1 keeps it at most l1_ttl: {ttl:?}"
    );
}
