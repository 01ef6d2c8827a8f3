//! summary.json: the run's figures (docs/run-folder.md is the contract; the
//! test in tests/it/contract.rs keeps the two in step).
//!
//! One type for the writer (clw-cli) and every reader (clw-report, later a
//! gate or a merge of runs). clw-cli writes the whole document at the start
//! of the load (`complete: false`), after a server death and at the end, so
//! the only things a killed run lacks are the figures measured at the end:
//! those are `Option` here. Reading is lenient (missing keys and `null`
//! objects read as their defaults) because a partial or hand-edited file
//! should still give what it has.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::de::null_default;
use crate::error::RunFileError;
use crate::memory::MemoryReport;
use crate::stages::StageSummary;
use crate::words::{LimitEnforcement, Model};

/// The summary.json layout version, bumped when a field changes meaning or
/// goes away (adding an optional field does not bump it). Files written
/// before versioning read as 0.
pub const SCHEMA_VERSION: u32 = 1;

fn unversioned() -> u32 {
    0
}

/// summary.json. Unknown numbers are `None` (null), never 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSummary {
    #[serde(default = "unversioned")]
    pub schema_version: u32,
    /// false until the run's final write: a run killed earlier keeps this.
    pub complete: bool,
    pub clw_version: String,
    pub scenario: String,
    pub scenario_file: String,
    pub target: String,
    pub metrics_url: Option<String>,
    pub concurrent_users: u32,
    pub duration_s: f64,
    pub ramp_up_s: f64,
    /// `closed` or `open`.
    pub model: Model,
    /// Iterations per second (open model).
    pub arrival_rate: Option<f64>,
    /// RFC 3339, UTC, seconds.
    pub started_at: String,
    pub elapsed_s: Option<f64>,
    #[serde(deserialize_with = "null_default")]
    pub host: Host,
    #[serde(deserialize_with = "null_default")]
    pub requests: Requests,
    /// Requests sent after the server died, counted apart: they are in
    /// none of `requests`, `throughput_rps`, the latency figures or
    /// `steps`. Absent when the server did not die during the load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_death: Option<AfterDeath>,
    pub dropped_iterations: u64,
    pub connections_opened: u64,
    /// `https://` targets only: the TLS side of the run; absent for plain
    /// HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
    pub throughput_rps: Option<f64>,
    pub latency_ms: Option<Percentiles>,
    /// Open model only: measured from each iteration's scheduled start.
    pub latency_corrected_ms: Option<Percentiles>,
    /// What the latency figures measure, in words.
    pub latency_note: String,
    #[serde(deserialize_with = "null_default")]
    pub steps: BTreeMap<String, StepSummary>,
    /// A load that changes over time (`[[load.stages]]`): each stage's
    /// times and target, written when the load starts, and its figures,
    /// filled at the end. Absent for a constant load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stages: Option<Vec<StageSummary>>,
    /// Absent from a file written by hand or by a tool that has no samples;
    /// clw-cli always writes one (a placeholder until the run ends).
    pub memory: Option<MemoryReport>,
    #[serde(deserialize_with = "null_default")]
    pub server: ServerInfo,
    #[serde(deserialize_with = "null_default")]
    pub thresholds: Vec<ThresholdResult>,
    /// The run passed: every threshold passed and `failures` is empty;
    /// `None` until judged (end of run).
    pub passed: Option<bool>,
    /// Why the run failed whatever its thresholds: the server died, the
    /// watched PID vanished, no request succeeded, it was interrupted.
    #[serde(deserialize_with = "null_default")]
    pub failures: Vec<String>,
    /// Stopped by SIGINT or SIGTERM before its full duration.
    pub interrupted: bool,
    /// `SIGINT` or `SIGTERM` when interrupted.
    pub interrupted_by: Option<String>,
    /// Why `--abort-on-fail` stopped the load early (a threshold that had
    /// failed for good); absent when it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    /// `--shard I/N`: this run is one part of a sharded run; absent
    /// otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// This run was merged from shards by `clw-cli merge`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergeInfo>,
    /// Why a figure is missing or degraded (scrape failures, an emulated
    /// limit, an interruption...).
    #[serde(deserialize_with = "null_default")]
    pub notes: Vec<String>,
    /// `--no-memory`: the user chose not to measure memory, so every
    /// memory threshold is skipped (`why`) rather than failed for want of
    /// samples. Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_memory: bool,
}

