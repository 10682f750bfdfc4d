//! The reference service's status over HTTP: the data routes before the
//! first load (503 naming the last error), `/healthz`, `/readyz` against
//! the staleness bound, and the `/snapshot` status document. Driven through
//! the axum router without a socket (`tower::ServiceExt::oneshot`); the data
//! routes' headers, bodies and conditional requests are in `tests/http.rs`.
//!
//! Every test runs on tokio's paused clock: `Timestamp` measures ages on
//! tokio's `Instant`, so `tokio::time::advance` moves ages and readiness
//! exactly, with no real waiting.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::http::{StatusCode, header};
use support::app::{
    DATA_ROUTES, MAX_STALENESS, TTL, body_bytes, body_json, expect_api_error, get,
    get_if_none_match, header_str, last_error, load, parse_rfc3339, section_of, service,
};
use tokio::time::advance;
use warmcache::{Mode, Snapshot};

// ---------------------------------------------------------------------------
// Before the first load
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn data_routes_answer_503_before_the_first_load() {
    let (_cache, router) = service();
    for route in DATA_ROUTES {
        let response = get(&router, route).await;
        assert!(response.headers().get(header::ETAG).is_none(), "{route}");
        let message = expect_api_error(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "snapshot_not_loaded",
        )
        .await;
        assert!(message.contains("not loaded"), "{route}: {message}");
        assert!(!message.contains("last error"), "{route}: {message}");

        // `*` matches any current representation, and there is none.
        let response = get_if_none_match(&router, route, "*").await;
        assert_eq!(
            response.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "{route}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_503_before_the_first_load_names_the_last_error() {
    let (cache, router) = service();
    cache.store(Snapshot {
        mode: Mode::Mock,
        data: None,
        last_error: Some(last_error("source unavailable: connection refused", 3)),
    });

    for route in DATA_ROUTES.into_iter().chain(["/readyz"]) {
        let message = expect_api_error(
            get(&router, route).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "snapshot_not_loaded",
        )
        .await;
        assert!(
            message.contains("source unavailable: connection refused"),
            "{route}: {message}"
        );
    }
}

// ---------------------------------------------------------------------------
// Health and readiness
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn healthz_is_ok_whatever_the_snapshot() {
    let (cache, router) = service();
    let response = get(&router, "/healthz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(response).await,
        serde_json::json!({ "status": "ok" })
    );

    load(&cache, 1);
    advance(MAX_STALENESS * 10).await;
    assert_eq!(get(&router, "/healthz").await.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn readiness_follows_the_first_load_and_the_staleness_bound() {
    let (cache, router) = service();
    expect_api_error(
        get(&router, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "snapshot_not_loaded",
    )
    .await;

    let sections = load(&cache, 1);
    let response = get(&router, "/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_json(response).await,
        serde_json::json!({ "status": "ready", "ageSeconds": 0.0 })
    );

    // Exactly at the bound the data is still acceptable.
    advance(MAX_STALENESS).await;
    let response = get(&router, "/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_json(response).await["ageSeconds"], 120.0);

    // Past it the instance reports itself not ready...
    advance(Duration::from_secs(1)).await;
    let message = expect_api_error(
        get(&router, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "snapshot_stale",
    )
    .await;
    assert!(message.contains("121 s old"), "{message}");
    assert!(message.contains("120 s bound"), "{message}");

    // ...but keeps serving the last good data (stale-if-error).
    for route in DATA_ROUTES {
        let (etag, body) = section_of(&sections, route);
        let response = get(&router, route).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert_eq!(response.headers().get(header::ETAG), Some(etag));
        assert_eq!(header_str(&response, &header::AGE), "121");
        // max-age below Age: stale for every cache downstream.
        assert_eq!(header_str(&response, &header::CACHE_CONTROL), "max-age=30");
        assert!(body_bytes(response).await == *body, "{route}");
    }

    // When refreshes are failing, readiness says why.
    cache.store(Snapshot {
        mode: Mode::Mock,
        data: Some(Arc::clone(&sections)),
        last_error: Some(last_error("refresh timed out after 10000 ms", 5)),
    });
    let message = expect_api_error(
        get(&router, "/readyz").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "snapshot_stale",
    )
    .await;
    assert!(
        message.contains("refresh timed out after 10000 ms"),
        "{message}"
    );
    let response = get(&router, "/dashboard").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(body_bytes(response).await == *sections.dashboard.body());

    // A successful refresh makes it ready again.
    load(&cache, 2);
    assert_eq!(get(&router, "/readyz").await.status(), StatusCode::OK);
}

// ---------------------------------------------------------------------------
// /snapshot
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn snapshot_status_before_the_first_load() {
    let (_cache, router) = service();
    let response = get(&router, "/snapshot").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        header_str(&response, &header::CONTENT_TYPE),
        "application/json"
    );
    let status = body_json(response).await;
    assert_eq!(status["mode"], "mock");
    assert_eq!(status["loaded"], false);
    assert_eq!(status["ready"], false);
    for field in [
        "generation",
        "refreshedAt",
        "expiresAt",
        "ageSeconds",
        "lastError",
    ] {
        assert!(status[field].is_null(), "{field}: {status}");
    }
    assert_eq!(status["ttlSeconds"], 30.0);
    assert_eq!(status["maxStalenessSeconds"], 120.0);
    for section in ["dashboard", "historical", "products"] {
        assert!(status["sections"][section].is_null(), "{section}: {status}");
    }
}

#[tokio::test(start_paused = true)]
async fn snapshot_status_describes_the_loaded_data() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    advance(Duration::from_secs(7)).await;

    let status = body_json(get(&router, "/snapshot").await).await;
    assert_eq!(status["mode"], "mock");
    assert_eq!(status["loaded"], true);
    assert_eq!(status["ready"], true);
    assert_eq!(status["generation"], 1);
    assert_eq!(status["ageSeconds"], 7.0);
    assert!(status["lastError"].is_null(), "{status}");

    assert_eq!(status["refreshedAt"], sections.refreshed_at.rfc3339());
    assert_eq!(status["expiresAt"], sections.expires_at.rfc3339());
    let refreshed_at = parse_rfc3339(&status["refreshedAt"]);
    let expires_at = parse_rfc3339(&status["expiresAt"]);
    assert_eq!(expires_at - refreshed_at, TTL);

    for (name, etag, bytes) in [
        (
            "dashboard",
            sections.dashboard.etag(),
            sections.dashboard.body().len(),
        ),
        (
            "historical",
            sections.historical.etag(),
            sections.historical.body().len(),
        ),
        (
            "products",
            sections.products.etag(),
            sections.products.body().len(),
        ),
    ] {
        let section = &status["sections"][name];
        assert_eq!(
            section["etag"],
            etag.to_str().expect("ASCII etag"),
            "{name}"
        );
        assert_eq!(section["bytes"], bytes, "{name}");
    }

    // The status and the data route agree on the current ETag.
    let response = get(&router, "/dashboard").await;
    assert_eq!(
        status["sections"]["dashboard"]["etag"],
        header_str(&response, &header::ETAG)
    );

    // Past the staleness bound it is still loaded but no longer ready.
    advance(MAX_STALENESS).await;
    let status = body_json(get(&router, "/snapshot").await).await;
    assert_eq!(status["loaded"], true);
    assert_eq!(status["ready"], false);
    assert_eq!(status["ageSeconds"], 127.0);
}

#[tokio::test(start_paused = true)]
async fn snapshot_status_reports_the_last_error() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    advance(Duration::from_secs(40)).await;
    let error = last_error("source unavailable: 503 from BigQuery", 2);
    cache.store(Snapshot {
        mode: Mode::Mock,
        data: Some(Arc::clone(&sections)),
        last_error: Some(error.clone()),
    });

    let status = body_json(get(&router, "/snapshot").await).await;
    assert_eq!(status["loaded"], true);
    assert_eq!(status["ready"], true);
    assert_eq!(status["generation"], 1);
    assert_eq!(status["ageSeconds"], 40.0);
    let reported = &status["lastError"];
    assert_eq!(reported["message"], "source unavailable: 503 from BigQuery");
    assert_eq!(reported["consecutiveFailures"], 2);
    assert_eq!(reported["at"], error.at.rfc3339());
    parse_rfc3339(&reported["at"]);

    // Without data: loaded false, the error still reported.
    cache.store(Snapshot {
        mode: Mode::Live,
        data: None,
        last_error: Some(last_error("source unavailable: no credentials", 1)),
    });
    let status = body_json(get(&router, "/snapshot").await).await;
    assert_eq!(status["mode"], "live");
    assert_eq!(status["loaded"], false);
    assert_eq!(
        status["lastError"]["message"],
        "source unavailable: no credentials"
    );
    assert_eq!(status["lastError"]["consecutiveFailures"], 1);
}
