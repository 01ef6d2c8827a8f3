//! The rank-based growth test the verdict rests on: Mann–Kendall with a
//! Theil–Sen slope ([`super::trend`]) on the memory after ramp-up, and the
//! same slope against logins (bytes retained per login).
//!
//! Why not the least-squares line alone: its R² punishes shapes that are
//! not straight (a hash table that doubles sits flat for tens of seconds
//! between steps; a bounded cache saws between fill and evict), and it has
//! no statement of confidence. The rank test asks only whether later values
//! tend to exceed earlier ones, and the slope's interval says how fast at
//! worst. Allocated bytes are tested when the service exports them: they
//! count live objects, while RSS also holds pages the allocator keeps.

use super::trend::{self, Trend};
use super::{human_bytes, points_after, round2, Series};
use crate::memory::{MemoryReport, TrendReport};

/// One-sided significance the rise must reach: the live verdict re-tests
/// every sample, so each test must be strict to keep the run's false-leak
/// rate low (99.9% confidence).
pub(super) const ALPHA: f64 = 0.001;
/// Two-sided confidence of the Theil–Sen interval.
pub(super) const SLOPE_CONFIDENCE: f64 = 0.99;
/// Fewer blocks than this give no rank verdict.
pub(super) const MIN_BLOCKS: usize = 8;
/// About this many blocks over the window: enough for the test's power,
/// few enough that neighbouring blocks are not the same moment twice.
const TARGET_BLOCKS: f64 = 40.0;
/// Blocks are never shorter than this: the sampler's 250 ms samples are
/// strongly autocorrelated, and the test assumes independent points.
const MIN_BLOCK_S: f64 = 1.0;

/// The growth test's result on one series.
pub(super) struct Growth {
    pub(super) mk: Trend,
    /// Significant at [`ALPHA`] and, at the slope's lower bound, more growth
    /// over the window than `tolerance`: a rise that is both real and large.
    pub(super) rising: bool,
}

/// Mann–Kendall on block maxima of `points` (the series the rest of the
/// analysis uses), with its evidence and `memory.trend`.
pub(super) fn growth(
    name: &'static str,
    points: &[(f64, f64)],
    tolerance: f64,
    report: &mut MemoryReport,
) -> Option<Growth> {
    let span = points.last()?.0 - points.first()?.0;
    let width = (span / TARGET_BLOCKS).max(MIN_BLOCK_S);
    let blocks = trend::blocks(points, width);
    if blocks.len() < MIN_BLOCKS {
        report.evidence.push(format!(
            "{:.0} s of {name} after ramp-up is {} blocks of {width:.0} s; the trend test needs {MIN_BLOCKS}",
            span,
            blocks.len()
        ));
        return None;
    }
    let mk = trend::mann_kendall(&blocks, SLOPE_CONFIDENCE)?;
    let rising = mk.p_increasing < ALPHA && mk.slope_low * span > tolerance;
    report.trend = Some(TrendReport {
        series: name.into(),
        test: "mann-kendall".into(),
        blocks: blocks.len(),
        block_s: round2(width),
        p_value: mk.p_increasing,
        tau: round2(mk.tau),
        slope_bytes_per_s: round2(mk.slope),
        slope_low_bytes_per_s: finite(mk.slope_low),
        slope_high_bytes_per_s: finite(mk.slope_high),
        slope_confidence: SLOPE_CONFIDENCE,
        rising,
    });
    report.evidence.push(format!(
        "{name} {}: Mann–Kendall p = {} over {} blocks of {width:.0} s (tau {:.2}), Theil–Sen slope {}/s ({:.0}% interval {} to {}/s)",
        if mk.p_increasing < ALPHA {
            "rising"
        } else {
            "without a significant rise"
        },
        p_text(mk.p_increasing),
        blocks.len(),
        mk.tau,
        human_bytes(mk.slope),
        SLOPE_CONFIDENCE * 100.0,
        bound_text(mk.slope_low),
        bound_text(mk.slope_high),
    ));
    Some(Growth { mk, rising })
}

/// Bytes retained per login: the Theil–Sen slope of allocated bytes (else
/// RSS) against the server's cumulative logins, on each block's peak (at
/// its own login count, see [`trend::peak_points`]). A
/// bounded cache that is full retains nothing per new login; a leak retains
/// what it keeps of each.
pub(super) fn retained_per_login(
    series: &Series,
    input: &super::AnalysisInput,
    evidence: &mut Vec<String>,
) -> Option<f64> {
    let ramp_up_s = input.ramp_up_s;
    let (name, column) = if series.allocated.iter().any(Option::is_some) {
        (super::steady_name(input), &series.allocated)
    } else {
        (series.memory_noun(), &series.rss)
    };
    // (logins, bytes) at the same instants, in time order.
    let pairs: Vec<(f64, f64)> = series
        .t_s
        .iter()
        .zip(series.logins.iter().zip(column))
        .filter(|(t, _)| **t >= ramp_up_s)
        .filter_map(|(_, (l, b))| Some(((*l)?, (*b)?)))
        .collect();
    let new_logins = pairs.last()?.0 - pairs.first()?.0;
    if new_logins < 1.0 {
        return None;
    }
    let width = (new_logins / TARGET_BLOCKS).max(1.0);
    let mk = trend::mann_kendall(&trend::peak_points(&pairs, width), SLOPE_CONFIDENCE)?;
    let retained = mk.slope.max(0.0);
    evidence.push(format!(
        "{} retained per login over {new_logins:.0} logins ({name} growth / logins, Theil–Sen; {:.0}% interval {} to {})",
        human_bytes(retained),
        SLOPE_CONFIDENCE * 100.0,
        bound_text(mk.slope_low.max(0.0)),
        bound_text(mk.slope_high.max(0.0)),
    ));
    Some(round2(retained))
}

/// How far back "still rising" looks when deciding that the cache fills.
const FILL_WINDOW_S: f64 = 5.0;

/// The last moment the cache was filling toward the capacity the service
/// advertises (`clw_session_cache_max_size`): its sessions below that
/// capacity and above where they were [`FILL_WINDOW_S`] before. Growth up
/// to then is the cache doing its job, so the growth test starts there; a
/// cache filling at the last sample is not judged at all yet. A full LRU
/// cache holds exactly its capacity, so a leak beside a full cache is still
/// called, and so is one whose session count stays flat or passes the
/// capacity. None when no capacity is advertised or the cache never filled.
pub(super) fn last_filling(series: &Series, ramp_up_s: f64) -> Option<(f64, f64, f64)> {
    let capacity = points_after(series, &series.capacity, ramp_up_s).last()?.1;
    if capacity <= 0.0 {
        return None;
    }
    let sessions = points_after(series, &series.sessions, ramp_up_s);
    let mut from = 0;
    let mut last = None;
    for &(t, now) in &sessions {
        while sessions[from].0 < t - FILL_WINDOW_S {
            from += 1;
        }
        if now < capacity && now > sessions[from].1 {
            last = Some((t, now, capacity));
        }
    }
    last
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then(|| round2(v))
}

fn p_text(p: f64) -> String {
    if p < 1e-6 {
        "< 1e-6".into()
    } else {
        format!("{p:.2e}")
    }
}

fn bound_text(v: f64) -> String {
    if v.is_finite() {
        human_bytes(v)
    } else if v > 0.0 {
        "+inf".into()
    } else {
        "-inf".into()
    }
}
