//! The begin-summary phase: summary.json written before the load starts,
//! `complete: false`, so a run killed midway (OOM, SIGKILL) still leaves
//! the setup that produced its CSVs for clw-report.

use std::time::SystemTime;

use clw_run::{Host, LimitEnforcement, MemoryReport, Model, RunSummary, ServerInfo};

use super::config::RunConfig;
use super::start_server::Started;
use crate::outcome::{setup, Error};
use crate::results::summary;
use crate::scenario::LoadModel;

/// What clw-cli's latency measures, stated in summary.json and the README.
pub(crate) const LATENCY_NOTE: &str = "from just before the request's first byte is written (connect included when a new connection is opened) to the response's last byte; latency_corrected_ms (open model) is measured from each iteration's scheduled start";

/// The run's setup as summary.json, written; the figures come at the end.
/// `heap_notes`: what the heap-profile probe found.
pub(super) fn begin_summary(
    cfg: &RunConfig,
    started: &Started,
    heap_notes: Vec<String>,
) -> Result<RunSummary, Error> {
    let spawned = started.spawned.as_ref();
    let mut summary = RunSummary {
        schema_version: clw_run::SCHEMA_VERSION,
        complete: false,
        clw_version: env!("CARGO_PKG_VERSION").into(),
        scenario: cfg.scenario.name.clone(),
        scenario_file: cfg.scenario_file.display().to_string(),
        target: cfg.target.url.clone(),
        metrics_url: cfg.metrics_url.clone(),
        concurrent_users: cfg.users,
        duration_s: cfg.duration.as_secs_f64(),
        ramp_up_s: cfg.warm_up.as_secs_f64(),
        model: match cfg.model {
            LoadModel::Closed => Model::Closed,
            LoadModel::Open { .. } => Model::Open,
        },
        arrival_rate: match cfg.model {
            LoadModel::Open { arrival_rate } => Some(arrival_rate),
            LoadModel::Closed => None,
        },
        started_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        elapsed_s: None,
        host: Host::this(),
        requests: Default::default(),
        after_death: None,
        dropped_iterations: 0,
        connections_opened: 0,
        tls: cfg.target.dial().map(|d| d.tls.summary()),
        throughput_rps: None,
        latency_ms: None,
        latency_corrected_ms: None,
        latency_note: LATENCY_NOTE.into(),
        steps: Default::default(),
        stages: cfg.stages.as_ref().map(summary::planned_stages),
        memory: Some(MemoryReport::placeholder(cfg.limit.given_bytes())),
        server: ServerInfo {
            pid: started.server_pid,
            command: spawned.map(|s| s.command.clone()),
            config: cfg.spawn.as_ref().and_then(|s| config_of(&s.command)),
            limit_enforcement: spawned
                .map_or(LimitEnforcement::None, |s| s.child.enforcement().into()),
            limit_bytes: cfg.limit.given_bytes(),
            exit: None,
        },
        thresholds: Vec::new(),
        passed: None,
        failures: Vec::new(),
        interrupted: false,
        interrupted_by: None,
        aborted: None,
        shard: cfg.part.info.clone(),
        merged: None,
        no_memory: !cfg.measure_memory,
        notes: spawned
            .map(|s| s.child.notes().to_vec())
            .unwrap_or_default(),
    };
    summary.notes.extend(started.notes.iter().cloned());
    summary.notes.extend(heap_notes);
    if let Some(to) = cfg.target.redirected() {
        // The figures are of the host the rule chose, not the name's.
        summary.notes.push(format!(
            "connections for {} go to {to} (--connect-to)",
            cfg.target.authority
        ));
    }
    for note in &cfg.load_notes {
        eprintln!("note: {note}");
    }
    summary.notes.extend(cfg.load_notes.iter().cloned());
    summary.write_atomic(&cfg.summary_path()).map_err(setup)?;
    Ok(summary)
}

/// `--config FILE` in the server command, for summary.json.
fn config_of(command: &str) -> Option<String> {
    let words = shlex::split(command)?;
    let i = words.iter().position(|w| w == "--config")?;
    words.get(i + 1).cloned()
}
