//! The memory verdict: does the server leak, or does its memory stay bounded?
//!
//! Computed from samples.csv alone (plus the limit and ramp-up, which are in
//! summary.json), so a report or a gate can recompute it from a run folder:
//!
//! ```text
//! let series = Series::read(&dir.join("samples.csv"))?;
//! let report = analysis::analyze(&series, &AnalysisInput { limit_bytes, ramp_up_s, ..Default::default() });
//! summary.memory = Some(report);
//! ```
//!
//! Method, on the server's memory after ramp-up (RSS; else cgroup usage;
//! else allocator bytes):
//! - a least-squares line over time (slope, R²);
//! - a plateau test: the last third of the window against the middle third,
//!   by peak and by mean, with a tolerance of four noise sigmas (jitter
//!   measured from successive differences), 1% of the level, or 1 MiB,
//!   whichever is largest. A fixed cache's sawtooth (fill, evict) repeats
//!   the same peaks, so it plateaus; a leak's peaks keep rising;
//! - `leak` when there is no plateau and memory rose steadily (R² ≥ 0.6) by
//!   more than the tolerance, or climbed to 90% of the limit / was
//!   OOM-killed; `bounded` on a plateau or a fall; else `inconclusive`, as
//!   with fewer than 8 samples.

mod fit;
mod series;
#[cfg(test)]
mod tests;

use fit::{least_squares, max, mean, min, noise_sigma};
pub use series::Series;

use crate::memory::{MemoryReport, MemorySources, Verdict};

/// Fewer samples than this after ramp-up give no verdict.
const MIN_SAMPLES: usize = 8;
/// R² a rise needs to count as steady growth.
const MIN_R_SQUARED: f64 = 0.6;
/// Absolute floor of the plateau tolerance: allocator jitter is that large.
const MIN_TOLERANCE_BYTES: f64 = 1024.0 * 1024.0;

/// What the analysis needs besides samples.csv.
#[derive(Debug, Clone, Default)]
pub struct AnalysisInput {
    /// The memory limit the server ran under, if any (for % and projection).
    pub limit_bytes: Option<u64>,
    /// Samples before this are warm-up and excluded from fit and plateau.
    pub ramp_up_s: f64,
    /// Where the figures came from (the sampler knows); inferred from which
    /// columns have values when None (recomputing from a folder).
    pub sources: Option<MemorySources>,
    /// The server was OOM-killed (summary.json `server.exit.oom_killed`).
    pub oom_killed: bool,
}

