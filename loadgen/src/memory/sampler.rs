//! The memory sampler: every interval, one row of samples.csv with the
//! server's RSS, cgroup usage, allocator and cache figures and the load, so
//! the curves (and the verdict) can be drawn from the run folder alone.
//!
//! Interface for `run()`:
//!
//! ```text
//! let handle = sampler::start(SamplerConfig {
//!     interval, pid, metrics_url, cgroup: limited.usage_probe(),
//!     csv_path: out.join("samples.csv"), counters, scrape_timeout,
//!     start: Some(load_start),       // t_s = 0 here; None: at start()
//! }).await?;                         // creates samples.csv with the header
//! let latest = handle.latest_cell();  // latest(): the last sample, for the progress line
//! let report = handle.stop().await;  // takes a final sample, then stops
//! // report.sources -> AnalysisInput.sources; report.scrape_failures -> notes
//! ```
//!
//! Sources: RSS and HWM from /proc/PID/status when the PID is known (the
//! file stays open), else `process_resident_memory_bytes` from the metrics
//! URL, so any service exporting it can be watched. A failed scrape or a
//! vanished process leaves blanks in that row and is counted; it never stops
//! the sampler. Every row is flushed as written: a run whose server (or whose
//! clw-cli) is killed keeps every sample up to the kill.

pub(crate) mod scrape;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clw_limit::{ProcMemory, UsageProbe};
use clw_run::analysis::{AnalysisInput, LiveVerdict};
use clw_run::MemoryReport;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::load::counters::LoadCounters;
use crate::target::Target;
use clw_run::{MemorySources, RunFileError, SampleRow, SamplesWriter};
use scrape::{MetricsFigures, Scraper};

pub(crate) struct SamplerConfig {
    pub interval: Duration,
    /// The server's PID: RSS/HWM from /proc. None: RSS from /metrics.
    pub pid: Option<u32>,
    /// `http://host:port/path` of a Prometheus text endpoint (or https).
    pub metrics_url: Option<String>,
    /// The run's TLS settings, for an https `metrics_url`.
    pub tls: Option<crate::tls::ClientTls>,
    /// The spawned server's cgroup usage.
    pub cgroup: Option<UsageProbe>,
    pub csv_path: PathBuf,
    pub counters: Arc<LoadCounters>,
    /// Bound on each /metrics GET, so a hung endpoint cannot stall sampling.
    pub scrape_timeout: Duration,
    /// Where t_s = 0 (the load start); None means at `start()`.
    pub start: Option<Instant>,
    /// The limit given on the command line; without one, the limit the
    /// service advertises is used once seen.
    pub limit_bytes: Option<u64>,
    /// Samples before this are warm-up, for the live verdict.
    pub ramp_up: Duration,
}

