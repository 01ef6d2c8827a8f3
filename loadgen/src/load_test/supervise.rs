//! The supervise phase: while the load runs, watch for the server's death,
//! the live verdict (`--abort-on-fail`) and SIGINT / SIGTERM, each of which
//! stops the load early; the collector's end is the load's end.

use std::sync::atomic::Ordering;
use std::time::Duration;

use clw_run::threshold::Threshold;
use clw_run::{MemoryReport, RunFileError, RunSummary};

use super::config::RunConfig;
use super::start_load::Running;
use super::start_server::Started;
use crate::outcome::{setup, Error};
use crate::results::collector::Totals;
use crate::server::{self, Spawned};
use crate::signals::{Interrupt, Interrupts};
use crate::watched::Watched;

/// How long the load goes on after a spawned server died (`--on-server-exit
/// stop`), so the failure shows in the figures without a long tail of
/// connection errors.
const STOP_AFTER_DEATH: Duration = Duration::from_secs(3);

/// How the load ended.
pub(super) struct Ended {
    pub(super) totals: Totals,
    /// A write error that stopped the output files (not the run).
    pub(super) write_error: Option<RunFileError>,
    /// The server's death, as printed under the progress line.
    pub(super) death: Option<String>,
    /// SIGINT / SIGTERM stop the load early; everything measured so far is
    /// still written (summary, CSVs, report), and marked as interrupted.
    pub(super) interrupted: Option<Interrupt>,
}

/// Run the load to its end. A server's death is written to summary.json at
/// once (the next thing may be the OOM killer taking us too).
pub(super) async fn supervise(
    cfg: &RunConfig,
    running: &mut Running,
    started: &mut Started,
    interrupts: &mut Interrupts,
    summary: &mut RunSummary,
) -> Result<Ended, Error> {
    let t0 = running.t0;
    let mut death: Option<String> = None;
    let mut stop_at: Option<tokio::time::Instant> = None;
    let mut interrupted: Option<Interrupt> = None;
    // The program is known now; its log is read at its death.
    let program = started.spawned.as_ref().map(|s| s.command.clone());
    let log = cfg.out.join("server.log");
    let (totals, write_error) = loop {
        tokio::select! {
            result = &mut running.collect => break result,
            (exit, vanished) = wait_death(&mut started.spawned, cfg.watched.as_ref()), if death.is_none() => {
                // From here on, requests measure a dead server: apart.
                running.plan.death.set(exit.exited_at);
                let at_s = exit.exited_at.saturating_duration_since(t0).as_secs_f64();
                death = Some(match (vanished, started.server_pid) {
                    (true, Some(pid)) => server::vanished_message(pid, at_s),
                    _ => {
                        let voice = program
                            .as_deref()
                            .map_or(server::Voice::Plain, |c| server::Voice::of(c, &log));
                        let limit = cfg.limit.given_bytes().unwrap_or(0);
                        server::death_message(&exit, at_s, limit, started.server_pid, &voice)
                    }
                });
                summary.server.exit = Some(clw_run::ServerExit {
                    message: death.clone(),
                    ..server::exit_summary(&exit, t0, vanished)
                });
                // Samples of a dead process would be blanks, or another's.
                running.memory.halt().await;
                if cfg.stop_after_death {
                    stop_at = Some(tokio::time::Instant::now() + STOP_AFTER_DEATH);
                }
                summary.write_atomic(&cfg.summary_path()).map_err(setup)?;
            }
            _ = sleep_until_opt(stop_at), if stop_at.is_some() => {
                running.plan.stop.store(true, Ordering::Relaxed);
                stop_at = None;
            }
            changed = wait_live(&mut running.live_verdict), if running.live_verdict.is_some() && summary.aborted.is_none() => {
                let report = match changed {
                    Some(report) => report,
                    None => { running.live_verdict = None; continue; }
                };
                if let Some(why) = failed_for_good(&report, &cfg.thresholds, cfg.limit.given_bytes()) {
                    eprintln!("--abort-on-fail: {why}; stopping the load, writing every output");
                    summary.aborted = Some(why);
                    running.plan.stop.store(true, Ordering::Relaxed);
                }
            }
            signal = interrupts.recv(), if interrupted.is_none() => {
                interrupted = Some(signal);
                running.plan.stop.store(true, Ordering::Relaxed);
                eprintln!(
                    "{}: stopping the load, writing what was measured (again to exit at once)",
                    signal.name()
                );
            }
        }
    };
    Ok(Ended {
        totals,
        write_error,
        death,
        interrupted,
    })
}

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

/// Sleep until `at`; pending forever without one.
async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
