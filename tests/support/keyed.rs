//! The reference service's keyed routes through the router (no socket):
//! a router on a test's redis-server, and requests with their answers.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use warmcache::service::{AppState, KeyedCaches, app};
use warmcache::{Mode, RedisConfig, RedisHandle, SnapshotCache};

use super::RedisServer;

/// The keyed caches on `server` (1 MiB of L1 each, 60 s L1 bound).
pub fn keyed_caches(server: &RedisServer, mock_profiles: bool) -> KeyedCaches {
    keyed_caches_on(&server.config(), mock_profiles)
}

/// The keyed caches on `config`'s Redis (no invalidation listener).
pub fn keyed_caches_on(config: &RedisConfig, mock_profiles: bool) -> KeyedCaches {
    let redis = RedisHandle::connect_lazy(config).expect("valid settings");
    KeyedCaches::new(&redis, 1 << 20, Duration::from_secs(60), mock_profiles).expect("valid caches")
}

/// An age verification of `customer` whose L1 entry weighs too much for
/// a cache with the returned budget if it keeps the decoded value (its
/// JSON twice), and fits if L1 keeps the JSON alone (once): an entry may
/// weigh 1/64 of the budget, here its JSON one and a half times, with the
/// key, the ETag and the fixed overhead.
pub fn fits_only_as_json(customer: &str) -> (String, u64) {
    let note = "x".repeat(2_000);
    let json = format!(r#"{{"customerId":"{customer}","verified":true,"note":"{note}"}}"#);
    let share = json.len() * 3 / 2 + customer.len() + 24 + 96;
    (json, 64 * share as u64)
}

/// The service's router over `keyed`.
pub fn router_with(keyed: KeyedCaches) -> Router {
    app(AppState {
        snapshots: SnapshotCache::new(Mode::Mock),
        ttl: Duration::from_secs(30),
        max_staleness: Duration::from_secs(120),
        keyed: Some(std::sync::Arc::new(keyed)),
    })
}

/// The service's router on `config`'s Redis (e.g. as an ACL user).
pub fn keyed_router(config: &RedisConfig, mock_profiles: bool) -> Router {
    router_with(keyed_caches_on(config, mock_profiles))
}

/// The service's router on `server`.
pub fn router(server: &RedisServer, mock_profiles: bool) -> Router {
    router_with(keyed_caches(server, mock_profiles))
}

/// What the router answered.
pub struct Answer {
    pub status: StatusCode,
    pub tier: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .expect("error code")
            .to_owned()
    }

    pub fn error_message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .expect("error message")
            .to_owned()
    }
}

/// Sends `body` as JSON (`application/json`), or no body.
pub async fn send(router: &Router, method: Method, path: &str, body: Option<Value>) -> Answer {
    match body {
        Some(body) => {
            let bytes = body.to_string().into_bytes();
            send_bytes(router, method, path, bytes, Some("application/json")).await
        }
        None => send_bytes(router, method, path, Vec::new(), None).await,
    }
}

/// Sends `body` as it is, with `content_type` if given.
pub async fn send_bytes(
    router: &Router,
    method: Method,
    path: &str,
    body: Vec<u8>,
    content_type: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::from(body)).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let (tier, content_type) = (header("x-warmcache-tier"), header("content-type"));
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        tier,
        content_type,
        body,
    }
}
