//! summary.json (docs/run-folder.md) and the thresholds that decide the exit
//! code. Unknown numbers are null, never 0.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::scenario::{Threshold, ThresholdKind};
use crate::stats::{IntervalStats, Percentiles};

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) complete: bool,
    pub(crate) clw_version: &'static str,
    pub(crate) scenario: String,
    pub(crate) scenario_file: String,
    pub(crate) target: String,
    pub(crate) metrics_url: Option<String>,
    pub(crate) concurrent_users: u32,
    pub(crate) duration_s: f64,
    pub(crate) ramp_up_s: f64,
    pub(crate) model: &'static str,
    pub(crate) arrival_rate: Option<f64>,
    pub(crate) started_at: String,
    pub(crate) elapsed_s: Option<f64>,
    pub(crate) host: Host,
    pub(crate) requests: Requests,
    pub(crate) dropped_iterations: u64,
    pub(crate) connections_opened: u64,
    pub(crate) throughput_rps: Option<f64>,
    pub(crate) latency_ms: Option<Percentiles>,
    pub(crate) latency_corrected_ms: Option<Percentiles>,
    /// What the latency figures measure, in words.
    pub(crate) latency_note: &'static str,
    pub(crate) steps: BTreeMap<String, StepSummary>,
    pub(crate) memory: Value,
    pub(crate) server: ServerSummary,
    pub(crate) thresholds: Vec<ThresholdResult>,
    pub(crate) passed: Option<bool>,
    /// Things the reader should know (sampler failures, report errors...).
    pub(crate) notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Host {
    pub(crate) hostname: String,
    pub(crate) cpus: usize,
    pub(crate) os: &'static str,
}

