//! Proof that `dashboards/` works against the real thing: every expression
//! of the Grafana dashboard and of the Prometheus rules returns data from a
//! real Prometheus scraping the real service.
//!
//! [`dashboard_and_rules_against_a_real_prometheus`] starts a `redis-server`
//! (tests/support), the `warmcache` binary (API and metrics on port 0, a 1 s
//! TTL, every third mock refresh failing) and Debian's `prometheus` (scraping
//! every second, `dashboards/rules.yml` loaded), all on loopback ports and
//! owned by the test: each is killed when its handle drops, also on a panic.
//! It drives traffic that moves every metric of the contract (snapshot 200s
//! and 304s, 404s, L1 and L2 hits and misses, a loaded profile, remote and
//! local invalidations, a corrupt value), kills Redis and drives more, then
//! evaluates every dashboard expression (with the template variables
//! substituted as Grafana does when "All" is selected) and every rule
//! expression through `/api/v1/query`. An expression that returns nothing,
//! or only NaN, fails the test.
//!
//! Alert expressions return data only while their condition holds, so:
//! - the alerts whose condition the test causes ([`INDUCED`]: refresh errors,
//!   Redis killed, an erasure during the outage, a corrupt value) must return
//!   data as written, and Prometheus must show them pending or firing;
//! - every alert is also evaluated with `bool` added to each comparison
//!   (`a > b` becomes `a > bool b`): that returns a 0/1 sample for every
//!   series the comparison sees, so it proves the alert's underlying series
//!   exist, carry matching labels on both sides (a label mismatch would make
//!   the alert silent forever) and are evaluated, without the condition. The
//!   others ([`NOT_INDUCED`]) are proven that way; `dashboards/rules.test.yml`
//!   shows each alert firing on its condition and silent otherwise.
//!
//! Every wait is bounded; a missing `prometheus` binary fails with a hint
//! (`.ci/run` installs it).
//!
//! The static checks of the same files: tests/prometheus_files.rs.

mod prometheus;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use prometheus::BOUND;
use prometheus::expressions::*;
use prometheus::http::*;
use prometheus::process::*;
use serde_json::Value;
use support::RedisServer;

/// JSON bodies of the keyed routes, as a Node service writes them.
fn age_json(id: &str, verified: bool) -> String {
    format!(
        r#"{{"customerId":"{id}","verified":{verified},"method":"id_document","verifiedAt":1767225600000}}"#
    )
}

