//! The three steps of the verdict, each adding its fields and evidence to
//! the report: [`fit`] a trend to the memory after ramp-up, test it for a
//! [`plateau`], decide the [`verdict`]. Split so that each rule can be read
//! (and changed) on its own, and so that the plateau field is decided in one
//! place, which the verdict then cannot contradict.

use super::fit::{self, least_squares, max, mean, min, noise_sigma, LinearFit};
use super::rank::{self, Growth};
use super::{
    charged_series, eviction_note, human_bytes, pct, points_after, primary_series, round2,
    verdict_series, AnalysisInput, Series, MIN_SAMPLES, MIN_TOLERANCE_BYTES,
};
use crate::memory::{MemoryReport, Verdict};

/// The memory series after ramp-up and the line fitted to it.
pub(super) struct Trend {
    /// The series the plateau and growth tests judge (allocated when
    /// there is one), as (t, bytes) after ramp-up.
    pub(super) verdict_name: &'static str,
    pub(super) verdict_points: Vec<(f64, f64)>,
    values: Vec<f64>,
    fit: LinearFit,
    /// Seconds from the first to the last point.
    span: f64,
    /// What the limit is charged on (`RSS`, `server memory`, `cgroup working
    /// set`, ...), after ramp-up, and its line: the
    /// cgroup's working set (else usage) when the server ran in a memory
    /// cgroup, else the primary series. The 80% and 90% rules and the
    /// projection to the limit use it: that is what the kernel kills on.
    charged_name: &'static str,
    charged_values: Vec<f64>,
    charged_fit: LinearFit,
}

impl Trend {
    fn first(&self) -> f64 {
        self.values[0]
    }

    fn last(&self) -> f64 {
        self.values[self.values.len() - 1]
    }

    fn growth(&self) -> f64 {
        self.fit.slope * self.span
    }
}

/// Step 1: the least-squares line (slope, R²) and memory retained per login.
/// `None` when there is too little to fit; the evidence then says why and
/// the verdict stays `inconclusive`.
pub(super) fn fit(
    series: &Series,
    input: &AnalysisInput,
    report: &mut MemoryReport,
) -> Option<Trend> {
    let Some((name, points)) = primary_series(series, input) else {
        report.evidence.push(
            "no memory figures were sampled (no RSS, cgroup or allocator column has values)".into(),
        );
        return None;
    };
    if points.len() < MIN_SAMPLES {
        report.evidence.push(format!(
            "only {} {name} samples after ramp-up; at least {MIN_SAMPLES} are needed for a verdict",
            points.len()
        ));
        return None;
    }
    let Some(line) = least_squares(&points) else {
        report
            .evidence
            .push("all samples share one timestamp; no trend can be fitted".into());
        return None;
    };
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let span = points[points.len() - 1].0 - points[0].0;
    let (verdict_name, verdict_points) = verdict_series(series, input)
        .filter(|(_, p)| p.len() >= MIN_SAMPLES)
        .unwrap_or((name, points));
    let (charged_name, charged_values, charged_fit) = charged_series(series)
        .map(|(charged, column)| (charged, points_after(series, column, input.ramp_up_s)))
        .filter(|(_, p)| p.len() >= MIN_SAMPLES)
        .and_then(|(charged, p)| {
            let fit = least_squares(&p)?;
            Some((charged, p.iter().map(|p| p.1).collect(), fit))
        })
        .unwrap_or_else(|| (name, values.clone(), line));
    let trend = Trend {
        verdict_name,
        verdict_points,
        values,
        fit: line,
        span,
        charged_name,
        charged_values,
        charged_fit,
    };
    report.slope_bytes_per_s = Some(round2(line.slope));
    report.r_squared = Some((line.r_squared * 10_000.0).round() / 10_000.0);
    report.evidence.push(format!(
        "{name} {} {}/s over {:.0} s after ramp-up (R² {:.2}), from {} to {}",
        if line.slope >= 0.0 { "grew" } else { "fell" },
        human_bytes(line.slope.abs()),
        span,
        line.r_squared,
        human_bytes(trend.first()),
        human_bytes(trend.last()),
    ));
    report.retained_bytes_per_session =
        rank::retained_per_login(series, input, &mut report.evidence);
    Some(trend)
}

/// What the plateau test found.
pub(super) struct Shape {
    /// Four noise sigmas, 1% of the level, or 1 MiB, whichever is largest.
    pub(super) tolerance: f64,
    /// The last third's peak above the middle third's.
    rise_max: f64,
    /// The last third's mean above the middle third's: unlike the peaks,
    /// a GC's sawtooth averages out of it.
    rise_mean: f64,
    /// Seconds between the thirds' middles (a third of the window).
    third_s: f64,
    /// Levelled off below the limit (what `memory.plateau` says): the last
    /// third rose no more than the tolerance above the middle third (a fall
    /// passes too: it is not growth).
    pub(super) levelled_off: bool,
    /// At least doubled after ramp-up, then OOM-killed: whatever the last
    /// third looked like, it did not level off below the limit.
    climbed_into_kill: bool,
    /// At least doubled after ramp-up, still climbing, and RSS already past
    /// the field guide's 80% of the limit: too fast for the growth test's
    /// eight blocks (a leak that fills the limit in seconds), too clear to
    /// wait for the kill.
    climbed_past_guide: bool,
}

