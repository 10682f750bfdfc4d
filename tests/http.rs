//! The data routes of the reference service over HTTP: the pre-rendered
//! sections with their headers (`ETag`, `Age`, `Cache-Control`), `HEAD`,
//! conditional requests (`If-None-Match`, 304) across snapshot swaps, and
//! JSON 404/405 for unknown routes and methods. Driven through the axum
//! router without a socket (`tower::ServiceExt::oneshot`); readiness,
//! health and `/snapshot` are in `tests/http_status.rs`.
//!
//! Every test runs on tokio's paused clock: `Timestamp` measures ages on
//! tokio's `Instant`, so `tokio::time::advance` moves the `Age` header and
//! `Cache-Control: max-age` exactly, with no real waiting.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode, header};
use support::app::{
    DATA_ROUTES, body_bytes, body_json, expect_api_error, get, get_if_none_match, header_str, load,
    section_of, send, service,
};
use tokio::time::advance;

// ---------------------------------------------------------------------------
// Data routes
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn data_routes_serve_the_pre_rendered_sections_with_their_etags() {
    let (cache, router) = service();
    let sections = load(&cache, 1);

    for route in DATA_ROUTES {
        let (etag, body) = section_of(&sections, route);
        let response = get(&router, route).await;
        assert_eq!(response.status(), StatusCode::OK, "{route}");
        assert_eq!(
            header_str(&response, &header::CONTENT_TYPE),
            "application/json"
        );
        assert_eq!(response.headers().get(header::ETAG), Some(etag), "{route}");
        assert_eq!(header_str(&response, &header::AGE), "0", "{route}");
        assert_eq!(
            header_str(&response, &header::CACHE_CONTROL),
            "max-age=30",
            "{route}"
        );
        assert_eq!(
            header_str(&response, &header::CONTENT_LENGTH),
            body.len().to_string(),
            "{route}"
        );
        let served = body_bytes(response).await;
        assert!(
            served == *body,
            "{route}: served body differs from the pre-rendered one"
        );
    }

    // The three sections really are different documents.
    assert_ne!(sections.dashboard.etag(), sections.historical.etag());
    assert_ne!(sections.dashboard.etag(), sections.products.etag());
    let products = body_json(get(&router, "/products").await).await;
    assert_eq!(products["count"], 500);
    assert_eq!(products["items"].as_array().map(Vec::len), Some(500));
}

