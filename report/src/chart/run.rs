//! The four charts of one run: memory, session cache, throughput, latency.

use super::panel::{Line, Marker, Panel};
use super::*;
use crate::run::Run;

/// All charts of `run`, in page order, each panel marked where the load's
/// stages begin and end.
pub(crate) fn specs(run: &Run) -> Vec<ChartSpec<'_>> {
    let mut specs = vec![memory(run), cache(run), throughput(run), latency(run)];
    let boundaries = crate::stages::boundaries(&run.stages);
    for panel in specs.iter_mut().flat_map(|s| s.panels.iter_mut()) {
        panel.boundaries = boundaries.clone();
    }
    specs
}

fn line<'a>(
    label: &str,
    t: &'a [f64],
    values: &'a crate::samples::Series,
    scale: f64,
    color: RGBColor,
) -> Line<'a> {
    Line {
        label: label.to_string(),
        t,
        values,
        scale,
        color,
        dashed: false,
    }
}

fn dashed(mut line: Line<'_>) -> Line<'_> {
    line.dashed = true;
    line
}

fn panel<'a>(caption: &str, y_desc: &str, lines: Vec<Line<'a>>, empty: &str) -> Panel<'a> {
    Panel {
        caption: caption.to_string(),
        y_desc: y_desc.to_string(),
        lines,
        hlines: Vec::new(),
        markers: Vec::new(),
        shade: None,
        empty_message: empty.to_string(),
        legend_at: SeriesLabelPosition::UpperLeft,
        counts: false,
        boundaries: Vec::new(),
    }
}

/// Where the server died, as a marker (when it was OOM-killed at a known time).
pub(crate) fn oom_marker(run: &Run, label_prefix: &str, color: RGBColor) -> Option<Marker> {
    let at = run.oom_kill()??;
    let emulated = run.oom_kill_emulated();
    let what = if emulated {
        "OOM kill (emulated)"
    } else {
        "OOM kill"
    };
    Some(Marker {
        x: at,
        label: format!("{label_prefix}{what} at {}", format_duration(at)),
        color,
    })
}

/// The span before memory is judged, shaded: the ramp-up, or with stages
/// the time until the load first reaches its peak.
fn warm_up_shade(run: &Run) -> Option<(f64, f64, String)> {
    let label = if run.stages.is_empty() {
        "ramp-up"
    } else {
        "until peak load (not judged)"
    };
    run.ramp_up_s().map(|r| (0.0, r, label.to_string()))
}

fn memory(run: &Run) -> ChartSpec<'_> {
    let s = &run.samples;
    let t = s.t_s.as_slice();
    let mut p = panel(
        "Server memory",
        "MiB",
        vec![
            line(&s.memory_label(), t, &s.rss, MIB, BLUE),
            line(
                "jemalloc allocated (from metrics)",
                t,
                &s.allocated,
                MIB,
                GREEN,
            ),
            line(
                "jemalloc resident (from metrics)",
                t,
                &s.resident,
                MIB,
                PURPLE,
            ),
            line("cgroup usage", t, &s.cgroup, MIB, BROWN),
        ],
        "no memory samples in samples.csv",
    );
    if let Some(limit) = run.limit_bytes() {
        p.hlines.extend(limit_lines(limit, RED));
    }
    p.markers.extend(oom_marker(run, "", DARK_RED));
    p.shade = warm_up_shade(run);
    ChartSpec {
        name: "memory",
        title: "Memory over time",
        panels: vec![p],
    }
}

/// One samples.csv column against time in a panel of its own, marked where
/// the server was OOM-killed. `line_label` names the column in the legend.
fn column_panel<'a>(
    run: &'a Run,
    caption: &str,
    y_desc: &str,
    line_label: &str,
    values: &'a crate::samples::Series,
    color: RGBColor,
    empty: &str,
) -> Panel<'a> {
    let t = run.samples.t_s.as_slice();
    let mut p = panel(
        caption,
        y_desc,
        vec![line(line_label, t, values, 1.0, color)],
        empty,
    );
    p.markers.extend(oom_marker(run, "", DARK_RED));
    p
}

fn cache(run: &Run) -> ChartSpec<'_> {
    let s = &run.samples;
    let mut panels = vec![
        column_panel(
            run,
            "Sessions in cache",
            "sessions",
            "sessions in cache",
            &s.sessions,
            BLUE,
            "no session counts in samples.csv",
        ),
        column_panel(
            run,
            "Evictions (cumulative, all causes)",
            "evictions",
            "evictions",
            &s.evictions,
            ORANGE,
            "no eviction counts in samples.csv",
        ),
    ];
    for p in &mut panels {
        p.counts = true;
    }
    ChartSpec {
        name: "cache",
        title: "Session cache",
        panels,
    }
}

fn throughput(run: &Run) -> ChartSpec<'_> {
    let s = &run.samples;
    let mut panels = vec![
        column_panel(
            run,
            "Throughput",
            "requests/s",
            "requests/s",
            &s.rps,
            GREEN,
            "no throughput in samples.csv",
        ),
        column_panel(
            run,
            "Errors",
            "errors per interval",
            "errors",
            &s.errors,
            RED,
            "no error counts in samples.csv",
        ),
    ];
    for p in &mut panels {
        p.shade = warm_up_shade(run);
    }
    panels[1].counts = true;
    // Throughput sits high once ramped up: keep its legend low.
    panels[0].legend_at = SeriesLabelPosition::LowerMiddle;
    ChartSpec {
        name: "throughput",
        title: "Throughput and errors",
        panels,
    }
}

fn latency(run: &Run) -> ChartSpec<'_> {
    let l = &run.latency;
    let t = l.t_s.as_slice();
    let mut p = panel(
        "Latency percentiles (all steps)",
        "ms",
        vec![
            line("p50", t, &l.p50, 1.0, GREEN),
            line("p90", t, &l.p90, 1.0, BLUE),
            line("p99", t, &l.p99, 1.0, ORANGE),
            line("max", t, &l.max, 1.0, RED),
            dashed(line("p50 corrected", t, &l.cp50, 1.0, GREEN)),
            dashed(line("p90 corrected", t, &l.cp90, 1.0, BLUE)),
            dashed(line("p99 corrected", t, &l.cp99, 1.0, ORANGE)),
            dashed(line("max corrected", t, &l.cmax, 1.0, RED)),
        ],
        "no latency rows (step `all`) in latency.csv",
    );
    p.markers.extend(oom_marker(run, "", DARK_RED));
    ChartSpec {
        name: "latency",
        title: "Latency percentiles",
        panels: vec![p],
    }
}
