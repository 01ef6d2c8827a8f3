//! The start-load phase: the output files, the memory sampler and heap
//! profiles on one clock (t_s = 0), then the worker threads, the collector
//! and the progress line.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime};

use clw_run::{HdrLog, MemoryReport, RunFileError, RunSummary};
use tokio::sync::{mpsc, oneshot, watch};

use super::config::RunConfig;
use super::start_server::Started;
use crate::exporter::{MetricsEndpoint, RunSources};
use crate::load::death::DeathClock;
use crate::load::engine;
use crate::load::plan::Plan;
use crate::load::stats::IntervalStats;
use crate::memory::heap_profiles::HeapProfiles;
use crate::memory::{Memory, MemoryConfig};
use crate::outcome::{setup, Error};
use crate::results::collector::{Collector, Live, Totals};
use crate::results::output::{ErrorsCsv, LatencyCsv};
use crate::results::progress::{self, Progress};
use crate::scenario::LoadModel;
use crate::target::Target;

/// The collector's run to its end: the totals, and a write error that
/// stopped the output files (not the run).
pub(super) type Collect = Pin<Box<dyn Future<Output = (Totals, Option<RunFileError>)> + Send>>;

/// A load under way: what the supervisor watches and the finish phase
/// stops and reads.
pub(super) struct Running {
    /// t_s = 0 of every output.
    pub(super) t0: Instant,
    /// Open model: latency.csv has the corrected columns.
    pub(super) open: bool,
    pub(super) step_names: Vec<String>,
    pub(super) memory: Memory,
    pub(super) heap: Option<HeapProfiles>,
    /// The live verdict, watched only with `--abort-on-fail`.
    pub(super) live_verdict: Option<watch::Receiver<Option<MemoryReport>>>,
    /// `plan.stop` ends the load early.
    pub(super) plan: Arc<Plan>,
    pub(super) workers: Vec<JoinHandle<()>>,
    /// Ends when every worker has sent its last report.
    pub(super) collect: Collect,
    pub(super) stop_progress: oneshot::Sender<()>,
    pub(super) ticker: tokio::task::JoinHandle<Progress>,
}