impl Default for RunSummary {
    fn default() -> RunSummary {
        RunSummary {
            schema_version: SCHEMA_VERSION,
            complete: false,
            clw_version: String::new(),
            scenario: String::new(),
            scenario_file: String::new(),
            target: String::new(),
            metrics_url: None,
            concurrent_users: 0,
            duration_s: 0.0,
            ramp_up_s: 0.0,
            model: Model::Unrecorded,
            arrival_rate: None,
            started_at: String::new(),
            elapsed_s: None,
            host: Host::default(),
            requests: Requests::default(),
            after_death: None,
            dropped_iterations: 0,
            connections_opened: 0,
            tls: None,
            throughput_rps: None,
            latency_ms: None,
            latency_corrected_ms: None,
            latency_note: String::new(),
            steps: BTreeMap::new(),
            stages: None,
            memory: None,
            server: ServerInfo::default(),
            thresholds: Vec::new(),
            passed: None,
            failures: Vec::new(),
            interrupted: false,
            interrupted_by: None,
            aborted: None,
            shard: None,
            merged: None,
            notes: Vec::new(),
            no_memory: false,
        }
    }
}

/// `shard`: which part of a sharded run this folder holds. The run's own
/// `concurrent_users` and `arrival_rate` stay the whole run's; this shard
/// ran users `first_user .. first_user + users` of them (global indices,
/// so user names and iteration numbers never collide between shards).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShardInfo {
    /// 1-based.
    pub index: u32,
    pub count: u32,
    pub first_user: u64,
    pub users: u32,
    /// This shard sampled the server's memory (one shard per run does).
    pub samples_memory: bool,
    /// `--start-at`, RFC 3339: the instant every shard's load began.
    pub start_at: Option<String>,
}

/// `merged`: what `clw-cli merge` made this run from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MergeInfo {
    /// N of the shards' `I/N`.
    pub count: u32,
    /// The shard indexes merged, ascending.
    pub shards: Vec<u32>,
    /// The shard indexes absent (only with `--allow-partial`).
    pub missing: Vec<u32>,
    /// Some shards are missing: the figures cover only part of the load.
    pub partial: bool,
    /// The shard whose memory samples and verdict this run carries.
    pub memory_from: Option<u32>,
    /// Largest difference between the shards' load start times, seconds.
    pub start_spread_s: Option<f64>,
}

/// The machine the load ran on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Host {
    pub hostname: String,
    pub cpus: usize,
    pub os: String,
}

impl Host {
    /// This machine.
    pub fn this() -> Host {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Host {
            hostname,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            os: std::env::consts::OS.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Requests {
    pub total: u64,
    pub ok: u64,
    pub failed: u64,
    /// HTTP status (as text) -> responses.
    #[serde(deserialize_with = "null_default")]
    pub by_status: BTreeMap<String, u64>,
    /// Error kind (`connect`, `clw-session-evicted`, `http-503`...) -> count.
    #[serde(deserialize_with = "null_default")]
    pub by_error: BTreeMap<String, u64>,
    /// The `capture-failed` requests of `by_error` by what failed:
    /// `step login: capture sid = cookie "session": the response has no
    /// cookie session` -> count. Absent when no capture failed.
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub capture_failed: BTreeMap<String, u64>,
}

/// `after_death`: the requests sent once the server was dead (refused
/// connections, mostly: a fast failure that would inflate throughput and
/// pull every latency percentile down if it were counted with the rest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AfterDeath {
    /// The death, seconds since load start (`server.exit.at_s`): a request
    /// sent from then on is counted here.
    pub from_s: f64,
    pub requests: u64,
    pub failed: u64,
    /// Error kind -> count, as `requests.by_error`.
    #[serde(deserialize_with = "null_default")]
    pub by_error: BTreeMap<String, u64>,
}

impl AfterDeath {
    /// In words, the same on the console and the report: "287769 requests
    /// sent after the server died (connect 287769): not counted in
    /// throughput or latency". The time of the death is `server.exit`'s to
    /// say.
    pub fn describe(&self) -> String {
        let kinds: Vec<String> = self
            .by_error
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        let ok = self.requests - self.failed.min(self.requests);
        let mut what = kinds.join(", ");
        if ok > 0 {
            what = [what, format!("{ok} ok")]
                .into_iter()
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(", ");
        }
        let what = if what.is_empty() {
            String::new()
        } else {
            format!(" ({what})")
        };
        format!(
            "{} requests sent after the server died{what}: not counted in throughput or latency",
            self.requests
        )
    }
}

/// `tls`: how clw-cli spoke TLS to the target.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSummary {
    /// TLS handshakes clw-cli completed during the run, each a new
    /// connection: the load's (`connections_opened`), plus the setup check,
    /// a spawned server's readiness polls and the metrics and heap-profile
    /// connections over https. Against one server that scrapes itself,
    /// the server counts exactly these.
    pub handshakes: u64,
    /// How long the load's TLS handshakes took (ms; from the TCP
    /// connection to the end of the handshake, which is also inside the
    /// latency of the request that opened the connection), as k6's
    /// `http_req_tls_handshaking`. Null when the load opened none, and in
    /// a merged run (percentiles of shards do not add up).
    pub handshake_ms: Option<Percentiles>,
    /// The server's certificate was verified (false with `--insecure`).
    pub verified: bool,
    /// The `--cacert` file trusted besides the system's roots.
    pub cacert: Option<String>,
    /// The client certificate (`--cert`) presented to a server that asks
    /// for one (mutual TLS); absent when none was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Set when verification was off: the warning every output repeats.
    pub warning: Option<String>,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// The percentiles, in milliseconds, of a histogram of microseconds;
    /// `None` for an empty one: unknown, not zero.
    pub fn of(h: &hdrhistogram::Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        })
    }
}

