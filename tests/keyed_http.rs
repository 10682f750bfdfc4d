//! The keyed-cache routes through the router (no socket), against a real
//! redis-server: status codes, error bodies, tiers, and Redis outages.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use redis::AsyncCommands;
use serde_json::{Value, json};
use support::RedisServer;
use support::keyed::{fits_only_as_json, router, router_with, send};
use warmcache::RedisHandle;
use warmcache::service::{AppState, KeyedCaches, app};
use warmcache::{Mode, SnapshotCache};

fn age(customer: &str) -> Value {
    json!({ "customerId": customer, "verified": true, "method": "id_document", "verifiedAt": 1_764_115_200_000_i64, "ageOver": 18 })
}

#[tokio::test]
async fn age_verification_put_get_delete() {
    let server = RedisServer::start();
    let router = router(&server, true);

    assert_eq!(
        send(&router, Method::GET, "/age-verification/c1", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let put = send(
        &router,
        Method::PUT,
        "/age-verification/c1",
        Some(age("c1")),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json(), age("c1"));

    let got = send(&router, Method::GET, "/age-verification/c1", None).await;
    assert_eq!(
        (got.status, got.tier.as_deref()),
        (StatusCode::OK, Some("l1"))
    );
    assert_eq!(got.body, put.body, "served as stored");
    let stored: String = server
        .foreign()
        .await
        .get("age_verification:c1")
        .await
        .expect("in redis");
    assert_eq!(stored.as_bytes(), got.body.as_slice());

    let deleted = send(&router, Method::DELETE, "/age-verification/c1", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = send(&router, Method::GET, "/age-verification/c1", None).await;
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let exists: bool = server
        .foreign()
        .await
        .exists("age_verification:c1")
        .await
        .expect("exists");
    assert!(!exists, "erased from redis");
}

#[tokio::test]
async fn bad_ids_and_bodies_are_400s_with_the_json_error_shape() {
    let server = RedisServer::start();
    let router = router(&server, true);
    for path in [
        "/age-verification/a:b",
        "/age-verification/a%20b",
        "/jobs/%2A",
        "/customers/x%0Ay/profile",
    ] {
        let answer = send(&router, Method::GET, path, None).await;
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (StatusCode::BAD_REQUEST, "invalid_id"),
            "{path}"
        );
    }
    let long = format!("/age-verification/{}", "x".repeat(129));
    assert_eq!(
        send(&router, Method::GET, &long, None).await.error_code(),
        "invalid_id"
    );

    let wrong_shape = send(
        &router,
        Method::PUT,
        "/age-verification/c2",
        Some(json!({ "customerId": "c2" })),
    )
    .await;
    assert_eq!(
        (wrong_shape.status, wrong_shape.error_code().as_str()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let mismatch = send(
        &router,
        Method::PUT,
        "/age-verification/c2",
        Some(age("c3")),
    )
    .await;
    assert_eq!(mismatch.error_code(), "id_mismatch");
    let bad_status = json!({ "jobId": "j1", "status": 7, "addedAt": 1 });
    assert_eq!(
        send(&router, Method::PUT, "/jobs/j1", Some(bad_status))
            .await
            .error_code(),
        "invalid_body"
    );
    let keys: Vec<String> = server.foreign().await.keys("*").await.expect("keys");
    assert!(keys.is_empty(), "nothing was written: {keys:?}");
}

#[tokio::test]
async fn profiles_run_the_loader_then_redis_then_memory() {
    let server = RedisServer::start();
    let first_instance = router(&server, true);
    let second_instance = router(&server, true);

    let loaded = send(&first_instance, Method::GET, "/customers/c4/profile", None).await;
    assert_eq!(
        (loaded.status, loaded.tier.as_deref()),
        (StatusCode::OK, Some("loader"))
    );
    assert_eq!(loaded.json()["customerId"], "c4");
    let from_memory = send(&first_instance, Method::GET, "/customers/c4/profile", None).await;
    assert_eq!(from_memory.tier.as_deref(), Some("l1"));
    let from_redis = send(&second_instance, Method::GET, "/customers/c4/profile", None).await;
    assert_eq!(from_redis.tier.as_deref(), Some("l2"));
    assert_eq!(from_redis.body, loaded.body);

    // A profile update writes through, keeping fields this service does not know.
    let mut update = loaded.json();
    update["name"] = json!("Renamed");
    update["loyaltyPoints"] = json!(120);
    let put = send(
        &first_instance,
        Method::PUT,
        "/customers/c4/profile",
        Some(update.clone()),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(put.json(), update);
    let stored: String = server
        .foreign()
        .await
        .get("customer_profile:c4")
        .await
        .expect("stored");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).expect("json"),
        update
    );
    let ttl: i64 = server
        .foreign()
        .await
        .ttl("customer_profile:c4")
        .await
        .expect("ttl");
    assert!((295..=300).contains(&ttl), "5 minutes, got {ttl}");
}

#[tokio::test]
async fn outside_mock_mode_an_unknown_profile_is_a_404() {
    let server = RedisServer::start();
    let router = router(&server, false);
    let answer = send(&router, Method::GET, "/customers/c5/profile", None).await;
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn jobs_follow_their_status_changes() {
    let server = RedisServer::start();
    let router = router(&server, true);
    let waiting = json!({ "jobId": "j2", "status": "waiting", "addedAt": 1_000 });
    assert_eq!(
        send(&router, Method::PUT, "/jobs/j2", Some(waiting))
            .await
            .status,
        StatusCode::OK
    );
    let done = json!({ "jobId": "j2", "status": "completed", "result": { "answer": 42 }, "addedAt": 1_000, "startedAt": 2_000, "finishedAt": 3_000 });
    assert_eq!(
        send(&router, Method::PUT, "/jobs/j2", Some(done.clone()))
            .await
            .status,
        StatusCode::OK
    );
    let got = send(&router, Method::GET, "/jobs/j2", None).await;
    assert_eq!(got.json(), done);
    assert_eq!(
        send(&router, Method::GET, "/jobs/unknown", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn corrupt_values_are_a_502_and_never_served() {
    let server = RedisServer::start();
    let router = router(&server, true);
    let () = server
        .foreign()
        .await
        .set_ex(
            "reasoning_job:j3",
            "{\"jobId\":\"j3\",\"status\":\"secret-garbage",
            60,
        )
        .await
        .expect("setex");
    let answer = send(&router, Method::GET, "/jobs/j3", None).await;
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (StatusCode::BAD_GATEWAY, "corrupt_value")
    );
    assert!(!String::from_utf8_lossy(&answer.body).contains("secret-garbage"));
}

#[tokio::test]
async fn with_redis_down_memory_and_loaders_answer_and_the_rest_is_503() {
    let mut server = RedisServer::start();
    let router = router(&server, true);
    assert_eq!(
        send(
            &router,
            Method::PUT,
            "/age-verification/c6",
            Some(age("c6"))
        )
        .await
        .status,
        StatusCode::OK
    );
    server.kill();

    let cached = send(&router, Method::GET, "/age-verification/c6", None).await;
    assert_eq!(
        (cached.status, cached.tier.as_deref()),
        (StatusCode::OK, Some("l1"))
    );
    let loaded = send(&router, Method::GET, "/customers/c7/profile", None).await;
    assert_eq!(
        (loaded.status, loaded.tier.as_deref()),
        (StatusCode::OK, Some("loader"))
    );
    let unknown = send(&router, Method::GET, "/age-verification/c8", None).await;
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "redis_unavailable")
    );
    let write = send(
        &router,
        Method::PUT,
        "/age-verification/c9",
        Some(age("c9")),
    )
    .await;
    assert_eq!(write.error_code(), "redis_unavailable");
    let erase = send(&router, Method::DELETE, "/age-verification/c6", None).await;
    assert_eq!(
        erase.error_code(),
        "redis_unavailable",
        "an erasure that did not reach redis is not reported done"
    );
    let after = send(&router, Method::GET, "/age-verification/c6", None).await;
    assert_ne!(
        after.status,
        StatusCode::OK,
        "the local copy is gone even so"
    );
}

#[tokio::test]
async fn without_keyed_caches_the_routes_say_so() {
    let router = app(AppState {
        snapshots: SnapshotCache::new(Mode::Mock),
        ttl: Duration::from_secs(30),
        max_staleness: Duration::from_secs(120),
        keyed: None,
    });
    let answer = send(&router, Method::GET, "/jobs/j1", None).await;
    assert_eq!(
        (answer.status, answer.error_code().as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "keyed_caches_off")
    );
}

/// The service's caches keep the JSON alone in L1: a record that fits the
/// budget only when weighed once is an L1 hit on the second read.
#[tokio::test]
async fn the_services_caches_weigh_a_record_by_its_json_alone() {
    let server = RedisServer::start();
    let (stored, budget) = fits_only_as_json("c1");
    let mut foreign = server.foreign().await;
    let () = foreign
        .set_ex("age_verification:c1", &stored, 3600)
        .await
        .expect("setex");
    let redis = RedisHandle::connect_lazy(&server.config()).expect("valid settings");
    let keyed = KeyedCaches::new(&redis, budget, Duration::from_secs(60), false).expect("valid");
    let router = router_with(keyed);

    for tier in ["l2", "l1"] {
        let answer = send(&router, Method::GET, "/age-verification/c1", None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.tier.as_deref(), Some(tier));
        assert_eq!(answer.body, stored.as_bytes(), "the bytes as stored");
    }
}