/// The verdict and figures for one run's samples.
pub fn analyze(series: &Series, input: &AnalysisInput) -> MemoryReport {
    let limit = input.limit_bytes.map(|l| l as f64);
    let percent = |bytes: Option<u64>| Some(bytes? as f64 * 100.0 / limit?);
    let peak_rss = peak(&[&series.rss, &series.hwm]);
    let peak_allocated = peak(&[&series.allocated]);
    let mut report = MemoryReport {
        samples: series.len(),
        limit_bytes: input.limit_bytes,
        sources: input
            .sources
            .clone()
            .unwrap_or_else(|| infer_sources(series)),
        peak_rss_bytes: peak_rss,
        peak_rss_percent: percent(peak_rss).map(round2),
        peak_allocated_bytes: peak_allocated,
        peak_allocated_percent: percent(peak_allocated).map(round2),
        slope_bytes_per_s: None,
        r_squared: None,
        plateau: None,
        retained_bytes_per_session: None,
        verdict: Some(Verdict::Inconclusive),
        evidence: Vec::new(),
        projected_time_to_limit_s: None,
    };
    if series.truncated_tail {
        report
            .evidence
            .push("the last row of samples.csv was cut off mid-write and was ignored".into());
    }
    if let (Some(p), Some(l)) = (report.peak_rss_percent, input.limit_bytes) {
        report.evidence.push(format!(
            "peak RSS {} = {p:.1}% of the {} limit",
            human_bytes(peak_rss.unwrap_or(0) as f64),
            human_bytes(l as f64)
        ));
    }
    let Some((name, points)) = primary_series(series, input.ramp_up_s) else {
        report.evidence.push(
            "no memory figures were sampled (no RSS, cgroup or allocator column has values)".into(),
        );
        return report;
    };
    if points.len() < MIN_SAMPLES {
        report.evidence.push(format!(
            "only {} {name} samples after ramp-up; at least {MIN_SAMPLES} are needed for a verdict",
            points.len()
        ));
        return report;
    }
    let Some(fit) = least_squares(&points) else {
        report
            .evidence
            .push("all samples share one timestamp; no trend can be fitted".into());
        return report;
    };
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let (t_first, t_last) = (points[0].0, points[points.len() - 1].0);
    let span = t_last - t_first;
    let sigma = noise_sigma(&values);
    let level = fit::median(&mut values.clone());
    let tolerance = (4.0 * sigma).max(0.01 * level).max(MIN_TOLERANCE_BYTES);
    let third = |k: f64| -> Vec<f64> {
        let (from, to) = (t_first + span * k / 3.0, t_first + span * (k + 1.0) / 3.0);
        points
            .iter()
            .filter(|p| p.0 >= from && p.0 <= to)
            .map(|p| p.1)
            .collect()
    };
    let (middle, last) = (third(1.0), third(2.0));
    let rise_max = max(&last) - max(&middle);
    let rise_mean = mean(&last) - mean(&middle);
    let range_middle = max(&middle) - min(&middle);
    let plateau = rise_max <= tolerance && rise_mean <= tolerance.max(0.6 * range_middle);
    let falling = rise_mean < -tolerance && rise_max <= tolerance;
    let growth = fit.slope * span;
    let peak_value = max(&values);
    let near_limit = limit.is_some_and(|l| peak_value >= 0.9 * l);

    report.slope_bytes_per_s = Some(round2(fit.slope));
    report.r_squared = Some((fit.r_squared * 10_000.0).round() / 10_000.0);
    report.plateau = Some(plateau);
    report.evidence.push(format!(
        "{name} {} {}/s over {:.0} s after ramp-up (R² {:.2}), from {} to {}",
        if fit.slope >= 0.0 { "grew" } else { "fell" },
        human_bytes(fit.slope.abs()),
        span,
        fit.r_squared,
        human_bytes(values[0]),
        human_bytes(values[values.len() - 1]),
    ));
    report.retained_bytes_per_session =
        retained_per_session(series, input.ramp_up_s, &mut report.evidence);

    let steady = fit.r_squared >= MIN_R_SQUARED || near_limit || input.oom_killed;
    // A leak that grows in steps (a hash table doubling, say) can look flat
    // between two steps, right up to the step the limit cannot hold. A
    // server that at least doubled its memory after ramp-up and was then
    // OOM-killed did not level off below its limit. (One killed near its
    // starting level is the guide's other cause: a limit set too low.)
    let climbed_into_kill =
        input.oom_killed && peak_value >= 2.0 * values[0] && peak_value - values[0] > tolerance;
    let no_plateau = !plateau && fit.slope > 0.0 && growth > tolerance && steady;
    report.verdict = Some(if climbed_into_kill || no_plateau {
        report.evidence.push(if no_plateau {
            format!(
                "no plateau: the last third's peak is {} above the middle third's (tolerance {})",
                human_bytes(rise_max),
                human_bytes(tolerance)
            )
        } else {
            format!(
                "{name} climbed from {} to {} after ramp-up and never levelled off below the limit",
                human_bytes(values[0]),
                human_bytes(peak_value)
            )
        });
        if input.oom_killed {
            report
                .evidence
                .push("the server was OOM-killed at its memory limit".into());
        } else if near_limit {
            report.evidence.push(format!(
                "{name} reached {} of the limit",
                pct(peak_value, limit)
            ));
        }
        if let Some(l) = limit {
            let remaining = ((l - values[values.len() - 1]) / fit.slope).max(0.0);
            report.projected_time_to_limit_s = Some(round2(remaining));
            report.evidence.push(format!(
                "at this rate the {} limit is reached {}",
                human_bytes(l),
                if remaining < 1.0 {
                    "now".to_string()
                } else {
                    format!("in {remaining:.0} s")
                }
            ));
        }
        Verdict::Leak
    } else if plateau || falling {
        report.evidence.push(if plateau {
            format!(
                "memory levelled off: the last third's peak is within {} of the middle third's (tolerance {})",
                human_bytes(rise_max.max(0.0)),
                human_bytes(tolerance)
            )
        } else {
            format!("memory fell by {} from the middle to the last third", human_bytes(-rise_mean))
        });
        if let Some(note) = eviction_note(series, input.ramp_up_s) {
            report.evidence.push(note);
        }
        Verdict::Bounded
    } else {
        report.evidence.push(format!(
            "memory rose {} without a steady trend (R² {:.2} < {MIN_R_SQUARED}) and without levelling off; run longer to decide",
            human_bytes(growth.max(rise_max)),
            fit.r_squared
        ));
        Verdict::Inconclusive
    });
    report
}

