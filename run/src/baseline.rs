//! The gate's reference: a good build's key figures, with the setup they
//! were measured on, and the comparison of new runs against them.
//!
//! A baseline is committed beside the code it guards (profiles/baselines/),
//! so it is JSON a person can read and edit: one entry per metric with the
//! value and the tolerance that metric gets. Allocated bytes and RSS are
//! gated separately: allocated is steadier, RSS is what the kernel kills on.
//! Several runs (`--repeat`) are reduced to their median per metric, so
//! one noisy run neither sets nor breaks a baseline.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::RunFileError;
use crate::summary::Host;
use crate::{Model, RunSummary};

/// Bumped when a baseline field changes meaning.
pub const BASELINE_VERSION: u32 = 1;

/// A figure the gate compares with the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GateMetric {
    PeakRssBytes,
    PeakAllocatedBytes,
    RetainedBytesPerLogin,
    P99Ms,
    ThroughputRps,
    ErrorRate,
}

impl GateMetric {
    pub const ALL: [GateMetric; 6] = [
        GateMetric::PeakRssBytes,
        GateMetric::PeakAllocatedBytes,
        GateMetric::RetainedBytesPerLogin,
        GateMetric::P99Ms,
        GateMetric::ThroughputRps,
        GateMetric::ErrorRate,
    ];

    /// The name in baselines, tables and JUnit.
    pub fn as_str(self) -> &'static str {
        match self {
            GateMetric::PeakRssBytes => "peak_rss_bytes",
            GateMetric::PeakAllocatedBytes => "peak_allocated_bytes",
            GateMetric::RetainedBytesPerLogin => "retained_bytes_per_login",
            GateMetric::P99Ms => "p99_ms",
            GateMetric::ThroughputRps => "throughput_rps",
            GateMetric::ErrorRate => "error_rate",
        }
    }

    pub fn from_name(name: &str) -> Option<GateMetric> {
        GateMetric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// Throughput regresses downwards; everything else upwards.
    pub fn higher_is_worse(self) -> bool {
        self != GateMetric::ThroughputRps
    }

    /// The tolerance a new baseline gets: a relative share of the value
    /// plus an absolute slack, so that a figure near zero (retained bytes
    /// of a bounded cache, an error rate of 0) does not fail on noise.
    /// From the spread of 10 identical fixed-mode runs on a 2-core machine
    /// (docs/gate.md, `make bench-gate-noise`): peak RSS varied by 2.3%,
    /// peak allocated by 0.6%, p99 by 66% and throughput by 38% (max-min
    /// over the median) on a shared machine.
    pub fn default_tolerance(self) -> (f64, f64) {
        match self {
            GateMetric::PeakRssBytes => (0.10, 1024.0 * 1024.0),
            GateMetric::PeakAllocatedBytes => (0.05, 1024.0 * 1024.0),
            GateMetric::RetainedBytesPerLogin => (0.25, 16.0),
            GateMetric::P99Ms => (0.50, 1.0),
            GateMetric::ThroughputRps => (0.30, 0.0),
            GateMetric::ErrorRate => (0.0, 0.001),
        }
    }

    /// The figure in one run; None when the run lacks it.
    pub fn value(self, run: &RunSummary) -> Option<f64> {
        let memory = run.memory.as_ref();
        match self {
            GateMetric::PeakRssBytes => memory?.peak_rss_bytes.map(|b| b as f64),
            GateMetric::PeakAllocatedBytes => memory?.peak_allocated_bytes.map(|b| b as f64),
            GateMetric::RetainedBytesPerLogin => memory?.retained_bytes_per_session,
            GateMetric::P99Ms => run.latency_ms.map(|l| l.p99),
            GateMetric::ThroughputRps => run.throughput_rps,
            GateMetric::ErrorRate => (run.requests.total > 0)
                .then(|| run.requests.failed as f64 / run.requests.total as f64),
        }
    }
}

/// What a baseline (or a run) was measured on: the gate warns when a run's
/// setup differs, since figures from another machine or load mean little.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Setup {
    /// The commit measured, when known (git, or CI's GITHUB_SHA).
    pub commit: Option<String>,
    /// RFC 3339, when the baseline was written.
    pub date: String,
    pub host: Host,
    /// Total memory of the machine.
    pub memory_bytes: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub scenario: String,
    pub users: u32,
    pub duration_s: f64,
    pub model: Model,
    pub arrival_rate: Option<f64>,
    /// Runs whose median this is.
    pub runs: usize,
}

impl Setup {
    /// The setup of `run` (date, commit and memory are the caller's).
    pub fn of(run: &RunSummary) -> Setup {
        Setup {
            host: run.host.clone(),
            limit_bytes: run.limit_bytes(),
            scenario: run.scenario.clone(),
            users: run.concurrent_users,
            duration_s: run.duration_s,
            model: run.model.clone(),
            arrival_rate: run.arrival_rate,
            runs: 1,
            ..Setup::default()
        }
    }

