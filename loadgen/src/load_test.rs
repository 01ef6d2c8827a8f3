//! `auth load-test`: validate everything that can be wrong before any load
//! is sent (exit 2), set up the server and reach the target (exit 3), run
//! the load while the sampler watches memory, then write the run folder and
//! judge the run (exit 1 when a threshold failed, the server died or no
//! request succeeded; 130 / 143 when interrupted by SIGINT / SIGTERM).
//!
//! `load_test` strings the phases together, one module each, in this
//! order: `prepare` (validate, exit 2), `start_server` (exit 3),
//! `begin_summary`, `start_load`, `supervise` (until the load ends or is
//! stopped), `finish` (judge, write, report).

mod begin_summary;
mod config;
mod disk;
mod finish;
mod prepare;
mod start_load;
mod start_server;
mod supervise;

use std::time::SystemTime;

use crate::exporter::MetricsEndpoint;
use crate::opts::LoadTestOpts;
use crate::outcome::{setup, usage, Error, Outcome};
use crate::signals::Interrupts;

#[cfg(test)]
pub(crate) use prepare::source_flags;

/// `--repeat N`: the same load N times into OUT/run-1 ... OUT/run-N, so a
/// gate can take the median and one noisy run neither sets nor breaks a
/// baseline. Stops at an interruption; otherwise the worst exit code wins.
pub(crate) async fn load_tests(
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
pub(crate) fn folder_stamp(t: SystemTime) -> String {
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
pub(crate) async fn load_test(
    opts: LoadTestOpts,
    metrics: Option<&MetricsEndpoint>,
) -> Result<Outcome, Error> {
    let cfg = prepare::prepare(&opts)?;
    drop(opts);
    let mut interrupts =
        Interrupts::install().map_err(|e| setup(format!("cannot catch signals: {e}")))?;
    let (mut started, heap) = start_server::start_server(&cfg, &mut interrupts).await?;
    let mut summary = begin_summary::begin_summary(&cfg, &started, heap.notes)?;
    crate::shard::wait_start(cfg.start_at, &mut interrupts, &mut summary).await?;
    let mut running =
        start_load::start_load(&cfg, &started, heap.target, metrics, &mut summary).await?;
    let ended = supervise::supervise(
        &cfg,
        &mut running,
        &mut started,
        &mut interrupts,
        &mut summary,
    )
    .await?;
    finish::finish(cfg, running, started.spawned, ended, summary).await
}
