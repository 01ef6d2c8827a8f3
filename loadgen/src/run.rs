//! `run()`: one command from options to exit code. The load test's phases:
//! validate everything that can be wrong before any load is sent (exit 2),
//! set up the server and reach the target (exit 3), run the load while the
//! sampler watches memory, then write the run folder and judge the run
//! (exit 1 when a threshold failed, the server died or no request
//! succeeded; 130 / 143 when interrupted by SIGINT / SIGTERM).

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use crate::exporter::{MetricsEndpoint, RunSources};
use crate::load::counters::LoadCounters;
use crate::load::engine;
use crate::load::plan::Plan;
use crate::load::shape::{self, LoadFlags};
use crate::load::stages::Stages;
use crate::load::stats::IntervalStats;
use crate::memory::heap_profiles::HeapProfiles;
use crate::opts::{AuthCommand, Command, DhatOpts, LoadTestOpts, OnServerExit, Opts, ReportOpts};
use crate::outcome::{setup, usage, Error, Outcome};
use crate::results::collector::{Collector, Live};
use clw_run::{HdrLog, Host, MemoryReport, RunSummary, ServerInfo};

use crate::results::output::LatencyCsv;
use crate::results::progress::{self, Progress};
use crate::results::summary;
use crate::scenario::{LoadModel, Scenario};
use crate::server::{self, Spawned};
use crate::signals::{Interrupt, Interrupts};
use crate::target::Target;
use crate::watched::Watched;
use clw_run::threshold::Threshold;

/// How long the load goes on after a spawned server died (`--on-server-exit
/// stop`), so the failure shows in the figures without a long tail of
/// connection errors.
const STOP_AFTER_DEATH: Duration = Duration::from_secs(3);

/// Run the command `opts` describes.
pub async fn run(opts: Opts) -> Result<Outcome, Error> {
    match opts.command {
        Command::Auth {
            command: AuthCommand::LoadTest(lt),
        } => {
            let metrics = crate::exporter::listen(lt.metrics_listen).await?;
            let linger = lt.metrics_linger;
            let outcome = if lt.repeat > 1 {
                load_tests(*lt, metrics.as_ref()).await
            } else {
                load_test(*lt, metrics.as_ref()).await
            };
            if let Some(m) = metrics {
                m.finish(if outcome.is_ok() {
                    linger
                } else {
                    Duration::ZERO
                })
                .await;
            }
            outcome
        }
        Command::Report(r) => report(r),
        Command::Gate(g) => crate::gate::gate(g),
        Command::Dhat(d) => dhat(&d),
    }
}

/// `--repeat N`: the same load N times into OUT/run-1 ... OUT/run-N, so a
/// gate can take the median and one noisy run neither sets nor breaks a
/// baseline. Stops at an interruption; otherwise the worst exit code wins.
async fn load_tests(
    opts: LoadTestOpts,
    metrics: Option<&MetricsEndpoint>,
) -> Result<Outcome, Error> {
    let root = opts
        .out
        .clone()
        .ok_or_else(|| usage("--repeat needs --out DIR: the runs go to DIR/run-1 ... DIR/run-N"))?;
    let mut all = Outcome {
        exit_code: 0,
        out_dir: Some(root.clone()),
        passed: true,
    };
    for i in 1..=opts.repeat {
        let mut one = opts.clone();
        one.out = Some(root.join(format!("run-{i}")));
        one.repeat = 1;
        eprintln!(
            "repeat {i} of {}: {}",
            opts.repeat,
            root.join(format!("run-{i}")).display()
        );
        let outcome = load_test(one, metrics).await?;
        all.passed &= outcome.passed;
        all.exit_code = all.exit_code.max(outcome.exit_code);
        if outcome.exit_code > 3 {
            // Interrupted (130, 143): the user wants to stop, not N more.
            break;
        }
    }
    Ok(all)
}

