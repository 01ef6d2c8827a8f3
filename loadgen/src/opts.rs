//! The command line. `Opts` is public so tests build it with
//! `Opts::try_parse_from([...])` and hand it to [`crate::run`] in-process.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::memory::MemoryAggregate;

/// clw-cli: load-test an auth service while sampling its memory.
#[derive(Debug, Clone, Parser)]
#[command(name = "clw-cli", version, about, long_about = None)]
pub struct Opts {
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Commands aimed at the authentication service.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Re-render a run's report, or compare several runs.
    Report(ReportOpts),
    /// The CI gate: a run's thresholds, and its figures against a baseline.
    Gate(GateOpts),
    /// Merge the run folders of a sharded run (`--shard I/N`) into one:
    /// counts summed, latency histograms added exactly, memory from the
    /// shard that sampled it, thresholds judged on the whole.
    Merge(MergeOpts),
    /// List the top allocation sites of a dhat heap profile (dhat-heap.json
    /// from clw-auth built with --features dhat-heap, `make profile-heap`),
    /// at the heap's peak and at exit.
    Dhat(DhatOpts),
    /// Check a finished run against what it should show: `leak` (the leak
    /// reproduced: OOM-killed, or verdict leak), `bounded` (the fix holds:
    /// not killed, peak RSS under 80% of the limit, verdict bounded) or
    /// `soak` (bounded, complete, no 5xx, thresholds passed). Prints the
    /// figures and the top growth sites; exit 0 when met, 1 when not.
    Verify(VerifyOpts),
    /// A stepped run's capacity (scenarios/capacity-steps.toml): each
    /// hold's throughput, p99, peak RSS and memory growth, and the first
    /// hold at which memory still climbs (more than 1 MiB and 5% of its
    /// peak over the hold).
    Capacity(CapacityOpts),
}

/// `clw-cli verify RUN_DIR --expect leak|bounded|soak`
#[derive(Debug, Clone, Args)]
pub struct VerifyOpts {
    /// The run folder.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
    /// What the run must show.
    #[arg(long, value_enum, value_name = "WHAT")]
    pub expect: Expect,
    /// Also require the top heap growth site's file or function to
    /// contain PATTERN (repeat for alternatives), e.g.
    /// `auth-server/src/cache/`: the leak is where it should be.
    #[arg(long, value_name = "PATTERN")]
    pub top_site_in: Vec<String>,
    /// Also require heap profiles compared, no site grown by more than SIZE
    /// (e.g. the fixed cache's max_bytes, 32M): the fix holds nothing
    /// unbounded.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub sites_within: Option<u64>,
}

/// What `clw-cli verify` checks a run for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    /// The leak reproduced: OOM-killed, or verdict leak (make leak-repro).
    Leak,
    /// The fix holds: not killed, peak under 80%, verdict bounded (make fix-verify).
    Bounded,
    /// Bounded, complete, no 5xx, thresholds passed (make soak).
    Soak,
}

/// `clw-cli capacity RUN_DIR`
#[derive(Debug, Clone, Args)]
pub struct CapacityOpts {
    /// The run folder of a stepped load.
    #[arg(value_name = "RUN_DIR")]
    pub run: PathBuf,
}

/// `clw-cli merge DIR... --out DIR`
#[derive(Debug, Clone, Args)]
pub struct MergeOpts {
    /// The shards' run folders (one per shard, each written with --shard).
    #[arg(value_name = "DIR", required = true)]
    pub runs: Vec<PathBuf>,
    /// The merged run folder.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Merge even when shards are missing; the result is marked partial
    /// (summary.json `merged.partial`, the console, the report) and fails.
    #[arg(long)]
    pub allow_partial: bool,
    /// Do not render the HTML report.
    #[arg(long)]
    pub no_report: bool,
    /// Only the final summary.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `clw-cli dhat FILE`
#[derive(Debug, Clone, Args)]
pub struct DhatOpts {
    /// A dhat-heap.json (DHAT's JSON format, version 2).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Sites listed at each moment.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// `clw-cli auth ...`
#[derive(Debug, Clone, Subcommand)]
pub enum AuthCommand {
    /// Replay a scenario with N virtual users and sample the server's memory.
    LoadTest(Box<LoadTestOpts>),
}

/// `--memory-aggregate`'s values: the type is memory's, which knows no
/// clap; its command-line spelling and help are here.
impl ValueEnum for MemoryAggregate {
    fn value_variants<'a>() -> &'a [Self] {
        &[MemoryAggregate::Max, MemoryAggregate::Sum]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        use clap::builder::PossibleValue;
        Some(match self {
            MemoryAggregate::Max => {
                PossibleValue::new("max").help("The largest: the replica nearest its own limit")
            }
            MemoryAggregate::Sum => {
                PossibleValue::new("sum").help("The total: the containers of one pod")
            }
        })
    }
}

/// What to do when a server that clw-cli spawned dies during the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnServerExit {
    /// Stop the load a few seconds after the death (the run is still written).
    Stop,
    /// Keep sending load for the whole duration (every request then fails).
    Continue,
}

/// `clw-cli auth load-test`: the field guide's verification step.
#[derive(Debug, Clone, Args)]
pub struct LoadTestOpts {
    /// Base URL of the service, e.g. http://localhost:8443 or
    /// https://auth.internal:8443 (HTTP/1.1, over TLS for https).
    #[arg(long, value_name = "URL")]
    pub target: String,