/// What the sampler did, for summary.json.
#[derive(Debug, Clone, Default)]
pub(crate) struct SamplerReport {
    pub samples: u64,
    /// summary.json `memory.sources`.
    pub sources: MemorySources,
    pub scrape_failures: u64,
    /// The last scrape error, e.g. "connect".
    pub last_scrape_error: Option<String>,
    /// Samples in which /proc/PID could not be read (the server was gone).
    pub proc_failures: u64,
    /// A write to samples.csv failed and sampling stopped early.
    pub write_error: Option<String>,
    /// The memory limit the service advertised (`clw_memory_limit_bytes`),
    /// last value seen: used when clw-cli was not told the limit.
    pub advertised_limit: Option<u64>,
    /// When the live verdict first said `leak` (seconds after load start).
    pub leak_detected_at_s: Option<f64>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SamplerError {
    #[error(transparent)]
    Csv(#[from] RunFileError),
    #[error("--metrics-url: {0}")]
    MetricsUrl(#[from] crate::target::TargetError),
    #[error("cannot read the memory of pid {pid} (/proc/{pid}/status): {source}")]
    Pid { pid: u32, source: std::io::Error },
}

/// The running sampler task.
pub(crate) struct SamplerHandle {
    latest: Arc<Mutex<Option<SampleRow>>>,
    live: watch::Receiver<Option<MemoryReport>>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<SamplerReport>,
}

impl SamplerHandle {
    /// A reader of the latest sample, for another task (the progress
    /// line) that must not hold the handle.
    pub fn latest_cell(&self) -> impl Fn() -> Option<SampleRow> + Send + Sync + 'static {
        let latest = Arc::clone(&self.latest);
        move || latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The live verdict, re-decided after every sample (None before the
    /// first): for `--abort-on-fail` and the progress line.
    pub fn live(&self) -> watch::Receiver<Option<MemoryReport>> {
        self.live.clone()
    }

    /// Take a final sample and stop.
    pub async fn stop(self) -> SamplerReport {
        let _ = self.stop.send(());
        self.task.await.unwrap_or_else(|e| SamplerReport {
            write_error: Some(format!("sampler task failed: {e}")),
            ..SamplerReport::default()
        })
    }
}

/// Create samples.csv with its header and start sampling on a tokio task.
pub(crate) async fn start(cfg: SamplerConfig) -> Result<SamplerHandle, SamplerError> {
    let proc = match cfg.pid {
        Some(pid) => {
            Some(ProcMemory::open(pid).map_err(|source| SamplerError::Pid { pid, source })?)
        }
        None => None,
    };
    let scraper = match &cfg.metrics_url {
        Some(url) => Some(Scraper::new(
            Target::parse(url)?.with_tls(cfg.tls.as_ref())?,
            cfg.scrape_timeout,
        )),
        None => None,
    };
    let csv = SamplesWriter::create(&cfg.csv_path)?;
    let latest = Arc::new(Mutex::new(None));
    let (stop, stop_rx) = oneshot::channel();
    let (live_tx, live) = watch::channel(None);
    let sampler = Sampler {
        start: cfg.start.unwrap_or_else(Instant::now),
        proc,
        scraper,
        cgroup: cfg.cgroup,
        counters: cfg.counters,
        csv,
        latest: Arc::clone(&latest),
        prev: None,
        report: SamplerReport::default(),
        given_limit: cfg.limit_bytes,
        live: LiveVerdict::new(AnalysisInput {
            limit_bytes: cfg.limit_bytes,
            ramp_up_s: cfg.ramp_up.as_secs_f64(),
            ..AnalysisInput::default()
        }),
        live_tx,
    };
    let task = tokio::spawn(sampler.run(cfg.interval, stop_rx));
    Ok(SamplerHandle {
        latest,
        live,
        stop,
        task,
    })
}

struct Sampler {
    start: Instant,
    proc: Option<ProcMemory>,
    scraper: Option<Scraper>,
    cgroup: Option<UsageProbe>,
    counters: Arc<LoadCounters>,
    csv: SamplesWriter,
    latest: Arc<Mutex<Option<SampleRow>>>,
    /// (t_s, completed, failed) at the previous sample.
    prev: Option<(f64, u64, u64)>,
    report: SamplerReport,
    given_limit: Option<u64>,
    /// The verdict so far, decided by the same analysis as the final one.
    live: LiveVerdict,
    live_tx: watch::Sender<Option<MemoryReport>>,
}

impl Sampler {
    async fn run(mut self, interval: Duration, mut stop: oneshot::Receiver<()>) -> SamplerReport {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = &mut stop => break,
            }
            if !self.sample_once().await {
                return self.report;
            }
        }
        self.sample_once().await;
        self.report
    }

    /// Take and write one sample; false when samples.csv cannot be written.
    async fn sample_once(&mut self) -> bool {
        let metrics = match &mut self.scraper {
            Some(scraper) => match scraper.scrape().await {
                Ok(figures) => Some(figures),
                Err(e) => {
                    self.report.scrape_failures += 1;
                    self.report.last_scrape_error = Some(e.to_string());
                    None
                }
            },
            None => None,
        };
        let sample = self.build(metrics.unwrap_or_default());
        if let Err(e) = self.write(&sample) {
            self.report.write_error = Some(e.to_string());
            return false;
        }
        self.report.samples += 1;
        if self.given_limit.is_none() && self.report.advertised_limit.is_some() {
            self.live.set_limit(self.report.advertised_limit);
        }
        self.live.push(&sample);
        self.report.leak_detected_at_s = self.live.leak_detected_at_s();
        self.live_tx.send_replace(Some(self.live.report().clone()));
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(sample);
        true
    }

    fn build(&mut self, metrics: MetricsFigures) -> SampleRow {
        let t_s = self.start.elapsed().as_secs_f64();
        let as_u64 = |v: Option<f64>| v.map(|v| v.max(0.0) as u64);
        if let Some(limit) = as_u64(metrics.limit).filter(|l| *l > 0) {
            self.report.advertised_limit = Some(limit);
        }
        let mut sample = SampleRow {
            t_s,
            cgroup_bytes: self.cgroup.as_ref().and_then(UsageProbe::read),
            allocated_bytes: as_u64(metrics.allocated),
            active_bytes: as_u64(metrics.active),
            resident_bytes: as_u64(metrics.resident),
            sessions: as_u64(metrics.sessions),
            capacity: as_u64(metrics.capacity),
            evictions: as_u64(metrics.evictions),
            logins: as_u64(metrics.logins),
            ..SampleRow::default()
        };
        if let Some(proc) = &mut self.proc {
            match proc.read() {
                Ok(mem) => {
                    sample.rss_bytes = Some(mem.rss_bytes);
                    sample.hwm_bytes = Some(mem.hwm_bytes);
                    self.report.sources.rss = Some("proc".into());
                }
                Err(_) => self.report.proc_failures += 1,
            }
        } else if let Some(rss) = metrics.process_resident {
            sample.rss_bytes = Some(rss.max(0.0) as u64);
            self.report.sources.rss = Some("metrics".into());
        }
        if metrics.has_allocator() {
            self.report.sources.allocator = Some("metrics".into());
        }
        if sample.cgroup_bytes.is_some() {
            self.report.sources.cgroup = self.cgroup.as_ref().map(|c| c.source().as_str().into());
        }
        let completed = self.counters.completed.load(Ordering::Relaxed);
        let failed = self.counters.failed.load(Ordering::Relaxed);
        let (t0, c0, f0) = self.prev.unwrap_or((0.0, 0, 0));
        let dt = t_s - t0;
        if dt > 0.0 {
            sample.rps = Some(completed.saturating_sub(c0) as f64 / dt);
        }
        sample.errors = Some(failed.saturating_sub(f0));
        self.prev = Some((t_s, completed, failed));
        sample
    }

    fn write(&mut self, s: &SampleRow) -> Result<(), RunFileError> {
        self.csv.write(s)
    }
}

#[cfg(test)]
mod tests;
