//! A load that changes over time (summary.json `stages[]`): the boundaries
//! drawn on every chart and the table per stage.
//!
//! The stages' times and targets are in summary.json from the load's start,
//! so a killed run has them; its per-stage figures (written only at the end)
//! are recomputed from latency.hlog and samples.csv with the same function
//! clw-cli runs (`clw_run::fill_stage_figures`).

use std::path::Path;

use serde::Serialize;

use crate::format::{self, DASH};
use clw_run::{RunSummary, StageSummary};

/// The run's stages, with figures: summary.json's, else recomputed.
pub(crate) fn load(
    dir: &Path,
    summary: Option<&RunSummary>,
    notices: &mut Vec<String>,
) -> Vec<StageSummary> {
    let Some(mut stages) = summary.and_then(|s| s.stages.clone()) else {
        return Vec::new();
    };
    if stages.iter().all(StageSummary::has_figures) {
        return stages;
    }
    let intervals = clw_run::read_hlog(&dir.join(clw_run::files::HLOG));
    let samples = clw_run::read_samples(&dir.join(clw_run::files::SAMPLES));
    match (intervals, samples) {
        (Ok((intervals, _)), Ok(samples)) => {
            clw_run::fill_stage_figures(&mut stages, &intervals, &samples.rows);
            notices.push(
                "per-stage figures recomputed from latency.hlog and samples.csv (summary.json has none)"
                    .into(),
            );
        }
        (Err(e), _) | (_, Err(e)) => {
            notices.push(format!("per-stage figures unknown: {e}"));
        }
    }
    stages
}

/// A vertical line on a chart where a stage begins (or the last one ends).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Boundary {
    pub(crate) x: f64,
    pub(crate) label: String,
}

/// Where to draw: the start of every stage after the first, and the end of
/// the last; a jump (zero-length stage) shares its line with the next.
pub(crate) fn boundaries(stages: &[StageSummary]) -> Vec<Boundary> {
    let mut out: Vec<Boundary> = Vec::new();
    let starts = stages
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, s)| (s.start_s, format!("S{}", i + 1)));
    let end = stages.last().map(|s| (s.end_s, "end".to_string()));
    for (x, label) in starts.chain(end) {
        match out.last_mut() {
            Some(last) if (last.x - x).abs() < 1e-9 => last.label = label,
            _ => out.push(Boundary { x, label }),
        }
    }
    out
}

/// One row of the stage table, formatted.
#[derive(Debug, Serialize)]
pub(crate) struct StageRow {
    pub(crate) name: String,
    pub(crate) time: String,
    pub(crate) load: String,
    pub(crate) requests: String,
    pub(crate) throughput: String,
    pub(crate) p99: String,
    pub(crate) peak_rss: String,
    pub(crate) peak_allocated: String,
    pub(crate) memory_slope: String,
}

/// A memory slope: `+12.5 KiB/s`, `-300 B/s`; unknown is a dash.
fn rate(v: Option<f64>) -> String {
    let Some(v) = v else { return DASH.into() };
    let sign = if v < 0.0 { "-" } else { "+" };
    let a = v.abs();
    if a >= 1024.0 * 1024.0 {
        format!("{sign}{:.1} MiB/s", a / (1024.0 * 1024.0))
    } else if a >= 1024.0 {
        format!("{sign}{:.1} KiB/s", a / 1024.0)
    } else {
        format!("{sign}{a:.0} B/s")
    }
}

/// The table: one row per stage, levels in users or iterations per second.
pub(crate) fn rows(stages: &[StageSummary], open: bool) -> Vec<StageRow> {
    let unit = if open { "/s" } else { " users" };
    let level = |v: f64| {
        if v.fract() == 0.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    };
    stages
        .iter()
        .enumerate()
        .map(|(i, s)| StageRow {
            name: format!("S{}", i + 1),
            time: format!(
                "{} – {}",
                format::format_duration(s.start_s),
                format::format_duration(s.end_s)
            ),
            load: if s.start_s == s.end_s {
                format!("jump to {}{unit}", level(s.target))
            } else if s.from == s.target {
                format!("hold {}{unit}", level(s.target))
            } else {
                format!("{} → {}{unit}", level(s.from), level(s.target))
            },
            requests: format::count(s.requests.map(|r| r as f64)),
            throughput: s
                .throughput_rps
                .map(|r| format!("{r:.1}/s"))
                .unwrap_or_else(|| DASH.into()),
            p99: format::ms(s.p99_ms),
            peak_rss: format::bytes(s.peak_rss_bytes.map(|b| b as f64)),
            peak_allocated: format::bytes(s.peak_allocated_bytes.map(|b| b as f64)),
            memory_slope: rate(s.memory_slope_bytes_per_s),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_mark_each_stage_start_and_the_end_merging_jumps() {
        let stages = [
            StageSummary::planned(0.0, 10.0, 0.0, 5.0),
            StageSummary::planned(10.0, 10.0, 5.0, 20.0),
            StageSummary::planned(10.0, 30.0, 20.0, 20.0),
        ];
        let b = boundaries(&stages);
        let got: Vec<(f64, &str)> = b.iter().map(|b| (b.x, b.label.as_str())).collect();
        assert_eq!(got, [(10.0, "S3"), (30.0, "end")]);
        let rows = rows(&stages, false);
        assert_eq!(
            rows.iter().map(|r| r.load.as_str()).collect::<Vec<_>>(),
            ["0 → 5 users", "jump to 20 users", "hold 20 users"]
        );
        assert_eq!(rows[0].requests, DASH, "no figures yet");
        assert_eq!(
            [
                Some(-300.0),
                Some(12.5 * 1024.0),
                Some(3.0 * 1024.0 * 1024.0),
                None
            ]
            .map(rate),
            ["-300 B/s", "+12.5 KiB/s", "+3.0 MiB/s", DASH]
        );
    }
}
