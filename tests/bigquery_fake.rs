//! Live mode against a scripted stand-in for the BigQuery REST API, for
//! what the emulator cannot do: refuse a query over the cost cap (the
//! emulator reports 0 bytes and ignores `maximumBytesBilled`) and answer
//! "job not complete". The fake records every request, so these tests also
//! check what each query carries: the cap, the labels, the parameters.

#![cfg(feature = "bigquery")]

mod support;

use axum::http::StatusCode;
use serde_json::json;
use support::bigquery::fake::{
    FakeBigQuery, Recorded, canned, fake_config, result_page, section_of,
};
use support::shop::{BOUND, PAGE_SIZE, builder, refresh, refresher};
use tokio::time::timeout;
use warmcache::SnapshotSource;

#[tokio::test]
async fn a_query_over_the_cost_cap_is_a_refresh_error_and_every_query_carries_cap_and_labels() {
    // BigQuery's answer to a query that would bill more than maximumBytesBilled.
    let fake = FakeBigQuery::start(Box::new(|request, _| {
        let section = section_of(request);
        if section == "historical" {
            let message = "Query exceeded limit for bytes billed: 52428800. 104857600 or higher required.";
            (
                StatusCode::BAD_REQUEST,
                json!({ "error": { "code": 400, "message": message, "status": "INVALID_ARGUMENT",
                        "errors": [{ "message": message, "domain": "global", "reason": "bytesBilledLimitExceeded" }] } }),
            )
        } else {
            (StatusCode::OK, canned(&section, &section))
        }
    }))
    .await;
    let source = builder(fake_config(&fake)).build().await.expect("builds");
    let (refresher, cache) = refresher(source.clone(), BOUND);
    let error = refresh(&refresher).await.expect_err("over the cap");
    assert_eq!(
        error.to_string(),
        "historical query failed: over the cost cap of 52428800 bytes (BQ_MAXIMUM_BYTES_BILLED): \
         Query exceeded limit for bytes billed: 52428800. 104857600 or higher required."
    );
    assert!(cache.load().data.is_none(), "nothing swapped in");
    assert!(
        !refresher.is_finished(),
        "an error, not a crash: the refresher keeps going"
    );

    let queries: Vec<Recorded> = fake
        .requests()
        .into_iter()
        .filter(|r| r.job.is_none())
        .collect();
    let mut sections: Vec<String> = queries.iter().map(section_of).collect();
    sections.sort();
    assert_eq!(
        sections,
        ["dashboard", "historical", "products"],
        "three queries, concurrently"
    );
    for query in &queries {
        let body = &query.body;
        assert_eq!(body["maximumBytesBilled"], "52428800", "{body}");
        assert_eq!(body["labels"]["app"], "warmcache");
        assert_eq!(body["useLegacySql"], false);
        assert_eq!(body["parameterMode"], "NAMED");
        assert_eq!(body["maxResults"], PAGE_SIZE);
        let parameters: Vec<&str> = body["queryParameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        let expected: &[&str] = match section_of(query).as_str() {
            "dashboard" => &["today", "top_products"],
            "historical" => &["today", "days", "months"],
            _ => &["product_limit"],
        };
        assert_eq!(parameters, expected, "{body}");
        if parameters.contains(&"today") {
            assert_eq!(
                body["queryParameters"][0]["parameterValue"]["value"],
                "2026-03-02"
            );
            assert_eq!(body["queryParameters"][0]["parameterType"]["type"], "DATE");
        }
    }
}

#[tokio::test]
async fn a_job_that_is_not_complete_is_polled_until_it_is() {
    // jobs.query answers "not complete"; getQueryResults answers "not
    // complete" once more, then the rows.
    let fake = FakeBigQuery::start(Box::new(|request, seen| match &request.job {
        None => {
            let section = section_of(request);
            (StatusCode::OK, result_page(&section, false, &[], &[]))
        }
        Some(job) => {
            let polls = seen.iter().filter(|r| r.job.as_ref() == Some(job)).count();
            if polls == 0 {
                (StatusCode::OK, result_page(job, false, &[], &[]))
            } else {
                (StatusCode::OK, canned(job, job))
            }
        }
    }))
    .await;
    // Handles are registered with the builder: under a local recorder here.
    let recorder = warmcache::metrics::prometheus_builder()
        .expect("buckets")
        .build_recorder();
    let rendered = recorder.handle();
    let builder = ::metrics::with_local_recorder(&recorder, || builder(fake_config(&fake)));
    let source = builder.build().await.expect("builds");
    let data = timeout(BOUND, source.fetch())
        .await
        .expect("bounded")
        .expect("fetches after polling");
    let text = rendered.render();
    for line in [
        r#"warmcache_bigquery_queries_total{section="dashboard",result="ok"} 1"#,
        r#"warmcache_bigquery_queries_total{section="products",result="error"} 0"#,
        r#"warmcache_bigquery_bytes_processed_total{section="products"} 1234"#,
        r#"warmcache_bigquery_query_duration_seconds_count{section="historical"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert_eq!(data.dashboard.kpis.today.revenue, 12.5);
    assert_eq!(data.products.items[0].price, 7.875);
    assert_eq!(
        data.products.items[0].currency, "USD",
        "NULL currency: the configured one"
    );
    assert_eq!(
        data.products.items[0].updated_at,
        "2026-01-02T03:04:05.123456Z"
    );
    assert_eq!(data.historical.daily.len(), 365);
    let polls = fake.requests().iter().filter(|r| r.job.is_some()).count();
    assert_eq!(polls, 6, "two polls for each of the three jobs");
    let stats = source.stats();
    assert_eq!(stats.products.last_bytes_processed, Some(1_234));
    assert_eq!(stats.queries(), 3);
}