/// Everything resolved from the options before any side effect.
struct Prepared {
    scenario: Scenario,
    target: Target,
    /// The TLS client settings, when any URL of the run is https.
    tls: Option<crate::tls::ClientTls>,
    users: u32,
    duration: Duration,
    ramp_up: Duration,
    model: LoadModel,
    /// A load that changes over time (replaces `ramp_up`).
    stages: Option<Stages>,
    /// Until when memory is not judged: the ramp-up, or the time the
    /// stages first reach their peak.
    warm_up: Duration,
    /// How flags and the scenario's `[load]` combined, when worth saying.
    load_notes: Vec<String>,
    thresholds: Vec<Threshold>,
    out: PathBuf,
    metrics_url: Option<String>,
    /// `--server-pid`: the process whose death fails the run.
    watched: Option<Watched>,
}

fn prepare(opts: &LoadTestOpts) -> Result<Prepared, Error> {
    let tls = crate::tls::for_urls(opts).map_err(usage)?;
    let target = Target::parse(&opts.target)
        .and_then(|t| t.with_tls(tls.as_ref()))
        .map_err(usage)?;
    let scenario = Scenario::load(&opts.scenario).map_err(usage)?;
    let flags = LoadFlags {
        users: opts.concurrent_users,
        duration: opts.duration,
        ramp_up: opts.ramp_up,
        arrival_rate: opts.arrival_rate,
    };
    let shape = shape::resolve(&opts.scenario, &scenario.defaults, &flags).map_err(usage)?;
    if opts.timeout.is_zero() || opts.sample_interval.is_zero() {
        return Err(usage("--timeout and --sample-interval must be above 0"));
    }
    let mut flags = opts.threshold.clone();
    if let Some(limit) = opts.max_peak_rss_percent {
        flags.push(
            clw_run::threshold::parse(&format!("peak_rss_percent <= {limit}"))
                .map_err(|e| usage(format!("--max-peak-rss-percent: {e}")))?,
        );
    }
    let thresholds = clw_run::threshold::with_defaults(&scenario.thresholds, &flags);
    let out = opts.out.clone().unwrap_or_else(|| {
        PathBuf::from("reports").join(format!(
            "{}-{}",
            folder_stamp(SystemTime::now()),
            scenario.name
        ))
    });
    if let Some(command) = &opts.spawn_server {
        server::split_command(command).map_err(usage)?;
    }
    let watched = opts
        .server_pid
        .map(Watched::new)
        .transpose()
        .map_err(usage)?;
    let metrics_url = if opts.no_metrics {
        None
    } else {
        Some(
            opts.metrics_url
                .clone()
                .unwrap_or_else(|| target.join("/metrics")),
        )
    };
    Ok(Prepared {
        scenario,
        target,
        tls,
        users: shape.users,
        duration: shape.duration,
        ramp_up: shape.ramp_up,
        model: shape.model,
        warm_up: shape.warm_up(),
        stages: shape.stages,
        load_notes: shape.notes,
        thresholds,
        out,
        metrics_url,
        watched,
    })
}

/// `20261124T060000Z`: sorts by time and is safe in any file system.
fn folder_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// Resolve the target, start the server (when asked) and check that the
/// target answers: the setup phase, whose failures exit 3.
async fn start_target(
    opts: &LoadTestOpts,
    p: &Prepared,
) -> Result<(std::net::SocketAddr, Option<Spawned>), Error> {
    let addr = p.target.resolve().await.map_err(setup)?;
    let (Some(cmd), Some(limit)) = (&opts.spawn_server, opts.memory_limit) else {
        check_reachable(addr, &p.target).await?;
        if let Some(dial) = p.target.dial() {
            dial.check(addr, &p.target.url).await.map_err(setup)?;
        }
        return Ok((addr, None));
    };
    if tokio::net::TcpStream::connect(addr).await.is_ok() {
        // Something already answers there: the server we start could not
        // bind, and the other process would be load-tested and sampled.
        return Err(setup(format!(
            "{addr} is already in use by another process; stop it or point --target and the server at a free port"
        )));
    }
    let log = p.out.join("server.log");
    let mut spawned = server::spawn(cmd, limit, &log).map_err(setup)?;
    spawned
        .wait_ready(
            addr,
            &p.target.authority,
            &p.target.base_path,
            p.target.dial(),
            opts.ready_timeout,
            &log,
        )
        .await
        .map_err(setup)?;
    Ok((addr, Some(spawned)))
}