/// `steps.<name>`: one scenario step's figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepSummary {
    pub requests: u64,
    pub errors: u64,
    pub latency_ms: Option<Percentiles>,
    pub latency_corrected_ms: Option<Percentiles>,
}

/// `server`: the server under test, as far as clw-cli knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    pub pid: Option<u32>,
    /// The `--spawn-server` command.
    pub command: Option<String>,
    /// Its `--config FILE`.
    pub config: Option<String>,
    /// `cgroup-v2`, `cgroup-v1`, `systemd-run`, `watchdog` or `none`.
    pub limit_enforcement: LimitEnforcement,
    pub limit_bytes: Option<u64>,
    /// Set when the server died during the run.
    pub exit: Option<ServerExit>,
}

/// `server.exit`: how the server died.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerExit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The status as a shell reports it (137 for SIGKILL); `None` when
    /// unknown (a `--server-pid` process that vanished).
    pub shell_code: Option<i32>,
    /// Seconds since load start.
    pub at_s: Option<f64>,
    pub oom_killed: bool,
    /// Killed by clw-cli's watchdog at the limit, not by the kernel.
    pub emulated: bool,
    /// A `--server-pid` process (not clw-cli's child) disappeared; its exit
    /// status is unknown.
    pub vanished: bool,
    /// The lines clw-cli printed for the death (the report shows them);
    /// absent in summaries written before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `thresholds[]`: one gate rule and how the run fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ThresholdResult {
    /// The figure, with its step: `peak_rss_percent`, `login.p99_ms`.
    pub name: String,
    /// The number compared with, in the figure's unit; null for a verdict
    /// rule (see `limit_verdict`).
    pub limit: Option<f64>,
    /// `<`, `<=`, `>`, `>=`, `==` or `!=`.
    pub op: String,
    pub actual: Option<f64>,
    /// A verdict rule's word (`verdict != leak`: `leak`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_verdict: Option<String>,
    /// A verdict rule's actual verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual_verdict: Option<String>,
    /// The rule as written: `login.p99_ms < 80`, `verdict != leak`.
    pub expr: String,
    /// `None` when the rule does not apply to this run (a % of the memory
    /// limit when no limit is known, or `--no-memory`).
    pub passed: Option<bool>,
    /// Why the rule was judged without a figure: `no memory limit known`
    /// (skipped), `no memory samples` (failed: memory could not be
    /// measured at all), `memory not measured (--no-memory)` (skipped).
    /// Absent when the figure was there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl ThresholdResult {
    /// The actual value as the rule states it: a number, or a verdict.
    pub fn actual_text(&self) -> Option<String> {
        match (&self.actual_verdict, self.actual) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(a)) if a.fract() == 0.0 && a.abs() < 1e15 => Some(format!("{a:.0}")),
            (None, Some(a)) => Some(format!("{a:.3}")),
            (None, None) => None,
        }
    }
}

impl ThresholdResult {
    /// The actual value as every output shows a rule: `missing` when the
    /// run lacks it, then why it was judged without a figure (`unknown; no
    /// memory samples`), so a failed or skipped rule says why wherever it
    /// is shown (console, JUnit, Markdown, report).
    pub fn actual_shown(&self, missing: &str) -> String {
        let actual = self.actual_text().unwrap_or_else(|| missing.to_string());
        match &self.why {
            Some(why) => format!("{actual}; {why}"),
            None => actual,
        }
    }
}