    /// For https URLs: also trust the CA certificate(s) in this PEM file,
    /// besides the system's roots.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// For https URLs: do not verify the server's certificate (every output
    /// of the run then carries a warning).
    #[arg(long)]
    pub insecure: bool,

    /// For https URLs: present this PEM client certificate (chain, leaf
    /// first) to a server that requires mutual TLS. Needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// The PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// 'Name: value': a header sent with every request of the load (wrk's
    /// and curl's -H); a step's own header of that name wins, `Host`
    /// replaces the Host header. Repeatable. Values are never written to the
    /// run folder.
    #[arg(short = 'H', long = "header", value_name = "HEADER", value_parser = HeaderParser)]
    pub headers: Vec<crate::scenario::HeaderFlag>,

    /// HOST:PORT:TO_HOST:TO_PORT: connect to TO_HOST:TO_PORT for every URL
    /// of the run on HOST:PORT, keeping HOST as the Host header and the TLS
    /// name (curl's and oha's --connect-to). Repeatable.
    #[arg(long, value_name = "RULE")]
    pub connect_to: Vec<crate::connect_to::ConnectTo>,

    /// Virtual users: one keep-alive connection each. In the open model, the
    /// pool of users that serve the arrivals.
    /// Default: the scenario's `[load] users`, else 10. With a scenario's
    /// `[[load.stages]]` in the closed model the stages set the users: this
    /// flag then needs --duration (which replaces the stages).
    #[arg(long, value_name = "N")]
    pub concurrent_users: Option<u32>,