/// The series the verdict is about, as (t, bytes) after ramp-up: RSS, else
/// cgroup usage, else allocator bytes.
fn primary_series(series: &Series, ramp_up_s: f64) -> Option<(&'static str, Vec<(f64, f64)>)> {
    [
        ("RSS", &series.rss),
        ("cgroup usage", &series.cgroup),
        ("allocated", &series.allocated),
    ]
    .into_iter()
    .find(|(_, column)| column.iter().any(Option::is_some))
    .map(|(name, column)| (name, points_after(series, column, ramp_up_s)))
}

fn points_after(series: &Series, column: &[Option<f64>], ramp_up_s: f64) -> Vec<(f64, f64)> {
    series
        .t_s
        .iter()
        .zip(column)
        .filter(|(t, _)| **t >= ramp_up_s)
        .filter_map(|(t, v)| Some((*t, (*v)?)))
        .collect()
}

/// Memory growth over login growth after ramp-up; allocator bytes are
/// preferred (they count live objects, not pages the allocator keeps).
fn retained_per_session(
    series: &Series,
    ramp_up_s: f64,
    evidence: &mut Vec<String>,
) -> Option<f64> {
    let logins = points_after(series, &series.logins, ramp_up_s);
    let new_logins = logins.last()?.1 - logins.first()?.1;
    if new_logins < 1.0 {
        return None;
    }
    let (name, column) = if series.allocated.iter().any(Option::is_some) {
        ("allocated", &series.allocated)
    } else {
        ("RSS", &series.rss)
    };
    let fit = least_squares(&points_after(series, column, ramp_up_s))?;
    let (t0, t1) = (logins.first()?.0, logins.last()?.0);
    let retained = (fit.at(t1) - fit.at(t0)).max(0.0) / new_logins;
    evidence.push(format!(
        "{} retained per login over {new_logins:.0} logins ({name} growth / logins)",
        human_bytes(retained)
    ));
    Some(round2(retained))
}

/// "evictions rose by N while the cache held at most M sessions", when the
/// columns say so: why a sawtooth is a bounded cache at work.
fn eviction_note(series: &Series, ramp_up_s: f64) -> Option<String> {
    let evictions = points_after(series, &series.evictions, ramp_up_s);
    let sessions = points_after(series, &series.sessions, ramp_up_s);
    let evicted = evictions.last()?.1 - evictions.first()?.1;
    let cap = sessions
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    (evicted > 0.0 && cap.is_finite())
        .then(|| format!("the cache evicted {evicted:.0} sessions while holding at most {cap:.0}"))
}

fn peak(columns: &[&Vec<Option<f64>>]) -> Option<u64> {
    columns
        .iter()
        .flat_map(|c| c.iter().flatten())
        .copied()
        .fold(None, |acc: Option<f64>, v| {
            Some(acc.map_or(v, |a| a.max(v)))
        })
        .map(|v| v.max(0.0) as u64)
}

fn infer_sources(series: &Series) -> MemorySources {
    let has = |c: &[Option<f64>]| c.iter().any(Option::is_some);
    MemorySources {
        rss: if has(&series.hwm) {
            Some("proc".into())
        } else if has(&series.rss) {
            Some("metrics".into())
        } else {
            None
        },
        allocator: has(&series.allocated).then(|| "metrics".into()),
        cgroup: has(&series.cgroup).then(|| "cgroup".into()),
        limit: None,
    }
}

fn pct(value: f64, limit: Option<f64>) -> String {
    limit.map_or_else(|| "?".into(), |l| format!("{:.1}%", value * 100.0 / l))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// Bytes as a person reads them: B, KiB, MiB or GiB with one decimal.
pub fn human_bytes(bytes: f64) -> String {
    let abs = bytes.abs();
    let (value, unit) = if abs >= (1u64 << 30) as f64 {
        (bytes / (1u64 << 30) as f64, "GiB")
    } else if abs >= (1 << 20) as f64 {
        (bytes / (1 << 20) as f64, "MiB")
    } else if abs >= 1024.0 {
        (bytes / 1024.0, "KiB")
    } else {
        return format!("{bytes:.0} B");
    };
    format!("{value:.1} {unit}")
}
