//! The two-tier cache against a `redis-server` that stops answering
//! (`CLIENT PAUSE`), on tokio's normal clock (real sockets).
//!
//! Every cache call made while Redis is faulty is wrapped in `bounded`
//! (tests/support/faults.rs): the call must end within the operation
//! timeout plus one second of scheduling slack; that is the required
//! behaviour, not a speed measurement.

mod support;

use std::time::Duration;

use support::RedisServer;
use support::faults::{
    POLL_EVERY, POLL_FOR, SLACK, age, bounded, cache, hit, json, l2_error, setex,
};
use warmcache::records::{AGE_VERIFICATION, AgeVerification};
use warmcache::{CacheError, L2Error, RedisHandle, Tier};

// ---------------------------------------------------------------------------
// 3. A server that stops answering
// ---------------------------------------------------------------------------

/// `CLIENT PAUSE 2000 ALL` makes Redis hold every command for 2 s while the
/// connection stays open. A Redis read fails within the operation timeout
/// instead of waiting out the pause, L1 hits still answer, a write whose
/// outcome is unknown drops the old L1 copy, and after the pause the same
/// connection answers each key with its own value (no late reply is handed
/// to the wrong caller).
#[tokio::test]
async fn a_hanging_redis_costs_one_timeout_not_the_hang() {
    const PAUSE: Duration = Duration::from_millis(2000);
    let server = RedisServer::start();
    let config = server.config();
    let op = config.op_timeout;
    // The bound must be shorter than the pause, or the test would prove nothing.
    assert!(op + SLACK < PAUSE);
    let handle = RedisHandle::connect_lazy(&config).expect("handle");
    let cache = cache::<AgeVerification>(AGE_VERIFICATION, &handle);
    let mut foreign = server.foreign().await;

    cache
        .insert("hot", age("hot", "id_document"))
        .await
        .expect("insert while up");
    cache
        .insert("hot-write", age("hot-write", "id_document"))
        .await
        .expect("insert while up");
    setex(
        &mut foreign,
        "age_verification:cold-a",
        3600,
        &json(&age("cold-a", "a")),
    )
    .await;
    setex(
        &mut foreign,
        "age_verification:cold-b",
        3600,
        &json(&age("cold-b", "b")),
    )
    .await;

    let pause_ms = u64::try_from(PAUSE.as_millis()).expect("small");
    redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause_ms)
        .arg("ALL")
        .query_async::<()>(&mut foreign)
        .await
        .expect("CLIENT PAUSE");
    let paused_at = std::time::Instant::now();

    // A Redis read gives up after the timeout (the bound is < the pause).
    let e = l2_error(
        "get cold-a (paused)",
        bounded("get cold-a while paused", op, cache.get("cold-a")).await,
    );
    assert_eq!(e, L2Error::Timeout(op));
    // L1 hits do not touch Redis.
    let (value, tier) = hit(
        "get hot (paused)",
        bounded("get hot while paused", op, cache.get("hot")).await,
    );
    assert_eq!((value, tier), (age("hot", "id_document"), Tier::L1));
    // A write without an answer may still be applied later: the old L1 copy
    // can no longer be trusted and is dropped.
    let e = l2_error(
        "insert hot-write (paused)",
        bounded(
            "insert while paused",
            op,
            cache.insert("hot-write", age("hot-write", "NEW")),
        )
        .await,
    );
    assert_eq!(e, L2Error::Timeout(op));
    assert!(e.is_ambiguous());
    assert!(
        cache.l1_time_to_live("hot-write").await.is_none(),
        "an ambiguous write drops the L1 copy"
    );
    let (value, tier) = hit(
        "get hot (paused, again)",
        bounded("get hot while paused", op, cache.get("hot")).await,
    );
    assert_eq!((value, tier), (age("hot", "id_document"), Tier::L1));
    // Not a speed check: a guard that the checks above really ran during the
    // pause (they take about two timeouts); otherwise they would prove nothing.
    assert!(
        paused_at.elapsed() < PAUSE,
        "all of the above happened while Redis was paused"
    );

    // After the pause, each key gets its own value from Redis.
    tokio::time::sleep(PAUSE.saturating_sub(paused_at.elapsed())).await;
    let started = std::time::Instant::now();
    let (value, tier) = loop {
        match bounded("get cold-b after pause", op, cache.get("cold-b")).await {
            Ok(found) => break hit("get cold-b", Ok(found)),
            Err(CacheError::L2(e)) => assert!(
                started.elapsed() < POLL_FOR,
                "no recovery within {POLL_FOR:?}: {e}"
            ),
            Err(other) => panic!("unexpected {other:?}"),
        }
        tokio::time::sleep(POLL_EVERY).await;
    };
    assert_eq!((value, tier), (age("cold-b", "b"), Tier::L2));
    let (value, tier) = hit(
        "get cold-a",
        bounded("get cold-a after pause", op, cache.get("cold-a")).await,
    );
    assert_eq!((value, tier), (age("cold-a", "a"), Tier::L2));
    // The dropped copy is not resurrected: the next read goes to Redis.
    let (_, tier) = hit(
        "get hot-write",
        bounded("get hot-write after pause", op, cache.get("hot-write")).await,
    );
    assert_eq!(tier, Tier::L2);
}
