//! The two-tier cache against a real redis-server: every read path, TTLs,
//! coalescing, the bytes written, bad ids and corrupt values.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use support::RedisServer;
use support::keyed::fits_only_as_json;
use tokio::task::JoinSet;
use warmcache::records::{
    AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE, JobStatus, Keyspace, OtherFields,
    REASONING_JOB, ReasoningJob, RecordTime, TimeFormat,
};
use warmcache::{CacheError, RedisHandle, Tier, TieredCache};

fn cache<V>(server: &RedisServer, keyspace: Keyspace) -> TieredCache<V>
where
    V: serde::Serialize + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
    TieredCache::builder(keyspace)
        .redis(redis)
        .build()
        .expect("valid cache")
}

fn verification(customer: &str) -> AgeVerification {
    AgeVerification {
        customer_id: customer.to_owned(),
        verified: true,
        method: Some("id_document".to_owned()),
        verified_at: RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::Iso),
        date_of_birth: Some("1990-04-01".to_owned()),
        age_over: None,
        other: OtherFields::new(),
    }
}

type Profile = serde_json::Value;

fn profile(id: &str, name: &str) -> Profile {
    serde_json::json!({ "customerId": id, "name": name, "tier": "gold" })
}

#[tokio::test]
async fn get_or_load_walks_loader_then_l1_then_l2() {
    let server = RedisServer::start();
    let cache: TieredCache<Profile> = cache(&server, CUSTOMER_PROFILE);
    let loads = AtomicUsize::new(0);
    let loader = |id: warmcache::CacheId| {
        loads.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, std::io::Error>(profile(id.as_str(), "Ada")) }
    };

    let first = cache.get_or_load("c1", loader).await.expect("loads");
    assert_eq!(first.tier(), Tier::Loader);
    assert_eq!(first.value()["name"], "Ada");
    let second = cache.get_or_load("c1", loader).await.expect("hits");
    assert_eq!(second.tier(), Tier::L1);
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    // The loaded value went to Redis with the keyspace TTL.
    let mut foreign = server.foreign().await;
    let stored: String = foreign.get("customer_profile:c1").await.expect("stored");
    assert_eq!(stored.as_bytes(), first.json().as_ref());
    let ttl: i64 = foreign.ttl("customer_profile:c1").await.expect("ttl");
    assert!((295..=300).contains(&ttl), "ttl {ttl}");

    // A second instance (empty L1) finds it in Redis without loading.
    let other: TieredCache<Profile> = cache_for_same_server(&server);
    let from_l2 = other.get_or_load("c1", loader).await.expect("hits L2");
    assert_eq!(from_l2.tier(), Tier::L2);
    assert_eq!(from_l2.value(), first.value());
    assert_eq!(loads.load(Ordering::SeqCst), 1);

    let stats = cache.stats();
    assert_eq!((stats.l1_hits, stats.misses, stats.loads), (1, 1, 1));
    assert_eq!(other.stats().l2_hits, 1);
}

fn cache_for_same_server(server: &RedisServer) -> TieredCache<Profile> {
    cache(server, CUSTOMER_PROFILE)
}

#[tokio::test]
async fn a_loader_error_is_returned_and_nothing_is_cached() {
    let server = RedisServer::start();
    let cache: TieredCache<Profile> = cache(&server, CUSTOMER_PROFILE);
    let failed = cache
        .get_or_load("c2", |_| async {
            Err::<Profile, _>(std::io::Error::other("crm is down"))
        })
        .await;
    match failed {
        Err(CacheError::Loader(e)) => assert!(e.to_string().contains("crm is down")),
        other => panic!("expected a loader error, got {other:?}"),
    }
    assert_eq!(cache.stats().load_errors, 1);
    let exists: bool = server
        .foreign()
        .await
        .exists("customer_profile:c2")
        .await
        .expect("exists");
    assert!(!exists, "nothing written to Redis");
    let next = cache
        .get_or_load("c2", |id| async move {
            Ok::<_, std::io::Error>(profile(id.as_str(), "Bo"))
        })
        .await;
    assert_eq!(
        next.expect("loads now").tier(),
        Tier::Loader,
        "the error was not cached"
    );
}