impl Host {
    pub(crate) fn this() -> Host {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Host {
            hostname,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: std::env::consts::OS,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Requests {
    pub(crate) total: u64,
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) by_status: BTreeMap<String, u64>,
    pub(crate) by_error: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StepSummary {
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    pub(crate) latency_ms: Option<Percentiles>,
    pub(crate) latency_corrected_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct ServerSummary {
    pub(crate) pid: Option<u32>,
    pub(crate) command: Option<String>,
    pub(crate) config: Option<String>,
    pub(crate) limit_enforcement: String,
    pub(crate) limit_bytes: Option<u64>,
    pub(crate) exit: Option<ServerExit>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServerExit {
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    /// The status as a shell reports it (137 for SIGKILL).
    pub(crate) shell_code: i32,
    pub(crate) at_s: f64,
    pub(crate) oom_killed: bool,
    pub(crate) emulated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ThresholdResult {
    pub(crate) name: &'static str,
    pub(crate) limit: f64,
    /// `<=` or `>=`.
    pub(crate) op: &'static str,
    pub(crate) actual: Option<f64>,
    /// null when the threshold does not apply to this run (a % of the
    /// memory limit when no limit is known).
    pub(crate) passed: Option<bool>,
}

impl Summary {
    /// A summary with nothing measured yet.
    #[cfg(test)]
    pub(crate) fn empty() -> Summary {
        Summary {
            complete: false,
            clw_version: "test",
            scenario: String::new(),
            scenario_file: String::new(),
            target: String::new(),
            metrics_url: None,
            concurrent_users: 1,
            duration_s: 1.0,
            ramp_up_s: 0.0,
            model: "closed",
            arrival_rate: None,
            started_at: String::new(),
            elapsed_s: None,
            host: Host::this(),
            requests: Requests::default(),
            dropped_iterations: 0,
            connections_opened: 0,
            throughput_rps: None,
            latency_ms: None,
            latency_corrected_ms: None,
            latency_note: "",
            steps: BTreeMap::new(),
            memory: Value::Null,
            server: ServerSummary::default(),
            thresholds: Vec::new(),
            passed: None,
            notes: Vec::new(),
        }
    }

    /// Fill the request and latency figures from the run's merged stats.
    pub(crate) fn set_load(
        &mut self,
        stats: &IntervalStats,
        step_names: &[String],
        elapsed_s: f64,
        open: bool,
    ) {
        let total = stats.requests();
        let failed = stats.errors();
        self.requests = Requests {
            total,
            ok: total - failed,
            failed,
            by_status: stats
                .by_status
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            by_error: stats.by_error.clone(),
        };
        self.dropped_iterations = stats.dropped_iterations;
        self.elapsed_s = Some(elapsed_s);
        self.throughput_rps = (elapsed_s > 0.0).then(|| total as f64 / elapsed_s);
        let all = stats.all_steps();
        self.latency_ms = Percentiles::of(&all.latency);
        self.latency_corrected_ms = if open {
            Percentiles::of(&all.corrected)
        } else {
            None
        };
        self.steps = step_names
            .iter()
            .zip(&stats.steps)
            .map(|(name, s)| {
                let summary = StepSummary {
                    requests: s.requests,
                    errors: s.errors,
                    latency_ms: Percentiles::of(&s.latency),
                    latency_corrected_ms: if open {
                        Percentiles::of(&s.corrected)
                    } else {
                        None
                    },
                };
                (name.clone(), summary)
            })
            .collect();
    }

    /// The figure a threshold kind is checked against.
    fn figure(&self, kind: ThresholdKind) -> Option<f64> {
        let memory = |key: &str| self.memory.get(key).and_then(Value::as_f64);
        let latency = self.latency_ms;
        match kind {
            ThresholdKind::PeakRssPercent => memory("peak_rss_percent"),
            ThresholdKind::PeakAllocatedPercent => memory("peak_allocated_percent"),
            ThresholdKind::SlopeBytesPerS => memory("slope_bytes_per_s"),
            ThresholdKind::RetainedBytesPerSession => memory("retained_bytes_per_session"),
            ThresholdKind::P50Ms => latency.map(|l| l.p50),
            ThresholdKind::P90Ms => latency.map(|l| l.p90),
            ThresholdKind::P99Ms => latency.map(|l| l.p99),
            ThresholdKind::P999Ms => latency.map(|l| l.p999),
            ThresholdKind::MaxMs => latency.map(|l| l.max),
            ThresholdKind::ErrorRate => (self.requests.total > 0)
                .then(|| self.requests.failed as f64 / self.requests.total as f64),
            ThresholdKind::MinThroughputRps => self.throughput_rps,
        }
    }

    /// Check every threshold. A percentage of the memory limit when no
    /// limit is known does not apply (skipped, `passed: null`); any other
    /// unknown figure fails its threshold, since a gate that passes on
    /// missing data would pass a broken run.
    pub(crate) fn evaluate(&mut self, thresholds: &[Threshold], limit_known: bool) {
        self.thresholds = thresholds
            .iter()
            .map(|t| {
                let actual = self.figure(t.kind);
                let percent_of_limit = matches!(
                    t.kind,
                    ThresholdKind::PeakRssPercent | ThresholdKind::PeakAllocatedPercent
                );
                let passed = if percent_of_limit && !limit_known {
                    None
                } else {
                    Some(actual.is_some_and(|a| t.passes(a)))
                };
                ThresholdResult {
                    name: t.kind.as_str(),
                    limit: t.limit,
                    op: if t.kind.is_minimum() { ">=" } else { "<=" },
                    actual,
                    passed,
                }
            })
            .collect();
        self.passed = Some(self.thresholds.iter().all(|t| t.passed != Some(false)));
    }
}

/// Scenario thresholds, overridden by command-line ones of the same name,
/// plus the field guide's `peak_rss_percent <= 80` when nothing else says
/// otherwise. The limit may only be learnt during the run (from the
/// service's metrics); where it stays unknown the rule is reported skipped.
pub(crate) fn merge_thresholds(scenario: &[Threshold], cli: &[Threshold]) -> Vec<Threshold> {
    let mut out: Vec<Threshold> = scenario.to_vec();
    for t in cli {
        match out.iter_mut().find(|o| o.kind == t.kind) {
            Some(o) => *o = *t,
            None => out.push(*t),
        }
    }
    if !out.iter().any(|t| t.kind == ThresholdKind::PeakRssPercent) {
        out.insert(
            0,
            Threshold {
                kind: ThresholdKind::PeakRssPercent,
                limit: 80.0,
            },
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(kind: ThresholdKind, limit: f64) -> Threshold {
        Threshold { kind, limit }
    }

    #[test]
    fn cli_overrides_scenario_and_the_80_percent_rule_is_the_default() {
        let merged = merge_thresholds(
            &[
                t(ThresholdKind::P99Ms, 100.0),
                t(ThresholdKind::ErrorRate, 0.01),
            ],
            &[t(ThresholdKind::P99Ms, 50.0)],
        );
        assert_eq!(merged[0], t(ThresholdKind::PeakRssPercent, 80.0));
        assert!(merged.contains(&t(ThresholdKind::P99Ms, 50.0)));
        assert_eq!(merged.len(), 3);
        let stricter = merge_thresholds(&[], &[t(ThresholdKind::PeakRssPercent, 70.0)]);
        assert_eq!(stricter, vec![t(ThresholdKind::PeakRssPercent, 70.0)]);
    }

    #[test]
    fn percent_of_an_unknown_limit_is_skipped_other_unknowns_fail() {
        let mut s = Summary::empty();
        s.evaluate(&[t(ThresholdKind::PeakRssPercent, 80.0)], false);
        assert_eq!(s.thresholds[0].passed, None);
        assert_eq!(s.passed, Some(true));
        s.evaluate(&[t(ThresholdKind::PeakRssPercent, 80.0)], true);
        assert_eq!(
            s.passed,
            Some(false),
            "a known limit without samples must not pass"
        );
        s.evaluate(&[t(ThresholdKind::P99Ms, 10.0)], false);
        assert_eq!(
            s.passed,
            Some(false),
            "no latency at all fails a latency threshold"
        );
    }
}
