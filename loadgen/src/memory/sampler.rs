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

use clw_limit::{CgroupMemory, ProcMemory, UsageProbe};
use clw_run::analysis::{AnalysisInput, LiveVerdict};
use clw_run::MemoryReport;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use super::prometheus::PromQuery;
use super::selector::Gauges;
use super::source::SourceSpec;
use crate::load::counters::LoadCounters;
use crate::memory::MemoryAggregate;
use crate::proctree::TreeMemory;
use clw_run::{MemorySource, MemorySources, RunFileError, SampleRow, SamplesWriter};
use scrape::{MetricsFigures, ScrapeError, Scraper};

pub(crate) struct SamplerConfig {
    pub interval: Duration,
    /// The server's PID: RSS/HWM from /proc. None: RSS from /metrics.
    pub pid: Option<u32>,
    /// The RSS of `pid` and its descendants, summed (no HWM): the server
    /// is a descendant of `pid`, or its workers are.
    pub pid_tree: bool,
    /// `http://host:port/path` of a Prometheus text endpoint (or https).
    pub metrics_url: Option<String>,
    /// `--metrics-url` was given: the user chose that page, so a page that
    /// cannot be read at the first sample is a setup error naming the flag
    /// (a typo there must not turn the memory gate off without a word).
    pub metrics_url_given: bool,
    /// How the run reaches its URLs (TLS, `--connect-to`), for
    /// `metrics_url` and a Prometheus server.
    pub reach: crate::target::Reach,
    /// The spawned server's cgroup usage.
    pub cgroup: Option<UsageProbe>,
    /// The spawned server's memory cgroup, for what it charges against the
    /// limit (usage less inactive file cache: `cgroup_working_set_bytes`).
    pub charged: Option<CgroupMemory>,
    pub csv_path: PathBuf,
    pub counters: Arc<LoadCounters>,
    /// Bound on each /metrics GET, so a hung endpoint cannot stall sampling.
    pub scrape_timeout: Duration,
    /// Where t_s = 0 (the load start); None means at `start()`.
    pub start: Option<Instant>,
    /// Which limit the live verdict judges against: the one given, else
    /// the one the service advertises, once seen.
    pub limit: crate::memory::LimitRule,
    /// Samples before this are warm-up, for the live verdict.
    pub ramp_up: Duration,
    /// Where the service's memory comes from (docs/memory.md, Sources).
    pub source: SourceSpec,
    /// `--heap-metric` / `--logins-metric`: the service's own gauges.
    pub gauges: Gauges,
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
    /// The memory limit the service advertised (`clw_memory_limit_bytes`,
    /// or the one `--limit-metric`, `--limit-query` or the cgroup gives),
    /// last value seen: used when clw-cli was not told the limit.
    pub advertised_limit: Option<u64>,
    /// Where that limit was read: (`memory.sources.limit`, for the note).
    pub limit_origin: Option<(&'static str, String)>,
    /// Samples whose `--memory-query` or cgroup read failed, and the last
    /// reason.
    pub source_failures: u64,
    pub last_source_error: Option<String>,
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
    /// The source a flag chose gave nothing at the first sample.
    #[error("{0}")]
    Source(String),
}

/// The service's memory from a source other than /proc and /metrics.
enum Service {
    /// /proc or the metrics page (picks included) say it all.
    Scraped,
    Prometheus {
        /// Boxed: a query holds a keep-alive connection and its buffers.
        memory: Box<PromQuery>,
        limit: Option<Box<PromQuery>>,
        how: MemoryAggregate,
    },
    Cgroup(CgroupMemory),
}

/// One reading of [`Service`].
#[derive(Debug, Default)]
struct ServiceReading {
    memory: Option<u64>,
    /// The raw cgroup usage (the `cgroup_bytes` column).
    usage: Option<u64>,
    /// Usage less inactive file cache, when memory.stat was read.
    working_set: Option<u64>,
    limit: Option<u64>,
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
        Some(pid) => Some(
            ProcReader::open(pid, cfg.pid_tree)
                .map_err(|source| SamplerError::Pid { pid, source })?,
        ),
        None => None,
    };
    let scraper = match &cfg.metrics_url {
        Some(url) => {
            let scraper = Scraper::new(cfg.reach.url(url)?, cfg.scrape_timeout)
                .with_gauges(cfg.gauges.clone());
            Some(match cfg.source.picks() {
                Some(picks) => scraper.with_picks(picks.clone()),
                None => scraper,
            })
        }
        None => None,
    };
    let explicit = cfg.source.is_explicit() || !cfg.gauges.is_empty() || cfg.metrics_url_given;
    let heap_metric = cfg.gauges.heap.as_ref().map(|s| s.text().to_string());
    let service = match cfg.source {
        SourceSpec::Default | SourceSpec::Metrics(_) => Service::Scraped,
        SourceSpec::Prometheus {
            server,
            memory,
            limit,
            how,
        } => {
            let server = cfg
                .reach
                .target(server)
                .map_err(|e| SamplerError::Source(format!("--prometheus-url: {e}")))?;
            Service::Prometheus {
                memory: Box::new(PromQuery::new(&server, &memory, cfg.scrape_timeout)),
                limit: limit.map(|q| Box::new(PromQuery::new(&server, &q, cfg.scrape_timeout))),
                how,
            }
        }
        SourceSpec::Cgroup(cgroup) => Service::Cgroup(cgroup),
    };
    let mut probe = Probe {
        scraper,
        service,
        metrics_url: cfg.metrics_url.clone().unwrap_or_default(),
        gauges: !cfg.gauges.is_empty(),
        metrics_url_given: cfg.metrics_url_given,
    };
    if explicit {
        probe.check().await?;
    }
    let Probe {
        scraper, service, ..
    } = probe;
    let csv = SamplesWriter::create(&cfg.csv_path)?;
    let latest = Arc::new(Mutex::new(None));
    let (stop, stop_rx) = oneshot::channel();
    let (live_tx, live) = watch::channel(None);
    let sampler = Sampler {
        start: cfg.start.unwrap_or_else(Instant::now),
        proc,
        scraper,
        service,
        cgroup: cfg.cgroup,
        charged: cfg.charged,
        counters: cfg.counters,
        csv,
        latest: Arc::clone(&latest),
        prev: None,
        report: SamplerReport::default(),
        heap_metric,
        limit: cfg.limit,
        live: LiveVerdict::new(AnalysisInput {
            limit_bytes: cfg.limit.given_bytes(),
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

/// The readers before the first sample, for the check that a source a
/// flag chose gives a figure.
struct Probe {
    scraper: Option<Scraper>,
    service: Service,
    metrics_url: String,
    /// `--heap-metric` / `--logins-metric` name series of the page.
    gauges: bool,
    /// `--metrics-url` chose the page.
    metrics_url_given: bool,
}

impl Probe {
    async fn check(&mut self) -> Result<(), SamplerError> {
        if let Some(scraper) = &mut self.scraper {
            if let Err(e) = scraper.scrape().await {
                if self.metrics_url_given {
                    return Err(SamplerError::Source(format!(
                        "--metrics-url {}: {e}",
                        self.metrics_url
                    )));
                }
                // Only fatal when the page holds the chosen figures.
                if matches!(e, ScrapeError::NoMatch(_))
                    || matches!(self.service, Service::Scraped)
                    || self.gauges
                {
                    return Err(SamplerError::Source(format!(
                        "metrics at {}: {e}",
                        self.metrics_url
                    )));
                }
            }
        }
        read_service(&mut self.service)
            .await
            .map(drop)
            .map_err(SamplerError::Source)
    }
}

/// The service's memory now from Prometheus or a cgroup; an empty reading
/// for the scraped sources.
async fn read_service(service: &mut Service) -> Result<ServiceReading, String> {
    let as_u64 = |v: f64| v.max(0.0) as u64;
    match service {
        Service::Scraped => Ok(ServiceReading::default()),
        Service::Prometheus { memory, limit, how } => {
            let value = memory.value(*how).await.map_err(|e| e.to_string())?;
            let limit = match limit {
                Some(q) => Some(q.value(*how).await.map_err(|e| e.to_string())?),
                None => None,
            };
            Ok(ServiceReading {
                memory: Some(as_u64(value)),
                limit: limit.map(as_u64),
                ..ServiceReading::default()
            })
        }
        Service::Cgroup(cgroup) => {
            let r = cgroup.read().map_err(|e| e.to_string())?;
            Ok(ServiceReading {
                memory: Some(r.working_set),
                usage: Some(r.usage),
                working_set: r.inactive_file.map(|_| r.working_set),
                limit: r.limit,
            })
        }
    }
}

/// Where RSS is read from /proc: one process, or a process tree.
enum ProcReader {
    One(ProcMemory),
    Tree(TreeMemory),
}

impl ProcReader {
    fn open(pid: u32, tree: bool) -> std::io::Result<ProcReader> {
        Ok(match tree {
            true => ProcReader::Tree(TreeMemory::open(pid)?),
            false => ProcReader::One(ProcMemory::open(pid)?),
        })
    }

    /// RSS and HWM (none for a tree: a sum of peaks reached at different
    /// times is no peak).
    fn read(&mut self) -> std::io::Result<(u64, Option<u64>)> {
        match self {
            ProcReader::One(p) => p.read().map(|m| (m.rss_bytes, Some(m.hwm_bytes))),
            ProcReader::Tree(t) => t.read().map(|rss| (rss, None)),
        }
    }
}

struct Sampler {
    start: Instant,
    proc: Option<ProcReader>,
    scraper: Option<Scraper>,
    service: Service,
    cgroup: Option<UsageProbe>,
    charged: Option<CgroupMemory>,
    counters: Arc<LoadCounters>,
    csv: SamplesWriter,
    latest: Arc<Mutex<Option<SampleRow>>>,
    /// (t_s, completed, failed) at the previous sample.
    prev: Option<(f64, u64, u64)>,
    report: SamplerReport,
    /// `--heap-metric` as written, for `memory.sources.heap_metric`.
    heap_metric: Option<String>,
    limit: crate::memory::LimitRule,
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
        let service = match read_service(&mut self.service).await {
            Ok(reading) => reading,
            Err(e) => {
                self.report.source_failures += 1;
                self.report.last_source_error = Some(e);
                ServiceReading::default()
            }
        };
        let sample = self.build(metrics.unwrap_or_default(), service);
        if let Err(e) = self.write(&sample) {
            self.report.write_error = Some(e.to_string());
            return false;
        }
        self.report.samples += 1;
        if self.limit.given_bytes().is_none() && self.report.advertised_limit.is_some() {
            self.live
                .set_limit(self.limit.resolve(self.report.advertised_limit));
        }
        self.live.push(&sample);
        self.report.leak_detected_at_s = self.live.leak_detected_at_s();
        self.live_tx.send_replace(Some(self.live.report().clone()));
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = Some(sample);
        true
    }

    fn build(&mut self, metrics: MetricsFigures, service: ServiceReading) -> SampleRow {
        let t_s = self.start.elapsed().as_secs_f64();
        let as_u64 = |v: Option<f64>| v.map(|v| v.max(0.0) as u64);
        let limit = match &self.service {
            Service::Scraped => as_u64(metrics.limit),
            _ => service.limit,
        };
        if let Some(limit) = limit.filter(|l| *l > 0) {
            self.report.advertised_limit = Some(limit);
            self.report.limit_origin = Some(self.limit_origin());
        }
        // One reading of the spawned server's cgroup gives its usage and
        // working set at the same instant; the usage file alone otherwise.
        let charged = self.charged.as_ref().and_then(|c| c.read().ok());
        let mut sample = SampleRow {
            t_s,
            cgroup_bytes: service
                .usage
                .or(charged.map(|r| r.usage))
                .or_else(|| self.cgroup.as_ref().and_then(UsageProbe::read)),
            cgroup_working_set_bytes: service
                .working_set
                .or(charged.and_then(|r| r.inactive_file.map(|_| r.working_set))),
            allocated_bytes: as_u64(metrics.allocated),
            active_bytes: as_u64(metrics.active),
            resident_bytes: as_u64(metrics.resident),
            sessions: as_u64(metrics.sessions),
            capacity: as_u64(metrics.capacity),
            evictions: as_u64(metrics.evictions),
            logins: as_u64(metrics.logins),
            ..SampleRow::default()
        };
        let chosen = match &self.service {
            Service::Scraped => metrics.selected.map(|v| (v, MemorySource::Metrics)),
            Service::Prometheus { .. } => {
                service.memory.map(|v| (v as f64, MemorySource::Prometheus))
            }
            Service::Cgroup(_) => service.memory.map(|v| (v as f64, MemorySource::Cgroup)),
        };
        if let Some((bytes, source)) = chosen {
            sample.rss_bytes = Some(bytes.max(0.0) as u64);
            sample.source = Some(source);
            self.report.sources.rss = Some(source.as_str().into());
        } else if let (Service::Scraped, Some(proc)) = (&self.service, &mut self.proc) {
            match proc.read() {
                Ok((rss, hwm)) => {
                    sample.rss_bytes = Some(rss);
                    sample.hwm_bytes = hwm;
                    sample.source = Some(MemorySource::Proc);
                    self.report.sources.rss = Some("proc".into());
                    if let ProcReader::Tree(tree) = proc {
                        self.report.sources.rss_scope = Some(tree.scope());
                    }
                }
                Err(_) => self.report.proc_failures += 1,
            }
        } else if let (Service::Scraped, None, Some(rss)) =
            (&self.service, metrics.selected, metrics.process_resident)
        {
            sample.rss_bytes = Some(rss.max(0.0) as u64);
            sample.source = Some(MemorySource::Metrics);
            self.report.sources.rss = Some("metrics".into());
        }
        if metrics.has_allocator() {
            self.report.sources.allocator = Some("metrics".into());
            if self.heap_metric.is_some() {
                self.report.sources.heap_metric = self.heap_metric.clone();
            }
        }
        if sample.cgroup_bytes.is_some() {
            self.report.sources.cgroup = match &self.service {
                Service::Cgroup(cgroup) => Some(cgroup.version().as_str().into()),
                _ => self.cgroup.as_ref().map(|c| c.source().as_str().into()),
            };
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

    /// Where the limit in this sample came from: the word for
    /// `memory.sources.limit`, and what was read, for the note.
    fn limit_origin(&self) -> (&'static str, String) {
        match &self.service {
            Service::Prometheus { limit, .. } => (
                "prometheus",
                format!("--limit-query {}", limit.as_ref().map_or("", |q| q.query())),
            ),
            Service::Cgroup(cgroup) => ("cgroup", format!("{}", cgroup.dir().display())),
            Service::Scraped => (
                "metrics",
                match self.scraper.as_ref().and_then(Scraper::limit_selector) {
                    Some(selector) => format!("--limit-metric {selector}"),
                    None => "clw_memory_limit_bytes".into(),
                },
            ),
        }
    }

    fn write(&mut self, s: &SampleRow) -> Result<(), RunFileError> {
        self.csv.write(s)
    }
}

#[cfg(test)]
mod tests;
