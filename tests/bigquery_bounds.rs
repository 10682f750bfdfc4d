//! Live mode under a BigQuery that is slow or silent: abandoned jobs are
//! cancelled (`jobs.cancel`, seen by the fake), and every HTTP call, the
//! token fetch included, is bounded by `BQ_HTTP_TIMEOUT_MS`.
//!
//! The fake (`support::bigquery::fake`) records `jobs.cancel` calls and can
//! hang. Tests wait for what the fake sees, never for a time; the only
//! clock is the bound under test (paused where no cancel has to travel).

#![cfg(feature = "bigquery")]

mod support;

use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::bigquery::Proxy;
use support::bigquery::fake::{
    FakeBigQuery, Responder, canned, fake_config, hang, held, result_page, section_of,
};
use support::shop::{BOUND, builder, refresher};
use support::temp_dir;
use tokio::time::timeout;
use warmcache::{BigQueryConfig, BigQuerySource, Credentials, SnapshotSource, SourceError};

/// A short HTTP bound, so hangs end quickly.
const HTTP_TIMEOUT: Duration = Duration::from_millis(300);

/// `section`'s `jobs.query` answers "not complete" (job `<section>-job`)
/// and its polls hang; the other sections answer at once.
fn one_running(section: &'static str) -> Responder {
    Box::new(move |request, _| match &request.job {
        None if section_of(request) == section => (
            StatusCode::OK,
            result_page(&format!("{section}-job"), false, &[], &[]),
        ),
        None => {
            let other = section_of(request);
            (StatusCode::OK, canned(&other, &other))
        }
        Some(_) => hang(),
    })
}

fn config(fake: &FakeBigQuery) -> BigQueryConfig {
    BigQueryConfig {
        http_timeout: HTTP_TIMEOUT,
        ..fake_config(fake)
    }
}

#[tokio::test]
async fn a_refresh_timeout_cancels_the_job_it_abandons() {
    let fake = FakeBigQuery::start(one_running("historical")).await;
    let recorder = warmcache::metrics::prometheus_builder()
        .expect("buckets")
        .build_recorder();
    let rendered = recorder.handle();
    // Long HTTP bound: only the refresh timeout (300 ms) ends the fetch.
    let config = BigQueryConfig {
        http_timeout: BOUND,
        ..fake_config(&fake)
    };
    let builder = ::metrics::with_local_recorder(&recorder, || builder(config));
    let source = builder.build().await.expect("builds");
    // The first fetch starts at once, and the refresh timeout drops it.
    let (_refresher, _cache) = refresher(source, Duration::from_millis(300));
    let cancels = timeout(BOUND, fake.cancels(1))
        .await
        .expect("the abandoned job is cancelled");
    assert_eq!(cancels.len(), 1, "{cancels:?}");
    assert_eq!(cancels[0].job.as_deref(), Some("historical-job"));
    assert!(
        cancels[0].query.contains("location=US"),
        "the job's location goes with the cancel: {}",
        cancels[0].query
    );
    let text = rendered.render();
    for line in [
        r#"warmcache_bigquery_jobs_cancelled_total{section="historical"} 1"#,
        r#"warmcache_bigquery_jobs_cancelled_total{section="dashboard"} 0"#,
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in:\n{text}");
    }
}

#[tokio::test]
async fn shutdown_cancels_the_job_of_the_fetch_it_stops() {
    let fake = FakeBigQuery::start(one_running("dashboard")).await;
    let source = builder(BigQueryConfig {
        http_timeout: BOUND,
        ..fake_config(&fake)
    })
    .build()
    .await
    .expect("builds");
    let (refresher, _cache) = refresher(source, BOUND);
    // The first fetch has sent its three queries; dashboard's job runs on.
    timeout(BOUND, fake.received(3))
        .await
        .expect("the first fetch starts");
    refresher.shutdown().await;
    assert_eq!(cancelled_jobs(&fake, 1).await, ["dashboard-job"]);
}

/// historical's `jobs.query` answers `failure`, products' answers
/// `products` (and its polls hang), dashboard's completes at once.
fn historical_fails(failure: (StatusCode, Value), products: (StatusCode, Value)) -> Responder {
    Box::new(move |request, _| {
        let section = section_of(request);
        match (&request.job, section.as_str()) {
            (None, "historical") => failure.clone(),
            (None, "products") => products.clone(),
            (None, _) => (StatusCode::OK, canned(&section, &section)),
            (Some(_), _) => hang(),
        }
    })
}

/// One fetch from `fake` with a long HTTP bound, which must fail.
async fn failed_fetch(fake: &FakeBigQuery) -> SourceError {
    let source = builder(BigQueryConfig {
        http_timeout: BOUND,
        ..fake_config(fake)
    })
    .build()
    .await
    .expect("builds");
    timeout(BOUND, source.fetch())
        .await
        .expect("the failure ends the fetch")
        .expect_err("historical fails")
}