#[tokio::test(start_paused = true)]
async fn age_and_max_age_follow_the_clock() {
    let (cache, router) = service();
    load(&cache, 1);

    // (time since the refresh in ms, expected Age, expected max-age). A
    // cache counts `Age` against `max-age` (RFC 9111), so max-age minus Age
    // is the freshness left: 30 s at first, then floored to whole seconds
    // (never more than is left), and none once the snapshot has expired.
    let steps = [
        (7_000, "7", "max-age=30"),
        (7_500, "7", "max-age=29"),
        (29_999, "29", "max-age=29"),
        (30_000, "30", "max-age=30"),
        (95_000, "95", "max-age=30"),
    ];
    let mut elapsed = 0;
    for (at_ms, age, cache_control) in steps {
        advance(Duration::from_millis(at_ms - elapsed)).await;
        elapsed = at_ms;
        for route in DATA_ROUTES {
            let response = get(&router, route).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(
                header_str(&response, &header::AGE),
                age,
                "{route} at {at_ms} ms"
            );
            assert_eq!(
                header_str(&response, &header::CACHE_CONTROL),
                cache_control,
                "{route} at {at_ms} ms"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn head_gets_the_headers_without_the_body() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    advance(Duration::from_secs(4)).await;

    let response = send(&router, Method::HEAD, "/dashboard", &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers().get(header::ETAG),
        Some(sections.dashboard.etag())
    );
    assert_eq!(
        header_str(&response, &header::CONTENT_TYPE),
        "application/json"
    );
    assert_eq!(
        header_str(&response, &header::CONTENT_LENGTH),
        sections.dashboard.body().len().to_string()
    );
    assert_eq!(header_str(&response, &header::AGE), "4");
    assert_eq!(header_str(&response, &header::CACHE_CONTROL), "max-age=30");
    assert!(body_bytes(response).await.is_empty());
}

// ---------------------------------------------------------------------------
// Conditional requests
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn matching_if_none_match_gets_304_with_validators_and_no_body() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    advance(Duration::from_secs(5)).await;

    for route in DATA_ROUTES {
        let (etag, _) = section_of(&sections, route);
        let tag = etag.to_str().expect("ASCII etag");
        let response = get_if_none_match(&router, route, tag).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{route}");
        assert_eq!(response.headers().get(header::ETAG), Some(etag), "{route}");
        assert_eq!(header_str(&response, &header::AGE), "5", "{route}");
        assert_eq!(
            header_str(&response, &header::CACHE_CONTROL),
            "max-age=30",
            "{route}"
        );
        assert!(
            response.headers().get(header::CONTENT_TYPE).is_none(),
            "{route}: a 304 has no content type"
        );
        assert!(body_bytes(response).await.is_empty(), "{route}");
    }
}

#[tokio::test(start_paused = true)]
async fn if_none_match_lists_weak_tags_and_star_match() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    let tag = sections.dashboard.etag().to_str().expect("ASCII etag");
    let other = sections.products.etag().to_str().expect("ASCII etag");

    let matching = [
        format!("\"1-0000000000000000\", {tag}"),
        format!("{other},{tag} , \"zzz\""),
        format!("W/{tag}"),
        format!("\"nope\", W/{tag}"),
        "*".to_owned(),
    ];
    for value in &matching {
        let response = get_if_none_match(&router, "/dashboard", value).await;
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{value}");
        assert!(body_bytes(response).await.is_empty(), "{value}");
    }

    // Several If-None-Match fields count as one list.
    let response = send(
        &router,
        Method::GET,
        "/dashboard",
        &[
            (header::IF_NONE_MATCH, "\"nope\""),
            (header::IF_NONE_MATCH, tag),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test(start_paused = true)]
async fn other_etags_get_the_full_body() {
    let (cache, router) = service();
    let sections = load(&cache, 1);
    let tag = sections.dashboard.etag().to_str().expect("ASCII etag");
    // The same tag without its quotes, a tag of another section, a prefix.
    let unquoted = tag.trim_matches('"').to_owned();
    let prefix = format!("{}\"", &tag[..tag.len() - 2]);
    let other = sections.historical.etag().to_str().expect("ASCII etag");

    for value in [
        "\"1-0000000000000000\"",
        other,
        unquoted.as_str(),
        prefix.as_str(),
        "W/\"x\"",
    ] {
        let response = get_if_none_match(&router, "/dashboard", value).await;
        assert_eq!(response.status(), StatusCode::OK, "{value}");
        assert_eq!(
            response.headers().get(header::ETAG),
            Some(sections.dashboard.etag())
        );
        assert!(
            body_bytes(response).await == *sections.dashboard.body(),
            "{value}: full body expected"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_swap_changes_etag_and_body_between_requests() {
    let (cache, router) = service();
    let first = load(&cache, 1);
    let old_tag = first.dashboard.etag().to_str().expect("ASCII etag");
    let before = get(&router, "/dashboard").await;
    assert_eq!(
        before.headers().get(header::ETAG),
        Some(first.dashboard.etag())
    );
    assert!(body_bytes(before).await == *first.dashboard.body());

    advance(Duration::from_secs(30)).await;
    let second = load(&cache, 2);
    assert_ne!(first.dashboard.etag(), second.dashboard.etag());
    assert!(first.dashboard.body() != second.dashboard.body());

    // The client's cached copy is now outdated: full body, new tag, fresh times.
    let after = get_if_none_match(&router, "/dashboard", old_tag).await;
    assert_eq!(after.status(), StatusCode::OK);
    assert_eq!(
        after.headers().get(header::ETAG),
        Some(second.dashboard.etag())
    );
    assert_eq!(header_str(&after, &header::AGE), "0");
    assert_eq!(header_str(&after, &header::CACHE_CONTROL), "max-age=30");
    assert!(body_bytes(after).await == *second.dashboard.body());

    let new_tag = second.dashboard.etag().to_str().expect("ASCII etag");
    let revalidated = get_if_none_match(&router, "/dashboard", new_tag).await;
    assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);

    // ETags come from the content: a section the refresh did not change keeps
    // its tag, so clients' cached copies of it stay valid.
    assert!(first.historical.body() == second.historical.body());
    assert_eq!(first.historical.etag(), second.historical.etag());
    let historical_tag = first.historical.etag().to_str().expect("ASCII etag");
    let unchanged = get_if_none_match(&router, "/historical", historical_tag).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    let status = body_json(get(&router, "/snapshot").await).await;
    assert_eq!(status["generation"], 2);
}

// ---------------------------------------------------------------------------
// Unknown routes and methods
// ---------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn unknown_routes_get_a_json_404() {
    let (cache, router) = service();
    load(&cache, 1);
    for path in ["/", "/nope", "/dashboard/extra", "/DASHBOARD"] {
        let message =
            expect_api_error(get(&router, path).await, StatusCode::NOT_FOUND, "not_found").await;
        assert!(message.contains(path), "{path}: {message}");
    }
}

#[tokio::test(start_paused = true)]
async fn wrong_methods_get_a_json_405_with_allow() {
    let (cache, router) = service();
    load(&cache, 1);
    for (method, path) in [
        (Method::POST, "/dashboard"),
        (Method::DELETE, "/dashboard"),
        (Method::PUT, "/products"),
        (Method::POST, "/readyz"),
    ] {
        let response = send(&router, method.clone(), path, &[]).await;
        let allow = header_str(&response, &header::ALLOW).to_owned();
        let allowed: Vec<&str> = allow.split(',').map(str::trim).collect();
        assert!(allowed.contains(&"GET"), "{method} {path}: Allow: {allow}");
        assert!(allowed.contains(&"HEAD"), "{method} {path}: Allow: {allow}");
        assert!(
            !allowed.contains(&method.as_str()),
            "{method} {path}: Allow: {allow}"
        );
        let message = expect_api_error(
            response,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        )
        .await;
        assert!(
            message.contains(method.as_str()),
            "{method} {path}: {message}"
        );
    }
}