#[tokio::test]
async fn the_l1_copy_never_outlives_the_redis_ttl() {
    let server = RedisServer::start();
    let cache: TieredCache<AgeVerification> = cache(&server, AGE_VERIFICATION);
    let mut foreign = server.foreign().await;
    let json = serde_json::to_string(&verification("c3")).expect("json");
    let () = foreign
        .set_ex("age_verification:c3", &json, 3)
        .await
        .expect("setex");

    let hit = cache.get("c3").await.expect("reads").expect("present");
    assert_eq!(hit.tier(), Tier::L2);
    let pttl: i64 = foreign.pttl("age_verification:c3").await.expect("pttl");
    let l1 = cache.l1_time_to_live("c3").await.expect("in L1");
    assert!(
        l1.as_millis() <= u128::try_from(pttl).expect("positive") + 5,
        "L1 {l1:?} vs Redis {pttl} ms"
    );
    assert!(l1 <= Duration::from_secs(3));

    // A key with a long TTL is held no longer than the L1 bound (60 s default).
    cache
        .insert("c4", verification("c4"))
        .await
        .expect("stored");
    let l1 = cache.l1_time_to_live("c4").await.expect("in L1");
    assert!(
        l1 <= Duration::from_secs(60) && l1 > Duration::from_secs(50),
        "{l1:?}"
    );
    let ttl: i64 = foreign.ttl("age_verification:c4").await.expect("ttl");
    assert!(ttl > 365 * 24 * 3600 - 5, "365 days, got {ttl} s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_loads_of_one_cold_id_call_the_loader_once() {
    let server = RedisServer::start();
    let cache: TieredCache<Profile> = cache(&server, CUSTOMER_PROFILE);
    let loads = Arc::new(AtomicUsize::new(0));
    let mut callers = JoinSet::new();
    for _ in 0..1_000 {
        let (cache, loads) = (cache.clone(), Arc::clone(&loads));
        callers.spawn(async move {
            cache
                .get_or_load("hot", |id| async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok::<_, std::io::Error>(profile(id.as_str(), "Cy"))
                })
                .await
        });
    }
    while let Some(result) = callers.join_next().await {
        let cached = result.expect("no panic").expect("loaded");
        assert_eq!(cached.value()["name"], "Cy");
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().misses, 1, "one Redis read for all callers");
}

#[tokio::test]
async fn new_records_are_written_field_by_field_with_the_keyspace_ttl() {
    // What real Node makes of these bytes is checked in tests/node_records.rs.
    let server = RedisServer::start();
    let ages: TieredCache<AgeVerification> = cache(&server, AGE_VERIFICATION);
    let jobs: TieredCache<ReasoningJob> = cache(&server, REASONING_JOB);
    let mut foreign = server.foreign().await;

    ages.insert("c5", verification("c5")).await.expect("stored");
    let stored: String = foreign.get("age_verification:c5").await.expect("get");
    assert_eq!(
        stored,
        r#"{"customerId":"c5","verified":true,"method":"id_document","verifiedAt":"2025-11-26T00:00:00.000Z","dateOfBirth":"1990-04-01"}"#
    );
    let mut job = ReasoningJob::new("j1", JobStatus::Completed);
    job.result = Some(serde_json::json!({ "answer": "42", "tokens": 1234, "score": 0.5 }));
    job.added_at = RecordTime::from_unix_ms(1_764_115_200_000, TimeFormat::EpochMs);
    job.finished_at = RecordTime::from_unix_ms(1_764_115_260_500, TimeFormat::EpochMs);
    jobs.insert("j1", job).await.expect("stored");
    let stored: String = foreign.get("reasoning_job:j1").await.expect("get");
    assert_eq!(
        stored,
        r#"{"jobId":"j1","status":"completed","result":{"answer":"42","tokens":1234,"score":0.5},"addedAt":1764115200000,"finishedAt":1764115260500}"#
    );
    let ttl: i64 = foreign.ttl("reasoning_job:j1").await.expect("ttl");
    assert!((86_395..=86_400).contains(&ttl), "24 h, got {ttl}");
}

