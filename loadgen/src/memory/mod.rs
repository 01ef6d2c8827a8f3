//! The run's memory side, as `run()` sees it: start the sampler beside the
//! load, give the progress line the latest RSS, and at the end turn
//! samples.csv into summary.json's `memory` block with the analysis.
//! A sampler that cannot start is a note in the summary, not a failed run:
//! the latency figures are still worth having.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clw_run::analysis::{self, AnalysisInput, Series};
use clw_run::{MemoryReport, ServerExit, Verdict};

pub(crate) mod exposition;
pub(crate) mod heap_profiles;
pub(crate) mod limit;
pub(crate) mod prometheus;
pub(crate) mod sampler;
pub(crate) mod selector;
pub(crate) mod source;

pub(crate) use limit::LimitRule;

/// How several series of the service's memory make one figure
/// (`--memory-aggregate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryAggregate {
    /// The largest: the replica nearest its own limit.
    #[default]
    Max,
    /// The total: the containers of one pod.
    Sum,
}

use crate::load::counters::LoadCounters;
use crate::server::Spawned;
use sampler::{SamplerConfig, SamplerHandle, SamplerReport};

pub(crate) struct MemoryConfig<'a> {
    pub(crate) interval: Duration,
    pub(crate) pid: Option<u32>,
    /// Sample `pid` with its descendants (see [`crate::proctree`]).
    pub(crate) pid_tree: bool,
    pub(crate) metrics_url: Option<String>,
    /// `--metrics-url` was given (see [`SamplerConfig::metrics_url_given`]).
    pub(crate) metrics_url_given: bool,
    /// How the run reaches its URLs (TLS, `--connect-to`), for the
    /// metrics URL and a Prometheus server.
    pub(crate) reach: crate::target::Reach,
    pub(crate) spawned: Option<&'a Spawned>,
    pub(crate) csv_path: PathBuf,
    pub(crate) counters: Arc<LoadCounters>,
    pub(crate) scrape_timeout: Duration,
    /// The load's start: t_s = 0 in samples.csv.
    pub(crate) start: Instant,
    /// Which limit the run is judged against, and the ramp-up, for the
    /// live verdict.
    pub(crate) limit: LimitRule,
    pub(crate) ramp_up: Duration,
    /// Where the service's memory comes from.
    pub(crate) source: source::SourceSpec,
    /// `--heap-metric` / `--logins-metric`.
    pub(crate) gauges: selector::Gauges,
}

/// The sampler while it runs.
pub(crate) struct Memory {
    handle: Option<SamplerHandle>,
    /// The sampler's report once stopped early (the server died).
    halted: Option<SamplerReport>,
    note: Option<String>,
    /// Where RSS and cgroup usage come from, for [`MemoryNow`].
    rss_source: &'static str,
    cgroup_source: Option<&'static str>,
    /// Which limit the run is judged against.
    limit: LimitRule,
    /// Where a limit not given comes from (`memory.sources.limit`).
    limit_word: &'static str,
    /// "heap: SELECTOR from URL": the series `--heap-metric` chose, for the
    /// notes once it was read.
    heap_note: Option<String>,
}