    /// Load duration (`300`, `300s`, `5m`), ramp-up included. Default: the
    /// scenario's `[load] duration`, else 60s. Given with a scenario that has
    /// `[[load.stages]]`, it replaces them by a constant load (as k6's
    /// --duration replaces a script's stages).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Scenario file (TOML). The shipped ones are also built in, by name
    /// (login-storm, steady-sessions, large-claims, session-churn, expiry,
    /// ready-only, capacity-steps), for use outside a checkout.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "scenarios/steady-sessions.toml"
    )]
    pub scenario: PathBuf,

    /// Start the users evenly over this time instead of all at once (not
    /// with `[[load.stages]]`, which ramp by themselves).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ramp_up: Option<Duration>,

    /// A stage of load that changes over time, as k6's --stage: `30s:50`
    /// moves the load in a straight line to 50 virtual users (closed model)
    /// or 50 iterations per second (a scenario with model = "open") over
    /// 30 s. Repeatable, in order; replaces the scenario's [[load.stages]],
    /// duration and ramp-up.
    #[arg(
        long = "stage",
        value_name = "DURATION:TARGET",
        value_parser = parse_stage,
        conflicts_with_all = ["duration", "ramp_up"]
    )]
    pub stages: Vec<StageFlag>,

    /// Open model: start R iterations per second whatever the server's speed;
    /// latency is then also measured from each request's intended start.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub arrival_rate: Option<f64>,

    /// Per-request timeout; a timed-out request counts as `clw-auth-timeout`.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,

    /// How often the sampler reads the server's memory and /metrics.
    #[arg(long, value_name = "DURATION", default_value = "250ms", value_parser = parse_duration)]
    pub sample_interval: Duration,

    /// PID of a server on this host whose RSS to read from /proc.
    #[arg(long, value_name = "PID", conflicts_with = "spawn_server")]
    pub server_pid: Option<u32>,

    /// Where to scrape Prometheus metrics (default: the target's /metrics).
    #[arg(long, value_name = "URL")]
    pub metrics_url: Option<String>,

    /// Do not scrape /metrics at all.
    #[arg(long, conflicts_with = "metrics_url")]
    pub no_metrics: bool,

    /// Do not measure the server's memory at all: no /proc, no /metrics, no
    /// heap profiles. Every memory threshold (the default `peak_rss_percent
    /// < 80` and `verdict != leak` included) is then skipped, and every
    /// output says so. Without it, a run whose memory could not be measured
    /// fails its memory thresholds ("no memory samples"): a dead or mistyped
    /// memory source never turns the memory gate off silently.
    #[arg(long, conflicts_with_all = ["metrics_url", "memory_metric", "limit_metric", "heap_metric", "logins_metric", "prometheus_url", "cgroup", "container", "heap_profile", "heap_profile_url", "max_peak_rss_percent"])]
    pub no_memory: bool,

    /// The series of the metrics page that holds the service's memory, as
    /// a Prometheus selector:
    /// `container_memory_working_set_bytes{pod=~"auth-.*",container="auth"}`
    /// (a kubelet's cAdvisor), or a service's own gauge. Several matching
    /// series are combined by --memory-aggregate.
    #[arg(long, value_name = "SELECTOR", conflicts_with_all = ["no_metrics", "server_pid", "spawn_server"])]
    pub memory_metric: Option<String>,

    /// The series of the metrics page that holds the service's memory
    /// limit (`container_spec_memory_limit_bytes{...}`), used when
    /// --memory-limit is not given.
    #[arg(long, value_name = "SELECTOR", conflicts_with_all = ["no_metrics", "prometheus_url", "cgroup", "container"])]
    pub limit_metric: Option<String>,

    /// The service's own heap gauge on its metrics page, as a Prometheus
    /// selector: `nodejs_heap_size_used_bytes` (prom-client),
    /// `go_memstats_heap_inuse_bytes`, `jvm_memory_used_bytes{area="heap"}`
    /// (several matching series are summed: one per pool). The verdict and
    /// the retained bytes per login use it, as they use clw-auth's
    /// allocator gauge. Absent at the first sample: exit 3.
    #[arg(long, value_name = "SELECTOR", conflicts_with = "no_metrics")]
    pub heap_metric: Option<String>,

    /// The service's counter of successful logins on its metrics page
    /// (`http_requests_total{route="/login",code="200"}`; several matching
    /// series are summed), for the retained bytes per login when it does
    /// not export clw-auth's `clw_logins_total`. Absent at the first
    /// sample: exit 3.
    #[arg(long, value_name = "SELECTOR", conflicts_with = "no_metrics")]
    pub logins_metric: Option<String>,

    /// How several series matching --memory-metric / --limit-metric (or
    /// returned by --memory-query / --limit-query) make one figure: `max`,
    /// the largest (replicas, each under its own limit: the one nearest
    /// its limit is the one killed), or `sum` (the containers of one pod
    /// against the pod's limit).
    #[arg(long, value_enum, value_name = "RULE", default_value_t = MemoryAggregate::Max)]
    pub memory_aggregate: MemoryAggregate,

    /// A Prometheus server to read the service's memory from with
    /// --memory-query (instant queries of /api/v1/query, one per sample).
    #[arg(long, value_name = "URL", requires = "memory_query", conflicts_with_all = ["memory_metric", "server_pid", "spawn_server", "cgroup", "container"])]
    pub prometheus_url: Option<String>,

    /// PromQL giving the service's memory in bytes, e.g.
    /// `container_memory_working_set_bytes{pod=~"auth-.*",container="auth"}`.
    #[arg(long, value_name = "PROMQL", requires = "prometheus_url")]
    pub memory_query: Option<String>,

    /// PromQL giving the service's memory limit in bytes (used when
    /// --memory-limit is not given).
    #[arg(long, value_name = "PROMQL", requires = "prometheus_url")]
    pub limit_query: Option<String>,

    /// Read the service's memory from this cgroup directory as `docker
    /// stats` does (usage less inactive file cache), its limit from
    /// memory.max / memory.limit_in_bytes.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["memory_metric", "server_pid", "spawn_server", "container"])]
    pub cgroup: Option<PathBuf>,

    /// As --cgroup, for a Docker or Podman container given by ID (its
    /// cgroup is searched for) or name (asked of the `docker` or `podman`
    /// CLI).
    #[arg(long, value_name = "NAME_OR_ID", conflicts_with_all = ["memory_metric", "server_pid", "spawn_server"])]
    pub container: Option<String>,

    /// Capture heap profiles during the load from the target's
    /// /debug/pprof/heap (docs/loadgen.md, "Heap profiles"). On by default
    /// when the target serves them; given, an endpoint that serves none is
    /// a setup error (exit 3).
    #[arg(long, conflicts_with = "no_heap_profile")]
    pub heap_profile: bool,

    /// Never ask for heap profiles.
    #[arg(long, conflicts_with = "heap_profile_url")]
    pub no_heap_profile: bool,

    /// Where to fetch pprof heap profiles (default: the target's
    /// /debug/pprof/heap).
    #[arg(long, value_name = "URL")]
    pub heap_profile_url: Option<String>,

    /// The binary that serves the profiles, to name their addresses
    /// (default: the executable the profile names, which is there when the
    /// server runs on this machine). Must be the same build: its GNU build
    /// ID is checked.
    #[arg(long, value_name = "FILE")]
    pub heap_profile_symbols: Option<PathBuf>,

    /// Bearer token for a heap endpoint that is not on loopback (clw-auth's
    /// `service.admin_token`). Read from the environment so it stays out of
    /// `ps` and shell history; never written to any output.
    #[arg(
        long,
        env = "CLW_HEAP_PROFILE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub heap_profile_token: Option<String>,

    /// How often to take a heap profile after the first (at the end of
    /// ramp-up).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub heap_profile_every: Duration,

    /// Serve clw-cli's own Prometheus metrics at http://ADDR/metrics while
    /// it runs (requests, errors and latency by step, virtual users, the
    /// server memory sampled, the live verdict), e.g. 127.0.0.1:9464; port
    /// 0 picks a free one (printed). Binds exactly ADDR.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<std::net::SocketAddr>,

    /// After the run, keep serving --metrics-listen until one scrape has
    /// read the final figures, at most this long (set it to the scrape
    /// interval to be sure the last second of the run is stored).
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_duration, requires = "metrics_listen")]
    pub metrics_linger: Duration,

    /// Run folder (default reports/<UTC timestamp>-<scenario>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,

    /// Seed for the scenario's random choices (flow picks, generated values).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// Start the server with this command line, under --memory-limit.
    #[arg(long, value_name = "CMD", requires = "memory_limit")]
    pub spawn_server: Option<String>,

    /// Memory limit (256M, 256MiB, 1Gi). With --spawn-server, the limit the
    /// server is started under; without, the limit the target already runs
    /// under (its container's), for % of limit and the 80% rule. Unset, the
    /// limit a service advertises as clw_memory_limit_bytes is used.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_limit: Option<u64>,

    /// Refuse to start (exit 3) when the filesystem of --out has less than
    /// this free: a run whose outputs cannot be written measured for
    /// nothing. 0 turns the check off.
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "64MiB")]
    pub min_free_space: u64,

    /// How long a spawned server may take to be ready (GET /ready answering
    /// 2xx, or as --ready-path / --ready-tcp say).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub ready_timeout: Duration,

    /// A spawned server is ready when GET PATH (after the target's base
    /// path) answers 2xx; default /ready.
    #[arg(long, value_name = "PATH", requires = "spawn_server")]
    pub ready_path: Option<String>,

    /// A spawned server is ready once its port accepts a TCP connection
    /// (for a server without a readiness endpoint).
    #[arg(long, requires = "spawn_server", conflicts_with = "ready_path")]
    pub ready_tcp: bool,

    /// What to do when a spawned server dies during the run.
    #[arg(long, value_enum, default_value_t = OnServerExit::Stop)]
    pub on_server_exit: OnServerExit,

    /// Fail (exit 1) when peak server RSS exceeds this % of the memory limit
    /// (default 80 when a limit is known: the field guide's rule).
    #[arg(long, value_name = "PERCENT")]
    pub max_peak_rss_percent: Option<f64>,

    /// Extra threshold (repeatable): `'p99_ms < 50'`, `'login.p99_ms < 80'`,
    /// `'error_rate < 1%'`, `'peak_allocated_bytes < 200Mi'`,
    /// `'verdict != leak'`, `'retained_bytes_per_login < 64'`, or the old
    /// `NAME=LIMIT` form. Replaces the scenario's rule on the same figure
    /// (and direction). The field guide's `peak_rss_percent < 80` (when a
    /// limit is known) and `verdict != leak` apply unless stated otherwise.
    #[arg(long, value_name = "RULE", value_parser = parse_threshold)]
    pub threshold: Vec<clw_run::threshold::Threshold>,

    /// Stop the load as soon as a threshold can no longer pass (the live
    /// verdict says `leak` at 99.9% confidence, or a peak passed its
    /// limit), write every output, and exit 1 (k6's abortOnFail).
    #[arg(long)]
    pub abort_on_fail: bool,

    /// Run the whole load N times, one after another, into OUT/run-1 ...
    /// OUT/run-N (needs --out); `clw-cli gate OUT` then gates on the median
    /// of each figure. The exit code is the worst run's.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Run part I of N of the load (1-based): the users (or the arrival
    /// rate) split so that the N shards together are the run the other
    /// flags describe, each user keeping its global index. Write each
    /// shard's folder, then `clw-cli merge` them (docs/loadgen.md,
    /// "Sharded runs").
    #[arg(long, value_name = "I/N", value_parser = crate::shard::Shard::parse)]
    pub shard: Option<crate::shard::Shard>,

    /// With --shard: the one shard that samples the server's memory (and
    /// whose verdict the merged run carries); the others send load only.
    /// Give every shard the same value.
    #[arg(long, value_name = "I", default_value_t = 1, requires = "shard")]
    pub shard_samples_memory: u32,

    /// Wait until this instant (RFC 3339, UTC: 2026-11-25T21:30:00Z)
    /// before the load starts, after every check and setup, so shards start
    /// together. At most 24 h ahead; a few seconds late starts at once.
    #[arg(long, value_name = "TIME", value_parser = crate::shard::parse_start_at)]
    pub start_at: Option<std::time::SystemTime>,

    /// Worker threads for the load engine (default: CPU count).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// No live progress line or periodic lines; only the final summary.
    #[arg(long, short)]
    pub quiet: bool,

    /// Do not render the HTML report at the end.
    #[arg(long)]
    pub no_report: bool,
}