async fn load_test(
    opts: LoadTestOpts,
    metrics: Option<&MetricsEndpoint>,
) -> Result<Outcome, Error> {
    let p = prepare(&opts)?;
    let mut interrupts =
        Interrupts::install().map_err(|e| setup(format!("cannot catch signals: {e}")))?;
    let existed = p.out.exists();
    std::fs::create_dir_all(&p.out)
        .map_err(|e| setup(format!("cannot create {}: {e}", p.out.display())))?;
    let started = tokio::select! {
        started = start_target(&opts, &p) => started,
        // Dropping start_target's future stops a server it started.
        signal = interrupts.recv() => Err(Error::Interrupted(signal.name(), signal.exit_code())),
    };
    let (addr, mut spawned) = match started {
        Ok(started) => started,
        Err(e) => {
            // A folder we made for nothing is removed again; one holding
            // the server's log (named in the error) stays.
            if !existed {
                let _ = std::fs::remove_dir(&p.out);
            }
            return Err(e);
        }
    };
    let server_pid = spawned.as_ref().map(|s| s.child.pid()).or(opts.server_pid);
    // Before summary.json and the clock: the first dump loads the server's
    // debug info, which must neither delay t_s = 0 nor count as growth.
    let mut heap_notes = Vec::new();
    let heap_target = crate::memory::heap_profiles::endpoint(&opts, &p.target, &mut heap_notes)
        .await
        .map_err(setup)?;

    // The step index, once: the summary names the steps, the plan maps
    // each flow's steps to them.
    let (step_ids, step_names) = Plan::index_steps(&p.scenario);
    let mut summary = RunSummary {
        schema_version: clw_run::SCHEMA_VERSION,
        complete: false,
        clw_version: env!("CARGO_PKG_VERSION").into(),
        scenario: p.scenario.name.clone(),
        scenario_file: opts.scenario.display().to_string(),
        target: p.target.url.clone(),
        metrics_url: p.metrics_url.clone(),
        concurrent_users: p.users,
        duration_s: p.duration.as_secs_f64(),
        ramp_up_s: p.warm_up.as_secs_f64(),
        model: match p.model {
            LoadModel::Closed => "closed",
            LoadModel::Open { .. } => "open",
        }
        .into(),
        arrival_rate: match p.model {
            LoadModel::Open { arrival_rate } => Some(arrival_rate),
            LoadModel::Closed => None,
        },
        started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        elapsed_s: None,
        host: Host::this(),
        requests: Default::default(),
        dropped_iterations: 0,
        connections_opened: 0,
        tls: p.target.dial().map(|d| d.tls.summary()),
        throughput_rps: None,
        latency_ms: None,
        latency_corrected_ms: None,
        latency_note: LATENCY_NOTE.into(),
        steps: Default::default(),
        stages: p.stages.as_ref().map(summary::planned_stages),
        memory: Some(MemoryReport::placeholder(opts.memory_limit)),
        server: ServerInfo {
            pid: server_pid,
            command: spawned.as_ref().map(|s| s.command.clone()),
            config: opts.spawn_server.as_deref().and_then(config_of),
            limit_enforcement: spawned
                .as_ref()
                .map(|s| s.child.enforcement().as_str().to_string())
                .unwrap_or_else(|| "none".into()),
            limit_bytes: opts.memory_limit,
            exit: None,
        },
        thresholds: Vec::new(),
        passed: None,
        failures: Vec::new(),
        interrupted: false,
        interrupted_by: None,
        aborted: None,
        notes: spawned
            .as_ref()
            .map(|s| s.child.notes().to_vec())
            .unwrap_or_default(),
    };
    summary.notes.extend(heap_notes);
    for note in &p.load_notes {
        eprintln!("note: {note}");
    }
    summary.notes.extend(p.load_notes.iter().cloned());
    let summary_path = p.out.join("summary.json");
    summary.write_atomic(&summary_path).map_err(setup)?;

    // Outputs, counters, sampler, heap profiles.
    let open = matches!(p.model, LoadModel::Open { .. });
    let start_wall = SystemTime::now();
    let csv = LatencyCsv::create(&p.out.join("latency.csv"), open).map_err(setup)?;
    let hlog = HdrLog::create(&p.out.join("latency.hlog"), start_wall).map_err(setup)?;
    let counters = Arc::new(LoadCounters::default());
    // t_s = 0 of every output: the sampler starts on the same clock.
    let t0 = Instant::now();
    let mut memory = crate::memory::Memory::start(crate::memory::MemoryConfig {
        start: t0,
        interval: opts.sample_interval,
        pid: server_pid,
        metrics_url: p.metrics_url.clone(),
        tls: p.tls.clone(),
        spawned: spawned.as_ref(),
        csv_path: p.out.join("samples.csv"),
        counters: counters.clone(),
        scrape_timeout: opts.timeout.min(opts.sample_interval * 4),
        limit_bytes: opts.memory_limit,
        ramp_up: p.warm_up,
    })
    .await;
    let heap = heap_target.map(|t| {
        let (rss, limit) = (memory.rss_reader(), memory.limit_reader());
        HeapProfiles::during(t, &opts, &p.out, t0, p.warm_up, rss, limit)
    });
    // --abort-on-fail watches the live verdict and the peaks.
    let mut live_verdict = memory.live().filter(|_| opts.abort_on_fail);
    if let Some(note) = memory.note() {
        summary.notes.push(note);
    }

    // The load.
    let threads = opts.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let plan = Arc::new(Plan {
        scenario: p.scenario.clone(),
        step_ids,
        step_names: step_names.clone(),
        addr,
        authority: p.target.authority.clone(),
        base_path: p.target.base_path.clone(),
        tls: p.target.dial(),
        users: p.users,
        threads,
        duration: p.duration,
        ramp_up: p.ramp_up,
        model: p.model,
        stages: p.stages.clone(),
        timeout: opts.timeout,
        seed: opts.seed.unwrap_or(0x5eed),
        counters,
        stop: Default::default(),
    });
    let live = Arc::new(Mutex::new(Live::default()));
    let (tx, rx) = mpsc::unbounded_channel();
    let workers = engine::start(plan.clone(), t0, tx)
        .map_err(|e| setup(format!("cannot start worker threads: {e}")))?;
    let mut collector = Collector::new(step_names.clone(), csv, hlog, open, live.clone());
    if let Some(metrics) = metrics {
        let totals = Arc::new(Mutex::new(IntervalStats::new(step_names.len())));
        collector = collector.share_totals(totals.clone());
        metrics.attach(RunSources {
            step_names: step_names.clone(),
            totals,
            counters: plan.counters.clone(),
            users: p.users,
            memory: Box::new(memory.now_reader()),
        });
    }
    let (stop_progress, progress_stop_rx) = oneshot::channel();
    let rss = memory.rss_reader();
    let ticker = progress::spawn_ticker(
        Progress::new(opts.quiet, p.duration),
        t0,
        live,
        rss,
        p.stages.clone().map(|s| (s, open)),
        progress_stop_rx,
    );
    let collect = collector.run(workers.len(), t0, rx);
    tokio::pin!(collect);

    let mut death: Option<String> = None;
    let mut stop_at: Option<tokio::time::Instant> = None;
    // SIGINT / SIGTERM stop the load early; everything measured so far is
    // still written (summary, CSVs, report), and marked as interrupted.
    let mut interrupted: Option<Interrupt> = None;
    let (totals, write_error) = loop {
        tokio::select! {
            result = &mut collect => break result,
            (exit, vanished) = wait_death(&mut spawned, p.watched.as_ref()), if death.is_none() => {
                let at_s = exit.exited_at.saturating_duration_since(t0).as_secs_f64();
                death = Some(match (vanished, server_pid) {
                    (true, Some(pid)) => server::vanished_message(pid, at_s),
                    _ => server::death_message(&exit, at_s, opts.memory_limit.unwrap_or(0)),
                });
                summary.server.exit = Some(server::exit_summary(&exit, t0, vanished));
                // Samples of a dead process would be blanks, or another's.
                memory.halt().await;
                if opts.on_server_exit == OnServerExit::Stop {
                    stop_at = Some(tokio::time::Instant::now() + STOP_AFTER_DEATH);
                }
                summary.write_atomic(&summary_path).map_err(setup)?;
            }
            _ = sleep_until_opt(stop_at), if stop_at.is_some() => {
                plan.stop.store(true, Ordering::Relaxed);
                stop_at = None;
            }
            changed = wait_live(&mut live_verdict), if live_verdict.is_some() && summary.aborted.is_none() => {
                let report = match changed {
                    Some(report) => report,
                    None => { live_verdict = None; continue; }
                };
                if let Some(why) = failed_for_good(&report, &p.thresholds, opts.memory_limit) {
                    eprintln!("--abort-on-fail: {why}; stopping the load, writing every output");
                    summary.aborted = Some(why);
                    plan.stop.store(true, Ordering::Relaxed);
                }
            }
            signal = interrupts.recv(), if interrupted.is_none() => {
                interrupted = Some(signal);
                plan.stop.store(true, Ordering::Relaxed);
                eprintln!(
                    "{}: stopping the load, writing what was measured (again to exit at once)",
                    signal.name()
                );
            }
        }
    };
    // Off the runtime's thread: in-flight requests may take up to
    // --timeout, and the runtime must stay free meanwhile.
    let _ = tokio::task::spawn_blocking(move || {
        for w in workers {
            let _ = w.join();
        }
    })
    .await;
    let _ = stop_progress.send(());
    let progress = ticker.await.unwrap_or(Progress::Quiet);
    progress.finish();
    if let Some(message) = &death {
        progress.println(message);
    }
    if let Some(err) = write_error {
        summary.notes.push(format!("output incomplete: {err}"));
    }

    // Memory verdict, server shutdown, summary.
    let elapsed = totals.finished.saturating_duration_since(t0).as_secs_f64();
    summary::set_load(&mut summary, &totals.stats, &step_names, elapsed, open);
    summary.connections_opened = totals.connects;
    let (memory_block, memory_notes) = memory
        .finish(
            &p.out,
            opts.memory_limit,
            p.warm_up,
            summary.server.exit.as_ref(),
        )
        .await;
    summary.memory = Some(memory_block);
    summary.notes.extend(memory_notes);
    summary::set_stage_figures(&mut summary, &p.out);
    if let Some(heap) = heap {
        let binary = opts.heap_profile_symbols.as_deref();
        heap.finish(death.is_none(), &p.out, binary, &mut summary)
            .await;
    }
    if let Some(s) = spawned.as_mut() {
        let exit = s.child.terminate(server::STOP_GRACE).await;
        if summary.server.exit.is_none() && death.is_none() {
            // Stopped by us at the end: not a death, but worth recording.
            summary.notes.push(format!(
                "server stopped after the run (exit {})",
                exit.shell_code()
            ));
        }
    }
    summary.interrupted = interrupted.is_some();
    summary.interrupted_by = interrupted.map(|i| i.name().to_string());
    summary::evaluate(&mut summary, &p.thresholds);
    if let (Some(tls), Some(dial)) = (summary.tls.as_mut(), p.target.dial()) {
        // Every connection is closed by now: the final count.
        tls.handshakes = dial.tls.handshakes();
    }
    summary.complete = true;
    summary.write_atomic(&summary_path).map_err(setup)?;
    if !opts.no_report {
        if let Err(e) = clw_report::render_run(&p.out) {
            eprintln!("warning: the HTML report could not be rendered: {e}");
        }
        // Runs under a `reports/` folder keep its index.html current.
        if let Some(reports) = p
            .out
            .parent()
            .filter(|d| d.file_name().is_some_and(|n| n == "reports"))
        {
            if let Err(e) = clw_report::render_index(reports) {
                eprintln!(
                    "warning: {}/index.html could not be rendered: {e}",
                    reports.display()
                );
            }
        }
    }
    print!("{}", crate::results::console::render(&summary, &p.out));
    let passed = summary.passed.unwrap_or(false);
    Ok(Outcome {
        exit_code: match interrupted {
            Some(signal) => signal.exit_code(),
            None if passed => 0,
            None => 1,
        },
        out_dir: Some(p.out),
        passed,
    })
}

