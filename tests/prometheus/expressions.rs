//! The expressions of `dashboards/warmcache.json` and
//! `dashboards/rules.yml`, the metric names they use, and which alerts the
//! live test induces.

use std::collections::BTreeSet;

use serde_json::Value;

pub const DASHBOARD: &str = include_str!("../../dashboards/warmcache.json");
pub const RULES: &str = include_str!("../../dashboards/rules.yml");

/// Counters and gauges of the metric contract (`dashboards/README.md`).
pub const PLAIN_METRICS: &[&str] = &[
    "warmcache_requests_total",
    "warmcache_loads_total",
    "warmcache_invalidations_total",
    "warmcache_invalidation_failures_total",
    "warmcache_l2_errors_total",
    "warmcache_corrupt_values_total",
    "warmcache_invalidation_connected",
    "warmcache_snapshot_refresh_total",
    "warmcache_snapshot_age_seconds",
    "warmcache_snapshot_ttl_seconds",
    "warmcache_snapshot_max_staleness_seconds",
    "warmcache_snapshot_mode",
    "warmcache_http_requests_total",
    "warmcache_job_reads_total",
    "warmcache_bullmq_events_total",
    "warmcache_bullmq_follower_lag_events",
    "warmcache_bullmq_follower_reconnects_total",
    "warmcache_bullmq_follower_connected",
    "warmcache_bullmq_records_total",
    "warmcache_bullmq_malformed_jobs_total",
    "warmcache_job_waiters",
];
/// Histograms of the contract (exported as `_bucket`, `_sum`, `_count`).
pub const HISTOGRAMS: &[&str] = &[
    "warmcache_load_duration_seconds",
    "warmcache_l2_duration_seconds",
    "warmcache_snapshot_refresh_duration_seconds",
    "warmcache_http_request_duration_seconds",
];

/// Alerts whose condition this test causes, and how.
pub const INDUCED: &[(&str, &str)] = &[
    (
        "WarmcacheSnapshotRefreshFailing",
        "WARMCACHE_MOCK_FAIL_EVERY=3 fails a third of the refreshes",
    ),
    (
        "WarmcacheRedisUnreachable",
        "redis-server is killed while keyed traffic goes on",
    ),
    (
        "WarmcacheInvalidationListenerDisconnected",
        "redis-server is killed",
    ),
    (
        "WarmcacheErasureFailing",
        "DELETE /age-verification/... while Redis is down",
    ),
    (
        "WarmcacheCorruptValues",
        "another writer stores a value that is not JSON",
    ),
    (
        "WarmcacheBullmqFollowerDisconnected",
        "redis-server is killed while the follower reads the events stream",
    ),
];
/// Alerts proven only through their underlying series, and why.
pub const NOT_INDUCED: &[(&str, &str)] = &[
    (
        "WarmcacheSnapshotStale",
        "refreshes recover, so the data stays within its bound",
    ),
    (
        "WarmcacheInvalidationFailing",
        "the service invalidates only age verification over HTTP",
    ),
    (
        "WarmcacheHitRatioCollapsed",
        "it needs over 1 lookup/s for 5 minutes",
    ),
    (
        "WarmcacheBullmqFollowerLagging",
        "the follower keeps up with a few jobs",
    ),
    (
        "WarmcacheBullmqStatusNotRecorded",
        "final statuses are written while Redis is up",
    ),
    (
        "WarmcacheBullmqMalformedJobs",
        "the jobs are written by BullMQ itself",
    ),
];

pub fn dashboard() -> Value {
    serde_json::from_str(DASHBOARD).expect("dashboards/warmcache.json is JSON")
}

/// Every panel (rows' nested panels too), flattened.
pub fn panels(dashboard: &Value) -> Vec<&Value> {
    fn walk<'a>(panels: &'a Value, out: &mut Vec<&'a Value>) {
        for panel in panels.as_array().into_iter().flatten() {
            out.push(panel);
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// `$name` and `${name}` replaced by the value Grafana sends with "All"
/// selected (the variable's `allValue`), for every multi-value variable.
pub fn substitute(dashboard: &Value, expr: &str) -> String {
    let mut out = expr.to_owned();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(name), Some(all)) = (variable["name"].as_str(), variable["allValue"].as_str())
        {
            out = out
                .replace(&format!("${{{name}}}"), all)
                .replace(&format!("${name}"), all);
        }
    }
    out
}