/// Traffic with Redis up: every route, both tiers, loads, invalidations.
fn drive_healthy_traffic(service: &Service, redis: &RedisServer) {
    for path in ["/dashboard", "/historical", "/products"] {
        let first = service.expect("GET", path, "", 200);
        let etag = first
            .header("etag")
            .unwrap_or_else(|| panic!("{path}: no ETag"))
            .to_owned();
        let again = service.call("GET", path, &[("If-None-Match", &etag)], "");
        assert_eq!(again.status, 304, "{path} revalidated");
    }
    for path in ["/snapshot", "/healthz"] {
        service.expect("GET", path, "", 200);
    }
    service.expect("GET", "/no-such-route", "", 404);
    service.expect("POST", "/dashboard", "", 405);

    let mut foreign = redis
        .client()
        .get_connection_with_timeout(BOUND)
        .expect("a foreign Redis client");
    let mut foreign_set = |key: &str, value: &str| {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .query::<()>(&mut foreign)
            .expect("foreign SET");
    };

    // Age verification: a write, L1 hits, a miss in both tiers (404).
    service.expect(
        "PUT",
        "/age-verification/cust-1",
        &age_json("cust-1", true),
        200,
    );
    service.settle_in_l1("/age-verification/cust-1");
    for _ in 0..5 {
        service.expect("GET", "/age-verification/cust-1", "", 200);
    }
    service.expect("GET", "/age-verification/nobody", "", 404);
    // A record another writer stored: in Redis, not in this L1: an L2 hit.
    foreign_set("age_verification:cust-2", &age_json("cust-2", true));
    service.expect_tier("/age-verification/cust-2", "l2");
    // Another writer changes cust-1: Redis pushes the key (a remote
    // invalidation) and the next reads see the new value.
    foreign_set("age_verification:cust-1", &age_json("cust-1", false));
    let deadline = Instant::now() + BOUND;
    while !service
        .expect("GET", "/age-verification/cust-1", "", 200)
        .text()
        .contains(r#""verified":false"#)
    {
        assert!(
            Instant::now() < deadline,
            "the change of cust-1 never reached this instance"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // A value that is not JSON: counted as corrupt, never served.
    foreign_set("age_verification:corrupt-1", "not json");
    service.expect("GET", "/age-verification/corrupt-1", "", 502);
    // An erasure Redis confirms (a local invalidation).
    service.expect("DELETE", "/age-verification/cust-2", "", 204);
    service.expect("GET", "/age-verification/cust-2", "", 404);

    // Profiles: the mock loader, then L1; an update written through.
    service.expect_tier("/customers/p-1/profile", "loader");
    service.settle_in_l1("/customers/p-1/profile");
    let profile = r#"{"customerId":"p-2","name":"Ada Lovelace","email":"ada@example.com","tier":"gold","marketingOptIn":false,"updatedAt":1767225600000}"#;
    service.expect("PUT", "/customers/p-2/profile", profile, 200);
    service.expect("PUT", "/customers/p-2/profile", "{", 400);

    // Jobs: a write, L1 hits, a miss.
    let job = r#"{"jobId":"job-1","status":"waiting","addedAt":1767225600000}"#;
    service.expect("PUT", "/jobs/job-1", job, 200);
    service.expect("GET", "/jobs/job-none", "", 404);
    service.settle_in_l1("/jobs/job-1");
    for _ in 0..5 {
        service.expect("GET", "/jobs/job-1", "", 200);
        service.expect("GET", "/customers/p-1/profile", "", 200);
    }
}

/// A real BullMQ queue and worker run jobs: events followed, final
/// statuses recorded, answers from BullMQ and from reasoning_job, a long
/// poll that runs out.
fn drive_bullmq_traffic(service: &Service, redis: &RedisServer) {
    use support::bullmq::{QUEUE, add_jobs};
    let mut worker = support::node::NodeProcess::start(
        "bullmq.js",
        redis.port(),
        &[("BULLMQ_CMD", "worker"), ("QUEUE", QUEUE)],
    );
    let mut until = |wanted: &dyn Fn(&Value) -> bool| loop {
        let line = worker.next_json().expect("the BullMQ worker runs");
        if wanted(&line) {
            break;
        }
    };
    until(&|line| line["ready"] == true);
    add_jobs(
        redis.port(),
        &serde_json::json!([
            { "name": "ok", "data": { "n": 2 }, "opts": { "jobId": "e2e-ok" } },
            { "name": "flaky", "opts": { "jobId": "e2e-failed" } },
            { "name": "ok", "opts": { "jobId": "e2e-delayed", "delay": 600000 } },
        ]),
    );
    until(&|line| line["event"] == "completed" && line["id"] == "e2e-ok");
    until(&|line| line["event"] == "failed" && line["id"] == "e2e-failed");
    let delayed = service.expect("GET", "/jobs/e2e-delayed", "", 200);
    assert_eq!(delayed.header("x-warmcache-source"), Some("bullmq"));
    let etag = delayed.header("etag").expect("an ETag").to_owned();
    let expired = service.call(
        "GET",
        "/jobs/e2e-delayed?waitMs=50",
        &[("If-None-Match", &etag)],
        "",
    );
    assert_eq!(expired.status, 304);
    for _ in 0..3 {
        service.expect("GET", "/jobs/e2e-delayed", "", 200);
        service.expect("GET", "/jobs/e2e-ok", "", 200);
        service.expect("GET", "/jobs/e2e-failed", "", 200);
    }
}

/// Keyed traffic while Redis is down: reads only Redis can answer fail, a
/// profile still comes from its loader, writes and erasures fail.
fn drive_outage_traffic(service: &Service, round: usize) {
    for i in 0..5 {
        service.expect(
            "GET",
            &format!("/age-verification/outage-{round}-{i}"),
            "",
            503,
        );
        service.expect("GET", &format!("/jobs/outage-{round}-{i}"), "", 503);
        service.expect_tier(&format!("/customers/outage-{round}-{i}/profile"), "loader");
    }
    service.expect(
        "PUT",
        "/age-verification/cust-3",
        &age_json("cust-3", true),
        503,
    );
    service.expect("DELETE", "/age-verification/cust-1", "", 503);
}

#[test]
fn dashboard_and_rules_against_a_real_prometheus() {
    let mut redis = RedisServer::start();
    let service = Service::start(redis.port());
    let deadline = Instant::now() + BOUND;
    while service.call("GET", "/readyz", &[], "").status != 200 {
        assert!(
            Instant::now() < deadline,
            "/readyz not 200 after {BOUND:?}\n{}",
            service.process.tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let prometheus = Prometheus::start(service.metrics);
    prometheus.wait_for_data(r#"up{job="warmcache"} == 1"#);

    drive_healthy_traffic(&service, &redis);
    drive_bullmq_traffic(&service, &redis);
    // Every metric of the contract is exported (a clear message here beats a
    // list of empty panels later).
    let exposition = http(service.metrics, "GET", "/metrics", &[], b"")
        .expect("GET /metrics")
        .text();
    for name in contract_names().iter().filter(|n| !n.ends_with("_sum")) {
        assert!(
            exposition.contains(name.as_str()),
            "/metrics lacks {name}:\n{exposition}"
        );
    }
    prometheus.wait_for_data(r#"warmcache_snapshot_refresh_total{result="error"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_invalidations_total{origin="remote"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_requests_total{tier="l2", result="hit"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_bullmq_events_total{event="completed"} > 0"#);
    prometheus.wait_for_data(r#"warmcache_job_reads_total{source="bullmq"} > 0"#);

    // The L2 outage.
    redis.kill();
    let mut round = 0;
    drive_outage_traffic(&service, round);
    prometheus.wait_for_data("warmcache_invalidation_connected == 0");
    prometheus
        .wait_for_data(r#"warmcache_invalidation_failures_total{cache="age_verification"} > 0"#);

    // Rule and query results lag the scrapes by a second or two: check
    // everything, and until it all holds (or the bound passes) drive another
    // round of outage traffic, so the induced conditions stay true, and
    // check again.
    let dashboard = dashboard();
    let (records, alerts) = rule_names_in_file();
    let deadline = Instant::now() + BOUND;
    loop {
        let failures = check_everything(&prometheus, &dashboard, &records, &alerts);
        if failures.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} checks still fail after {BOUND:?}:\n{}\n\n{}\n\n{}",
            failures.len(),
            failures.join("\n"),
            service.process.tail(),
            prometheus.process.tail()
        );
        round += 1;
        drive_outage_traffic(&service, round);
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Everything the dashboard and the rules ask of Prometheus; the failures.
fn check_everything(
    prometheus: &Prometheus,
    dashboard: &Value,
    records: &BTreeSet<String>,
    alerts: &BTreeSet<String>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (place, expr) in dashboard_queries(dashboard) {
        failures.extend(data_problem(prometheus, &place, &expr));
    }
    for (name, selector, label) in variable_queries(dashboard) {
        let expr = format!("count by ({label}) ({selector})");
        failures.extend(data_problem(
            prometheus,
            &format!("variable ${name}"),
            &expr,
        ));
    }

    let loaded = prometheus.rules();
    let loaded_names: BTreeMap<&str, &LoadedRule> =
        loaded.iter().map(|r| (r.name.as_str(), r)).collect();
    let in_file: BTreeSet<&str> = records.iter().chain(alerts).map(String::as_str).collect();
    if loaded.len() != in_file.len()
        || loaded_names.keys().copied().collect::<BTreeSet<_>>() != in_file
    {
        failures.push(format!(
            "Prometheus loaded {:?}, rules.yml has {in_file:?}",
            loaded.iter().map(|r| &r.name).collect::<Vec<_>>()
        ));
    }
    for rule in &loaded {
        if rule.health != "ok" {
            failures.push(format!("rule {}: health {:?}", rule.name, rule.health));
        }
        if rule.kind == "recording" {
            let what = format!("recording rule {}", rule.name);
            failures.extend(data_problem(prometheus, &what, &rule.query));
            failures.extend(data_problem(prometheus, &what, &rule.name));
            continue;
        }
        // Every alert: its series exist and match (see the module doc).
        let (bool_form, comparisons) = with_bool(&rule.query);
        if comparisons == 0 {
            failures.push(format!(
                "alert {}: no comparison in `{}`",
                rule.name, rule.query
            ));
        }
        match prometheus.query(&bool_form) {
            Ok(samples) if !samples.is_empty() => {}
            other => failures.push(format!(
                "alert {} underlying series: `{bool_form}` gave {other:?}",
                rule.name
            )),
        }
        // Induced alerts: the expression as written returns data, and
        // Prometheus's rule manager has it pending or firing.
        if let Some((_, how)) = INDUCED.iter().find(|(name, _)| *name == rule.name) {
            match prometheus.query(&rule.query) {
                Ok(samples) if !samples.is_empty() => {}
                other => failures.push(format!(
                    "induced alert {} ({how}): `{}` gave {other:?}",
                    rule.name, rule.query
                )),
            }
            if !matches!(rule.state.as_str(), "pending" | "firing") {
                failures.push(format!(
                    "induced alert {} ({how}) is {:?}",
                    rule.name, rule.state
                ));
            }
        }
    }
    failures
}

/// Why `expr` fails the dashboard's standard: an error, no data, or only
/// NaN (a ratio of 0/0 shows as empty as no data).
fn data_problem(prometheus: &Prometheus, what: &str, expr: &str) -> Option<String> {
    match prometheus.query(expr) {
        Err(e) => Some(format!("{what}: `{expr}` failed: {e}")),
        Ok(samples) if samples.is_empty() => Some(format!("{what}: `{expr}` returned nothing")),
        Ok(samples) if samples.iter().all(|s| s.value.is_nan()) => {
            Some(format!("{what}: `{expr}` returned only NaN: {samples:?}"))
        }
        Ok(_) => None,
    }
}
