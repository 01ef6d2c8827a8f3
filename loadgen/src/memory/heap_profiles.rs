//! Heap profiles of the target during a load test (docs/loadgen.md, "Heap
//! profiles"): one after ramp-up, then every `--heap-profile-every`, one as
//! soon as the sampler's RSS crosses 70% of the limit (so a run that ends
//! in an OOM kill keeps a profile from just before it), and one at the end
//! while the server is still up. Each is written whole to
//! `heap/<t_s>.pb.gz` in the run folder as served (clw-auth serves
//! addresses, not names). After the load, once, every profile is
//! symbolized in place from the server's binary (clw-run's
//! `heap::Symbolizer`): that CPU and the debug info's memory are spent
//! here, after the measurement, never in the server or during the load.
//! The diff of the last against the first (clw-run's `heap`) becomes
//! `memory.growth_sites`.
//!
//! A failed capture is counted and reported in a note, never fatal: the
//! load test is the point, the profiles are evidence about it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clw_run::{GrowthSite, RunSummary};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::sampler::scrape::{ScrapeError, Scraper};
use crate::target::Target;

/// RSS as a share of the limit past which one profile is taken at once.
pub(crate) const PRESSURE_SHARE: f64 = 0.70;

/// A dump walks the whole sampled heap; on a big heap that takes seconds.
const DUMP_TIMEOUT: Duration = Duration::from_secs(30);

/// Sites kept in summary.json (the console prints 5, the report 10).
const SITES: usize = 10;

/// The heap endpoint to capture from, decided once before the load.
/// Capture is on by default: the target's `/debug/pprof/heap` is probed
/// once, and one that serves no profile turns capture off with a note.
/// Asked for (`--heap-profile`, `--heap-profile-url`), an endpoint that
/// serves none is an error (setup, exit 3). Profiles are served
/// unsymbolized, so capture costs the server a dump's CPU and no debug
/// info (measured in the closing note of issue 11: peak RSS of make
/// gate's fixed run with and without).
///
/// `reach` is the run's TLS settings (`--cacert`, `--insecure`), which an
/// https `--heap-profile-url` uses whatever the target's scheme, and its
/// `--connect-to` rules.
pub(crate) async fn endpoint(
    settings: &HeapSettings,
    target: &Target,
    reach: &crate::target::Reach,
    notes: &mut Vec<String>,
) -> Result<Option<Target>, String> {
    if settings.off {
        return Ok(None);
    }
    let asked = settings.asked || settings.url.is_some();
    let url = settings
        .url
        .clone()
        .unwrap_or_else(|| target.join("/debug/pprof/heap"));
    let token = settings.token.clone();
    let probed = match reach.url(&url) {
        Ok(heap) => probe(&heap, token, DUMP_TIMEOUT).await.map(|()| heap),
        Err(e) => Err(format!("--heap-profile-url: {e}")),
    };
    match probed {
        Ok(heap) => Ok(Some(heap)),
        Err(e) if asked => Err(format!("heap profiles: {e}")),
        Err(e) => {
            notes.push(format!("heap profiles off: {e}"));
            Ok(None)
        }
    }
}

/// Heap profiles as the run's flags asked for them.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeapSettings {
    /// `--no-heap-profile`: none taken, none probed.
    pub(crate) off: bool,
    /// `--heap-profile`: an endpoint that serves none is an error, not a note.
    pub(crate) asked: bool,
    /// `--heap-profile-url` (else the target's `/debug/pprof/heap`).
    pub(crate) url: Option<String>,
    /// `--heap-profile-token`: `Authorization: Bearer` for the endpoint.
    pub(crate) token: Option<String>,
    /// `--heap-profile-every`.
    pub(crate) every: Duration,
    /// `--heap-profile-symbols`: the binary that symbolizes the profiles.
    pub(crate) symbols: Option<PathBuf>,
}