/// What clw-cli's latency measures, stated in summary.json and the README.
pub(crate) const LATENCY_NOTE: &str = "from just before the request's first byte is written (connect included when a new connection is opened) to the response's last byte; latency_corrected_ms (open model) is measured from each iteration's scheduled start";

/// The death of the server: one we started (its exit status), or one we
/// watch (`true`: vanished, status unknown). Pending forever without one.
async fn wait_death(
    spawned: &mut Option<Spawned>,
    watched: Option<&Watched>,
) -> (clw_limit::ExitInfo, bool) {
    match (spawned, watched) {
        (Some(s), _) => (s.child.wait_exit().await, false),
        (None, Some(w)) => (w.wait_exit().await, true),
        (None, None) => std::future::pending().await,
    }
}

/// The next live verdict; None once the sampler is gone.
async fn wait_live(
    live: &mut Option<tokio::sync::watch::Receiver<Option<MemoryReport>>>,
) -> Option<MemoryReport> {
    let rx = live.as_mut()?;
    rx.changed().await.ok()?;
    let report = rx.borrow_and_update().clone();
    // A sampler that has not sampled yet publishes nothing.
    Some(report.unwrap_or_default())
}

/// The first threshold the samples so far fail for good (a peak past its
/// ceiling, a `leak` verdict), as "rule (actual ...)".
fn failed_for_good(
    memory: &MemoryReport,
    thresholds: &[Threshold],
    limit_bytes: Option<u64>,
) -> Option<String> {
    let mut probe = RunSummary {
        memory: Some(memory.clone()),
        ..RunSummary::default()
    };
    probe.server.limit_bytes = limit_bytes;
    thresholds.iter().find_map(|t| {
        let actual = t.fails_for_good(&probe)?;
        let at = memory
            .leak_detected_at_s
            .filter(|_| t.metric == clw_run::threshold::Metric::Verdict)
            .map(|s| format!(" at {s:.1} s"))
            .unwrap_or_default();
        Some(format!(
            "threshold {t} failed for good{at} (actual {actual})"
        ))
    })
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// `--config FILE` in the server command, for summary.json.
fn config_of(command: &str) -> Option<String> {
    let words = shlex::split(command)?;
    let i = words.iter().position(|w| w == "--config")?;
    words.get(i + 1).cloned()
}

/// Exit 3 early, with the reason, when nothing listens at the target.
async fn check_reachable(addr: std::net::SocketAddr, target: &Target) -> Result<(), Error> {
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(setup(format!(
            "target {} ({addr}) is unreachable: {e}",
            target.url
        ))),
        Err(_) => Err(setup(format!(
            "target {} ({addr}) did not accept a connection within 5s",
            target.url
        ))),
    }
}

