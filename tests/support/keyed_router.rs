//! The service's router with keyed caches over a test Redis, and a
//! one-call way to send it a request (no socket).

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use warmcache::service::{AppState, KeyedCaches, app};
use warmcache::{Mode, RedisConfig, RedisHandle, SnapshotCache};

/// The service's router with keyed caches on `config`'s Redis (no
/// invalidation listener) and a mock-mode snapshot cell.
pub fn keyed_router(config: &RedisConfig, mock_profiles: bool) -> Router {
    let redis = RedisHandle::connect_lazy(config).expect("valid settings");
    let keyed = KeyedCaches::new(&redis, 1 << 20, Duration::from_secs(60), mock_profiles)
        .expect("valid caches");
    app(AppState {
        snapshots: SnapshotCache::new(Mode::Mock),
        ttl: Duration::from_secs(30),
        max_staleness: Duration::from_secs(120),
        keyed: Some(keyed),
    })
}

/// An answer of the router.
pub struct Answer {
    pub status: StatusCode,
    pub tier: Option<String>,
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }

    /// `error.code` of an error body.
    pub fn error_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .expect("error code")
            .to_owned()
    }
}

/// Sends one request through `router` (no socket).
pub async fn send(router: &Router, method: Method, path: &str, body: Option<Value>) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let response = router
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let tier = response
        .headers()
        .get("x-warmcache-tier")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer { status, tier, body }
}