/// What the capture needs; see [`HeapProfiles::start`].
pub(crate) struct HeapProfileConfig {
    /// The pprof heap endpoint (`--heap-profile-url`, else the target's
    /// `/debug/pprof/heap`).
    pub(crate) target: Target,
    /// The run folder; profiles go to its `heap/`.
    pub(crate) out: PathBuf,
    /// t_s = 0 of the run.
    pub(crate) start: Instant,
    /// The first profile: the end of ramp-up (at least a second in).
    pub(crate) first_after: Duration,
    pub(crate) every: Duration,
    /// The memory limit as known now: `--memory-limit`, else the one the
    /// service advertises (the sampler learns it from /metrics).
    pub(crate) limit: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    /// The sampler's latest RSS.
    pub(crate) rss: Box<dyn Fn() -> Option<u64> + Send + Sync>,
    /// `Authorization: Bearer` for the endpoint.
    pub(crate) token: Option<String>,
    /// How often RSS is checked against the limit.
    pub(crate) check_every: Duration,
    pub(crate) timeout: Duration,
}

/// One GET of the endpoint: `Ok` when it answers with a pprof profile.
pub(crate) async fn probe(
    target: &Target,
    token: Option<String>,
    timeout: Duration,
) -> Result<(), String> {
    let mut scraper = Scraper::new(target.clone(), timeout).with_bearer(token);
    let body = scraper.get().await.map_err(|e| describe(target, &e))?;
    clw_run::heap::HeapProfile::decode(body)
        .map(|_| ())
        .map_err(|e| format!("{} is not a heap profile: {e}", target.url))
}

fn describe(target: &Target, e: &ScrapeError) -> String {
    match e {
        ScrapeError::Status(404) => {
            format!("{} answers 404: no heap profiles served there", target.url)
        }
        ScrapeError::Status(403) => format!(
            "{} answers 403: heap profiles are served on loopback or with the admin token only (CLW_HEAP_PROFILE_TOKEN)",
            target.url
        ),
        e => format!("{}: {e}", target.url),
    }
}

/// The running capture.
pub(crate) struct HeapProfiles {
    stop: oneshot::Sender<bool>,
    task: JoinHandle<Captured>,
}

/// What the capture did.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) written: Vec<PathBuf>,
    pub(crate) failures: u32,
    pub(crate) last_error: Option<String>,
    /// When RSS crossed [`PRESSURE_SHARE`] of the limit, if it did.
    pub(crate) pressure_at_s: Option<f64>,
}

impl Captured {
    /// The notes for summary.json.
    pub(crate) fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if self.failures > 0 {
            notes.push(format!(
                "heap profiles: {} capture(s) failed, the last: {}",
                self.failures,
                self.last_error.as_deref().unwrap_or("unknown")
            ));
        }
        if let Some(at) = self.pressure_at_s {
            notes.push(format!(
                "heap profile taken at {at:.1} s: RSS crossed {:.0}% of the limit",
                PRESSURE_SHARE * 100.0
            ));
        }
        notes
    }
}

impl HeapProfiles {
    /// Capture from `target` during a run whose clock started at `start`;
    /// `limit` is the limit the service advertises, read as it is learnt.
    /// `check_every`: how often RSS is checked against the limit (the
    /// sampling interval). The RSS and the limit are `memory`'s: its
    /// latest sample, and the limit its [`crate::memory::LimitRule`] gives.
    pub(crate) fn during(
        target: Target,
        settings: &HeapSettings,
        memory: &crate::memory::Memory,
        out: &Path,
        start: Instant,
        ramp_up: Duration,
        check_every: Duration,
    ) -> HeapProfiles {
        HeapProfiles::start(HeapProfileConfig {
            target,
            out: out.to_path_buf(),
            start,
            first_after: ramp_up,
            every: settings.every,
            limit: Box::new(memory.limit_reader()),
            rss: Box::new(memory.rss_reader()),
            token: settings.token.clone(),
            check_every,
            timeout: DUMP_TIMEOUT,
        })
    }

    pub(crate) fn start(cfg: HeapProfileConfig) -> HeapProfiles {
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(capture(cfg, stop_rx));
        HeapProfiles { stop, task }
    }