    /// How `other` differs from this setup, one sentence per difference
    /// (commit, date and hostname are expected to differ).
    pub fn differences(&self, other: &Setup) -> Vec<String> {
        let mut out = Vec::new();
        let mut differ = |what: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{what}: baseline {a}, run {b}"));
            }
        };
        differ("scenario", self.scenario.clone(), other.scenario.clone());
        differ("users", self.users.to_string(), other.users.to_string());
        differ(
            "duration",
            format!("{:.0} s", self.duration_s),
            format!("{:.0} s", other.duration_s),
        );
        differ("model", self.model.to_string(), other.model.to_string());
        differ(
            "arrival rate",
            format!("{:?}", self.arrival_rate),
            format!("{:?}", other.arrival_rate),
        );
        differ(
            "memory limit",
            bytes_text(self.limit_bytes),
            bytes_text(other.limit_bytes),
        );
        differ(
            "cores",
            self.host.cpus.to_string(),
            other.host.cpus.to_string(),
        );
        if let (Some(a), Some(b)) = (self.memory_bytes, other.memory_bytes) {
            // Machines of one kind report a few MiB apart.
            if (a as f64 - b as f64).abs() > 0.05 * a as f64 {
                differ("machine memory", bytes_text(Some(a)), bytes_text(Some(b)));
            }
        }
        out
    }
}

fn bytes_text(b: Option<u64>) -> String {
    b.map_or_else(|| "none".into(), |b| format!("{} MiB", b >> 20))
}

/// One metric of a baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineMetric {
    pub value: f64,
    /// Allowed regression as a share of `value` (0.1 = 10%).
    pub tolerance: f64,
    /// Allowed regression in the metric's own unit, added to the share.
    pub slack: f64,
}

/// A baseline file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub schema_version: u32,
    pub measured_on: Setup,
    /// By [`GateMetric::as_str`]; a metric the baseline lacks is not gated.
    pub metrics: BTreeMap<String, BaselineMetric>,
}

impl Baseline {
    /// The median of `runs` per metric, with the default tolerances.
    pub fn from_runs(runs: &[RunSummary], measured_on: Setup) -> Baseline {
        let metrics = GateMetric::ALL
            .into_iter()
            .filter_map(|m| {
                let value = median(runs.iter().filter_map(|r| m.value(r)).collect())?;
                let (tolerance, slack) = m.default_tolerance();
                Some((
                    m.as_str().to_string(),
                    BaselineMetric {
                        value,
                        tolerance,
                        slack,
                    },
                ))
            })
            .collect();
        Baseline {
            schema_version: BASELINE_VERSION,
            measured_on,
            metrics,
        }
    }

    pub fn read(path: &Path) -> Result<Baseline, RunFileError> {
        let bytes = crate::bounded::read_capped(path, crate::bounded::JSON_CAP)?;
        let baseline: Baseline =
            serde_json::from_slice(&bytes).map_err(|source| RunFileError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        if let Some(name) = baseline
            .metrics
            .keys()
            .find(|k| GateMetric::from_name(k).is_none())
        {
            return Err(RunFileError::Invalid {
                path: path.to_path_buf(),
                message: format!(
                    "unknown metric `{name}`; known: {}",
                    GateMetric::ALL.map(GateMetric::as_str).join(", ")
                ),
            });
        }
        Ok(baseline)
    }

    /// Pretty JSON, replaced atomically.
    pub fn write(&self, path: &Path) -> Result<(), RunFileError> {
        let mut text = serde_json::to_vec_pretty(self)
            .map_err(|e| RunFileError::write(path)(std::io::Error::other(e)))?;
        text.push(b'\n');
        crate::atomic::write_atomic(path, &text).map_err(RunFileError::write(path))
    }

    /// Each metric of the baseline against the median of `runs`.
    /// `max_regression` replaces every metric's relative tolerance.
    pub fn compare(&self, runs: &[RunSummary], max_regression: Option<f64>) -> Vec<Comparison> {
        self.metrics
            .iter()
            .filter_map(|(name, b)| {
                let metric = GateMetric::from_name(name)?;
                let tolerance = max_regression.unwrap_or(b.tolerance);
                let allowed = b.value.abs() * tolerance + b.slack;
                let bound = if metric.higher_is_worse() {
                    b.value + allowed
                } else {
                    b.value - allowed
                };
                let actual = median(runs.iter().filter_map(|r| metric.value(r)).collect());
                let passed = actual.is_some_and(|a| {
                    if metric.higher_is_worse() {
                        a <= bound
                    } else {
                        a >= bound
                    }
                });
                Some(Comparison {
                    metric,
                    baseline: b.value,
                    actual,
                    tolerance,
                    slack: b.slack,
                    bound,
                    change: actual
                        .filter(|_| b.value != 0.0)
                        .map(|a| (a - b.value) / b.value.abs()),
                    passed,
                })
            })
            .collect()
    }
}

/// One metric's comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub metric: GateMetric,
    pub baseline: f64,
    /// The runs' median; None when no run has the figure (which fails).
    pub actual: Option<f64>,
    pub tolerance: f64,
    pub slack: f64,
    /// The worst value that still passes.
    pub bound: f64,
    /// (actual - baseline) / baseline; None for a baseline of 0.
    pub change: Option<f64>,
    pub passed: bool,
}

