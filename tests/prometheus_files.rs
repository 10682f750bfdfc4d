//! Proof that `dashboards/` is well formed, without a server: the JSON
//! parses as an importable dashboard and every metric name either file uses
//! is one of the contract or a recording rule ([`dashboard_and_rules_are_well_formed`]),
//! and the `bool` rewrite the live test (tests/prometheus_e2e.rs) applies
//! to alert expressions touches comparisons only.

mod prometheus;
mod support;

use std::collections::BTreeSet;

use prometheus::expressions::*;

#[test]
fn dashboard_and_rules_are_well_formed() {
    let dashboard = dashboard();
    let schema = dashboard["schemaVersion"].as_u64().expect("schemaVersion");
    assert!((36..=41).contains(&schema), "schemaVersion {schema}");
    assert_eq!(dashboard["uid"], "warmcache");
    assert!(dashboard["id"].is_null(), "an exported dashboard has no id");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a Prometheus data-source variable"
    );

    let mut ids = BTreeSet::new();
    for panel in panels(&dashboard) {
        let title = panel["title"].as_str().unwrap_or_default();
        assert!(!title.is_empty(), "every panel has a title: {panel}");
        assert!(
            ids.insert(panel["id"].as_u64().expect("numeric id")),
            "duplicate id in {title:?}"
        );
        for key in ["h", "w", "x", "y"] {
            assert!(panel["gridPos"][key].is_u64(), "{title:?}: gridPos.{key}");
        }
        if panel["type"] == "row" {
            continue;
        }
        assert!(
            !panel["description"].as_str().unwrap_or_default().is_empty(),
            "{title:?} says what it means"
        );
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title:?}");
        let targets = panel["targets"].as_array().filter(|t| !t.is_empty());
        let mut refs = BTreeSet::new();
        for target in targets.unwrap_or_else(|| panic!("{title:?} has no query")) {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title:?}");
            assert!(
                refs.insert(target["refId"].to_string()),
                "{title:?}: duplicate refId"
            );
            assert!(
                !target["expr"].as_str().unwrap_or_default().is_empty(),
                "{title:?}: empty expr"
            );
        }
    }

    // Only variables the test (like Grafana) substitutes; none of Grafana's
    // own ($__rate_interval and friends), which Prometheus cannot evaluate.
    for (place, expr) in dashboard_queries(&dashboard) {
        assert!(!expr.contains('$'), "{place}: {expr}");
    }

    // Every name either file uses is of the contract or recorded in rules.yml,
    // and every metric of the contract shows up in one of them.
    let (records, alerts) = rule_names_in_file();
    assert!(
        records.len() >= 3 && alerts.len() >= 6,
        "{records:?} {alerts:?}"
    );
    let known: BTreeSet<String> = contract_names()
        .into_iter()
        .chain(records.iter().cloned())
        .collect();
    let in_dashboard = metric_names(DASHBOARD);
    let in_rules = metric_names(RULES);
    for name in in_dashboard.iter().chain(&in_rules) {
        assert!(
            known.contains(name),
            "{name} is neither a contract metric nor a recording rule"
        );
    }
    for name in PLAIN_METRICS.iter().chain(HISTOGRAMS) {
        assert!(
            in_dashboard
                .union(&in_rules)
                .any(|used| used.starts_with(name)),
            "{name} is on no panel and in no rule"
        );
    }
    assert!(
        records
            .iter()
            .all(|r| in_dashboard.contains(r) || in_rules.contains(r)),
        "unused recording rule"
    );

    // Each alert is classified for the end-to-end test.
    let classified: BTreeSet<String> = INDUCED
        .iter()
        .chain(NOT_INDUCED)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    assert_eq!(
        classified, alerts,
        "INDUCED and NOT_INDUCED together name every alert once"
    );
}

#[test]
fn bool_is_added_to_comparisons_only() {
    assert_eq!(with_bool("a > 0.5"), ("a > bool 0.5".to_owned(), 1));
    assert_eq!(with_bool("a >= bool 1"), ("a >= bool 1".to_owned(), 1));
    assert_eq!(
        with_bool(r#"x{a!="b", c=~"d>e"} > on (job) y"#),
        (r#"x{a!="b", c=~"d>e"} > bool on (job) y"#.to_owned(), 1)
    );
    assert_eq!(
        with_bool("r < 0.5 and on (job) sum(rate(l[5m])) > 1"),
        (
            "r < bool 0.5 and on (job) sum(rate(l[5m])) > bool 1".to_owned(),
            2
        )
    );
    assert_eq!(with_bool("g == 0"), ("g == bool 0".to_owned(), 1));
    assert_eq!(
        with_bool(r#"x{l="é\">"} < y"#),
        (r#"x{l="é\">"} < bool y"#.to_owned(), 1)
    );
    assert_eq!(with_bool("rate(x[1m])"), ("rate(x[1m])".to_owned(), 0));
}
