//! The deployment reads what this crate writes: the alarms of `template.yaml` and the dashboard
//! in `infra/dashboards/` must name the product metrics exactly as they are emitted, in the
//! namespace the functions are given, without dimensions.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use crate::{NAMESPACE, NAMESPACE_ENV, PRODUCT_METRICS};

/// How the template and the dashboard spell the namespace of the product metrics.
const TEMPLATE_NAMESPACE: &str = "!Ref MetricsNamespace";
const DASHBOARD_NAMESPACE: &str = "${MetricsNamespace}";

fn repo_file(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn known() -> BTreeSet<&'static str> {
    PRODUCT_METRICS.iter().map(|(name, _)| *name).collect()
}

/// `(namespace, metric name)` of every alarm metric, relying on the template's convention that
/// `Namespace:` comes before `MetricName:` in each metric.
fn template_alarm_metrics(template: &str) -> Vec<(String, String)> {
    let mut namespace = String::new();
    let mut found = Vec::new();
    for line in template.lines().map(str::trim) {
        if let Some(ns) = line.strip_prefix("Namespace:") {
            namespace = ns.trim().to_owned();
        } else if let Some(name) = line.strip_prefix("MetricName:") {
            found.push((namespace.clone(), name.trim().to_owned()));
        }
    }
    found
}

/// The value of `Default:` of a parameter, found by its two-space indented name.
fn parameter_default(template: &str, parameter: &str) -> Option<String> {
    let header = format!("  {parameter}:");
    let mut lines = template.lines().skip_while(|l| *l != header).skip(1);
    lines
        .by_ref()
        .take_while(|l| l.starts_with("    ") || l.trim().is_empty())
        .find_map(|l| {
            l.trim()
                .strip_prefix("Default:")
                .map(|v| v.trim().to_owned())
        })
}

#[test]
fn the_alarms_should_name_only_emitted_metrics_in_the_functions_namespace() {
    let template = repo_file("template.yaml");
    let product: Vec<String> = template_alarm_metrics(&template)
        .into_iter()
        .filter(|(ns, _)| ns == TEMPLATE_NAMESPACE)
        .map(|(_, name)| name)
        .collect();
    let known = known();
    for name in &product {
        assert!(
            known.contains(name.as_str()),
            "template.yaml alarms on unknown metric {name}"
        );
    }
    for name in ["task_failed", "task_completed", "task_needs_review"] {
        assert!(
            product.iter().any(|n| n == name),
            "the failure rate alarm needs {name}"
        );
    }
    for (ns, name) in template_alarm_metrics(&template) {
        assert!(
            ns == TEMPLATE_NAMESPACE || ns.starts_with("AWS/"),
            "metric {name} in namespace {ns:?}: product metrics use {TEMPLATE_NAMESPACE}"
        );
    }
}

#[test]
fn the_functions_should_get_the_namespace_the_alarms_read() {
    let template = repo_file("template.yaml");
    assert_eq!(
        parameter_default(&template, "MetricsNamespace").as_deref(),
        Some(NAMESPACE)
    );
    assert!(template.contains(&format!("{NAMESPACE_ENV}: {TEMPLATE_NAMESPACE}")));
}

#[test]
fn the_dashboard_should_show_every_product_metric_without_dimensions() {
    let body: Value = serde_json::from_str(&repo_file("infra/dashboards/pithy-jaunt.json"))
        .expect("the dashboard is JSON");
    let known = known();
    let mut shown = BTreeSet::new();
    let widgets = body["widgets"].as_array().expect("widgets");
    for widget in widgets {
        let Some(metrics) = widget["properties"]["metrics"].as_array() else {
            continue;
        };
        for entry in metrics {
            let entry = entry.as_array().expect("a metric is an array");
            // Metric math over the metrics beside it (a rate) names no metric of its own.
            if entry.len() == 1 && entry[0].get("expression").is_some() {
                continue;
            }
            let namespace = entry[0].as_str().expect("a namespace");
            let name = entry[1].as_str().expect("a metric name");
            if namespace != DASHBOARD_NAMESPACE {
                assert!(
                    namespace.starts_with("AWS/"),
                    "metric {name} in namespace {namespace}: product metrics use {DASHBOARD_NAMESPACE}"
                );
                continue;
            }
            assert!(
                known.contains(name),
                "the dashboard shows unknown metric {name}"
            );
            let rest = &entry[2..];
            assert!(
                rest.is_empty() || (rest.len() == 1 && rest[0].is_object()),
                "product metric {name} is emitted without dimensions: {entry:?}"
            );
            shown.insert(name);
        }
    }
    let missing: Vec<_> = known.difference(&shown).collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}
