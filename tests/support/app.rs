//! The reference service's router in mock mode, driven without a socket
//! (`tower::ServiceExt::oneshot`), and helpers to send requests and read
//! answers. Ages follow tokio's clock, so tests run on the paused clock.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;
use tower::ServiceExt;
use warmcache::service::{AppState, app};
use warmcache::{LastError, MockSource, Mode, Sections, Snapshot, SnapshotCache, Timestamp};

pub const TTL: Duration = Duration::from_secs(30);
pub const MAX_STALENESS: Duration = Duration::from_secs(120);
/// The mock source's pinned clock, so the data is the same on every run.
pub const MOCK_NOW: OffsetDateTime = datetime!(2026-03-10 14:30:00 UTC);
pub const DATA_ROUTES: [&str; 3] = ["/dashboard", "/historical", "/products"];

/// An empty cache and the router serving it.
pub fn service() -> (SnapshotCache, Router) {
    let cache = SnapshotCache::new(Mode::Mock);
    let router = app(AppState {
        snapshots: cache.clone(),
        ttl: TTL,
        max_staleness: MAX_STALENESS,
        keyed: None,
    });
    (cache, router)
}

/// The sections of refresh `generation` (1-based, like the refresher's),
/// refreshed now on tokio's clock.
pub fn sections(generation: u64) -> Arc<Sections> {
    let data = MockSource::new(42)
        .with_now(MOCK_NOW)
        .generate(MOCK_NOW, generation - 1);
    let sections = Sections::render(generation, data, Timestamp::now(), TTL)
        .expect("mock data renders to JSON");
    Arc::new(sections)
}

/// Stores a successful refresh `generation` and returns its sections.
pub fn load(cache: &SnapshotCache, generation: u64) -> Arc<Sections> {
    let sections = sections(generation);
    cache.store(Snapshot {
        mode: Mode::Mock,
        data: Some(Arc::clone(&sections)),
        last_error: None,
    });
    sections
}

pub fn last_error(message: &str, consecutive_failures: u32) -> LastError {
    LastError {
        message: message.into(),
        at: Timestamp::now(),
        consecutive_failures,
    }
}

/// `(etag, body)` of the section a data route serves.
pub fn section_of<'a>(sections: &'a Sections, route: &str) -> (&'a HeaderValue, &'a Bytes) {
    match route {
        "/dashboard" => (sections.dashboard.etag(), sections.dashboard.body()),
        "/historical" => (sections.historical.etag(), sections.historical.body()),
        "/products" => (sections.products.etag(), sections.products.body()),
        other => panic!("{other} is not a data route"),
    }
}

pub async fn send(
    router: &Router,
    method: Method,
    uri: &str,
    headers: &[(header::HeaderName, &str)],
) -> Response<Body> {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(name, *value);
    }
    let request = request.body(Body::empty()).expect("valid request");
    router
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible")
}

pub async fn get(router: &Router, uri: &str) -> Response<Body> {
    send(router, Method::GET, uri, &[]).await
}

pub async fn get_if_none_match(router: &Router, uri: &str, tags: &str) -> Response<Body> {
    send(router, Method::GET, uri, &[(header::IF_NONE_MATCH, tags)]).await
}

pub async fn body_bytes(response: Response<Body>) -> Bytes {
    response
        .into_body()
        .collect()
        .await
        .expect("in-memory bodies do not fail")
        .to_bytes()
}

pub async fn body_json(response: Response<Body>) -> Value {
    let bytes = body_bytes(response).await;
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })
}

/// A header as text; panics when it is missing.
pub fn header_str<'a>(response: &'a Response<Body>, name: &header::HeaderName) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {:?}", response.headers()))
        .to_str()
        .expect("header is ASCII")
}

/// Asserts an API error: status, JSON content type, `{"error":{"code","message"}}`;
/// returns the message.
pub async fn expect_api_error(response: Response<Body>, status: StatusCode, code: &str) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(
        header_str(&response, &header::CONTENT_TYPE),
        "application/json"
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        assert_eq!(header_str(&response, &header::RETRY_AFTER), "1");
    }
    let json = body_json(response).await;
    assert_eq!(json["error"]["code"], code, "{json}");
    let message = json["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("error.message is not a string: {json}"))
        .to_owned();
    assert!(!message.is_empty(), "{json}");
    message
}

pub fn parse_rfc3339(value: &Value) -> OffsetDateTime {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    OffsetDateTime::parse(text, &Rfc3339).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}
