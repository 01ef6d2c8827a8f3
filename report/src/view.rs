//! The run page's view model: every figure already formatted, so templates
//! only lay out text.

use serde::Serialize;

use crate::chart::Written;
use crate::format::{self, DASH};
use crate::growth::Growth;
use crate::loaded::LoadedRun;
use crate::verdict::Banner;
use clw_run::{Model, Percentiles, RunSummary};

#[derive(Debug, Serialize)]
pub(crate) struct RunView {
    pub(crate) name: String,
    pub(crate) banner: Banner,
    pub(crate) figures: Vec<Figure>,
    pub(crate) notices: Vec<String>,
    pub(crate) charts: Vec<Written>,
    /// Why a chart is not on the page (no data for this service).
    pub(crate) left_out: Vec<String>,
    /// What clw-cli printed besides the figures: the server's death as it
    /// was told, the notes, an `--abort-on-fail` stop (summary.json).
    pub(crate) notes: Vec<String>,
    /// The heap growth section: sites and flame graph (`None`: no heap
    /// profiles and no `memory.growth_sites`).
    pub(crate) growth: Option<Growth>,
    pub(crate) steps: Vec<StepRow>,
    /// The table per stage (a load with `[[load.stages]]`); empty otherwise.
    pub(crate) stages: Vec<crate::stages::StageRow>,
    pub(crate) thresholds: Vec<ThresholdRow>,
    pub(crate) gate: Option<bool>,
    pub(crate) evidence: Vec<String>,
    pub(crate) errors_by: Vec<(String, String)>,
    pub(crate) setup: Vec<(String, String)>,
}

/// A key figure card: "Peak memory / 243 MiB / 95% of limit".
#[derive(Debug, Serialize)]
pub(crate) struct Figure {
    pub(crate) label: &'static str,
    pub(crate) value: String,
    pub(crate) note: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct StepRow {
    pub(crate) name: String,
    pub(crate) requests: String,
    pub(crate) errors: String,
    pub(crate) error_rate: String,
    pub(crate) p50: String,
    pub(crate) p90: String,
    pub(crate) p99: String,
    pub(crate) p999: String,
    pub(crate) max: String,
    pub(crate) total: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct ThresholdRow {
    /// The rule as written (`verdict != leak`).
    pub(crate) name: String,
    pub(crate) actual: String,
    pub(crate) passed: Option<bool>,
}

fn number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 => format::count(Some(v)),
        Some(v) => format!("{v:.2}"),
        None => DASH.into(),
    }
}

fn text(v: Option<&str>) -> String {
    v.filter(|s| !s.is_empty()).unwrap_or(DASH).to_string()
}

impl StepRow {
    fn new(
        name: &str,
        requests: Option<f64>,
        errors: Option<f64>,
        l: Option<&Percentiles>,
        total: bool,
    ) -> Self {
        let error_rate = match (requests, errors) {
            (Some(r), Some(e)) if r > 0.0 => format::percent(Some(e * 100.0 / r)),
            _ => DASH.into(),
        };
        StepRow {
            name: name.to_string(),
            requests: format::count(requests),
            errors: format::count(errors),
            error_rate,
            p50: format::ms(l.map(|l| l.p50)),
            p90: format::ms(l.map(|l| l.p90)),
            p99: format::ms(l.map(|l| l.p99)),
            p999: format::ms(l.map(|l| l.p999)),
            max: format::ms(l.map(|l| l.max)),
            total,
        }
    }
}