/// The median, or None for no values.
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryReport, Percentiles};

    fn run(rss: u64, allocated: u64, p99: f64, rps: f64, failed: u64) -> RunSummary {
        let mut r = RunSummary {
            scenario: "login-storm".into(),
            concurrent_users: 100,
            duration_s: 60.0,
            model: Model::Closed,
            throughput_rps: Some(rps),
            latency_ms: Some(Percentiles {
                p99,
                ..Percentiles::default()
            }),
            memory: Some(MemoryReport {
                peak_rss_bytes: Some(rss),
                peak_allocated_bytes: Some(allocated),
                retained_bytes_per_session: Some(0.0),
                limit_bytes: Some(256 << 20),
                ..MemoryReport::default()
            }),
            ..RunSummary::default()
        };
        r.requests.total = 1000;
        r.requests.failed = failed;
        r
    }

    #[test]
    fn a_run_passes_against_its_own_baseline() {
        let r = run(14 << 20, 9 << 20, 5.0, 60_000.0, 0);
        let b = Baseline::from_runs(std::slice::from_ref(&r), Setup::of(&r));
        let results = b.compare(&[r], None);
        assert_eq!(results.len(), 6);
        assert!(results.iter().all(|c| c.passed), "{results:#?}");
    }

    #[test]
    fn growth_past_tolerance_fails_each_metric_in_its_direction() {
        let base = run(100 << 20, 50 << 20, 5.0, 60_000.0, 0);
        let b = Baseline::from_runs(std::slice::from_ref(&base), Setup::of(&base));
        let worse = run(120 << 20, 50 << 20, 5.0, 30_000.0, 50);
        let results = b.compare(&[worse], None);
        let failed: Vec<&str> = results
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(failed, ["error_rate", "peak_rss_bytes", "throughput_rps"]);
        let rss = results
            .iter()
            .find(|c| c.metric == GateMetric::PeakRssBytes)
            .unwrap();
        assert!((rss.change.unwrap() - 0.2).abs() < 1e-9);
        // --max-regression 25% lets a 20% RSS growth through.
        let lenient = b.compare(&[run(120 << 20, 50 << 20, 5.0, 60_000.0, 0)], Some(0.25));
        assert!(lenient.iter().all(|c| c.passed), "{lenient:#?}");
    }

    #[test]
    fn the_median_of_repeats_is_gated_not_one_noisy_run() {
        let base = run(100 << 20, 50 << 20, 5.0, 60_000.0, 0);
        let b = Baseline::from_runs(std::slice::from_ref(&base), Setup::of(&base));
        let runs = [
            run(100 << 20, 50 << 20, 5.0, 60_000.0, 0),
            run(200 << 20, 50 << 20, 5.0, 60_000.0, 0),
            run(101 << 20, 50 << 20, 5.0, 60_000.0, 0),
        ];
        assert!(b.compare(&runs, None).iter().all(|c| c.passed));
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(median(vec![]), None);
    }

    #[test]
    fn a_missing_figure_fails_and_zero_baselines_use_their_slack() {
        let base = run(100 << 20, 50 << 20, 5.0, 60_000.0, 0);
        let b = Baseline::from_runs(std::slice::from_ref(&base), Setup::of(&base));
        let mut blind = run(100 << 20, 50 << 20, 5.0, 60_000.0, 0);
        blind.memory = None;
        let results = b.compare(&[blind], None);
        let rss = results
            .iter()
            .find(|c| c.metric == GateMetric::PeakRssBytes)
            .unwrap();
        assert!(!rss.passed && rss.actual.is_none());
        // Retained bytes went from 0 to 10 B/login: within the 16 B slack.
        let mut small = run(100 << 20, 50 << 20, 5.0, 60_000.0, 0);
        small.memory.as_mut().unwrap().retained_bytes_per_session = Some(10.0);
        let r = b.compare(&[small], None);
        assert!(r.iter().all(|c| c.passed), "{r:#?}");
    }

    #[test]
    fn setup_differences_are_named() {
        let a = Setup::of(&run(1, 1, 1.0, 1.0, 0));
        let mut b = a.clone();
        assert!(a.differences(&b).is_empty());
        b.users = 50;
        b.limit_bytes = None;
        let d = a.differences(&b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("users: baseline 100, run 50"), "{d:?}");
    }

    #[test]
    fn written_baselines_read_back_and_unknown_metrics_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ci.json");
        let r = run(14 << 20, 9 << 20, 5.0, 60_000.0, 0);
        let b = Baseline::from_runs(std::slice::from_ref(&r), Setup::of(&r));
        b.write(&path).unwrap();
        assert_eq!(Baseline::read(&path).unwrap(), b);
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"p99_ms\"", "\"p99\"");
        std::fs::write(&path, text).unwrap();
        let err = Baseline::read(&path).unwrap_err().to_string();
        assert!(err.contains("unknown metric `p99`"), "{err}");
    }
}