#[tokio::test]
async fn malformed_ids_never_reach_redis() {
    let server = RedisServer::start();
    let cache: TieredCache<AgeVerification> = cache(&server, AGE_VERIFICATION);
    for bad in ["", "a:b", "*", "a b", "x\r\nFLUSHALL", &"x".repeat(129)] {
        assert!(
            matches!(cache.get(bad).await, Err(CacheError::InvalidId(_))),
            "{bad:?}"
        );
        assert!(
            matches!(
                cache.insert(bad, verification("x")).await,
                Err(CacheError::InvalidId(_))
            ),
            "{bad:?}"
        );
        assert!(
            matches!(cache.invalidate(bad).await, Err(CacheError::InvalidId(_))),
            "{bad:?}"
        );
    }
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut server.foreign().await)
        .await
        .expect("info");
    for command in ["cmdstat_get", "cmdstat_setex", "cmdstat_del"] {
        assert!(!info.contains(command), "{command} was sent: {info}");
    }
}

#[tokio::test]
async fn corrupt_values_are_never_served_and_a_loader_replaces_them() {
    let server = RedisServer::start();
    let ages: TieredCache<AgeVerification> = cache(&server, AGE_VERIFICATION);
    let profiles: TieredCache<AgeVerification> = cache(&server, CUSTOMER_PROFILE);
    let mut foreign = server.foreign().await;
    let () = foreign
        .set_ex("age_verification:c7", "{not json", 3600)
        .await
        .expect("setex");
    let () = foreign
        .set_ex(
            "age_verification:c8",
            r#"{"customerId":"c8","verified":"yes-secret"}"#,
            3600,
        )
        .await
        .expect("setex");

    for id in ["c7", "c8"] {
        match ages.get(id).await {
            Err(CacheError::Corrupt { key, reason }) => {
                assert_eq!(key, format!("age_verification:{id}"));
                assert!(
                    !reason.contains("yes-secret"),
                    "the value is not echoed: {reason}"
                );
            }
            other => panic!("expected Corrupt for {id}, got {other:?}"),
        }
    }
    assert_eq!(ages.stats().corrupt_values, 2);
    // Nothing was deleted: the data stays for whoever can read it.
    let kept: String = foreign.get("age_verification:c7").await.expect("kept");
    assert_eq!(kept, "{not json");

    // With a loader, the corrupt value is replaced by the loaded one.
    let () = foreign
        .set_ex("customer_profile:c9", "[1,2", 300)
        .await
        .expect("setex");
    let loaded = profiles
        .get_or_load("c9", |id| async move {
            Ok::<_, std::io::Error>(verification(id.as_str()))
        })
        .await
        .expect("loader answers");
    assert_eq!(loaded.tier(), Tier::Loader);
    let repaired: String = foreign.get("customer_profile:c9").await.expect("stored");
    assert_eq!(repaired.as_bytes(), loaded.json().as_ref());
}

#[tokio::test]
async fn invalidate_removes_the_key_from_both_tiers() {
    let server = RedisServer::start();
    let cache: TieredCache<AgeVerification> = cache(&server, AGE_VERIFICATION);
    cache
        .insert("c10", verification("c10"))
        .await
        .expect("stored");
    assert!(cache.l1_time_to_live("c10").await.is_some());
    cache.invalidate("c10").await.expect("deleted");
    assert!(cache.l1_time_to_live("c10").await.is_none());
    let exists: bool = server
        .foreign()
        .await
        .exists("age_verification:c10")
        .await
        .expect("exists");
    assert!(!exists);
    assert!(cache.get("c10").await.expect("reads").is_none());
}

