//! summary.json (docs/run-folder.md): every field optional, because a killed
//! run leaves a partial one and unknown numbers are null.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The run's figures as clw-cli wrote them. Numbers are f64 so that an
/// integer written as `100.0` still reads.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Summary {
    pub(crate) complete: Option<bool>,
    pub(crate) clw_version: Option<String>,
    pub(crate) scenario: Option<String>,
    pub(crate) scenario_file: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) metrics_url: Option<String>,
    pub(crate) concurrent_users: Option<f64>,
    pub(crate) duration_s: Option<f64>,
    pub(crate) ramp_up_s: Option<f64>,
    pub(crate) model: Option<String>,
    pub(crate) arrival_rate: Option<f64>,
    pub(crate) started_at: Option<String>,
    pub(crate) elapsed_s: Option<f64>,
    pub(crate) host: Option<Host>,
    pub(crate) requests: Option<Requests>,
    pub(crate) dropped_iterations: Option<f64>,
    pub(crate) throughput_rps: Option<f64>,
    pub(crate) latency_ms: Option<Percentiles>,
    pub(crate) latency_corrected_ms: Option<Percentiles>,
    pub(crate) steps: Option<BTreeMap<String, Step>>,
    pub(crate) memory: Option<Memory>,
    pub(crate) server: Option<Server>,
    pub(crate) thresholds: Option<Vec<Threshold>>,
    pub(crate) passed: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Host {
    pub(crate) hostname: Option<String>,
    pub(crate) cpus: Option<f64>,
    pub(crate) os: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Requests {
    pub(crate) total: Option<f64>,
    pub(crate) ok: Option<f64>,
    pub(crate) failed: Option<f64>,
    pub(crate) by_status: Option<BTreeMap<String, f64>>,
    pub(crate) by_error: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub(crate) struct Percentiles {
    pub(crate) p50: Option<f64>,
    pub(crate) p90: Option<f64>,
    pub(crate) p99: Option<f64>,
    pub(crate) p999: Option<f64>,
    pub(crate) max: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Step {
    pub(crate) requests: Option<f64>,
    pub(crate) errors: Option<f64>,
    pub(crate) latency_ms: Option<Percentiles>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Memory {
    pub(crate) samples: Option<f64>,
    pub(crate) limit_bytes: Option<f64>,
    pub(crate) sources: Option<BTreeMap<String, Option<String>>>,
    pub(crate) peak_rss_bytes: Option<f64>,
    pub(crate) peak_rss_percent: Option<f64>,
    pub(crate) peak_allocated_bytes: Option<f64>,
    pub(crate) peak_allocated_percent: Option<f64>,
    pub(crate) slope_bytes_per_s: Option<f64>,
    pub(crate) r_squared: Option<f64>,
    pub(crate) plateau: Option<bool>,
    pub(crate) retained_bytes_per_session: Option<f64>,
    pub(crate) verdict: Option<String>,
    pub(crate) evidence: Option<Vec<String>>,
    pub(crate) projected_time_to_limit_s: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Server {
    pub(crate) pid: Option<f64>,
    pub(crate) command: Option<String>,
    pub(crate) config: Option<String>,
    pub(crate) limit_enforcement: Option<String>,
    pub(crate) exit: Option<Exit>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Exit {
    pub(crate) code: Option<f64>,
    pub(crate) signal: Option<f64>,
    pub(crate) at_s: Option<f64>,
    pub(crate) oom_killed: Option<bool>,
    pub(crate) emulated: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Threshold {
    pub(crate) name: Option<String>,
    pub(crate) limit: Option<f64>,
    pub(crate) actual: Option<f64>,
    pub(crate) passed: Option<bool>,
}

impl Summary {
    /// Reads `dir/summary.json`. Absent: `None`. Unreadable (a kill in the
    /// middle of a rewrite): `None` plus a notice, so the CSVs still render.
    pub(crate) fn read(dir: &Path, notices: &mut Vec<String>) -> Option<Summary> {
        let path = dir.join("summary.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                notices.push(format!(
                    "summary.json unreadable ({e}): figures from the CSV files only"
                ));
                return None;
            }
        };
        match serde_json::from_slice::<Summary>(&bytes) {
            Ok(s) => {
                if s.complete == Some(false) {
                    notices.push(
                        "summary.json is partial (\"complete\": false): the run did not finish"
                            .into(),
                    );
                }
                Some(s)
            }
            Err(e) => {
                notices.push(format!(
                    "summary.json is not valid ({e}): figures from the CSV files only"
                ));
                None
            }
        }
    }

    pub(crate) fn memory(&self) -> Option<&Memory> {
        self.memory.as_ref()
    }

    pub(crate) fn exit(&self) -> Option<&Exit> {
        self.server.as_ref().and_then(|s| s.exit.as_ref())
    }

    pub(crate) fn limit_bytes(&self) -> Option<f64> {
        self.memory().and_then(|m| m.limit_bytes)
    }

    /// When the server was OOM-killed: `Some(at_s)` (at_s may be unknown).
    pub(crate) fn oom_kill(&self) -> Option<Option<f64>> {
        self.exit()
            .filter(|e| e.oom_killed == Some(true))
            .map(|e| e.at_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_missing_keys_read_as_unknown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("summary.json"),
            r#"{"complete": false, "memory": {"limit_bytes": null, "verdict": "inconclusive"}, "server": null}"#,
        )
        .unwrap();
        let mut notices = Vec::new();
        let s = Summary::read(dir.path(), &mut notices).unwrap();
        assert_eq!(s.limit_bytes(), None);
        assert!(s.oom_kill().is_none());
        assert_eq!(notices.len(), 1, "{notices:?}");
    }

    #[test]
    fn broken_json_is_a_notice_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("summary.json"), r#"{"complete": tr"#).unwrap();
        let mut notices = Vec::new();
        assert!(Summary::read(dir.path(), &mut notices).is_none());
        assert!(
            notices[0].starts_with("summary.json is not valid"),
            "{notices:?}"
        );
    }
}