impl RunView {
    pub(crate) fn new(
        run: &LoadedRun,
        charts: Vec<Written>,
        growth: Option<Growth>,
        mut notices: Vec<String>,
    ) -> RunView {
        let s = run.summary.as_ref();
        notices.splice(0..0, run.notices.iter().cloned());
        RunView {
            name: run.name.clone(),
            banner: Banner::of(run),
            figures: figures(run),
            notices,
            charts,
            left_out: crate::chart::run::left_out(run),
            notes: s.map(console_notes).unwrap_or_default(),
            growth,
            steps: steps(run),
            stages: crate::stages::rows(&run.stages, s.is_some_and(|s| s.model == Model::Open)),
            thresholds: s
                .map(|s| {
                    s.thresholds
                        .iter()
                        .map(|t| ThresholdRow {
                            name: if t.expr.is_empty() {
                                format!("{} {} {}", t.name, t.op, number(t.limit))
                            } else {
                                t.expr.clone()
                            },
                            actual: t.actual_shown(DASH),
                            passed: t.passed,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            gate: s.and_then(|s| s.passed),
            evidence: run.memory().map(|m| m.evidence.clone()).unwrap_or_default(),
            errors_by: errors_by(run),
            setup: s.map(|s| setup(run, s)).unwrap_or_default(),
        }
    }
}

/// Errors by kind as the page lists them: the server's life's, then those
/// of requests sent after its death, marked as not counted.
fn errors_by(run: &LoadedRun) -> Vec<(String, String)> {
    let count = |n: &u64| format::count(Some(*n as f64));
    let life = run.requests().into_iter().flat_map(|r| &r.by_error);
    let dead = run.after_death().into_iter().flat_map(|d| &d.by_error);
    life.filter(|(_, n)| **n > 0)
        .map(|(k, n)| (k.clone(), count(n)))
        .chain(
            dead.filter(|(_, n)| **n > 0)
                .map(|(k, n)| (format!("{k} after death (not counted)"), count(n))),
        )
        .collect()
}

/// The lines the console printed under the figures, in its order: the
/// server's death (as printed under the progress line), the notes, the
/// reason the load was aborted.
fn console_notes(s: &clw_run::RunSummary) -> Vec<String> {
    let death = s.server.exit.as_ref().and_then(|e| e.message.as_deref());
    death
        .into_iter()
        .flat_map(str::lines)
        .map(String::from)
        .chain(s.notes.iter().cloned())
        .chain(
            s.aborted
                .iter()
                .map(|why| format!("--abort-on-fail: {why}")),
        )
        .collect()
}

/// The Requests card's note: failures, and the requests sent after the
/// server's death that no figure counts.
fn requests_note(run: &LoadedRun, total: Option<f64>, failed: Option<f64>) -> String {
    let mut note = match (total, failed) {
        (Some(t), Some(f)) if t > 0.0 => format!(
            "{} failed ({})",
            format::count(Some(f)),
            format::percent(Some(f * 100.0 / t))
        ),
        _ => String::new(),
    };
    if let Some(dead) = run.after_death().filter(|d| d.requests > 0) {
        if !note.is_empty() {
            note.push_str("; ");
        }
        note.push_str(&format!(
            "after death: {} more sent, {} failed, not counted",
            format::count(Some(dead.requests as f64)),
            format::count(Some(dead.failed as f64))
        ));
    }
    note
}

fn figures(run: &LoadedRun) -> Vec<Figure> {
    let s = run.finished();
    let memory = run.memory();
    let peak = run.peak_memory();
    let requests = run.requests();
    let (total, failed) = (
        requests.map(|r| r.total as f64),
        requests.map(|r| r.failed as f64),
    );
    let p99 = run.latency_ms().map(|l| l.p99);
    let cp99 = run.latency_corrected_ms().map(|l| l.p99);
    vec![
        Figure {
            label: "Peak memory",
            value: format::bytes(peak.map(|p| p.0)),
            note: match (run.peak_percent(), run.limit_bytes()) {
                (Some(pct), Some(limit)) => {
                    format!(
                        "{} of {}",
                        format::percent(Some(pct)),
                        format::format_bytes(limit)
                    )
                }
                _ => peak.map(|p| p.1.to_string()).unwrap_or_default(),
            },
        },
        Figure {
            label: "Memory growth",
            value: memory
                .and_then(|m| m.slope_bytes_per_s)
                .map(|b| format!("{}/min", format::format_bytes(b * 60.0)))
                .unwrap_or_else(|| DASH.into()),
            note: memory
                .and_then(|m| m.retained_bytes_per_session)
                .map(|b| format!("{} B retained per session", format::count(Some(b))))
                .unwrap_or_default(),
        },
        Figure {
            label: "Requests",
            value: format::count(total),
            note: requests_note(run, total, failed),
        },
        Figure {
            label: "Throughput",
            value: s
                .and_then(|s| s.throughput_rps)
                .map(|r| format!("{r:.0} req/s"))
                .unwrap_or_else(|| DASH.into()),
            note: match (s, run.after_death()) {
                (Some(s), Some(_)) => s
                    .life_s()
                    .map(|l| format!("over the server's life, {}", format::format_duration(l)))
                    .unwrap_or_default(),
                (s, _) => s
                    .and_then(|s| s.elapsed_s)
                    .map(|e| format!("over {}", format::format_duration(e)))
                    .unwrap_or_default(),
            },
        },
        Figure {
            label: "p99 latency",
            value: format::ms(p99),
            note: cp99
                .map(|c| format!("{} corrected", format::ms(Some(c))))
                .unwrap_or_else(|| "uncorrected".into()),
        },
    ]
}

fn steps(run: &LoadedRun) -> Vec<StepRow> {
    let Some(s) = run.finished() else {
        // Without a final summary.json the step names are known (from
        // latency.csv), their figures not.
        return run
            .latency
            .steps
            .iter()
            .map(|n| StepRow::new(n, None, None, None, false))
            .collect();
    };
    let count = |n: u64| Some(n as f64);
    let mut rows: Vec<StepRow> = s
        .steps
        .iter()
        .map(|(name, st)| {
            StepRow::new(
                name,
                count(st.requests),
                count(st.errors),
                st.latency_ms.as_ref(),
                false,
            )
        })
        .collect();
    rows.push(StepRow::new(
        "all steps",
        count(s.requests.total),
        count(s.requests.failed),
        s.latency_ms.as_ref(),
        true,
    ));
    if let Some(c) = s.latency_corrected_ms.as_ref() {
        rows.push(StepRow::new(
            "all steps, corrected",
            None,
            None,
            Some(c),
            true,
        ));
    }
    rows
}

// Long by design: one row per setup field of the run page, in display order.
fn setup(run: &LoadedRun, s: &RunSummary) -> Vec<(String, String)> {
    let given = |v: &str| (!v.is_empty()).then(|| v.to_string());
    let mut rows: Vec<(&str, String)> = Vec::new();
    let scenario = match (given(&s.scenario), given(&s.scenario_file)) {
        (Some(n), Some(f)) => format!("{n} ({f})"),
        (n, f) => text(n.or(f).as_deref()),
    };
    rows.push(("Scenario", scenario));
    let model = match (given(s.model.as_str()), s.arrival_rate) {
        (Some(m), Some(rate)) => format!("{m}, {rate} arrivals/s"),
        (m, _) => text(m.as_deref()),
    };
    rows.push(("Model", model));
    rows.push((
        "Concurrent users",
        number((s.concurrent_users > 0).then_some(s.concurrent_users as f64)),
    ));
    let duration = (s.duration_s > 0.0).then_some(s.duration_s);
    let duration = match (duration, Some(s.ramp_up_s).filter(|r| *r > 0.0)) {
        (Some(d), Some(r)) => format!(
            "{} (ramp-up {})",
            format::format_duration(d),
            format::format_duration(r)
        ),
        (d, _) => format::duration(d),
    };
    rows.push(("Duration", duration));
    rows.push(("Elapsed", format::duration(s.elapsed_s)));
    rows.push(("Started", text(Some(&s.started_at))));
    rows.push(("Target", text(Some(&s.target))));
    rows.push(("Metrics", text(s.metrics_url.as_deref())));
    let memory = run.memory();
    rows.push(("Memory limit", format::bytes(run.limit_bytes())));
    let server = &s.server;
    rows.push((
        "Limit enforced by",
        if run.server_known() {
            text(Some(server.limit_enforcement.as_str()))
        } else {
            "not spawned by clw-cli".into()
        },
    ));
    rows.push(("Server config", text(server.config.as_deref())));
    rows.push(("Server command", text(server.command.as_deref())));
    if let Some(exit) = &server.exit {
        let mut parts = Vec::new();
        if let Some(c) = exit.code {
            parts.push(format!("code {c}"));
        }
        if let Some(sig) = exit.signal {
            parts.push(format!("signal {sig} (exit {})", 128 + sig));
        }
        if exit.vanished {
            parts.push("the watched process vanished (exit status unknown)".into());
        }
        if let Some(at) = exit.at_s {
            parts.push(format!("at {}", format::format_duration(at)));
        }
        if exit.oom_killed {
            parts.push(
                if exit.emulated {
                    "OOM kill emulated by the watchdog"
                } else {
                    "OOM-killed"
                }
                .into(),
            );
        }
        rows.push((
            "Server exit",
            if parts.is_empty() {
                DASH.into()
            } else {
                parts.join(", ")
            },
        ));
    }
    if let Some(sources) = memory.map(|m| &m.sources) {
        let none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        let mut list = vec![
            format!("allocator: {}", none(&sources.allocator)),
            format!("cgroup: {}", none(&sources.cgroup)),
        ];
        if let Some(limit) = &sources.limit {
            list.push(format!("limit: {limit}"));
        }
        list.push(match &sources.rss_scope {
            Some(scope) => format!("rss: {} ({scope})", none(&sources.rss)),
            None => format!("rss: {}", none(&sources.rss)),
        });
        rows.push(("Memory sources", list.join(", ")));
    }
    let h = &s.host;
    let cpus = if h.cpus > 0 {
        format!("{} CPUs", h.cpus)
    } else {
        String::new()
    };
    let parts: Vec<String> = [h.hostname.clone(), cpus, h.os.clone()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect();
    if !parts.is_empty() {
        rows.push(("Host", parts.join(", ")));
    }
    rows.push(("clw version", text(Some(&s.clw_version))));
    rows.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}