/// (panel title and refId, expression with variables substituted).
pub fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in panels(dashboard) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap_or_default();
            let place = format!(
                "panel {:?} query {}",
                panel["title"].as_str().unwrap_or("?"),
                target["refId"]
            );
            queries.push((place, substitute(dashboard, expr)));
        }
    }
    queries
}

/// (variable name, selector, label) of each `label_values(selector, label)`
/// template variable.
pub fn variable_queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let Some(definition) = variable["definition"].as_str() else {
            continue;
        };
        let inner = definition
            .strip_prefix("label_values(")
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("unsupported variable query {definition:?}"));
        let (selector, label) = inner
            .rsplit_once(',')
            .expect("label_values(selector, label)");
        let name = variable["name"].as_str().unwrap_or_default().to_owned();
        out.push((
            name,
            substitute(dashboard, selector.trim()),
            label.trim().to_owned(),
        ));
    }
    out
}

/// `expr` with `bool` after every comparison operator outside label
/// matchers, ranges and strings, and how many it changed. A comparison with
/// `bool` returns 0 or 1 for every pair of series it compares instead of
/// dropping the false ones, so the result is not empty exactly when the
/// series under the alert exist and match.
pub fn with_bool(expr: &str) -> (String, usize) {
    let bytes = expr.as_bytes();
    // Bytes: everything inserted is ASCII, so the result stays UTF-8.
    let (mut out, mut changed, mut depth, mut quote) = (Vec::new(), 0, 0_i32, None::<u8>);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if let Some(q) = quote {
            if b == b'\\' && i + 1 < bytes.len() {
                out.extend_from_slice(&bytes[i..i + 2]);
                i += 2;
                continue;
            }
            if b == q {
                quote = None;
            }
        } else if matches!(b, b'"' | b'\'' | b'`') {
            quote = Some(b);
        } else if matches!(b, b'{' | b'[') {
            depth += 1;
        } else if matches!(b, b'}' | b']') {
            depth -= 1;
        } else if depth == 0 {
            let two = expr.get(i..i + 2).unwrap_or("");
            let op = if ["==", "!=", ">=", "<="].contains(&two) {
                Some(two)
            } else if matches!(b, b'>' | b'<') {
                Some(&expr[i..=i])
            } else {
                None
            };
            if let Some(op) = op {
                out.extend_from_slice(op.as_bytes());
                i += op.len();
                let rest = expr[i..].trim_start();
                let has_bool = rest.starts_with("bool")
                    && !rest[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
                if !has_bool {
                    out.extend_from_slice(b" bool");
                }
                changed += 1;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    let out = String::from_utf8(out).expect("only ASCII was inserted, at ASCII positions");
    (out, changed)
}

/// The names of `record:` and `alert:` rules in rules.yml, by kind.
pub fn rule_names_in_file() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut records = BTreeSet::new();
    let mut alerts = BTreeSet::new();
    for line in RULES.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- record:") {
            records.insert(name.trim().to_owned());
        } else if let Some(name) = line.strip_prefix("- alert:") {
            alerts.insert(name.trim().to_owned());
        }
    }
    (records, alerts)
}

/// Identifiers in `text` that look like warmcache metric names (raw or
/// recorded), skipping comments.
pub fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
            if word.starts_with("warmcache_") || word.contains(":warmcache_") {
                names.insert(word.trim_matches(':').to_owned());
            }
        }
    }
    names
}

pub fn contract_names() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = PLAIN_METRICS.iter().map(|n| (*n).to_owned()).collect();
    for h in HISTOGRAMS {
        for suffix in ["_bucket", "_sum", "_count"] {
            names.insert(format!("{h}{suffix}"));
        }
    }
    names
}
