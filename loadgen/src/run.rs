//! `run()`: one command from options to exit code. The load test's phases:
//! validate everything that can be wrong before any load is sent (exit 2),
//! set up the server and reach the target (exit 3), run the load while the
//! sampler watches memory, then write the run folder and judge the run
//! (exit 1 when a threshold failed, the server died or no request
//! succeeded; 130 / 143 when interrupted by SIGINT / SIGTERM).
//!
//! `load_test` strings the phases together, one module each, in this
//! order: `prepare` (validate, exit 2), `start_server` (exit 3),
//! `begin_summary`, `start_load`, `supervise` (until the load ends or is
//! stopped), `finish` (judge, write, report).

mod begin_summary;
mod disk;
mod finish;
mod prepare;
mod start_load;
mod start_server;
mod supervise;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::exporter::MetricsEndpoint;
use crate::opts::{AuthCommand, Command, DhatOpts, LoadTestOpts, Opts, ReportOpts};
use crate::outcome::{setup, usage, Error, Outcome};
use crate::signals::Interrupts;

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
        Command::Merge(m) => crate::merge::merge(&m),
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

/// `20261124T060000Z`: sorts by time and is safe in any file system.
fn folder_stamp(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// One load test, phase by phase (each phase is a module under run/).
/// `metrics`: the `--metrics-listen` endpoint that serves this run's
/// figures while it runs.
/// The interrupt handler is installed first: from then on SIGINT / SIGTERM
/// stop the run and still write what was measured.
async fn load_test(
    opts: LoadTestOpts,
    metrics: Option<&MetricsEndpoint>,
) -> Result<Outcome, Error> {
    let p = prepare::prepare(&opts)?;
    let mut interrupts =
        Interrupts::install().map_err(|e| setup(format!("cannot catch signals: {e}")))?;
    let (mut started, heap) = start_server::start_server(&opts, &p, &mut interrupts).await?;
    let mut summary = begin_summary::begin_summary(&opts, &p, &started, heap.notes)?;
    crate::shard::wait_start(opts.start_at, &mut interrupts, &mut summary).await?;
    let mut running =
        start_load::start_load(&opts, &p, &started, heap.target, metrics, &mut summary).await?;
    let ended = supervise::supervise(
        &opts,
        &p,
        &mut running,
        &mut started,
        &mut interrupts,
        &mut summary,
    )
    .await?;
    finish::finish(&opts, p, running, started.spawned, ended, summary).await
}

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

/// A report's failure as an exit code: a folder that is no run, a file
/// that cannot be read or breaks its contract is bad input (2); a page or
/// chart that cannot be written is an output not written (4); a chart or
/// template that fails to render is a setup failure (3).
pub(crate) fn report_error(e: clw_report::ReportError) -> Error {
    use clw_report::ReportError as R;
    match e {
        R::NotARunFolder(_) | R::Io { .. } | R::Csv { .. } | R::NoRuns => usage(e),
        R::Write { .. } => Error::Output(e.to_string()),
        R::Chart { .. } | R::Template { .. } => setup(e),
    }
}

/// `clw-cli report RUN_DIR...`: one run's page, a comparison of several,
/// and/or an index.
fn report(opts: ReportOpts) -> Result<Outcome, Error> {
    // A run killed before its summary was written still has its CSVs:
    // clw-report decides what is a run folder, and says what is missing.
    let not_a_run = report_error;
    let out_dir = match &opts.runs[..] {
        [] => None,
        [run] => {
            // Not while a run (or another report) writes the folder.
            // (A path that is no folder is left to clw-report to name.)
            let _lock = match run.is_dir() {
                true => Some(
                    clw_run::lock::FolderLock::acquire(run).map_err(crate::outcome::folder_lock)?,
                ),
                false => None,
            };
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
            let _lock = crate::outcome::lock_folder(&out)?;
            let rendered = clw_report::render_comparison(runs, &out).map_err(not_a_run)?;
            println!("comparison: {}", rendered.page.display());
            Some(out)
        }
    };
    if let Some(dir) = &opts.index {
        let page = clw_report::render_index(dir).map_err(report_error)?;
        println!("index: {}", page.display());
    }
    Ok(Outcome {
        exit_code: 0,
        out_dir,
        passed: true,
    })
}
