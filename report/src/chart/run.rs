//! The four charts of one run: memory, session cache, throughput, latency.
//! A chart with no data for this service (the session cache of a service
//! that exports no clw-auth session metrics) is left out, and
//! [`left_out`] says why.

use super::panel::{Line, Marker, Panel};
use super::*;
use crate::loaded::LoadedRun;
use crate::samples;

/// All charts of `run`, in page order, each panel marked where the load's
/// stages begin and end.
pub(crate) fn specs(run: &LoadedRun) -> Vec<ChartSpec<'_>> {
    let mut specs = vec![memory(run)];
    if has_cache_figures(run) {
        specs.push(cache(run));
    }
    specs.extend([throughput(run), latency(run)]);
    let boundaries = crate::stages::boundaries(&run.stages);
    for panel in specs.iter_mut().flat_map(|s| s.panels.iter_mut()) {
        panel.boundaries = boundaries.clone();
    }
    specs
}

/// The samples hold a session count or an eviction count: the service
/// exports clw-auth's session-cache metrics.
fn has_cache_figures(run: &LoadedRun) -> bool {
    let s = &run.samples;
    s.sessions.iter().chain(&s.evictions).any(Option::is_some)
}

/// One line per chart [`specs`] left out, saying why.
pub(crate) fn left_out(run: &LoadedRun) -> Vec<String> {
    if has_cache_figures(run) || run.samples.t_s.is_empty() {
        return Vec::new();
    }
    vec!["The session cache chart is left out because this service exported no session-cache metrics (clw-auth's clw_session_cache_size and clw_session_cache_evictions_total): samples.csv has no session or eviction count.".into()]
}

fn line<'a>(
    label: &str,
    t: &'a [f64],
    values: &'a crate::samples::Column,
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
pub(crate) fn oom_marker(run: &LoadedRun, label_prefix: &str, color: RGBColor) -> Option<Marker> {
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
fn warm_up_shade(run: &LoadedRun) -> Option<(f64, f64, String)> {
    let label = if run.stages.is_empty() {
        "ramp-up"
    } else {
        "until peak load (not judged)"
    };
    run.ramp_up_s().map(|r| (0.0, r, label.to_string()))
}

fn memory(run: &LoadedRun) -> ChartSpec<'_> {
    let s = &run.samples;
    let t = s.t_s.as_slice();
    let mut p = panel(
        "Server memory",
        "MiB",
        vec![
            line(&samples::memory_label(s), t, &s.rss, MIB, BLUE),
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
    run: &'a LoadedRun,
    caption: &str,
    y_desc: &str,
    line_label: &str,
    values: &'a crate::samples::Column,
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

fn cache(run: &LoadedRun) -> ChartSpec<'_> {
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

/// Where the server died: the OOM-kill marker, or for another death "server
/// died at"; none while it lived.
fn death_marker(run: &LoadedRun) -> Option<Marker> {
    oom_marker(run, "", DARK_RED).or_else(|| {
        let at = run.death_at()?;
        Some(Marker {
            x: at,
            label: format!("server died at {}", format_duration(at)),
            color: DARK_RED,
        })
    })
}

/// Colours of the error kinds' lines, most frequent kind first.
const KIND_COLORS: [RGBColor; 6] = [RED, ORANGE, PURPLE, BROWN, BLUE, GREEN];

/// Requests per second and failures per interval by kind. Both are the
/// requests sent while the server lived, as the key figures are: those
/// sent after its death are named in the errors panel's caption, not drawn.
fn throughput(run: &LoadedRun) -> ChartSpec<'_> {
    let (t, rps, from) = run.throughput();
    let mut throughput = panel(
        "Throughput",
        "requests/s",
        vec![line("requests/s", t, rps, 1.0, GREEN)],
        &format!("no throughput in {from}"),
    );
    // Throughput sits high once ramped up: keep its legend low.
    throughput.legend_at = SeriesLabelPosition::LowerMiddle;
    let mut errors = match &run.errors {
        Some(e) => {
            let lines = e
                .kinds
                .iter()
                .zip(KIND_COLORS.iter().cycle())
                .map(|((kind, series), color)| line(kind, &e.t_s, series, 1.0, *color))
                .collect();
            // An empty `kinds` still spans the run: draw the `all` zeros.
            let lines = if e.kinds.is_empty() {
                vec![line("errors", &e.t_s, &e.all, 1.0, RED)]
            } else {
                lines
            };
            panel(
                "Errors by kind",
                "errors per interval",
                lines,
                "no errors.csv rows",
            )
        }
        None => panel(
            "Errors",
            "errors per interval",
            vec![line(
                "errors",
                &run.samples.t_s,
                &run.samples.errors,
                1.0,
                RED,
            )],
            "no error counts in samples.csv",
        ),
    };
    // summary.json's count, else (a killed clw-cli) errors.csv's.
    let after_death = run
        .after_death()
        .map(|d| d.failed)
        .or_else(|| run.errors.as_ref().map(|e| e.after_death))
        .filter(|n| *n > 0);
    if let Some(n) = after_death {
        errors.caption = format!(
            "Errors by kind; after death: {} requests failed, not counted",
            crate::format::count(Some(n as f64))
        );
    }
    errors.counts = true;
    let mut panels = vec![throughput, errors];
    for p in &mut panels {
        p.shade = warm_up_shade(run);
        p.markers.extend(death_marker(run));
    }
    ChartSpec {
        name: "throughput",
        title: "Throughput and errors",
        panels,
    }
}

fn latency(run: &LoadedRun) -> ChartSpec<'_> {
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