/// `clw-cli report RUN_DIR [RUN_DIR...]`
#[derive(Debug, Clone, Args)]
pub struct ReportOpts {
    /// Run folders; one re-renders its report, several are compared.
    /// May be omitted with --index, to only rewrite the index.
    #[arg(value_name = "RUN_DIR", required_unless_present = "index")]
    pub runs: Vec<PathBuf>,
    /// Where a comparison is written (default reports/compare-<timestamp>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Also (re)write REPORTS_DIR/index.html listing every run in it.
    #[arg(long, value_name = "REPORTS_DIR")]
    pub index: Option<PathBuf>,
}

/// `clw-cli gate RUN_DIR... --baseline FILE`
#[derive(Debug, Clone, Args)]
pub struct GateOpts {
    /// Run folders to gate; a folder of run folders (what `--repeat`
    /// writes) counts as all of them. Several runs are gated on the median
    /// of each figure.
    #[arg(value_name = "RUN_DIR", required = true)]
    pub runs: Vec<PathBuf>,
    /// The baseline (JSON) to compare with, e.g. profiles/baselines/ci.json.
    #[arg(long, value_name = "FILE")]
    pub baseline: PathBuf,
    /// Allowed regression of every figure (`10%` or `0.1`), in place of
    /// each metric's own tolerance in the baseline.
    #[arg(long, value_name = "PERCENT", value_parser = parse_fraction)]
    pub max_regression: Option<f64>,
    /// Write the baseline from these runs (their median) instead of gating,
    /// with what it was measured on (commit, date, cores, memory, limit,
    /// scenario, users, duration).
    #[arg(long)]
    pub update_baseline: bool,
    /// Also write the result as JUnit XML (one test case per threshold and
    /// per baseline metric).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Also write the result as a Markdown table. It is appended to
    /// $GITHUB_STEP_SUMMARY whenever that variable is set.
    #[arg(long, value_name = "FILE")]
    pub summary_md: Option<PathBuf>,
}