    /// Stops the capture, taking a last profile first when `last` (the
    /// server is still up).
    pub(crate) async fn stop(self, last: bool) -> Captured {
        let _ = self.stop.send(last);
        self.task.await.unwrap_or_default()
    }

    /// Stops the capture (see [`HeapProfiles::stop`]), symbolizes the
    /// profiles from `binary` (else the executable they name) and writes
    /// what it found into `summary`: notes, and `memory.growth_sites` from
    /// the run folder's profiles.
    pub(crate) async fn finish(
        self,
        last: bool,
        out: &Path,
        binary: Option<&Path>,
        summary: &mut RunSummary,
    ) {
        let captured = self.stop(last).await;
        summary.notes.extend(captured.notes());
        let (dir, binary) = (out.to_path_buf(), binary.map(Path::to_path_buf));
        let named = tokio::task::spawn_blocking(move || {
            clw_run::heap::symbolize_run(&dir, binary.as_deref())
        })
        .await;
        match named {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => summary.notes.push(format!(
                "heap profiles not symbolized: {e}; pass --heap-profile-symbols with the server's binary (the profiles in heap/ stay readable by pprof given it)"
            )),
            Err(e) => summary
                .notes
                .push(format!("heap profiles not symbolized: {e}")),
        }
        let sites = growth_sites(out, &mut summary.notes);
        if let Some(memory) = summary.memory.as_mut() {
            memory.growth_sites = sites;
        }
    }
}

/// The top sites of the run folder's last profile against its first;
/// `None` with fewer than two, or (with a note) when one is unreadable.
pub(crate) fn growth_sites(out: &Path, notes: &mut Vec<String>) -> Option<Vec<GrowthSite>> {
    match clw_run::heap::diff_run(out) {
        Ok(diff) => diff.map(|d| d.growth_sites(SITES)),
        Err(e) => {
            notes.push(format!("heap growth not computed: {e}"));
            None
        }
    }
}

async fn capture(cfg: HeapProfileConfig, mut stop: oneshot::Receiver<bool>) -> Captured {
    let mut scraper = Scraper::new(cfg.target.clone(), cfg.timeout).with_bearer(cfg.token.clone());
    let mut done = Captured::default();
    let mut next =
        tokio::time::Instant::from_std(cfg.start + cfg.first_after.max(Duration::from_secs(1)));
    let mut check = tokio::time::interval(cfg.check_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            biased;
            last = &mut stop => {
                if last.unwrap_or(false) {
                    take(&cfg, &mut scraper, &mut done).await;
                }
                break;
            }
            _ = tokio::time::sleep_until(next) => {
                take(&cfg, &mut scraper, &mut done).await;
                next = tokio::time::Instant::now() + cfg.every;
            }
            _ = check.tick(), if done.pressure_at_s.is_none() => {
                let threshold = (cfg.limit)().map(|l| l as f64 * PRESSURE_SHARE);
                let over = (cfg.rss)().zip(threshold).is_some_and(|(rss, t)| rss as f64 >= t);
                if over {
                    done.pressure_at_s = Some(cfg.start.elapsed().as_secs_f64());
                    take(&cfg, &mut scraper, &mut done).await;
                }
            }
        }
    }
    done
}

