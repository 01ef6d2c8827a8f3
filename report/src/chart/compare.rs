//! Comparison charts: one line per run on a shared time axis.

use super::panel::{HLine, Line, Panel};
use super::*;
use crate::loaded::LoadedRun;
use crate::samples;

/// Run colours, in order; runs beyond the palette reuse it.
const PALETTE: [RGBColor; 6] = [RED, BLUE, GREEN, PURPLE, ORANGE, BROWN];

pub(crate) fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Memory, throughput and p99 latency of every run, overlaid.
pub(crate) fn specs(runs: &[LoadedRun]) -> Vec<ChartSpec<'_>> {
    vec![memory(runs), throughput(runs), latency(runs)]
}

fn overlay<'a>(
    runs: &'a [LoadedRun],
    caption: &str,
    y_desc: &str,
    empty: &str,
    pick: impl Fn(&'a LoadedRun) -> Option<(&'static str, &'a [f64], &'a crate::samples::Column, f64)>,
) -> Panel<'a> {
    let mut lines = Vec::new();
    let mut markers = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        if let Some((what, t, values, scale)) = pick(run) {
            if values.iter().any(Option::is_some) {
                lines.push(Line {
                    label: format!("{} {what}", run.name),
                    t,
                    values,
                    scale,
                    color: color(i),
                    dashed: false,
                });
            }
        }
        markers.extend(run::oom_marker(run, &format!("{}: ", run.name), color(i)));
    }
    Panel {
        caption: caption.to_string(),
        y_desc: y_desc.to_string(),
        lines,
        hlines: Vec::new(),
        markers,
        shade: None,
        empty_message: empty.to_string(),
        legend_at: SeriesLabelPosition::UpperLeft,
        counts: false,
        boundaries: Vec::new(),
    }
}

fn memory(runs: &[LoadedRun]) -> ChartSpec<'_> {
    let mut p = overlay(
        runs,
        "Server memory",
        "MiB",
        "no memory samples in any run",
        |r| {
            samples::primary_memory(&r.samples)
                .map(|(what, s)| (what, r.samples.t_s.as_slice(), s, MIB))
        },
    );
    let limits: Vec<(usize, f64)> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.limit_bytes().map(|l| (i, l)))
        .collect();
    let shared = limits.windows(2).all(|w| w[0].1 == w[1].1);
    if shared {
        if let Some((_, limit)) = limits.first() {
            p.hlines.extend(limit_lines(*limit, DARK_RED));
        }
    } else {
        for (i, limit) in limits {
            p.hlines.push(HLine {
                y: limit * MIB,
                label: format!("{} limit {}", runs[i].name, format_bytes(limit)),
                color: color(i),
                dashed: true,
            });
        }
    }
    ChartSpec {
        name: "memory",
        title: "Memory over time",
        panels: vec![p],
    }
}

fn throughput(runs: &[LoadedRun]) -> ChartSpec<'_> {
    let mut p = overlay(
        runs,
        "Throughput",
        "requests/s",
        "no throughput in any run",
        |r| {
            let (t, rps, _) = r.throughput();
            Some(("requests/s", t, rps, 1.0))
        },
    );
    p.legend_at = SeriesLabelPosition::LowerMiddle;
    ChartSpec {
        name: "throughput",
        title: "Throughput",
        panels: vec![p],
    }
}

fn latency(runs: &[LoadedRun]) -> ChartSpec<'_> {
    let p = overlay(
        runs,
        "p99 latency (all steps)",
        "ms",
        "no latency rows in any run",
        |r| Some(("p99", r.latency.t_s.as_slice(), &r.latency.p99, 1.0)),
    );
    ChartSpec {
        name: "latency",
        title: "p99 latency",
        panels: vec![p],
    }
}