/// Open the outputs and start the sampler, the heap profiles and the load.
/// `heap_target`: where heap profiles come from (None: no capture);
/// `metrics`: the `--metrics-listen` endpoint, given this run's figures.
pub(super) async fn start_load(
    cfg: &RunConfig,
    started: &Started,
    heap_target: Option<Target>,
    metrics: Option<&MetricsEndpoint>,
    summary: &mut RunSummary,
) -> Result<Running, Error> {
    let open = matches!(cfg.model, LoadModel::Open { .. });
    let start_wall = SystemTime::now();
    let csv = LatencyCsv::create(&cfg.out.join("latency.csv"), open).map_err(setup)?;
    let hlog = HdrLog::create(&cfg.out.join("latency.hlog"), start_wall).map_err(setup)?;
    let errors = ErrorsCsv::create(&cfg.out.join(clw_run::files::ERRORS)).map_err(setup)?;
    let plan = plan(cfg, started);
    // t_s = 0 of every output: the sampler starts on the same clock.
    let t0 = Instant::now();
    let memory = Memory::start(MemoryConfig {
        start: t0,
        interval: cfg.sample_interval,
        pid: started.server_pid.filter(|_| cfg.measure_memory),
        pid_tree: started.pid_tree,
        metrics_url: cfg.metrics_url.clone(),
        metrics_url_given: cfg.metrics_url_given,
        reach: cfg.reach.clone(),
        spawned: started.spawned.as_ref(),
        csv_path: cfg.out.join("samples.csv"),
        counters: plan.counters.clone(),
        scrape_timeout: cfg.timeout.min(cfg.sample_interval * 4),
        limit: cfg.limit,
        ramp_up: cfg.warm_up,
        source: cfg.memory_source.clone(),
        gauges: cfg.gauges.clone(),
    })
    .await
    .map_err(setup)?;
    let heap = heap_target.map(|t| {
        HeapProfiles::during(
            t,
            &cfg.heap,
            &memory,
            &cfg.out,
            t0,
            cfg.warm_up,
            cfg.sample_interval,
        )
    });
    // --abort-on-fail watches the live verdict and the peaks.
    let live_verdict = memory.live().filter(|_| cfg.abort_on_fail);
    let note = match !cfg.measure_memory {
        true => Some(format!(
            "{}: every memory threshold is skipped",
            clw_run::threshold::MEMORY_OPTED_OUT
        )),
        false => memory.note(),
    };
    summary.notes.extend(note);

    let live = Arc::new(Mutex::new(Live::default()));
    let (tx, rx) = mpsc::unbounded_channel();
    let workers = engine::start(plan.clone(), t0, tx)
        .map_err(|e| setup(format!("cannot start worker threads: {e}")))?;
    let step_names = plan.step_names.clone();
    let mut collector = Collector::new(step_names.clone(), csv, hlog, errors, open, live.clone());
    if let Some(metrics) = metrics {
        let totals = Arc::new(Mutex::new(IntervalStats::new(step_names.len())));
        collector = collector.share_totals(totals.clone());
        metrics.attach(RunSources {
            step_names: step_names.clone(),
            totals,
            counters: plan.counters.clone(),
            users: cfg.users,
            memory: Box::new(memory.now_reader()),
        });
    }
    let (stop_progress, progress_stop_rx) = oneshot::channel();
    let ticker = progress::spawn_ticker(
        Progress::new(cfg.quiet, cfg.duration),
        t0,
        live,
        memory.rss_reader(),
        cfg.stages.clone().map(|s| (s, open)),
        progress_stop_rx,
    );
    let collect = Box::pin(collector.run(workers.len(), t0, rx));
    Ok(Running {
        t0,
        open,
        step_names,
        memory,
        heap,
        live_verdict,
        plan,
        workers,
        collect,
        stop_progress,
        ticker,
    })
}

/// What every worker thread reads: the scenario with its step index
/// (computed once: the summary names the steps, the plan maps each flow's
/// steps to them), the target, the load's shape and the shared counters.
fn plan(cfg: &RunConfig, started: &Started) -> Arc<Plan> {
    let (step_ids, step_names) = Plan::index_steps(&cfg.scenario);
    let authority = cfg.authority.clone();
    let scheme = if cfg.target.https { "https" } else { "http" };
    let origin = url::Url::parse(&format!("{scheme}://{authority}/"))
        .unwrap_or_else(|_| url::Url::parse(&format!("{scheme}://127.0.0.1/")).expect("valid"));
    // Origins a redirect may go to over the same connection: those the
    // `--connect-to` rules send where the target's connections go.
    let dials_to = cfg
        .target
        .redirected()
        .unwrap_or_else(|| format!("{}:{}", cfg.target.host, cfg.target.port));
    let also = cfg
        .reach
        .connect_to
        .iter()
        .filter(|r| format!("{}:{}", r.to_host, r.to_port) == dials_to)
        .filter_map(|r| url::Url::parse(&format!("{scheme}://{}:{}/", r.host, r.port)).ok())
        .map(|u| u.origin())
        .filter(|o| *o != origin.origin())
        .collect();
    Arc::new(Plan {
        scenario: cfg.scenario.clone(),
        step_ids,
        step_names,
        addr: started.addr,
        authority,
        base_path: cfg.target.base_path.clone(),
        origin,
        also,
        tls: cfg.target.dial(),
        users: cfg.users,
        own_users: cfg.part.users.clone(),
        threads: cfg.threads,
        duration: cfg.duration,
        ramp_up: cfg.ramp_up,
        model: cfg.model,
        stages: cfg.stages.clone(),
        timeout: cfg.timeout,
        seed: cfg.seed,
        counters: Arc::new(Default::default()),
        stop: Default::default(),
        death: Arc::new(DeathClock::of_server(started.server_pid)),
    })
}