/// Fetches one profile and writes it whole to `heap/<t_s>.pb.gz`.
async fn take(cfg: &HeapProfileConfig, scraper: &mut Scraper, done: &mut Captured) {
    let t_s = cfg.start.elapsed().as_secs_f64();
    let result = match scraper.get().await {
        Ok(body) if body.starts_with(&[0x1f, 0x8b]) => {
            let dir = cfg.out.join(clw_run::heap::HEAP_DIR);
            let path = dir.join(clw_run::heap::profile_file_name(t_s));
            std::fs::create_dir_all(&dir)
                .and_then(|()| clw_run::write_atomic(&path, body))
                .map(|()| path)
                .map_err(|e| format!("cannot write {}: {e}", dir.display()))
        }
        Ok(_) => Err(format!(
            "{} did not answer with a gzipped profile",
            cfg.target.url
        )),
        Err(e) => Err(describe(&cfg.target, &e)),
    };
    match result {
        Ok(path) => done.written.push(path),
        Err(e) => {
            done.failures += 1;
            done.last_error = Some(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A keep-alive server answering every request with one heap profile,
    /// or 403 without `Authorization: Bearer s3cret` when `token`.
    async fn pprof_server_with(token: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let body = clw_run::heap::ProfileBuilder::new()
            .sample(&[("app::f", "/app/src/f.rs", 1)], 4096)
            .build()
            .to_gzip();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0; 4096];
                    while let Ok(n @ 1..) = conn.read(&mut buf).await {
                        let request = String::from_utf8_lossy(&buf[..n]);
                        if token && !request.contains("\r\nAuthorization: Bearer s3cret\r\n") {
                            let _ = conn
                                .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n")
                                .await;
                            continue;
                        }
                        let head =
                            format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
                        let _ = conn.write_all(head.as_bytes()).await;
                        let _ = conn.write_all(&body).await;
                    }
                });
            }
        });
        format!("http://{addr}/debug/pprof/heap")
    }

    async fn pprof_server() -> String {
        pprof_server_with(false).await
    }

    #[tokio::test]
    async fn the_token_is_sent_as_a_bearer() {
        let target = Target::parse(&pprof_server_with(true).await).unwrap();
        let timeout = Duration::from_secs(5);
        let refused = probe(&target, None, timeout).await.unwrap_err();
        assert!(refused.contains("403"), "{refused}");
        assert!(refused.contains("CLW_HEAP_PROFILE_TOKEN"), "{refused}");
        let wrong = probe(&target, Some("nope".into()), timeout).await;
        assert!(wrong.is_err());
        probe(&target, Some("s3cret".into()), timeout)
            .await
            .expect("the token opens it");
    }

    fn files(out: &Path) -> usize {
        std::fs::read_dir(out.join("heap")).map_or(0, |d| d.count())
    }

    #[tokio::test]
    async fn one_profile_when_rss_crosses_70_percent_and_one_at_the_end() {
        let url = pprof_server().await;
        let target = Target::parse(&url).unwrap();
        probe(&target, None, Duration::from_secs(5))
            .await
            .expect("serves a profile");
        let dir = tempfile::tempdir().unwrap();
        let rss = Arc::new(AtomicU64::new(800));
        let reader = rss.clone();
        // The limit is unknown at first, then advertised by the service.
        let limit = Arc::new(AtomicU64::new(0));
        let advertised = limit.clone();
        let capture = HeapProfiles::start(HeapProfileConfig {
            target,
            out: dir.path().to_path_buf(),
            start: Instant::now(),
            // Neither the first nor a periodic profile comes in this test.
            first_after: Duration::from_secs(3600),
            every: Duration::from_secs(3600),
            limit: Box::new(move || Some(advertised.load(Ordering::Relaxed)).filter(|l| *l > 0)),
            rss: Box::new(move || Some(reader.load(Ordering::Relaxed))),
            token: None,
            check_every: Duration::from_millis(10),
            timeout: Duration::from_secs(5),
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(files(dir.path()), 0, "no limit known yet: none");
        rss.store(600, Ordering::Relaxed);
        limit.store(1000, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(files(dir.path()), 0, "60% of the limit takes none");
        rss.store(700, Ordering::Relaxed);
        let waited = Instant::now();
        while files(dir.path()) == 0 {
            assert!(
                waited.elapsed() < Duration::from_secs(30),
                "no profile at 70%"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        rss.store(900, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let captured = capture.stop(true).await;
        assert_eq!(captured.written.len(), 2, "once at 70%, once at the end");
        assert!(captured.pressure_at_s.is_some());
        assert_eq!(files(dir.path()), 2);
        assert!(captured.notes().iter().any(|n| n.contains("crossed 70%")));
        for path in &captured.written {
            clw_run::heap::HeapProfile::read(path).expect("a readable profile");
        }
    }
}
