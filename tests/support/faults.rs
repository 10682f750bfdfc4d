//! Helpers of the tier fault tests (tests/tier_faults*.rs): calls bounded
//! by the operation timeout, records, raw foreign reads and writes, and
//! opening the breaker.
//!
//! Those tests use real sockets, so they run on tokio's normal clock. They
//! never assert how fast something is, with one exception stated by the
//! spec: no call waits longer than the configured operation timeout. Every
//! cache call made while Redis is faulty is wrapped in [`bounded`], which
//! fails the test when the call takes longer than `op_timeout` plus one
//! second of scheduling slack. That bound is the required behaviour, not a
//! performance target: a hang, a retry loop or waiting out a paused server
//! would all exceed it.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use warmcache::records::{AgeVerification, Keyspace, OtherFields, RecordTime, TimeFormat};
use warmcache::{CacheError, Cached, L2Error, RedisHandle, Tier, TieredCache};

/// Scheduling slack on top of the operation timeout (see the module docs).
pub const SLACK: Duration = Duration::from_secs(1);
/// How often recovery is polled, and for how long at most.
pub const POLL_EVERY: Duration = Duration::from_millis(100);
pub const POLL_FOR: Duration = Duration::from_secs(10);

/// Awaits `call`, failing the test if it takes longer than `op_timeout` +
/// [`SLACK`]. This is the spec's "no call waits longer than the configured
/// timeout", not a speed measurement.
pub async fn bounded<T>(what: &str, op_timeout: Duration, call: impl Future<Output = T>) -> T {
    let bound = op_timeout + SLACK;
    match tokio::time::timeout(bound, call).await {
        Ok(value) => value,
        Err(_) => panic!(
            "{what}: no answer within {bound:?} (op_timeout {op_timeout:?} + {SLACK:?} slack): the call hangs"
        ),
    }
}

pub fn age(customer_id: &str, method: &str) -> AgeVerification {
    AgeVerification {
        customer_id: customer_id.to_owned(),
        verified: true,
        method: Some(method.to_owned()),
        verified_at: RecordTime::from_unix_ms(1_767_225_600_000, TimeFormat::Iso),
        date_of_birth: None,
        age_over: Some(18),
        other: OtherFields::new(),
    }
}

pub fn json<V: serde::Serialize>(value: &V) -> String {
    serde_json::to_string(value).expect("serializable")
}

pub fn cache<V>(keyspace: Keyspace, handle: &RedisHandle) -> TieredCache<V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    TieredCache::<V>::builder(keyspace)
        .l1_ttl(Duration::from_secs(60))
        .redis(handle.clone())
        .build()
        .expect("valid cache settings")
}

/// The Redis error of a failed cache call; panics on success or another error.
pub fn l2_error<T: Debug>(what: &str, result: Result<T, CacheError>) -> L2Error {
    match result {
        Err(CacheError::L2(e)) => e,
        other => panic!("{what}: expected CacheError::L2, got {other:?}"),
    }
}

/// An error of an operation that was sent and got no (usable) answer, as
/// opposed to `Unavailable`, which means the breaker sent nothing.
pub fn sent_and_failed(e: &L2Error) -> bool {
    matches!(e, L2Error::Connection(_) | L2Error::Timeout(_))
}

/// The value of a hit, with the tier that answered.
pub fn hit<V: Clone + Debug + serde::de::DeserializeOwned>(
    what: &str,
    result: Result<Option<Cached<V>>, CacheError>,
) -> (V, Tier) {
    match result {
        Ok(Some(cached)) => (cached.value().clone(), cached.tier()),
        other => panic!("{what}: expected a hit, got {other:?}"),
    }
}

pub async fn setex(conn: &mut MultiplexedConnection, key: &str, ttl_secs: u64, value: &str) {
    redis::cmd("SETEX")
        .arg(key)
        .arg(ttl_secs)
        .arg(value)
        .query_async::<()>(conn)
        .await
        .expect("foreign SETEX");
}

pub async fn get_raw(conn: &mut MultiplexedConnection, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query_async(conn)
        .await
        .expect("foreign GET")
}

/// With the server down: three reads that are sent and fail, after which the
/// breaker is open.
pub async fn open_breaker(
    cache: &TieredCache<AgeVerification>,
    handle: &RedisHandle,
    op_timeout: Duration,
) {
    for n in 0..3 {
        let e = l2_error(
            "get while down",
            bounded(
                "get while down",
                op_timeout,
                cache.get(&format!("down-{n}")),
            )
            .await,
        );
        assert!(
            sent_and_failed(&e),
            "failure {n} was sent and failed, got {e:?}"
        );
    }
    assert!(
        handle.is_unavailable(),
        "three failures in a row open the breaker"
    );
}
