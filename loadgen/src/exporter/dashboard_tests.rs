//! profiles/grafana/clw-loadtest.json reads what clw-cli exports: every
//! metric its PromQL selects is one of [`FAMILIES`] (a histogram through its
//! `_bucket`, `_sum` or `_count` series), and every family is on it.

use std::collections::BTreeSet;

use prometheus::proto::MetricType;
use promql_parser::parser::{self, Expr};
use promql_parser::util::{walk_expr, ExprVisitor};
use serde_json::Value;

use super::families::FAMILIES;

const DASHBOARD: &str = include_str!("../../../profiles/grafana/clw-loadtest.json");

/// Every `expr` string anywhere in the dashboard.
fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => exprs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| exprs(i, out)),
        _ => {}
    }
}

/// Grafana's variables as values PromQL parses.
fn expand(expr: &str) -> String {
    expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "1m")
        .replace("$__range", "1h")
        .replace("\"$instance\"", "\".*\"")
}

#[derive(Default)]
struct Selected(BTreeSet<String>);

impl ExprVisitor for Selected {
    type Error = String;
    fn pre_visit(&mut self, e: &Expr) -> Result<bool, String> {
        let vs = match e {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &ms.vs,
            _ => return Ok(true),
        };
        let name = vs
            .name
            .clone()
            .ok_or_else(|| format!("a selector without a metric name: {vs}"))?;
        self.0.insert(name);
        Ok(true)
    }
}

/// The family a series name belongs to, if clw-cli exports it.
fn family_of(series: &str) -> Option<&'static str> {
    FAMILIES.iter().find_map(|(name, kind, _)| {
        let matches = series == *name
            || (*kind == MetricType::HISTOGRAM
                && ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| series.strip_suffix(s) == Some(name)));
        matches.then_some(*name)
    })
}

#[test]
fn every_metric_the_dashboard_queries_is_exported_and_every_one_is_shown() {
    let dashboard: Value = serde_json::from_str(DASHBOARD).expect("the dashboard is JSON");
    let mut all = Vec::new();
    exprs(&dashboard["panels"], &mut all);
    assert!(all.len() >= 10, "{} queries", all.len());
    let mut selected = Selected::default();
    for expr in &all {
        let ast = parser::parse(&expand(expr)).unwrap_or_else(|e| panic!("{expr}: {e}"));
        walk_expr(&mut selected, &ast).unwrap();
    }
    // The instance picker's query (Grafana's label_values, not PromQL).
    let picker = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["definition"].as_str())
        .filter_map(|d| d.strip_prefix("label_values(")?.split(',').next())
        .map(str::to_string);
    selected.0.extend(picker);
    let unknown: Vec<&String> = selected
        .0
        .iter()
        .filter(|s| family_of(s).is_none())
        .collect();
    assert!(
        unknown.is_empty(),
        "the dashboard queries metrics clw-cli does not export: {unknown:?}"
    );
    let shown: BTreeSet<&str> = selected.0.iter().filter_map(|s| family_of(s)).collect();
    let missing: Vec<&str> = FAMILIES
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| !shown.contains(name))
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn a_misspelt_metric_is_caught() {
    assert_eq!(
        family_of("clw_loadtest_requests_total"),
        Some("clw_loadtest_requests_total")
    );
    assert_eq!(
        family_of("clw_loadtest_request_duration_seconds_bucket"),
        Some("clw_loadtest_request_duration_seconds")
    );
    assert_eq!(family_of("clw_loadtest_request_total"), None);
    assert_eq!(
        family_of("clw_loadtest_requests_total_count"),
        None,
        "not a histogram"
    );
    let mut s = Selected::default();
    let ast = parser::parse(&expand(
        "sum(rate(clw_loadtest_request_total{instance=~\"$instance\"}[$__rate_interval]))",
    ))
    .unwrap();
    walk_expr(&mut s, &ast).unwrap();
    assert_eq!(
        s.0.into_iter().collect::<Vec<_>>(),
        ["clw_loadtest_request_total"]
    );
}