/// `10%` or `0.1`: a share, at least 0.
fn parse_fraction(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n, 0.01),
        None => (t, 1.0),
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|v| v * scale)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{text}` is not a share such as 10% or 0.1"))
}

/// Durations as users write them: `300` (seconds), `300s`, `5m`, `250ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    clw_units::parse_duration(text).map_err(|e| e.to_string())
}

/// One `--stage DURATION:TARGET`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageFlag {
    pub duration: Duration,
    /// Virtual users (closed model) or iterations per second (open model).
    pub target: f64,
}

fn parse_stage(text: &str) -> Result<StageFlag, String> {
    let Some((duration, target)) = text.rsplit_once(':') else {
        return Err(format!(
            "`{text}` is not DURATION:TARGET, e.g. 30s:50 (50 users, or 50 iterations/s in the open model, reached over 30 s)"
        ));
    };
    let duration = parse_duration(duration).map_err(|e| format!("`{text}`: {e}"))?;
    match target.trim().parse::<f64>() {
        Ok(target) if target.is_finite() && target >= 0.0 => Ok(StageFlag { duration, target }),
        _ => Err(format!(
            "`{text}`: the target `{target}` is not a number of users or iterations per second (0 or more)"
        )),
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a positive number of iterations per second"
        )),
    }
}

