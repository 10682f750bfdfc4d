//! Metrics rendered from a local Prometheus recorder (never the global one):
//! names, labels, HELP lines and values after known events.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use metrics_exporter_prometheus::{PrometheusHandle, PrometheusRecorder};
use support::RedisServer;
use tower::ServiceExt;
use warmcache::records::{
    AGE_VERIFICATION, AgeVerification, CUSTOMER_PROFILE, OtherFields, RecordTime, TimeFormat,
};
use warmcache::service::{AppState, app};
use warmcache::{MockSource, Mode, RedisHandle, Refresher, SnapshotCache, TieredCache, metrics};

fn recorder() -> (PrometheusRecorder, PrometheusHandle) {
    let recorder = metrics::prometheus_builder()
        .expect("buckets")
        .build_recorder();
    let handle = recorder.handle();
    (recorder, handle)
}

/// `name{labels}` → value, from the text format.
fn samples(rendered: &str) -> HashMap<String, f64> {
    rendered
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn value(rendered: &str, series: &str) -> f64 {
    *samples(rendered)
        .get(series)
        .unwrap_or_else(|| panic!("no series {series} in:\n{rendered}"))
}

fn record(id: &str) -> AgeVerification {
    AgeVerification {
        customer_id: id.to_owned(),
        verified: true,
        method: Some("id_document".to_owned()),
        verified_at: RecordTime::from_unix_ms(1, TimeFormat::Iso),
        date_of_birth: None,
        age_over: Some(18),
        other: OtherFields::new(),
    }
}

#[tokio::test]
async fn keyed_cache_events_are_counted_per_cache_tier_and_result() {
    let server = RedisServer::start();
    let (recorder, handle) = recorder();
    let (ages, profiles) = ::metrics::with_local_recorder(&recorder, || {
        metrics::describe();
        let redis = RedisHandle::connect_lazy(&server.config()).expect("settings");
        let ages: TieredCache<AgeVerification> = TieredCache::builder(AGE_VERIFICATION)
            .redis(redis.clone())
            .build()
            .expect("cache");
        let profiles: TieredCache<AgeVerification> = TieredCache::builder(CUSTOMER_PROFILE)
            .redis(redis)
            .build()
            .expect("cache");
        (ages, profiles)
    });

    // Before any event every series exists at 0.
    let before = handle.render();
    assert_eq!(
        value(
            &before,
            r#"warmcache_requests_total{cache="age_verification",tier="l1",result="hit"}"#
        ),
        0.0
    );
    assert_eq!(
        value(
            &before,
            r#"warmcache_l2_errors_total{cache="customer_profile",op="del"}"#
        ),
        0.0
    );

    ages.insert("a", record("a")).await.expect("stored");
    ages.get("a").await.expect("reads"); // L1 hit
    ages.get("a").await.expect("reads"); // L1 hit
    ages.get("missing").await.expect("reads"); // L1 miss, L2 miss
    ages.invalidate("a").await.expect("deleted");
    let loaded = profiles
        .get_or_load("p", |id| async move {
            Ok::<_, std::io::Error>(record(id.as_str()))
        })
        .await;
    loaded.expect("loads");
    let failed = profiles
        .get_or_load("q", |_| async {
            Err::<AgeVerification, _>(std::io::Error::other("down"))
        })
        .await;
    assert!(failed.is_err());
    let () = redis::AsyncCommands::set_ex(
        &mut server.foreign().await,
        "age_verification:bad",
        "{oops",
        60,
    )
    .await
    .expect("setex");
    assert!(ages.get("bad").await.is_err());

    let text = handle.render();
    let age = |tier: &str, result: &str| {
        value(
            &text,
            &format!(
                r#"warmcache_requests_total{{cache="age_verification",tier="{tier}",result="{result}"}}"#
            ),
        )
    };
    assert_eq!(age("l1", "hit"), 2.0);
    assert_eq!(age("l1", "miss"), 2.0, "`missing` and `bad`");
    assert_eq!(age("l2", "miss"), 1.0);
    assert_eq!(
        value(
            &text,
            r#"warmcache_invalidations_total{cache="age_verification",origin="local"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"warmcache_corrupt_values_total{cache="age_verification"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"warmcache_loads_total{cache="customer_profile",result="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"warmcache_loads_total{cache="customer_profile",result="error"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            r#"warmcache_load_duration_seconds_count{cache="customer_profile"}"#
        ),
        2.0
    );
    assert!(
        value(
            &text,
            r#"warmcache_l2_duration_seconds_count{cache="age_verification"}"#
        ) >= 2.0
    );
    assert!(
        text.contains(
            r#"warmcache_l2_duration_seconds_bucket{cache="age_verification",le="0.001"}"#
        ),
        "ms buckets"
    );
    for help in [
        "# HELP warmcache_requests_total Keyed cache lookups by tier",
        "# HELP warmcache_loads_total",
        "# HELP warmcache_load_duration_seconds",
        "# HELP warmcache_invalidations_total",
        "# HELP warmcache_corrupt_values_total",
        "# TYPE warmcache_requests_total counter",
        "# TYPE warmcache_load_duration_seconds histogram",
    ] {
        assert!(text.contains(help), "missing `{help}` in:\n{text}");
    }
}

#[tokio::test(start_paused = true)]
async fn refreshes_are_counted_and_timed() {
    let (recorder, handle) = recorder();
    let cache = SnapshotCache::new(Mode::Mock);
    let refresher = ::metrics::with_local_recorder(&recorder, || {
        metrics::describe();
        Refresher::builder()
            .ttl(Duration::from_secs(30))
            .jitter(0.0)
            .spawn(MockSource::new(1).fail_every(2), cache.clone())
    })
    .expect("valid");
    tokio::time::sleep(Duration::from_millis(1)).await; // first fetch: ok
    assert!(refresher.refresh_now().await.is_err()); // second: fails
    refresher.refresh_now().await.expect("third succeeds");

    let text = handle.render();
    assert_eq!(
        value(&text, r#"warmcache_snapshot_refresh_total{result="ok"}"#),
        2.0
    );
    assert_eq!(
        value(&text, r#"warmcache_snapshot_refresh_total{result="error"}"#),
        1.0
    );
    assert_eq!(
        value(&text, "warmcache_snapshot_refresh_duration_seconds_count"),
        3.0
    );
    assert!(
        text.contains(r#"warmcache_snapshot_refresh_duration_seconds_bucket{le="1"}"#),
        "second buckets"
    );
    assert!(text.contains("# HELP warmcache_snapshot_refresh_total Snapshot refreshes"));
}

#[tokio::test]
async fn http_requests_are_counted_by_route_template_and_status_class() {
    let (recorder, handle) = recorder();
    let router = ::metrics::with_local_recorder(&recorder, || {
        metrics::describe();
        app(AppState {
            snapshots: SnapshotCache::new(Mode::Mock),
            ttl: Duration::from_secs(30),
            max_staleness: Duration::from_secs(120),
            keyed: None,
        })
    });
    // Nested in a host's router, as `examples/embed_router.rs` does: its
    // requests count under warmcache's own templates too.
    let router = axum::Router::new()
        .nest("/cache", router.clone())
        .merge(router);
    for path in [
        "/healthz",
        "/cache/healthz",
        "/dashboard",
        "/jobs/j1",
        "/cache/jobs/j2",
        "/no-such-route",
    ] {
        let request = Request::builder()
            .uri(path)
            .body(Body::empty())
            .expect("request");
        router.clone().oneshot(request).await.expect("infallible");
    }
    let text = handle.render();
    let requests = |route: &str, class: &str| {
        value(
            &text,
            &format!(r#"warmcache_http_requests_total{{route="{route}",status_class="{class}"}}"#),
        )
    };
    assert_eq!(requests("/healthz", "2xx"), 2.0);
    assert_eq!(
        requests("/dashboard", "5xx"),
        1.0,
        "503 before the first load"
    );
    assert_eq!(
        requests("/jobs/{job_id}", "5xx"),
        2.0,
        "one series for every job id"
    );
    assert_eq!(requests("unmatched", "4xx"), 1.0);
    assert_eq!(
        requests("other", "2xx") + requests("other", "4xx") + requests("other", "5xx"),
        0.0,
        "every route is listed"
    );
    assert_eq!(
        value(
            &text,
            r#"warmcache_http_request_duration_seconds_count{route="/healthz"}"#
        ),
        2.0
    );
    assert!(!text.contains("j1"), "no raw path in any label");
}
