//! The finish phase: stop the load, the progress line and the server, judge
//! the memory and the thresholds, write summary.json (`complete: true`), the
//! HTML report and the console summary, and choose the exit code.

use std::thread::JoinHandle;

use clw_run::RunSummary;
use tokio::sync::oneshot;

use super::config::RunConfig;
use super::start_load::Running;
use super::supervise::Ended;
use crate::memory::heap_profiles::HeapProfiles;
use crate::memory::Memory;
use crate::outcome::{Error, Outcome};
use crate::results::progress::Progress;
use crate::results::summary;
use crate::server::{self, Spawned};

/// Everything after the load's end, in this order: the workers joined, the
/// load's figures, the memory verdict and heap growth (the last profile
/// while the server is still up), the server stopped, the thresholds
/// judged, summary.json completed, the report rendered. Exit 130 / 143 when
/// interrupted, 1 when the run failed, else 0.
pub(super) async fn finish(
    cfg: RunConfig,
    running: Running,
    mut spawned: Option<Spawned>,
    ended: Ended,
    mut summary: RunSummary,
) -> Result<Outcome, Error> {
    // `spawned` is dropped last (its Drop reaps the server and removes its
    // cgroup), after every output is written.
    let Running {
        t0,
        open,
        step_names,
        memory,
        heap,
        workers,
        stop_progress,
        ticker,
        plan,
        ..
    } = running;
    stop_load(workers, stop_progress, ticker, ended.death.as_deref()).await;
    if let Some(err) = &ended.write_error {
        summary.notes.push(format!("output incomplete: {err}"));
    }

    let elapsed = ended
        .totals
        .finished
        .saturating_duration_since(t0)
        .as_secs_f64();
    let death = plan
        .death
        .died_at()
        .map(|d| d.saturating_duration_since(t0).as_secs_f64());
    summary::set_load(
        &mut summary,
        &ended.totals.stats,
        &step_names,
        (elapsed, death),
        open,
    );
    summary.connections_opened = ended.totals.connects;
    judge_memory(&cfg, memory, heap, ended.death.is_none(), &mut summary).await;
    if let Some(s) = spawned.as_mut() {
        stop_server(s, ended.death.is_none(), &mut summary).await;
    }
    summary.interrupted = ended.interrupted.is_some();
    summary.interrupted_by = ended.interrupted.map(|i| i.name().to_string());
    summary::evaluate(&mut summary, &cfg.thresholds);
    if let (Some(tls), Some(dial)) = (summary.tls.as_mut(), cfg.target.dial()) {
        // Every connection is closed by now: the final count.
        tls.handshakes = dial.tls.handshakes();
        tls.handshake_ms = ended
            .totals
            .stats
            .handshakes
            .as_ref()
            .and_then(clw_run::Percentiles::of);
    }
    summary.complete = true;

    // The console first: a disk that fills at the end must not also cost
    // the user what the run measured. Then every output, each failure
    // kept; a promised output not written is exit 4, never a pass.
    print!("{}", crate::results::console::render(&summary, &cfg.out));
    let mut unwritten: Vec<String> = ended.write_error.iter().map(|e| e.to_string()).collect();
    if let Err(e) = summary.write_atomic(&cfg.summary_path()) {
        unwritten.push(e.to_string());
    }
    unwritten.extend(render(&cfg));
    if !unwritten.is_empty() {
        return Err(Error::Output(unwritten.join("; ")));
    }
    let passed = summary.passed.unwrap_or(false);
    Ok(Outcome {
        exit_code: match ended.interrupted {
            Some(signal) => signal.exit_code(),
            None if passed => 0,
            None => 1,
        },
        out_dir: Some(cfg.out),
        passed,
    })
}

/// Join the workers and clear the progress line, then print the server's
/// death (if any) where the bar was.
async fn stop_load(
    workers: Vec<JoinHandle<()>>,
    stop_progress: oneshot::Sender<()>,
    ticker: tokio::task::JoinHandle<Progress>,
    death: Option<&str>,
) {
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
    if let Some(message) = death {
        progress.println(message);
    }
}

/// The memory block (verdict from the samples) and, with heap profiles,
/// the last one (only while the server is `alive`) and the growth sites.
async fn judge_memory(
    cfg: &RunConfig,
    memory: Memory,
    heap: Option<HeapProfiles>,
    alive: bool,
    summary: &mut RunSummary,
) {
    let (memory_block, memory_notes) = memory
        .finish(&cfg.out, cfg.warm_up, summary.server.exit.as_ref())
        .await;
    summary.memory = Some(memory_block);
    summary.notes.extend(memory_notes);
    summary::set_stage_figures(summary, &cfg.out);
    if let Some(heap) = heap {
        let binary = cfg.heap.symbols.as_deref();
        heap.finish(alive, &cfg.out, binary, summary).await;
    }
}

/// Stop the server we started. `alive`: it did not die during the run (a
/// death was recorded then); its exit here is then noted, not a death.
async fn stop_server(spawned: &mut Spawned, alive: bool, summary: &mut RunSummary) {
    let exit = spawned.child.terminate(server::STOP_GRACE).await;
    if summary.server.exit.is_none() && alive {
        // Stopped by us at the end: not a death, but worth recording.
        summary.notes.push(format!(
            "server stopped after the run (exit {})",
            exit.shell_code()
        ));
    }
}

/// The HTML report (unless `--no-report`) and, for runs under a `reports/`
/// folder, its index.html: what could not be written, in words.
fn render(cfg: &RunConfig) -> Vec<String> {
    let mut unwritten = Vec::new();
    if !cfg.report {
        return unwritten;
    }
    if let Err(e) = clw_report::render_run(&cfg.out) {
        unwritten.push(format!("the HTML report: {e}"));
    }
    // Runs under a `reports/` folder keep its index.html current.
    if let Some(reports) = cfg
        .out
        .parent()
        .filter(|d| d.file_name().is_some_and(|n| n == "reports"))
    {
        if let Err(e) = clw_report::render_index(reports) {
            unwritten.push(format!("{}/index.html: {e}", reports.display()));
        }
    }
    unwritten
}