/// The ids of the first `count` jobs the fake was asked to cancel.
async fn cancelled_jobs(fake: &FakeBigQuery, count: usize) -> Vec<String> {
    timeout(BOUND, fake.cancels(count))
        .await
        .expect("the abandoned job is cancelled")
        .into_iter()
        .filter_map(|c| c.job)
        .collect()
}

#[tokio::test]
async fn a_failed_sibling_cancels_the_query_still_running() {
    let invalid = "Unrecognized name: nope";
    let fake = FakeBigQuery::start(historical_fails(
        (
            StatusCode::BAD_REQUEST,
            json!({ "error": { "code": 400, "message": invalid, "status": "INVALID_ARGUMENT",
                    "errors": [{ "message": invalid, "reason": "invalidQuery" }] } }),
        ),
        (StatusCode::OK, result_page("products-job", false, &[], &[])),
    ))
    .await;
    let error = failed_fetch(&fake).await;
    assert!(
        matches!(
            error,
            SourceError::Query {
                section: "historical",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(cancelled_jobs(&fake, 1).await, ["products-job"]);
}

#[tokio::test]
async fn a_job_whose_first_answer_comes_after_the_fetch_ended_is_cancelled() {
    // products' `jobs.query` answer is held until historical has failed
    // the fetch: the job exists, but no future is left to read its id.
    let fake = FakeBigQuery::start(historical_fails(
        (
            StatusCode::SERVICE_UNAVAILABLE,
            json!({ "error": { "code": 503, "message": "backend error", "status": "UNAVAILABLE" } }),
        ),
        held((StatusCode::OK, result_page("late-products-job", false, &[], &[]))),
    ))
    .await;
    let error = failed_fetch(&fake).await;
    assert!(matches!(error, SourceError::Unavailable(_)), "{error}");
    fake.release();
    assert_eq!(cancelled_jobs(&fake, 1).await, ["late-products-job"]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_endpoint_makes_fetch_fail_with_a_timeout() {
    let fake = FakeBigQuery::start(Box::new(|_, _| hang())).await;
    let source = builder(config(&fake)).build().await.expect("builds");
    let error = timeout(BOUND, source.fetch())
        .await
        .expect("fetch is bounded by BQ_HTTP_TIMEOUT_MS")
        .expect_err("nothing answered");
    assert!(
        matches!(error, SourceError::Timeout { call: "jobs.query", after, .. } if after == HTTP_TIMEOUT),
        "{error}"
    );
    assert!(error.to_string().contains("BQ_HTTP_TIMEOUT_MS"), "{error}");
}

#[tokio::test]
async fn a_poll_that_hangs_times_out_and_cancels_its_job() {
    let fake = FakeBigQuery::start(one_running("products")).await;
    let source = builder(config(&fake)).build().await.expect("builds");
    let error = timeout(BOUND, source.fetch())
        .await
        .expect("fetch is bounded by BQ_HTTP_TIMEOUT_MS")
        .expect_err("the poll never answers");
    assert!(
        matches!(
            error,
            SourceError::Timeout {
                section: "products",
                call: "getQueryResults",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(cancelled_jobs(&fake, 1).await, ["products-job"]);
}

#[tokio::test]
async fn start_up_against_a_silent_token_endpoint_is_bounded() {
    // A service-account key whose token endpoint accepts and never answers.
    let silent = Proxy::start("127.0.0.1:9".to_owned()).await;
    silent.hang();
    let dir = temp_dir("bq-key");
    let pem = dir.join("key.pem");
    let made = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&pem)
        .output()
        .expect("the openssl CLI must be installed");
    assert!(made.status.success(), "{made:?}");
    let key = json!({
        "type": "service_account",
        "project_id": "test-proj",
        "private_key_id": "k1",
        "private_key": std::fs::read_to_string(&pem).expect("pem"),
        "client_email": "warmcache@test-proj.iam.gserviceaccount.com",
        "token_uri": format!("http://{}/token", silent.host()),
    });
    let key_file = dir.join("key.json");
    std::fs::write(&key_file, key.to_string()).expect("write the key");
    let config = BigQueryConfig {
        credentials: Credentials::KeyFile(key_file),
        http_timeout: HTTP_TIMEOUT,
        ..BigQueryConfig::new("test-proj", "shop")
    };

    let source = timeout(BOUND, BigQuerySource::from_config(&config))
        .await
        .expect("building the client is bounded")
        .expect("builds: the token is fetched with the first query");
    let error = timeout(BOUND, source.fetch())
        .await
        .expect("the first query, token fetch included, is bounded")
        .expect_err("no token");
    assert!(
        matches!(
            error,
            SourceError::Timeout {
                call: "jobs.query",
                ..
            }
        ),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
