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
//! Method, on the server's memory after ramp-up: the verdict on allocated
//! bytes, which are steadier and count live objects (else RSS, else cgroup
//! usage); the slope and projection on RSS, which the limit applies to:
//! - a rank-based growth test (Mann–Kendall on block maxima, Theil–Sen
//!   slope with a 99% interval; [`rank`]): a rise is *real* at 99.9%
//!   confidence and *large* when, at the slope's lower bound, it exceeds
//!   the plateau tolerance over the window;
//! - a least-squares line over time (slope, R², for the projection);
//! - a plateau test: the last third of the window against the middle third,
//!   by peak and by mean, with a tolerance of four noise sigmas (jitter
//!   measured from successive differences), 1% of the level, or 1 MiB,
//!   whichever is largest. A fixed cache's sawtooth (fill, evict) repeats
//!   the same peaks, so it plateaus; a leak's peaks keep rising;
//! - `leak` when the rise is real and large (or real and at 90% of the
//!   limit) and there is no plateau; `inconclusive` instead while the cache
//!   is still filling toward the capacity the service advertises;
//!   `bounded` on a plateau or a fall; else `inconclusive`, as with fewer
//!   than 8 s of samples after ramp-up;
//! - a server that at least doubled after ramp-up and was then OOM-killed
//!   climbed into the kill: a leak, and *not* a plateau even if it sat flat
//!   for the last third (a hash table doubling grows in steps). The
//!   `plateau` field, the evidence and the verdict always agree.

pub(crate) mod fit;
mod live;
#[cfg(test)]
mod live_tests;
mod rank;
mod series;
mod steps;
#[cfg(test)]
mod tests;
pub mod trend;

pub use live::{settle, LiveVerdict};
pub use series::{Column, Series};

use crate::memory::{MemoryReport, MemorySources, Verdict};

/// Fewer samples than this after ramp-up give no verdict.
const MIN_SAMPLES: usize = 8;
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
    /// The server died during the run (summary.json `server.exit`, any
    /// cause). Its samples end at its death; one that died of anything but
    /// an OOM kill is never called bounded, however flat its last samples.
    pub server_died: bool,
}

/// The verdict and figures for one run's samples: the peaks, then three
/// steps that each add their fields and evidence ([`steps`]): fit a trend,
/// test for a plateau, decide.
pub fn analyze(series: &Series, input: &AnalysisInput) -> MemoryReport {
    let mut report = peaks(series, input);
    let Some(trend) = steps::fit(series, input, &mut report) else {
        return report;
    };
    let filled = rank::last_filling(series, input.ramp_up_s);
    let mut shape = steps::plateau(&trend, input, filled.map(|f| f.0), &mut report);
    let judged: Vec<(f64, f64)> = match filled {
        Some((until, ..)) => trend
            .verdict_points
            .iter()
            .copied()
            .filter(|p| p.0 >= until)
            .collect(),
        None => trend.verdict_points.clone(),
    };
    let growth = rank::growth(trend.verdict_name, &judged, shape.tolerance, &mut report);
    steps::overruled_by_growth(&mut shape, growth.as_ref(), &mut report);
    steps::verdict(
        &trend,
        &shape,
        growth.as_ref(),
        filled,
        series,
        input,
        &mut report,
    );
    report
}

/// The figures known from any number of samples: peaks and their share of
/// the limit, sources; the verdict stays `inconclusive` until decided.
fn peaks(series: &Series, input: &AnalysisInput) -> MemoryReport {
    let limit = input.limit_bytes.map(|l| l as f64);
    let percent = |bytes: Option<u64>| Some(bytes? as f64 * 100.0 / limit?);
    let peak_rss = peak(&[&series.rss, &series.hwm]);
    let peak_allocated = peak(&[&series.allocated]);
    let charged = charged_series(series);
    let peak_charged = charged.and_then(|(_, column)| peak(&[column]));
    // The share of the limit is of what the kernel charges against it when
    // the server ran in a memory cgroup: RSS also counts file pages (a
    // mapped file, shared libraries) that the cgroup charged to another.
    let (percent_of, peak_for_limit) = match (charged, peak_charged) {
        (Some((name, _)), Some(bytes)) => (name, Some(bytes)),
        _ => (series.memory_noun(), peak_rss),
    };
    // RSS beside the charged figure, unless the server-memory column is
    // itself the cgroup's (`--cgroup`, `--container`).
    let rss_beside = peak_rss.filter(|_| {
        charged.is_some_and(|(_, c)| !std::ptr::eq(c, &series.rss)) && series.memory_noun() == "RSS"
    });
    let mut report = MemoryReport {
        samples: series.len(),
        limit_bytes: input.limit_bytes,
        sources: input
            .sources
            .clone()
            .unwrap_or_else(|| infer_sources(series)),
        peak_rss_bytes: peak_rss,
        peak_rss_percent: percent(peak_for_limit).map(round2),
        peak_percent_of: percent(peak_for_limit).map(|_| percent_of.to_string()),
        peak_charged_bytes: peak_charged,
        peak_allocated_bytes: peak_allocated,
        peak_allocated_percent: percent(peak_allocated).map(round2),
        verdict: Some(Verdict::Inconclusive),
        ..MemoryReport::default()
    };
    if series.truncated_tail {
        report
            .evidence
            .push("the last row of samples.csv was cut off mid-write and was ignored".into());
    }
    if let (Some(p), Some(l), Some(bytes)) =
        (report.peak_rss_percent, input.limit_bytes, peak_for_limit)
    {
        report
            .evidence
            .push(peak_sentence(percent_of, bytes, p, l, rss_beside, input));
    }
    report
}