/// The server's memory as last sampled, and the live verdict: what the
/// live metrics export. Each figure with where it came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct MemoryNow {
    /// RSS and its source (`proc`, `metrics`).
    pub(crate) rss: Option<(u64, &'static str)>,
    /// cgroup usage and how the cgroup is kept (`cgroup-v2`, ...).
    pub(crate) cgroup: Option<(u64, &'static str)>,
    /// The allocator's allocated bytes (always from `metrics`).
    pub(crate) allocated: Option<u64>,
    /// The limit the run is judged against: `--memory-limit` or `metrics`.
    pub(crate) limit: Option<(u64, &'static str)>,
    /// None until the first sample.
    pub(crate) verdict: Option<Verdict>,
}

impl Memory {
    /// Start sampling. A source a flag chose (`--memory-metric`,
    /// `--memory-query`, `--cgroup`, `--container`, `--metrics-url`,
    /// `--heap-metric`) that gives nothing at
    /// the first sample is an error: the run would measure nothing.
    pub(crate) async fn start(cfg: MemoryConfig<'_>) -> Result<Memory, sampler::SamplerError> {
        // A gauge a flag names is as explicit as a chosen source.
        let explicit = cfg.source.is_explicit() || !cfg.gauges.is_empty() || cfg.metrics_url_given;
        if cfg.pid.is_none() && cfg.metrics_url.is_none() && !explicit {
            return Ok(Memory {
                handle: None,
                halted: None,
                note: Some("memory not sampled: no server PID and no metrics URL".into()),
                rss_source: "",
                cgroup_source: None,
                limit: cfg.limit,
                limit_word: "metrics",
                heap_note: None,
            });
        }
        let rss_source = if cfg.pid.is_some() { "proc" } else { "metrics" };
        let cgroup = cfg.spawned.and_then(|s| s.child.usage_probe());
        let charged = cfg
            .spawned
            .and_then(|s| s.child.cgroup_dir())
            .and_then(|dir| clw_limit::CgroupMemory::open(dir).ok());
        let cgroup_source = match &cfg.source {
            source::SourceSpec::Cgroup(read) => Some(read.version().as_str()),
            _ => cgroup.as_ref().map(|c| c.source().as_str()),
        };
        let limit = cfg.limit;
        let limit_word = cfg.source.limit_word();
        let heap_note = cfg.gauges.heap.as_ref().map(|heap| {
            format!(
                "heap: {} from {} (--heap-metric): the verdict and the retained bytes per login use it",
                heap.text(),
                cfg.metrics_url.as_deref().unwrap_or("/metrics")
            )
        });
        let started = sampler::start(SamplerConfig {
            interval: cfg.interval,
            pid: cfg.pid,
            pid_tree: cfg.pid_tree,
            metrics_url: cfg.metrics_url,
            metrics_url_given: cfg.metrics_url_given,
            reach: cfg.reach,
            cgroup,
            charged,
            csv_path: cfg.csv_path,
            counters: cfg.counters,
            scrape_timeout: cfg.scrape_timeout,
            start: Some(cfg.start),
            limit: cfg.limit,
            ramp_up: cfg.ramp_up,
            source: cfg.source,
            gauges: cfg.gauges,
        })
        .await;
        match started {
            Ok(handle) => Ok(Memory {
                handle: Some(handle),
                halted: None,
                note: None,
                rss_source,
                cgroup_source,
                limit,
                limit_word,
                heap_note,
            }),
            Err(e) if explicit => Err(e),
            Err(e) => Ok(Memory {
                handle: None,
                halted: None,
                note: Some(format!("memory not sampled: {e}")),
                rss_source,
                cgroup_source,
                limit,
                limit_word,
                heap_note,
            }),
        }
    }

    /// Why sampling is degraded or off, for summary.json's notes.
    pub(crate) fn note(&self) -> Option<String> {
        self.note.clone()
    }

    /// The server's latest RSS, for the progress line.
    pub(crate) fn rss_reader(&self) -> impl Fn() -> Option<u64> + Send + Sync + 'static {
        let latest = self.handle.as_ref().map(|h| h.latest_cell());
        move || latest.as_ref().and_then(|cell| cell()?.rss_bytes)
    }

    /// The memory limit the live verdict works with: the one given, else
    /// the one the service advertises once a sample has seen it.
    pub(crate) fn limit_reader(&self) -> impl Fn() -> Option<u64> + Send + Sync + 'static {
        let live = self.live();
        move || {
            live.as_ref()
                .and_then(|rx| rx.borrow().as_ref().and_then(|m| m.limit_bytes))
        }
    }

    /// A reader of the latest sample and live verdict as [`MemoryNow`], for
    /// the live metrics (another task, which must not hold the handle). It
    /// keeps the last values after the sampler stops.
    pub(crate) fn now_reader(&self) -> impl Fn() -> MemoryNow + Send + Sync + 'static {
        let latest = self.handle.as_ref().map(|h| h.latest_cell());
        let live = self.live();
        let (rss_source, cgroup_source) = (self.rss_source, self.cgroup_source);
        let limit_source = self.limit.source(self.limit_word);
        move || {
            let sample = latest.as_ref().and_then(|cell| cell()).unwrap_or_default();
            let report = live.as_ref().and_then(|rx| rx.borrow().clone());
            MemoryNow {
                rss: sample
                    .rss_bytes
                    .map(|b| (b, sample.source.map_or(rss_source, |s| s.as_str()))),
                cgroup: sample.cgroup_bytes.zip(cgroup_source),
                allocated: sample.allocated_bytes,
                limit: report
                    .as_ref()
                    .and_then(|r| r.limit_bytes)
                    .map(|b| (b, limit_source)),
                verdict: report.and_then(|r| r.verdict),
            }
        }
    }

    /// The live verdict, re-decided after every sample; None when memory
    /// is not sampled.
    pub(crate) fn live(&self) -> Option<tokio::sync::watch::Receiver<Option<MemoryReport>>> {
        self.handle.as_ref().map(SamplerHandle::live)
    }

    /// Stop sampling now: the server died, and samples of a dead process
    /// would only be blanks (or, for a reused PID, another's figures).
    pub(crate) async fn halt(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.halted = Some(handle.stop().await);
        }
    }

    /// Stop sampling and analyse samples.csv. The limit is the one the
    /// [`LimitRule`] gives (`--memory-limit`, else the one the service
    /// advertised); the one used is the `memory` block's `limit_bytes`.
    pub(crate) async fn finish(
        self,
        out: &Path,
        ramp_up: Duration,
        exit: Option<&ServerExit>,
    ) -> (MemoryReport, Vec<String>) {
        let mut notes = Vec::new();
        let mut sources = None;
        let mut leak_detected_at_s = None;
        let mut limit_bytes = self.limit.given_bytes();
        let report = match self.handle {
            Some(handle) => Some(handle.stop().await),
            None => self.halted,
        };
        if let Some(report) = report {
            let failed = [
                (
                    "metrics scrapes",
                    report.scrape_failures,
                    &report.last_scrape_error,
                ),
                (
                    "memory readings",
                    report.source_failures,
                    &report.last_source_error,
                ),
            ];
            for (what, count, last) in failed.into_iter().filter(|f| f.1 > 0) {
                notes.push(format!(
                    "{count} of {} {what} failed (last: {})",
                    report.samples,
                    last.as_deref().unwrap_or("unknown")
                ));
            }
            if report.proc_failures > 0 {
                notes.push(format!(
                    "{} samples could not read /proc (the server was gone)",
                    report.proc_failures
                ));
            }
            if let Some(e) = report.write_error {
                notes.push(format!("samples.csv incomplete: {e}"));
            }
            if let Some(note) = self
                .heap_note
                .filter(|_| report.sources.heap_metric.is_some())
            {
                notes.push(note);
            }
            let mut found = report.sources;
            if limit_bytes.is_some() {
                found.limit = Some(self.limit.source("metrics").into());
            } else if let Some(advertised) = report.advertised_limit {
                let (word, what) = report
                    .limit_origin
                    .unwrap_or(("metrics", "clw_memory_limit_bytes".into()));
                limit_bytes = Some(advertised);
                found.limit = Some(word.into());
                let from = match word {
                    "metrics" => format!("as advertised by the service ({what})"),
                    _ => format!("as read from {word} ({what})"),
                };
                notes.push(format!(
                    "memory limit {} {from}",
                    clw_units::format_size(advertised)
                ));
            }
            sources = Some(found);
            leak_detected_at_s = report.leak_detected_at_s;
        }
        let path = out.join("samples.csv");
        if !path.exists() {
            return (MemoryReport::placeholder(limit_bytes), notes);
        }
        match Series::read(&path) {
            Ok(series) => {
                let input = AnalysisInput {
                    limit_bytes,
                    ramp_up_s: ramp_up.as_secs_f64(),
                    sources,
                    oom_killed: exit.is_some_and(|e| e.oom_killed),
                    server_died: exit.is_some(),
                };
                let report = analysis::analyze(&series, &input);
                (analysis::settle(report, leak_detected_at_s), notes)
            }
            Err(e) => {
                notes.push(format!("memory analysis failed: {e}"));
                (MemoryReport::placeholder(limit_bytes), notes)
            }
        }
    }
}
