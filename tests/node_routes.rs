//! The age-verification and profile routes against real Node: records a
//! Node service wrote are served as stored, bodies a Node client sends are
//! taken (any content type, ISO or epoch times, extra fields, no id, no
//! time) and stored as the Node service would have stored them, and bad
//! bodies are 400s that never reach Redis.

mod support;

use axum::http::{Method, StatusCode};
use redis::AsyncCommands;
use serde_json::Value;
use support::RedisServer;
use support::keyed::{keyed_caches, router, router_with, send_bytes};
use support::node::node_eval;
use warmcache::records::TimeFormat;
use warmcache::service::MAX_BODY_BYTES;

#[tokio::test]
async fn node_records_are_served_as_stored() {
    let server = RedisServer::start();
    let router = router(&server, false);
    let lines = node_eval(
        server.port(),
        "out(await require('./fleet').storeFleetRecords(redis, new Date()));",
    );
    let texts: Vec<(String, Value)> = lines[0]
        .as_object()
        .expect("map")
        .clone()
        .into_iter()
        .collect();
    for (key, text) in texts {
        let (space, id) = key.split_once(':').expect("prefixed");
        let path = match space {
            "age_verification" => format!("/age-verification/{id}"),
            "customer_profile" => format!("/customers/{id}/profile"),
            _ => format!("/jobs/{id}"),
        };
        for tier in ["l2", "l1"] {
            let got = send_bytes(&router, Method::GET, &path, Vec::new(), None).await;
            assert_eq!(
                (got.status, got.tier.as_deref()),
                (StatusCode::OK, Some(tier)),
                "{path}"
            );
            assert_eq!(got.content_type.as_deref(), Some("application/json"));
            assert_eq!(got.body, text.as_str().expect("text").as_bytes(), "{path}");
        }
    }
}

/// `PUT`s `body` (JSON text) with `content_type`; panics unless 200.
async fn put(router: &axum::Router, path: &str, body: &str, content_type: &str) {
    let answer = send_bytes(
        router,
        Method::PUT,
        path,
        body.as_bytes().to_vec(),
        Some(content_type),
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{path}: {}",
        String::from_utf8_lossy(&answer.body)
    );
}

#[tokio::test]
async fn put_bodies_from_node_are_stored_as_the_node_service_would() {
    let server = RedisServer::start();
    let router = router(&server, false);
    let mut epoch_caches = keyed_caches(&server, false);
    epoch_caches.time_format = TimeFormat::EpochMs;
    let epoch_router = router_with(epoch_caches);
    // The bodies, as a Node client builds them.
    let lines = node_eval(
        server.port(),
        "const fleet = await require('./fleet').storeFleetRecords(redis, new Date());
         const { updatedAt, ...profile } = JSON.parse(fleet['customer_profile:p1']);
         out({
           bare: JSON.stringify({ verified: true, method: 'id_document', referrer: { campaign: 'spring', n: 1.5 } }),
           epoch: JSON.stringify({ customerId: 'put-epoch', verified: true, verifiedAt: Date.now() }),
           iso: JSON.stringify({ customerId: 'put-iso', verified: false, verifiedAt: '2026-11-26T00:00:00Z' }),
           update: JSON.stringify({ verified: true, method: 'credit_card' }),
           profile: JSON.stringify({ ...profile, name: 'Renamed' }),
         });",
    );
    let body = |name: &str| lines[0][name].as_str().expect("body").to_owned();
    put(
        &router,
        "/age-verification/put-bare",
        &body("bare"),
        "application/json",
    )
    .await;
    // fetch() sends a string body as text/plain.
    put(
        &router,
        "/age-verification/put-epoch",
        &body("epoch"),
        "text/plain;charset=UTF-8",
    )
    .await;
    put(
        &router,
        "/age-verification/put-iso",
        &body("iso"),
        "application/json",
    )
    .await;
    // "epoch" exists (Node wrote it with Date.now()): the new time keeps that form.
    put(
        &router,
        "/age-verification/epoch",
        &body("update"),
        "application/json",
    )
    .await;
    put(
        &epoch_router,
        "/age-verification/put-new-epoch",
        &body("update"),
        "application/json",
    )
    .await;
    put(
        &router,
        "/customers/p1/profile",
        &body("profile"),
        "application/json",
    )
    .await;
    put(
        &router,
        "/jobs/put-job",
        r#"{"jobId":"put-job","status":"waiting"}"#,
        "application/json",
    )
    .await;

    node_eval(
        server.port(),
        &format!(
            "const assert = require('node:assert');
             const bodies = {};
             const isIso = (t) => typeof t === 'string' && new Date(t).toISOString() === t;
             const check = async (key, expected, time) => {{
               const stored = await redis.get(key);
               const parsed = JSON.parse(stored);
               const want = {{ ...expected, [time.field]: parsed[time.field] }};
               assert.ok(time.form === 'iso' ? isIso(parsed[time.field]) : Number.isInteger(parsed[time.field]), key);
               assert.deepStrictEqual(parsed, want, key);
               assert.strictEqual(stored, JSON.stringify(want), key + ': bytes and key order');
             }};
             const at = {{ field: 'verifiedAt', form: 'iso' }};
             await check('age_verification:put-bare', {{ ...JSON.parse(bodies.bare), customerId: 'put-bare' }}, at);
             assert.strictEqual(await redis.get('age_verification:put-epoch'), bodies.epoch);
             assert.strictEqual(await redis.get('age_verification:put-iso'), bodies.iso);
             const epoch = {{ field: 'verifiedAt', form: 'epoch' }};
             await check('age_verification:epoch', {{ ...JSON.parse(bodies.update), customerId: 'epoch' }}, epoch);
             await check('age_verification:put-new-epoch', {{ ...JSON.parse(bodies.update), customerId: 'put-new-epoch' }}, epoch);
             await check('customer_profile:p1', JSON.parse(bodies.profile), {{ field: 'updatedAt', form: 'iso' }});
             assert.ok(await redis.ttl('customer_profile:p1') > 290);
             assert.deepStrictEqual(JSON.parse(await redis.get('reasoning_job:put-job')), {{ jobId: 'put-job', status: 'waiting' }});
             out('ok');",
            serde_json::to_string(&lines[0]).expect("json")
        ),
    );
}