fn parse_threshold(text: &str) -> Result<clw_run::threshold::Threshold, String> {
    clw_run::threshold::parse(text).map_err(|e| {
        // Point at the fault under the rule, as compilers do.
        let caret = format!("{}^", " ".repeat(e.column.saturating_sub(1)));
        format!("{}\n  {text}\n  {caret}", e.message)
    })
}

fn parse_size(text: &str) -> Result<u64, String> {
    match clw_units::parse_size(text) {
        Ok(0) => Err(format!("`{text}` must be above 0")),
        Ok(bytes) => Ok(bytes),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_bare_seconds_and_units() {
        assert_eq!(parse_duration("300").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        let err = parse_duration("5 parsecs").unwrap_err();
        assert!(err.contains("5 parsecs"), "{err}");
        assert!(parse_duration("-3").is_err());
    }

    #[test]
    fn field_guide_command_parses() {
        let opts = Opts::try_parse_from([
            "clw-cli",
            "auth",
            "load-test",
            "--concurrent-users",
            "100",
            "--duration",
            "300",
            "--target",
            "http://localhost:8443",
        ])
        .unwrap();
        let Command::Auth {
            command: AuthCommand::LoadTest(lt),
        } = opts.command
        else {
            panic!("not a load test: {opts:?}");
        };
        assert_eq!(lt.concurrent_users, Some(100));
        assert_eq!(lt.duration, Some(Duration::from_secs(300)));
        assert_eq!(lt.timeout, Duration::from_secs(5));
        assert_eq!(lt.sample_interval, Duration::from_millis(250));
        assert_eq!(lt.scenario, PathBuf::from("scenarios/steady-sessions.toml"));
    }

    #[test]
    fn spawn_server_needs_a_memory_limit_and_sizes_parse() {
        let base = ["clw-cli", "auth", "load-test", "--target", "http://x"];
        let with = |extra: &[&str]| {
            let mut args: Vec<&str> = base.to_vec();
            args.extend_from_slice(extra);
            Opts::try_parse_from(args)
        };
        assert!(
            with(&["--spawn-server", "clw-auth"]).is_err(),
            "a spawned server runs under a limit"
        );
        assert!(
            with(&["--memory-limit", "2Gi"]).is_ok(),
            "the limit of a server already running"
        );
        assert!(with(&["--memory-limit", "0"]).is_err());
        let opts = with(&["--spawn-server", "clw-auth", "--memory-limit", "256MiB"]).unwrap();
        let Command::Auth {
            command: AuthCommand::LoadTest(lt),
        } = opts.command
        else {
            panic!()
        };
        assert_eq!(lt.memory_limit, Some(256 << 20));
        assert!(with(&["--spawn-server", "x", "--memory-limit", "lots"]).is_err());
        assert!(with(&["--arrival-rate", "0"]).is_err());
        assert!(with(&["--threshold", "p99_ms"]).is_err());
        assert!(with(&["--threshold", "p99_ms=abc"]).is_err());
    }
}

/// `-H`'s parser: clap's own would echo the rejected value in its error,
/// and a header value is often a credential (`Authorization: Bearer ...`).
/// The error says what is wrong, never the value.
#[derive(Clone)]
struct HeaderParser;

impl clap::builder::TypedValueParser for HeaderParser {
    type Value = crate::scenario::HeaderFlag;

    fn parse_ref(
        &self,
        _cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let invalid = |why: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "invalid --header (its text is not shown: it may hold a credential): {why}\n"
                ),
            )
        };
        let text = value.to_str().ok_or_else(|| invalid("not UTF-8"))?;
        text.parse().map_err(|why: String| invalid(&why))
    }
}
