//! The gate's result as people read it: the console lines and a Markdown
//! table (for `--summary-md` and a CI job's summary page).

use std::fmt::Write;

use clw_run::baseline::{Comparison, GateMetric};

use super::GateResult;
use crate::escape::{md_cell, printable};

/// A figure in its metric's unit: bytes as MiB/KiB, rates and times plain.
pub(super) fn figure(metric: &str, value: f64) -> String {
    match GateMetric::from_name(metric) {
        Some(GateMetric::PeakRssBytes | GateMetric::PeakAllocatedBytes) => {
            clw_run::analysis::human_bytes(value)
        }
        Some(GateMetric::RetainedBytesPerLogin) => format!("{value:.1} B"),
        Some(GateMetric::P99Ms) => format!("{value:.2} ms"),
        Some(GateMetric::ThroughputRps) => format!("{value:.0}/s"),
        Some(GateMetric::ErrorRate) => format!("{:.3}%", value * 100.0),
        None => format!("{value}"),
    }
}

fn change(c: &Comparison) -> String {
    match c.change {
        Some(ch) => format!("{:+.1}%", ch * 100.0),
        None => "n/a".into(),
    }
}

fn allowed(c: &Comparison) -> String {
    let name = c.metric.as_str();
    let dir = if c.metric.higher_is_worse() {
        "≤"
    } else {
        "≥"
    };
    format!("{dir} {}", figure(name, c.bound))
}

fn actual(c: &Comparison) -> String {
    c.actual
        .map_or_else(|| "missing".into(), |a| figure(c.metric.as_str(), a))
}

fn threshold_actual(t: &clw_run::ThresholdResult) -> String {
    t.actual_shown("missing")
}

fn verdict(passed: Option<bool>) -> &'static str {
    match passed {
        Some(true) => "PASS",
        Some(false) => "FAIL",
        None => "n/a",
    }
}

/// What the gate prints.
pub(super) fn console(r: &GateResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "gate: {} run(s) against {}",
        r.runs.len(),
        r.baseline_path.display()
    );
    for w in &r.setup_warnings {
        let _ = writeln!(out, "  warning: setup differs from the baseline's: {w}");
    }
    for (dir, why) in &r.run_failures {
        let _ = writeln!(out, "  FAIL run {dir}: {why}");
    }
    for (tag, t) in &r.thresholds {
        let _ = writeln!(
            out,
            "  {} threshold {} (actual {}){}",
            verdict(t.passed),
            t.expr,
            threshold_actual(t),
            if tag.is_empty() {
                String::new()
            } else {
                format!(" [{tag}]")
            }
        );
    }
    for c in &r.comparisons {
        let _ = writeln!(
            out,
            "  {} {:<24} baseline {:>12}  run {:>12}  {:>7}  allowed {}",
            verdict(Some(c.passed)),
            c.metric.as_str(),
            figure(c.metric.as_str(), c.baseline),
            actual(c),
            change(c),
            allowed(c)
        );
    }
    let _ = writeln!(out, "gate {}", if r.passed() { "PASSED" } else { "FAILED" });
    printable(&out)
}

/// The Markdown table: thresholds, then baseline metrics.
pub(super) fn table(r: &GateResult) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### clw memory gate: {}\n",
        if r.passed() { "passed" } else { "FAILED" }
    );
    for w in &r.setup_warnings {
        let _ = writeln!(
            out,
            "> warning: setup differs from the baseline's: {}\n",
            md_cell(w)
        );
    }
    for (dir, why) in &r.run_failures {
        let _ = writeln!(out, "> **run {} failed**: {}\n", md_cell(dir), md_cell(why));
    }
    let _ = writeln!(
        out,
        "| check | baseline | run | change | allowed | result |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
    for (tag, t) in &r.thresholds {
        let _ = writeln!(
            out,
            "| threshold {}{} | | {} | | | {} |",
            md_cell(&t.expr),
            if tag.is_empty() {
                String::new()
            } else {
                format!(" ({})", md_cell(tag))
            },
            md_cell(&threshold_actual(t)),
            verdict(t.passed)
        );
    }
    for c in &r.comparisons {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {} | {} |",
            c.metric.as_str(),
            figure(c.metric.as_str(), c.baseline),
            actual(c),
            change(c),
            allowed(c),
            verdict(Some(c.passed))
        );
    }
    out
}