#[tokio::test]
async fn bad_bodies_are_400s_that_never_reach_redis() {
    let server = RedisServer::start();
    let router = router(&server, false);
    let too_big = format!(
        r#"{{"verified":true,"pad":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let cases: [(&str, String, &str, &str); 8] = [
        (
            "/age-verification/c1",
            "{not json".to_owned(),
            "invalid_body",
            "not JSON",
        ),
        (
            "/age-verification/c1",
            String::new(),
            "invalid_body",
            "not JSON",
        ),
        (
            "/age-verification/c1",
            too_big,
            "invalid_body",
            "over 65536 bytes",
        ),
        (
            "/age-verification/c1",
            "[true]".to_owned(),
            "invalid_body",
            "a JSON object",
        ),
        (
            "/age-verification/c1",
            r#"{"customerId":"c2","verified":true}"#.to_owned(),
            "id_mismatch",
            "c2",
        ),
        (
            "/age-verification/c1",
            r#"{"verified":"yes"}"#.to_owned(),
            "invalid_body",
            "`verified` is not a boolean",
        ),
        (
            "/age-verification/c1",
            r#"{"verified":true,"verifiedAt":"yesterday"}"#.to_owned(),
            "invalid_body",
            "`verifiedAt` is not a time",
        ),
        (
            "/customers/c1/profile",
            r#"{"customerId":5}"#.to_owned(),
            "invalid_body",
            "`customerId` is not a string",
        ),
    ];
    for (path, body, code, words) in cases {
        let answer = send_bytes(
            &router,
            Method::PUT,
            path,
            body.into_bytes(),
            Some("application/json"),
        )
        .await;
        assert_eq!(
            (answer.status, answer.error_code().as_str()),
            (StatusCode::BAD_REQUEST, code),
            "{words}"
        );
        assert!(
            answer.error_message().contains(words),
            "{words}: {}",
            answer.error_message()
        );
    }
    let mut foreign = server.foreign().await;
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut foreign)
        .await
        .expect("info");
    for command in [
        "cmdstat_get:",
        "cmdstat_set:",
        "cmdstat_setex:",
        "cmdstat_pttl:",
    ] {
        assert!(!info.contains(command), "{command} was sent: {info}");
    }
    let keys: Vec<String> = foreign.keys("*").await.expect("keys");
    assert!(keys.is_empty(), "{keys:?}");
}
