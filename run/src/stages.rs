//! summary.json `stages[]`: a load that changes over time, stage by stage.
//!
//! clw-cli writes the stages' times and targets when the load starts (they
//! come from the plan), so even a killed run says where its stages began;
//! the per-stage figures are filled at the end by [`fill_figures`], a pure
//! function of latency.hlog and samples.csv, which clw-report runs too when
//! summary.json lacks them.

use serde::{Deserialize, Serialize};

use crate::hlog::HlogInterval;
use crate::samples::SampleRow;

/// One stage of the load, on the run's clock, and its figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StageSummary {
    /// Seconds since load start.
    pub start_s: f64,
    pub end_s: f64,
    /// The level at the stage's start (the previous stage's target, 0 for
    /// the first): virtual users (closed model) or iterations per second
    /// (open model).
    pub from: f64,
    /// The level at the stage's end.
    pub target: f64,
    /// Requests completed in the stage (each 1 s interval counts in the
    /// stage holding its middle); null until the run ends.
    pub requests: Option<u64>,
    /// `requests` over the part of the stage the run covered.
    pub throughput_rps: Option<f64>,
    /// 99th percentile latency of the stage's requests, ms.
    pub p99_ms: Option<f64>,
    /// Highest server RSS / allocated bytes sampled in the stage.
    pub peak_rss_bytes: Option<u64>,
    pub peak_allocated_bytes: Option<u64>,
    /// How fast memory moved within the stage: the least-squares slope of
    /// allocated bytes (RSS when the service exports no allocator figures)
    /// over the stage's samples, bytes per second. Near 0 in a hold: memory
    /// levelled off at that load. Null with fewer than 3 samples.
    pub memory_slope_bytes_per_s: Option<f64>,
}

impl StageSummary {
    /// A stage with its figures still unknown.
    pub fn planned(start_s: f64, end_s: f64, from: f64, target: f64) -> StageSummary {
        StageSummary {
            start_s,
            end_s,
            from,
            target,
            ..StageSummary::default()
        }
    }

    /// Whether the figures are there (the run ended and wrote them).
    pub fn has_figures(&self) -> bool {
        self.requests.is_some()
    }
}

/// The stage holding `t` seconds: the one it falls in, the last one from
/// the end on (requests in flight at the end drain into it), none before
/// the first. Zero-length stages (jumps) hold nothing.
fn stage_of(stages: &[StageSummary], t: f64) -> Option<usize> {
    let last = stages.iter().rposition(|s| s.end_s > s.start_s)?;
    if t >= stages[last].end_s {
        return Some(last);
    }
    stages
        .iter()
        .position(|s| s.start_s <= t && t < s.end_s && s.end_s > s.start_s)
}