/// `clw-cli report RUN_DIR...`
/// `clw-cli dhat FILE`: an unreadable or foreign file is bad input (exit 2).
fn dhat(opts: &DhatOpts) -> Result<Outcome, Error> {
    let sites = crate::dhat::HeapSites::read(&opts.file, opts.top).map_err(usage)?;
    println!("{}", opts.file.display());
    print!("{}", sites.render());
    Ok(Outcome {
        exit_code: 0,
        out_dir: None,
        passed: true,
    })
}

fn report(opts: ReportOpts) -> Result<Outcome, Error> {
    // A run killed before its summary was written still has its CSVs:
    // clw-report decides what is a run folder, and says what is missing.
    let not_a_run = |e: clw_report::ReportError| match e {
        clw_report::ReportError::NotARunFolder(_) => usage(e.to_string()),
        other => setup(other),
    };
    let out_dir = match &opts.runs[..] {
        [] => None,
        [run] => {
            let rendered = clw_report::render_run(run).map_err(not_a_run)?;
            for notice in &rendered.notices {
                eprintln!("note: {notice}");
            }
            println!("report: {}", rendered.page.display());
            Some(run.clone())
        }
        runs => {
            let out = opts.out.clone().unwrap_or_else(|| {
                PathBuf::from("reports")
                    .join(format!("compare-{}", folder_stamp(SystemTime::now())))
            });
            let rendered = clw_report::render_comparison(runs, &out).map_err(not_a_run)?;
            println!("comparison: {}", rendered.page.display());
            Some(out)
        }
    };
    if let Some(dir) = &opts.index {
        let page = clw_report::render_index(dir).map_err(setup)?;
        println!("index: {}", page.display());
    }
    Ok(Outcome {
        exit_code: 0,
        out_dir,
        passed: true,
    })
}