/// Step 2b: a plateau the growth test contradicts. The thirds compare
/// peaks against a tolerance of four noise sigmas; a runtime whose GC
/// saws its RSS up and down (Node: 16 MiB sigma) hides a steady 7 MiB/s
/// climb inside that tolerance, while the growth test over every block
/// finds it real (99.9%), large (its slope's lower bound over the window
/// beyond the tolerance) and unbroken. Such a rise is not a plateau: the
/// plateau field and its evidence line say so, and the verdict follows.
pub(super) fn overruled_by_growth(
    shape: &mut Shape,
    growth: Option<&super::rank::Growth>,
    report: &mut MemoryReport,
) {
    // Most blocks' peaks above the ones before (tau >= 0.75; Node's GC
    // noise on a steady climb ranks 0.88 to 1.00): a curve that rose and
    // then levelled off ranks lower (0.6 for a noisy saturating fill). A
    // noiseless fill still ranks 1.0 (each block a hair above the last), so
    // the climb must also go on at its pace into the last third: the
    // thirds' means rise by at least half of what the slope gives over a
    // third (a linear climb: all of it; a fill levelled off: nearly none).
    let Some(g) = growth.filter(|g| {
        g.rising
            && g.mk.tau >= 0.75
            && shape.levelled_off
            && shape.rise_mean >= 0.5 * g.mk.slope * shape.third_s
    }) else {
        return;
    };
    shape.levelled_off = false;
    report.plateau = Some(false);
    let line = format!(
        "no plateau: the thirds' peaks differ by no more than the noise ({}), but the growth test finds a real and large rise (Theil–Sen {}/s, Mann–Kendall tau {:.2})",
        human_bytes(shape.tolerance),
        human_bytes(g.mk.slope),
        g.mk.tau
    );
    match report
        .evidence
        .iter_mut()
        .find(|e| e.starts_with("memory levelled off"))
    {
        Some(e) => *e = line,
        None => report.evidence.push(line),
    }
}

/// Step 2: does memory level off? The last third of the window against the
/// middle third, by peak and by mean. Sets `memory.plateau` and says why.
// Long: each exception to "flat means plateau" (a step-shaped climb to an
// OOM kill, a filling cache, a server that died) is a commented rule over the
// same trend figures; together they read in order.
pub(super) fn plateau(
    trend: &Trend,
    input: &AnalysisInput,
    filled_until: Option<f64>,
    report: &mut MemoryReport,
) -> Shape {
    let points = &trend.verdict_points;
    let values: Vec<f64> = points.iter().map(|p| p.1).collect();
    let first = values[0];
    let sigma = noise_sigma(&values);
    let level = fit::median(&mut values.clone());
    let tolerance = (4.0 * sigma).max(0.01 * level).max(MIN_TOLERANCE_BYTES);
    let t_first = points[0].0;
    let span = points[points.len() - 1].0 - t_first;
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
    let flat = rise_max <= tolerance && rise_mean <= tolerance.max(0.6 * range_middle);
    let peak = max(&values);
    // A leak that grows in steps (a hash table doubling, say) can look flat
    // between two steps, right up to the step the limit cannot hold. A
    // server that at least doubled its memory after ramp-up and was then
    // OOM-killed did not level off below its limit. (One killed near its
    // starting level is the guide's other cause: a limit set too low.)
    let doubled = peak >= 2.0 * first && peak - first > tolerance;
    let climbed_into_kill = input.oom_killed && doubled;
    let rss_peak = max(&trend.charged_values);
    let past_guide = input
        .limit_bytes
        .is_some_and(|l| rss_peak >= 0.8 * l as f64);
    // Doubling while a cache fills toward its capacity is the cache at
    // work: only a climb after the last moment it was filling counts.
    let first_settled = points
        .iter()
        .find(|p| filled_until.is_none_or(|u| p.0 >= u))
        .map_or(first, |p| p.1);
    let doubled_settled = peak >= 2.0 * first_settled && peak - first_settled > tolerance;
    let climbed_past_guide = doubled_settled && past_guide && !flat && !input.oom_killed;
    // Samples of a server that died (not at its limit) stop at its death:
    // flat until then is no plateau of a server that survived the load.
    let died_flat = flat && input.server_died && !input.oom_killed;
    let shape = Shape {
        tolerance,
        rise_max,
        rise_mean,
        third_s: span / 3.0,
        levelled_off: flat && !climbed_into_kill && !died_flat,
        climbed_into_kill,
        climbed_past_guide,
    };
    report.plateau = Some(shape.levelled_off);
    report.evidence.push(if died_flat {
        format!(
            "{} stayed within {} until the server died; a server that died during the run is not called bounded",
            trend.verdict_name,
            human_bytes(tolerance)
        )
    } else if shape.climbed_into_kill {
        format!(
            "{} climbed from {} to {} after ramp-up and never levelled off below the limit{}",
            trend.verdict_name,
            human_bytes(first),
            human_bytes(peak),
            if flat {
                " (it sat flat between steps; a climb the limit killed is not a plateau)"
            } else {
                ""
            }
        )
    } else if shape.climbed_past_guide {
        format!(
            "{} climbed from {} to {} after ramp-up, still rising, with {} past 80% of the limit ({})",
            trend.verdict_name,
            human_bytes(first),
            human_bytes(peak),
            trend.charged_name,
            human_bytes(rss_peak)
        )
    } else if shape.levelled_off && rise_mean < -tolerance {
        format!(
            "memory levelled off lower: it fell by {} from the middle to the last third",
            human_bytes(-rise_mean)
        )
    } else if shape.levelled_off {
        format!(
            "memory levelled off: the last third's peak is within {} of the middle third's (tolerance {})",
            human_bytes(rise_max.max(0.0)),
            human_bytes(tolerance)
        )
    } else {
        format!(
            "no plateau: the last third's peak is {} above the middle third's (tolerance {})",
            human_bytes(rise_max),
            human_bytes(tolerance)
        )
    });
    shape
}

