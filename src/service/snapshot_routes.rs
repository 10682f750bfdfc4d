//! `GET /dashboard`, `/historical`, `/products` and `/snapshot`.
//!
//! The data routes serve the bodies rendered and compressed at refresh time:
//! a request loads the current snapshot (no lock, no wait), picks the coding
//! by `Accept-Encoding` (see [`super::accept_encoding`]; br, gzip or
//! identity, 406 when none is acceptable), clones that variant's `Bytes`
//! handle and sets `Content-Encoding` (unless identity), `Vary:
//! Accept-Encoding` (always), the variant's own `ETag`, `Age` (seconds since
//! the data was fetched) and `Cache-Control: max-age`. An HTTP cache takes
//! a response as fresh while `max-age` exceeds its age (RFC 9111 §4.2), the
//! `Age` header included, so `max-age` is the age now plus the whole seconds
//! left before `expiresAt`, never more than the snapshot's lifetime: a
//! cache downstream keeps it exactly until `expiresAt`, not `Age` seconds
//! less. An `If-None-Match` naming the chosen variant's ETag gets `304 Not
//! Modified`.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::accept_encoding;
use super::{ApiError, AppState};
use crate::body::Coding;
use crate::reference::Sections;
use crate::section::Section;

static JSON_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/json");
static VARY_ACCEPT_ENCODING: HeaderValue = HeaderValue::from_static("accept-encoding");
static GZIP: HeaderValue = HeaderValue::from_static("gzip");
static BR: HeaderValue = HeaderValue::from_static("br");

// The handlers take the whole `Request` (moved) rather than the `HeaderMap`
// extractor, which would clone every request header just to read one.
pub(super) async fn dashboard(State(state): State<AppState>, request: Request) -> Response {
    serve_section(&state, request.headers(), |s| &s.dashboard)
}

pub(super) async fn historical(State(state): State<AppState>, request: Request) -> Response {
    serve_section(&state, request.headers(), |s| &s.historical)
}

pub(super) async fn products(State(state): State<AppState>, request: Request) -> Response {
    serve_section(&state, request.headers(), |s| &s.products)
}

/// Serves one pre-rendered section of the current snapshot.
fn serve_section<T>(
    state: &AppState,
    request: &HeaderMap,
    pick: impl Fn(&Sections) -> &Section<T>,
) -> Response {
    let snapshot = state.snapshots.load();
    let Some(sections) = snapshot.data.as_deref() else {
        let last_error = snapshot.last_error.as_ref().map(|e| e.message.to_string());
        return ApiError::SnapshotNotLoaded { last_error }.into_response();
    };
    let section = pick(sections);
    let encoded = section.encoded();
    let Some(coding) = accept_encoding::choose(request, |c| encoded.has(c)) else {
        let mut response = ApiError::NotAcceptable.into_response();
        response
            .headers_mut()
            .insert(header::VARY, VARY_ACCEPT_ENCODING.clone());
        return response;
    };
    let variant = encoded
        .get(coding)
        .unwrap_or_else(|| encoded.identity_variant());
    let age = sections.refreshed_at.age().as_secs();
    let lifetime = sections
        .expires_at
        .instant
        .saturating_duration_since(sections.refreshed_at.instant)
        .as_secs();
    let max_age = (age + sections.expires_at.remaining().as_secs()).min(lifetime);

    let not_modified = if_none_match(request, variant.etag());
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        Response::new(Body::from(variant.bytes().clone()))
    };
    let headers = response.headers_mut();
    // Room for all of them and `Content-Length` at once: the two allocations
    // the first insert makes anyway, and no regrowth.
    headers.reserve(8);
    if !not_modified {
        headers.insert(header::CONTENT_TYPE, JSON_CONTENT_TYPE.clone());
        let content_encoding = match coding {
            Coding::Br => Some(&BR),
            Coding::Gzip => Some(&GZIP),
            Coding::Identity => None,
        };
        if let Some(value) = content_encoding {
            headers.insert(header::CONTENT_ENCODING, value.clone());
        }
    }
    headers.insert(header::VARY, VARY_ACCEPT_ENCODING.clone());
    headers.insert(header::ETAG, variant.etag().clone());
    headers.insert(header::AGE, HeaderValue::from(age));
    if let Ok(value) = HeaderValue::try_from(format!("max-age={max_age}")) {
        headers.insert(header::CACHE_CONTROL, value);
    }
    response
}

/// Whether `If-None-Match` names `etag` (weak comparison, `*` matches all).
pub(super) fn if_none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request.get_all(header::IF_NONE_MATCH).iter().any(|value| {
        value.to_str().is_ok_and(|list| {
            list.split(',')
                .map(str::trim)
                .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == etag)
        })
    })
}

/// `GET /snapshot`: mode, times, age and last error, for people and probes.
pub(super) async fn status(State(state): State<AppState>) -> Response {
    let snapshot = state.snapshots.load();
    let data = snapshot.data.as_deref();
    let section = |s: Option<(&HeaderValue, usize)>| {
        s.map(|(etag, bytes)| json!({ "etag": etag.to_str().unwrap_or(""), "bytes": bytes }))
    };
    let body = json!({
        "mode": snapshot.mode,
        "loaded": data.is_some(),
        "ready": snapshot.is_fresh_within(state.max_staleness),
        "generation": data.map(|d| d.generation),
        "refreshedAt": data.map(|d| d.refreshed_at),
        "expiresAt": data.map(|d| d.expires_at),
        "ageSeconds": snapshot.age().map(|a| a.as_secs_f64()),
        "ttlSeconds": state.ttl.as_secs_f64(),
        "maxStalenessSeconds": state.max_staleness.as_secs_f64(),
        "lastError": snapshot.last_error.as_ref().map(|e| json!({
            "message": &*e.message,
            "at": e.at,
            "consecutiveFailures": e.consecutive_failures,
        })),
        "sections": {
            "dashboard": section(data.map(|d| (d.dashboard.etag(), d.dashboard.body().len()))),
            "historical": section(data.map(|d| (d.historical.etag(), d.historical.body().len()))),
            "products": section(data.map(|d| (d.products.etag(), d.products.body().len()))),
        },
    });
    Json(body).into_response()
}