#[tokio::test]
async fn a_write_redis_refuses_fails_and_leaves_l1_unchanged() {
    // A server that is out of memory refuses writes but still answers reads.
    let server = RedisServer::start();
    let cache: TieredCache<AgeVerification> = cache(&server, AGE_VERIFICATION);
    let old = verification("c11");
    cache.insert("c11", old.clone()).await.expect("stored");
    let mut foreign = server.foreign().await;
    let () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("1")
        .query_async(&mut foreign)
        .await
        .expect("config");

    let mut new = old.clone();
    new.verified = false;
    let refused = cache.insert("c11", new).await;
    assert!(
        matches!(refused, Err(CacheError::L2(warmcache::L2Error::Refused(_)))),
        "{refused:?}"
    );
    let still = cache.get("c11").await.expect("reads").expect("present");
    assert_eq!(still.tier(), Tier::L1);
    assert_eq!(*still.value(), old, "L1 keeps the value Redis has");
}

/// A cache of age verifications on `server` with an L1 budget, keeping
/// the decoded value in L1 or (as the reference service's caches do) the
/// JSON alone.
fn ages_cache(
    server: &RedisServer,
    l1_max_bytes: u64,
    keeps_decoded: bool,
) -> TieredCache<AgeVerification> {
    let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
    TieredCache::builder(AGE_VERIFICATION)
        .redis(redis)
        .l1_max_bytes(l1_max_bytes)
        .l1_keeps_decoded(keeps_decoded)
        .build()
        .expect("valid cache")
}

#[tokio::test]
async fn a_cache_that_keeps_the_json_alone_still_checks_it_and_decodes_it_on_use() {
    let server = RedisServer::start();
    let ages = ages_cache(&server, 32 << 20, false);
    let mut foreign = server.foreign().await;
    let stored = r#"{"customerId":"c1","verified":true,"verifiedAt":"2025-11-26T00:00:00.000Z","source":{"store":"s1"}}"#;
    let () = foreign
        .set_ex("age_verification:c1", stored, 3600)
        .await
        .expect("setex");
    let () = foreign
        .set_ex("age_verification:c2", r#"{"customerId":"c2"}"#, 3600)
        .await
        .expect("setex");

    for tier in [Tier::L2, Tier::L1] {
        let hit = ages.get("c1").await.expect("reads").expect("found");
        assert_eq!(hit.tier(), tier);
        assert_eq!(
            hit.json().as_ref(),
            stored.as_bytes(),
            "the bytes as stored"
        );
        assert_eq!(hit.customer_id, "c1");
        assert!(hit.verified);
        assert_eq!(
            hit.verified_at.as_ref().map(RecordTime::unix_ms),
            Some(1_764_115_200_000)
        );
        assert!(
            hit.other.get("source").is_some(),
            "unknown fields kept: {:?}",
            hit.other
        );
    }
    // The check at fill stays: a record without `verified` is corrupt.
    assert!(matches!(
        ages.get("c2").await,
        Err(CacheError::Corrupt { .. })
    ));
    assert_eq!(ages.stats().corrupt_values, 1);

    // A write keeps the JSON alone too, and reads back the value written.
    ages.insert("c3", verification("c3")).await.expect("insert");
    let hit = ages.get("c3").await.expect("reads").expect("found");
    assert_eq!(hit.tier(), Tier::L1);
    assert_eq!(*hit.value(), verification("c3"));
}

#[tokio::test]
async fn an_entry_that_keeps_the_json_alone_weighs_it_once() {
    let server = RedisServer::start();
    let mut foreign = server.foreign().await;
    let (stored, budget) = fits_only_as_json("c1");
    let () = foreign
        .set_ex("age_verification:c1", &stored, 3600)
        .await
        .expect("setex");
    for (keeps_decoded, second_read, oversize) in [(true, Tier::L2, 3), (false, Tier::L1, 0)] {
        let ages = ages_cache(&server, budget, keeps_decoded);
        for _ in 0..2 {
            ages.get("c1").await.expect("reads").expect("found");
        }
        let hit = ages.get("c1").await.expect("reads").expect("found");
        assert_eq!(hit.tier(), second_read, "keeps_decoded {keeps_decoded}");
        assert_eq!(hit.json().as_ref(), stored.as_bytes());
        assert!(hit.other.get("note").is_some(), "the unknown field read");
        assert_eq!(
            ages.stats().l1_oversize,
            oversize,
            "keeps_decoded {keeps_decoded}"
        );
    }
}