/// Step 3: the verdict, from the growth test and the plateau test, with the
/// facts that go with it (the kill, the limit, the time left to it,
/// evictions, a cache still filling).
pub(super) fn verdict(
    trend: &Trend,
    shape: &Shape,
    growth: Option<&Growth>,
    filled: Option<(f64, f64, f64)>,
    series: &Series,
    input: &AnalysisInput,
    report: &mut MemoryReport,
) {
    let limit = input.limit_bytes.map(|l| l as f64);
    let peak = max(&trend.charged_values);
    let near_limit = limit.is_some_and(|l| peak >= 0.9 * l);
    // Real at 99.9% confidence, and either large or already at the limit.
    let significant = growth.is_some_and(|g| g.mk.p_increasing < rank::ALPHA && g.mk.slope > 0.0);
    let rising = !shape.levelled_off
        && (growth.is_some_and(|g| g.rising) || (significant && (near_limit || input.oom_killed)));
    // Still filling at the last sample: not judged until full.
    let t_last = trend.verdict_points.last().map_or(0.0, |p| p.0);
    let filling = filled.filter(|f| f.0 >= t_last);
    let evidence = &mut report.evidence;
    if let Some((until, ..)) = filled.filter(|_| filling.is_none()) {
        evidence.push(format!(
            "the cache filled toward its advertised capacity until {until:.1} s; growth is judged from then"
        ));
    }
    let climbed = shape.climbed_into_kill || (shape.climbed_past_guide && filling.is_none());
    let verdict = if climbed || (rising && filling.is_none()) {
        if input.oom_killed {
            evidence.push("the server was OOM-killed at its memory limit".into());
        } else if near_limit {
            evidence.push(format!(
                "{} reached {} of the limit",
                trend.charged_name,
                pct(peak, limit)
            ));
        }
        let (charged_last, charged_slope) = (
            trend.charged_values[trend.charged_values.len() - 1],
            trend.charged_fit.slope,
        );
        if let Some(l) = limit.filter(|_| charged_slope > 0.0) {
            let remaining = ((l - charged_last) / charged_slope).max(0.0);
            report.projected_time_to_limit_s = Some(round2(remaining));
            evidence.push(format!(
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
    } else if shape.levelled_off {
        if let Some(note) = eviction_note(series, input.ramp_up_s) {
            evidence.push(note);
        }
        if input.oom_killed {
            evidence.push(
                "the server was OOM-killed without climbing: its memory limit is too low for its working set, which is not a leak".into(),
            );
        }
        Verdict::Bounded
    } else if input.server_died && !input.oom_killed {
        evidence.push(
            "the server died during the run (not at its memory limit): no memory verdict for a server that did not survive the load".into(),
        );
        Verdict::Inconclusive
    } else if let Some((_, sessions, capacity)) = filling {
        evidence.push(format!(
            "the cache is still filling: {sessions:.0} of the {capacity:.0} sessions it advertises; growth while it fills is not yet a leak, and it is judged once full"
        ));
        Verdict::Inconclusive
    } else {
        evidence.push(format!(
            "memory rose {} without a rise that is both significant (99.9%) and larger than {} at its lower bound, and without levelling off; run longer to decide",
            human_bytes(trend.growth().max(shape.rise_max).max(0.0)),
            human_bytes(shape.tolerance)
        ));
        Verdict::Inconclusive
    };
    report.verdict = Some(verdict);
}