/// Fill each stage's figures from the run's latency intervals (latency.hlog;
/// `<step>.corrected` tags are left out, so p99 is the plain latency) and
/// memory samples. A stage the run never reached keeps nulls, except
/// `requests`, which is 0.
pub fn fill_figures(
    stages: &mut [StageSummary],
    intervals: &[HlogInterval],
    samples: &[SampleRow],
) {
    let mut merged: Vec<Option<hdrhistogram::Histogram<u64>>> = vec![None; stages.len()];
    let mut covered_until = 0.0f64;
    for i in intervals {
        if i.tag.as_deref().is_some_and(|t| t.ends_with(".corrected")) {
            continue;
        }
        let middle = (i.start + i.length / 2).as_secs_f64();
        covered_until = covered_until.max((i.start + i.length).as_secs_f64());
        let Some(s) = stage_of(stages, middle) else {
            continue;
        };
        // A histogram read from the log keeps the range it was written
        // with; the stage's grows to hold every interval's.
        let h = merged[s].get_or_insert_with(|| {
            hdrhistogram::Histogram::new(3).expect("3 significant digits is valid")
        });
        h.add(&i.histogram)
            .expect("an auto-resizing histogram takes any other");
    }
    for r in samples {
        covered_until = covered_until.max(r.t_s);
    }
    for (stage, h) in stages.iter_mut().zip(merged) {
        let requests = h.as_ref().map_or(0, |h| h.len());
        stage.requests = Some(requests);
        stage.p99_ms = h
            .as_ref()
            .filter(|h| !h.is_empty())
            .map(|h| h.value_at_quantile(0.99) as f64 / 1000.0);
        let covered = covered_until.min(stage.end_s) - stage.start_s;
        stage.throughput_rps = (covered > 0.0).then(|| requests as f64 / covered);
        stage.peak_rss_bytes = None;
        stage.peak_allocated_bytes = None;
        stage.memory_slope_bytes_per_s = None;
    }
    // The verdict's choice of series: allocated bytes when any sample has
    // them, else RSS.
    let allocated = samples.iter().any(|r| r.allocated_bytes.is_some());
    let mut points: Vec<Vec<(f64, f64)>> = vec![Vec::new(); stages.len()];
    for r in samples {
        let Some(s) = stage_of(stages, r.t_s) else {
            continue;
        };
        let stage = &mut stages[s];
        let max = |a: Option<u64>, b: Option<u64>| a.max(b);
        stage.peak_rss_bytes = max(stage.peak_rss_bytes, r.rss_bytes);
        stage.peak_allocated_bytes = max(stage.peak_allocated_bytes, r.allocated_bytes);
        let memory = if allocated {
            r.allocated_bytes
        } else {
            r.rss_bytes
        };
        if let Some(bytes) = memory {
            points[s].push((r.t_s, bytes as f64));
        }
    }
    for (stage, points) in stages.iter_mut().zip(points) {
        stage.memory_slope_bytes_per_s = (points.len() >= 3)
            .then(|| crate::analysis::fit::least_squares(&points))
            .flatten()
            .map(|fit| fit.slope);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use hdrhistogram::Histogram;

    use super::*;

    /// An interval as read back from latency.hlog: its histogram's range
    /// fits its own values only.
    fn interval(tag: &str, start_s: u64, latencies_us: &[u64]) -> HlogInterval {
        let high = latencies_us.iter().max().map_or(2, |m| 2 * m);
        let mut histogram = Histogram::<u64>::new_with_bounds(1, high, 3).unwrap();
        for &v in latencies_us {
            histogram.record(v).unwrap();
        }
        HlogInterval {
            tag: Some(tag.into()),
            start: Duration::from_secs(start_s),
            length: Duration::from_secs(1),
            histogram,
        }
    }

    fn sample(t_s: f64, rss: u64) -> SampleRow {
        SampleRow {
            t_s,
            rss_bytes: Some(rss),
            allocated_bytes: Some(rss / 2),
            ..SampleRow::default()
        }
    }

    #[test]
    fn figures_fall_in_the_stage_holding_each_interval_and_sample() {
        let mut stages = vec![
            StageSummary::planned(0.0, 2.0, 0.0, 10.0),
            StageSummary::planned(2.0, 2.0, 10.0, 50.0),
            StageSummary::planned(2.0, 4.0, 50.0, 50.0),
            StageSummary::planned(4.0, 10.0, 50.0, 0.0),
        ];
        let intervals = [
            interval("login", 0, &[1000, 1000]),
            // Past the range of the first interval's histogram.
            interval("validate", 1, &[3000]),
            interval("login", 2, &[5000; 10]),
            interval("login.corrected", 2, &[900_000; 10]),
            interval("login", 3, &[5000; 30]),
            // The drain after the last planned second counts in the last stage.
            interval("login", 4, &[7000]),
        ];
        let samples = [
            sample(0.5, 100),
            sample(1.9, 300),
            sample(2.0, 200),
            sample(4.5, 50),
        ];
        fill_figures(&mut stages, &intervals, &samples);
        assert_eq!(
            stages.iter().map(|s| s.requests).collect::<Vec<_>>(),
            [Some(3), Some(0), Some(40), Some(1)]
        );
        assert_eq!(stages[0].throughput_rps, Some(1.5));
        assert_eq!(stages[2].throughput_rps, Some(20.0));
        // The last stage was covered up to 5 s of its 4..10 s.
        assert_eq!(stages[3].throughput_rps, Some(1.0));
        assert_eq!(stages[1].throughput_rps, None, "a jump has no length");
        assert!(
            (stages[0].p99_ms.unwrap() - 3.0).abs() < 0.01,
            "{:?}",
            stages[0].p99_ms
        );
        assert!(
            (stages[2].p99_ms.unwrap() - 5.0).abs() < 0.01,
            "corrected intervals are left out: {:?}",
            stages[2].p99_ms
        );
        assert_eq!(stages[1].p99_ms, None);
        assert_eq!(
            stages.iter().map(|s| s.peak_rss_bytes).collect::<Vec<_>>(),
            [Some(300), None, Some(200), Some(50)]
        );
        assert_eq!(stages[0].peak_allocated_bytes, Some(150));
        assert_eq!(
            stages
                .iter()
                .map(|s| s.memory_slope_bytes_per_s)
                .collect::<Vec<_>>(),
            [None; 4],
            "fewer than 3 samples in every stage"
        );
        assert!(stages[0].has_figures());
    }

    #[test]
    fn the_memory_slope_says_whether_a_stage_levelled_off() {
        let mut stages = vec![
            StageSummary::planned(0.0, 10.0, 0.0, 10.0),
            StageSummary::planned(10.0, 20.0, 10.0, 10.0),
        ];
        // Allocated climbs 100 B/s in the first stage, is flat in the second.
        let samples: Vec<SampleRow> = (0..20)
            .map(|t| SampleRow {
                t_s: f64::from(t),
                rss_bytes: Some(1 << 20),
                allocated_bytes: Some(1000 + 100 * u64::try_from(t.min(10)).unwrap()),
                ..SampleRow::default()
            })
            .collect();
        fill_figures(&mut stages, &[], &samples);
        let slopes: Vec<f64> = stages
            .iter()
            .map(|s| s.memory_slope_bytes_per_s.unwrap())
            .collect();
        assert!((slopes[0] - 100.0).abs() < 1e-6, "{slopes:?}");
        assert!(slopes[1].abs() < 1e-6, "{slopes:?}");
    }

    #[test]
    fn a_killed_run_leaves_later_stages_empty() {
        let mut stages = vec![
            StageSummary::planned(0.0, 5.0, 0.0, 10.0),
            StageSummary::planned(5.0, 10.0, 10.0, 10.0),
        ];
        fill_figures(
            &mut stages,
            &[interval("login", 0, &[1000])],
            &[sample(0.9, 7)],
        );
        assert_eq!(stages[0].throughput_rps, Some(1.0), "covered 0..1 s");
        assert_eq!(
            (
                stages[1].requests,
                stages[1].throughput_rps,
                stages[1].p99_ms
            ),
            (Some(0), None, None)
        );
        assert_eq!(stages[1].peak_rss_bytes, None);
    }
}
