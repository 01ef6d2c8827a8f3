//! The load test's configuration: every flag resolved, checked and combined
//! with the scenario once, in [`super::prepare`] (the command line's
//! `LoadTestOpts` go no further). Each phase, and each module under
//! memory/, load/ and results/, reads this or a part of it: none sees a
//! clap type, and each rule that combines flags (the memory limit, the
//! memory sources, the thresholds) is decided in one place.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clw_run::threshold::Threshold;

use crate::load::stages::Stages;
use crate::memory::heap_profiles::HeapSettings;
use crate::memory::source::SourceSpec;
use crate::memory::LimitRule;
use crate::scenario::{LoadModel, Scenario};
use crate::server;
use crate::target::Target;
use crate::watched::Watched;

/// See the module documentation.
pub(crate) struct RunConfig {
    pub(crate) scenario: Scenario,
    /// `--scenario`, as given, for summary.json.
    pub(crate) scenario_file: PathBuf,
    pub(crate) target: Target,
    /// The run's TLS settings (when any URL of it is https) and its
    /// `--connect-to` rules, for every URL.
    pub(crate) reach: crate::target::Reach,
    /// The `Host` a `--header 'Host: ...'` names, else the target's.
    pub(crate) authority: String,
    pub(crate) users: u32,
    pub(crate) duration: Duration,
    pub(crate) ramp_up: Duration,
    pub(crate) model: LoadModel,
    /// A load that changes over time (replaces `ramp_up`).
    pub(crate) stages: Option<Stages>,
    /// Until when memory is not judged: the ramp-up, or the time the
    /// stages first reach their peak.
    pub(crate) warm_up: Duration,
    /// Worker threads (`--threads`, else one per core).
    pub(crate) threads: usize,
    /// Per-request timeout (`--timeout`).
    pub(crate) timeout: Duration,
    /// Seed of the scenario's random choices.
    pub(crate) seed: u64,
    /// How flags and the scenario's `[load]` combined, when worth saying.
    pub(crate) load_notes: Vec<String>,
    pub(crate) thresholds: Vec<Threshold>,
    /// `--abort-on-fail`: stop the load once a threshold fails for good.
    pub(crate) abort_on_fail: bool,
    pub(crate) out: PathBuf,
    /// No progress line (`--quiet`).
    pub(crate) quiet: bool,
    /// Render the HTML report at the end (not `--no-report`).
    pub(crate) report: bool,
    /// `--shard`: this process's part of the run.
    pub(crate) part: crate::shard::Part,
    /// `--start-at`: when this shard's load begins.
    pub(crate) start_at: Option<SystemTime>,
    /// The server clw-cli starts, if any.
    pub(crate) spawn: Option<SpawnConfig>,
    /// `--server-pid`, in a shard that samples memory: the process whose
    /// memory is read and whose death fails the run.
    pub(crate) server_pid: Option<u32>,
    pub(crate) watched: Option<Watched>,
    /// Stop the load a few seconds after the server's death
    /// (`--on-server-exit stop`), rather than run on against a dead server.
    pub(crate) stop_after_death: bool,
    /// Memory is measured and judged (not `--no-memory`).
    pub(crate) measure_memory: bool,
    /// Which memory limit the run is judged against.
    pub(crate) limit: LimitRule,
    /// How often memory is sampled.
    pub(crate) sample_interval: Duration,
    /// The metrics page sampled (None: none, or not this shard's job).
    pub(crate) metrics_url: Option<String>,
    /// `--metrics-url` was given: a page that does not answer is an error.
    pub(crate) metrics_url_given: bool,
    /// Where the service's memory is read from.
    pub(crate) memory_source: SourceSpec,
    /// `--heap-metric` / `--logins-metric`.
    pub(crate) gauges: crate::memory::selector::Gauges,
    pub(crate) heap: HeapSettings,
}

/// `--spawn-server` and what goes with it.
pub(crate) struct SpawnConfig {
    /// The command, as given (split again when spawned).
    pub(crate) command: String,
    /// `--memory-limit`: the limit it runs under.
    pub(crate) limit_bytes: u64,
    /// When it is ready (`--ready-path`, `--ready-tcp`).
    pub(crate) readiness: server::Readiness,
    pub(crate) ready_timeout: Duration,
}

impl RunConfig {
    /// summary.json in the run folder: written at the start, at a server's
    /// death and at the end.
    pub(crate) fn summary_path(&self) -> PathBuf {
        self.out.join("summary.json")
    }
}