impl From<crate::threshold::Judged> for ThresholdResult {
    fn from(j: crate::threshold::Judged) -> ThresholdResult {
        use crate::threshold::{Actual, Value};
        let (limit, limit_verdict) = match &j.threshold.value {
            Value::Number(n) => (Some(*n), None),
            Value::Verdict(v) => (None, Some(v.clone())),
        };
        let (actual, actual_verdict) = match j.actual {
            Some(Actual::Number(n)) => (Some(n), None),
            Some(Actual::Verdict(v)) => (None, Some(v)),
            None => (None, None),
        };
        ThresholdResult {
            name: j.threshold.name(),
            limit,
            op: j.threshold.op.as_str().into(),
            actual,
            limit_verdict,
            actual_verdict,
            expr: j.threshold.source.clone(),
            passed: j.passed,
            why: j.why.map(str::to_string),
        }
    }
}

impl RunSummary {
    /// Reads a summary.json.
    pub fn read(path: &Path) -> Result<RunSummary, RunFileError> {
        let bytes = crate::bounded::read_capped(path, crate::bounded::JSON_CAP)?;
        serde_json::from_slice(&bytes).map_err(|source| RunFileError::Json {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Writes pretty JSON through a temporary file and a rename
    /// ([`crate::write_atomic`]), so a reader never sees half a summary.
    pub fn write_atomic(&self, path: &Path) -> Result<(), RunFileError> {
        let text = serde_json::to_vec_pretty(self)
            .map_err(|e| RunFileError::write(path)(std::io::Error::other(e)))?;
        crate::atomic::write_atomic(path, &text).map_err(RunFileError::write(path))
    }

    /// The span the headline figures cover: the load's, or until the
    /// server's death when it died during the load (`after_death`).
    pub fn life_s(&self) -> Option<f64> {
        let elapsed = self.elapsed_s?;
        Some(match &self.after_death {
            Some(d) => d.from_s.min(elapsed),
            None => elapsed,
        })
    }

    /// The server was OOM-killed (for real or by the watchdog).
    pub fn oom_killed(&self) -> bool {
        self.server.exit.as_ref().is_some_and(|e| e.oom_killed)
    }

    /// The verdict, if summary.json holds one.
    pub fn verdict(&self) -> Option<crate::Verdict> {
        self.memory.as_ref().and_then(|m| m.verdict)
    }

    /// The memory limit: the memory block's, else the server's.
    /// Some memory figure was measured: a peak of RSS, of the cgroup's
    /// charge, or of allocated bytes (heap). A run without any cannot pass
    /// a memory threshold (see [`crate::threshold::NO_MEMORY_SAMPLES`]).
    pub fn memory_measured(&self) -> bool {
        self.memory.as_ref().is_some_and(|m| {
            m.peak_rss_bytes.is_some()
                || m.peak_charged_bytes.is_some()
                || m.peak_allocated_bytes.is_some()
        })
    }

    pub fn limit_bytes(&self) -> Option<u64> {
        self.memory
            .as_ref()
            .and_then(|m| m.limit_bytes)
            .or(self.server.limit_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nulls_and_missing_keys_read_as_unknown() {
        let s: RunSummary = serde_json::from_str(
            r#"{"complete": false, "memory": {"limit_bytes": null, "verdict": "inconclusive"}, "server": null, "host": null}"#,
        )
        .unwrap();
        assert_eq!(
            s.schema_version, 0,
            "a file without a version is pre-versioning"
        );
        assert_eq!(s.limit_bytes(), None);
        assert!(!s.oom_killed());
        assert_eq!(s.verdict(), Some(crate::Verdict::Inconclusive));
        assert_eq!(s.server, ServerInfo::default());
    }

    #[test]
    fn write_then_read_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        let mut s = RunSummary {
            scenario: "login-storm".into(),
            memory: Some(MemoryReport::placeholder(Some(1 << 28))),
            ..RunSummary::default()
        };
        s.server.exit = Some(ServerExit {
            signal: Some(9),
            shell_code: Some(137),
            at_s: Some(41.5),
            oom_killed: true,
            ..ServerExit::default()
        });
        s.write_atomic(&path).unwrap();
        assert!(!dir.path().join("summary.json.tmp").exists());
        let back = RunSummary::read(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.schema_version, SCHEMA_VERSION);
        assert!(back.oom_killed());
    }

    /// summary.json as clw-cli wrote it before `model` and
    /// `limit_enforcement` were typed (a run that died before its end, so
    /// the figures are null): the words read as variants and the file
    /// writes back byte for byte.
    #[test]
    fn todays_words_read_back_identically() {
        for (model, method, want_model, want_method) in [
            (
                "closed",
                "cgroup-v2",
                Model::Closed,
                LimitEnforcement::By(clw_units::Enforcement::CgroupV2),
            ),
            (
                "open",
                "watchdog",
                Model::Open,
                LimitEnforcement::By(clw_units::Enforcement::Watchdog),
            ),
            ("closed", "none", Model::Closed, LimitEnforcement::None),
            ("", "", Model::Unrecorded, LimitEnforcement::Unrecorded),
        ] {
            let text = TODAYS_SUMMARY
                .replace("MODEL", model)
                .replace("METHOD", method);
            let s: RunSummary = serde_json::from_str(&text).unwrap();
            assert_eq!(s.model, want_model);
            assert_eq!(s.server.limit_enforcement, want_method);
            assert_eq!(serde_json::to_string_pretty(&s).unwrap(), text);
        }
    }

    const TODAYS_SUMMARY: &str = r#"{
  "schema_version": 1,
  "complete": false,
  "clw_version": "0.1.0",
  "scenario": "login-storm",
  "scenario_file": "scenarios/login-storm.toml",
  "target": "http://127.0.0.1:8443",
  "metrics_url": null,
  "concurrent_users": 100,
  "duration_s": 60.0,
  "ramp_up_s": 5.0,
  "model": "MODEL",
  "arrival_rate": null,
  "started_at": "2026-11-24T06:00:00Z",
  "elapsed_s": null,
  "host": {
    "hostname": "ci-runner",
    "cpus": 2,
    "os": "linux"
  },
  "requests": {
    "total": 0,
    "ok": 0,
    "failed": 0,
    "by_status": {},
    "by_error": {}
  },
  "dropped_iterations": 0,
  "connections_opened": 0,
  "throughput_rps": null,
  "latency_ms": null,
  "latency_corrected_ms": null,
  "latency_note": "",
  "steps": {},
  "memory": null,
  "server": {
    "pid": 4242,
    "command": null,
    "config": null,
    "limit_enforcement": "METHOD",
    "limit_bytes": 268435456,
    "exit": null
  },
  "thresholds": [],
  "passed": null,
  "failures": [],
  "interrupted": false,
  "interrupted_by": null,
  "notes": []
}"#;

    /// summary.json's reading is lenient, as for every other field: an
    /// unknown word (a newer clw-cli's) is kept, not an error, and writes
    /// back as it was.
    #[test]
    fn unknown_words_are_kept() {
        let s: RunSummary = serde_json::from_str(
            r#"{"model": "poisson", "server": {"limit_enforcement": "cgroup-v3"}}"#,
        )
        .unwrap();
        assert_eq!(s.model, Model::Other("poisson".into()));
        assert_eq!(
            s.server.limit_enforcement,
            LimitEnforcement::Other("cgroup-v3".into())
        );
        let back = serde_json::to_value(&s).unwrap();
        assert_eq!(back["model"], "poisson");
        assert_eq!(back["server"]["limit_enforcement"], "cgroup-v3");
        let missing: RunSummary = serde_json::from_str("{}").unwrap();
        assert_eq!(missing.model, Model::Unrecorded);
        assert_eq!(
            missing.server.limit_enforcement,
            LimitEnforcement::Unrecorded
        );
    }

    #[test]
    fn after_death_in_words() {
        let mut d = AfterDeath {
            from_s: 53.71,
            requests: 287_769,
            failed: 287_769,
            by_error: BTreeMap::from([("connect".into(), 287_769)]),
        };
        assert_eq!(
            d.describe(),
            "287769 requests sent after the server died (connect 287769): not counted in throughput or latency"
        );
        d.by_error.clear();
        d.failed = 0;
        d.requests = 0;
        assert_eq!(
            d.describe(),
            "0 requests sent after the server died: not counted in throughput or latency"
        );
    }

    #[test]
    fn broken_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.json");
        std::fs::write(&path, r#"{"complete": tr"#).unwrap();
        let err = RunSummary::read(&path).unwrap_err().to_string();
        assert!(err.contains("summary.json is not valid JSON"), "{err}");
    }
}