/// "peak cgroup working set 243.1 MiB = 95.0% of the 256.0 MiB limit (RSS
/// 287.0 MiB)"; `peak_rss` is the RSS to show beside a cgroup's figure. A live process is never said to be above 100% of its
/// limit: RSS past a limit the server survived is a limit not enforced on
/// RSS, and the sentence says that instead.
fn peak_sentence(
    what: &str,
    bytes: u64,
    percent: f64,
    limit: u64,
    peak_rss: Option<u64>,
    input: &AnalysisInput,
) -> String {
    let rss_beside = match peak_rss {
        Some(rss) => {
            let why = if rss > bytes {
                ", which also counts file pages the cgroup does not charge"
            } else {
                ""
            };
            format!(" (RSS {}{why})", human_bytes(rss as f64))
        }
        _ => String::new(),
    };
    if percent > 100.0 && !input.oom_killed {
        return format!(
            "peak {what} {} is above the {} limit, yet the server was not killed at it: the limit is not enforced on {what}{rss_beside}",
            human_bytes(bytes as f64),
            human_bytes(limit as f64)
        );
    }
    format!(
        "peak {what} {} = {percent:.1}% of the {} limit{rss_beside}",
        human_bytes(bytes as f64),
        human_bytes(limit as f64)
    )
}

/// The series the kernel charges against a memory cgroup's limit, and its
/// name: the cgroup's working set (usage less inactive file cache), else
/// (no memory.stat, or a file written before that column) its raw usage.
/// A `--cgroup`/`--container` source writes the working set as its
/// server memory. None when the server ran in no cgroup.
pub fn charged_series(series: &Series) -> Option<(&'static str, &Column)> {
    let has = |c: &Column| c.iter().any(Option::is_some);
    let sources: Vec<_> = series.source.iter().flatten().collect();
    if has(&series.working_set) {
        Some(("cgroup working set", &series.working_set))
    } else if has(&series.rss)
        && !sources.is_empty()
        && sources
            .iter()
            .all(|s| **s == crate::samples::MemorySource::Cgroup)
    {
        Some(("cgroup working set", &series.rss))
    } else if has(&series.cgroup) {
        Some(("cgroup usage", &series.cgroup))
    } else {
        None
    }
}

/// The series the limit applies to, as (t, bytes) after ramp-up: RSS, else
/// cgroup usage, else allocator bytes. Its line gives the slope, R² and
/// the projection to the limit: that is what the kernel kills on.
fn primary_series(
    series: &Series,
    input: &AnalysisInput,
) -> Option<(&'static str, Vec<(f64, f64)>)> {
    first_with_values(
        series,
        input.ramp_up_s,
        [
            (series.memory_noun(), &series.rss),
            ("cgroup usage", &series.cgroup),
            (steady_name(input), &series.allocated),
        ],
    )
}

/// The series the verdict is decided on: allocator bytes when the service
/// exports them (they count live objects, and have no steps from pages the
/// allocator keeps or a table that doubles), else the primary series.
fn verdict_series(
    series: &Series,
    input: &AnalysisInput,
) -> Option<(&'static str, Vec<(f64, f64)>)> {
    first_with_values(
        series,
        input.ramp_up_s,
        [
            (steady_name(input), &series.allocated),
            (series.memory_noun(), &series.rss),
            ("cgroup usage", &series.cgroup),
        ],
    )
}

/// The name of the `allocated_bytes` series: `heap` when it is the
/// service's own heap gauge (`--heap-metric`), else `allocated` (clw-auth's
/// jemalloc gauge).
pub(crate) fn steady_name(input: &AnalysisInput) -> &'static str {
    match input.sources.as_ref().and_then(|s| s.heap_metric.as_ref()) {
        Some(_) => "heap",
        None => "allocated",
    }
}

fn first_with_values(
    series: &Series,
    ramp_up_s: f64,
    columns: [(&'static str, &Column); 3],
) -> Option<(&'static str, Vec<(f64, f64)>)> {
    columns
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

fn peak(columns: &[&Column]) -> Option<u64> {
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
        // The rows say, since samples.csv has a `source` column; older
        // files are told by their columns.
        rss: if let Some(source) = series.source.iter().rev().flatten().next() {
            Some(source.as_str().into())
        } else if has(&series.hwm) {
            Some("proc".into())
        } else if has(&series.rss) {
            Some("metrics".into())
        } else {
            None
        },
        // summary.json says it; samples.csv does not.
        rss_scope: None,
        allocator: has(&series.allocated).then(|| "metrics".into()),
        cgroup: has(&series.cgroup).then(|| "cgroup".into()),
        limit: None,
        heap_metric: None,
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
