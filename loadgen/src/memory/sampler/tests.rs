//! The sampler against a real clw-auth in-process, a dead endpoint, and a
//! file cut off mid-row.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::load::http::{write_request, Conn, Response};
use clw_run::analysis::Series;
use clw_run::SAMPLES_HEADER as HEADER;

fn config(dir: &tempfile::TempDir, metrics_url: Option<String>) -> SamplerConfig {
    SamplerConfig {
        interval: Duration::from_millis(50),
        pid: Some(std::process::id()),
        pid_tree: false,
        metrics_url,
        metrics_url_given: false,
        reach: Default::default(),
        cgroup: None,
        charged: None,
        csv_path: dir.path().join("samples.csv"),
        counters: Arc::new(LoadCounters::default()),
        scrape_timeout: Duration::from_millis(500),
        start: None,
        limit: crate::memory::LimitRule::default(),
        ramp_up: Duration::ZERO,
        source: SourceSpec::default(),
        gauges: Default::default(),
    }
}

async fn login(conn: &mut Conn, addr: SocketAddr, user: usize) -> u16 {
    let mut request = Vec::new();
    let body = format!(r#"{{"username":"user-{user}","password":"clw-load-test"}}"#);
    write_request(
        &mut request,
        "POST",
        &addr.to_string(),
        b"/auth/login",
        Some(body.as_bytes()),
    );
    let mut response = Response::default();
    conn.send(&request, &mut response, Duration::from_secs(5))
        .await
        .expect("login request");
    response.status
}

/// Wait (bounded) until the sampler has written at least `n` samples.
async fn wait_for_samples(handle: &SamplerHandle, after: f64) -> SampleRow {
    for _ in 0..200 {
        if let Some(sample) = (handle.latest_cell())().filter(|s| s.t_s > after) {
            return sample;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no sample after t = {after}");
}

#[tokio::test]
async fn samples_a_real_server_and_sees_sessions_rise() {
    let server = clw_auth::Server::bind(clw_auth::Config::for_tests())
        .await
        .unwrap();
    let addr = server.local_addr();
    let handle_server = server.spawn();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, Some(format!("http://{addr}/metrics")));
    let counters = Arc::clone(&cfg.counters);
    cfg.start = Some(Instant::now());
    let handle = start(cfg).await.unwrap();
    let before = wait_for_samples(&handle, 0.0).await;
    assert!(before.rss_bytes.unwrap() > 0);

    let mut conn = Conn::new(addr);
    for user in 0..20 {
        assert_eq!(login(&mut conn, addr, user % 16).await, 200);
        counters.completed.fetch_add(1, Ordering::Relaxed);
    }
    counters.failed.fetch_add(3, Ordering::Relaxed);
    let after = wait_for_samples(&handle, before.t_s + 0.06).await;
    let report = handle.stop().await;
    handle_server.shutdown().await.unwrap();

    assert_eq!(report.scrape_failures, 0, "{:?}", report.last_scrape_error);
    assert_eq!(report.sources.rss.as_deref(), Some("proc"));
    assert!(
        after.logins.unwrap() >= before.logins.unwrap_or(0) + 20,
        "{before:?} -> {after:?}"
    );
    assert!(
        after.sessions.unwrap() > before.sessions.unwrap_or(0),
        "{before:?} -> {after:?}"
    );
    assert!(after.hwm_bytes.unwrap() >= after.rss_bytes.unwrap());

    let series = Series::read(&dir.path().join("samples.csv")).unwrap();
    assert_eq!(series.len() as u64, report.samples);
    assert!(report.samples >= 2);
    assert!(
        series.t_s.windows(2).all(|w| w[1] >= w[0]),
        "t_s must not go back"
    );
    let text = std::fs::read_to_string(dir.path().join("samples.csv")).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let errors: u64 = rows.iter().map(|r| r[10].parse::<u64>().unwrap()).sum();
    assert_eq!(
        errors, 3,
        "the interval error counts add up to the failures"
    );
    let rps: Vec<f64> = rows.iter().map(|r| r[9].parse().unwrap()).collect();
    assert!(
        rps.iter().all(|r| *r >= 0.0) && rps.iter().any(|r| *r > 0.0),
        "{rps:?}"
    );
}

#[tokio::test]
async fn dead_metrics_endpoint_leaves_blanks_and_rows_continue() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(
        &dir,
        Some(format!("http://127.0.0.1:{port}/metrics")),
    ))
    .await
    .unwrap();
    let first = wait_for_samples(&handle, 0.0).await;
    wait_for_samples(&handle, first.t_s + 0.1).await;
    let report = handle.stop().await;
    assert!(report.samples >= 3);
    assert_eq!(report.scrape_failures, report.samples);
    assert_eq!(report.last_scrape_error.as_deref(), Some("connect"));
    assert_eq!(report.sources.allocator, None);
    let series = Series::read(&dir.path().join("samples.csv")).unwrap();
    assert!(
        series.rss.iter().all(Option::is_some),
        "RSS still comes from /proc"
    );
    assert!(series.allocated.iter().all(Option::is_none));
    assert!(series.logins.iter().all(Option::is_none));
}

#[tokio::test]
async fn file_cut_off_mid_row_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(&dir, None)).await.unwrap();
    let first = wait_for_samples(&handle, 0.0).await;
    wait_for_samples(&handle, first.t_s + 0.05).await;
    let report = handle.stop().await;
    let path = dir.path().join("samples.csv");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(&HEADER.join(",")));
    std::fs::write(&path, format!("{text}{:.3},12345", 99.0)).unwrap();
    let series = Series::read(&path).unwrap();
    assert!(series.truncated_tail);
    assert_eq!(series.len() as u64, report.samples);
}

#[tokio::test]
async fn missing_pid_and_bad_url_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&dir, None);
    cfg.pid = Some(u32::MAX - 1);
    let err = start(cfg).await.err().unwrap().to_string();
    assert!(err.contains("pid 4294967294"), "{err}");
    let err = start(config(&dir, Some("ftp://x/metrics".into())))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("--metrics-url") && err.contains("ftp://x"),
        "{err}"
    );
}

/// The clw-auth binary beside this test's target dir, built when missing.
fn clw_auth_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("clw-auth");
    // Built (or found up to date) once, even when it exists, as
    // tests/common's twin does: a stale clw-auth fails newer tests.
    static BUILT: std::sync::Once = std::sync::Once::new();
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "clw-auth", "--bin", "clw-auth"])
            .status()
            .expect("running cargo build for clw-auth");
        assert!(status.success(), "cargo build -p clw-auth failed");
    });
    bin
}

/// The address the server logged (`listening on ADDR`), waiting up to 30 s.
async fn listening_addr(log: &std::path::Path, limited: &mut clw_limit::Limited) -> SocketAddr {
    for _ in 0..3000 {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(addr) = text
            .lines()
            .find_map(|l| l.split("listening on ").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|a| {
                a.trim_end_matches(|c: char| !c.is_ascii_digit())
                    .parse()
                    .ok()
            })
        {
            return addr;
        }
        assert!(limited.try_exit().is_none(), "server died at start: {text}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "server never logged its address: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// End to end: the leaky server under a small limit, logins with large
/// claims until the kernel (or the watchdog) kills it; samples.csv then
/// reads as a leak and the exit as an OOM kill.
// Long: one end-to-end run (server, load, kill, analysis), commented inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaky_server_under_a_small_limit_is_oom_killed_and_reads_as_a_leak() {
    const LIMIT: u64 = 96 << 20;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let profile = concat!(env!("CARGO_MANIFEST_DIR"), "/../profiles/leaky.json");
    let mut spec = clw_limit::SpawnSpec::new(
        clw_auth_binary(),
        ["--config", profile, "--host", "127.0.0.1", "--port", "0"],
        LIMIT,
        &log,
    );
    spec.env
        .push(("CLAW_SESSION_CACHE_LEAK".into(), "unbounded".into()));
    let mut server = clw_limit::spawn(spec).unwrap();
    println!("limit by {} {:?}", server.enforcement(), server.notes());
    let addr = listening_addr(&log, &mut server).await;

    let counters = Arc::new(LoadCounters::default());
    let handle = start(SamplerConfig {
        interval: Duration::from_millis(100),
        pid: Some(server.pid()),
        pid_tree: false,
        metrics_url: Some(format!("http://{addr}/metrics")),
        metrics_url_given: false,
        reach: Default::default(),
        cgroup: server.usage_probe(),
        charged: server
            .cgroup_dir()
            .and_then(|d| clw_limit::CgroupMemory::open(d).ok()),
        csv_path: dir.path().join("samples.csv"),
        counters: Arc::clone(&counters),
        scrape_timeout: Duration::from_millis(500),
        start: None,
        limit: crate::memory::LimitRule::default(),
        ramp_up: Duration::ZERO,
        source: SourceSpec::default(),
        gauges: Default::default(),
    })
    .await
    .unwrap();

    // Two users log in with 8 KiB of claims each time, for at most 90 s.
    let claims = "x".repeat(8 << 10);
    let deadline = Instant::now() + Duration::from_secs(90);
    let users: Vec<_> = (0..2)
        .map(|u| {
            let (counters, claims) = (Arc::clone(&counters), claims.clone());
            tokio::spawn(async move {
                let mut conn = Conn::new(addr);
                let (mut request, mut response) = (Vec::new(), Response::default());
                let body = format!(
                    r#"{{"username":"user-{u}","password":"clw-load-test","claims":{{"blob":"{claims}"}}}}"#
                );
                while Instant::now() < deadline {
                    request.clear();
                    write_request(&mut request, "POST", &addr.to_string(), b"/auth/login", Some(body.as_bytes()));
                    let ok = conn.send(&request, &mut response, Duration::from_secs(5)).await;
                    counters.completed.fetch_add(1, Ordering::Relaxed);
                    if ok.is_err() {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();
    let exit = tokio::time::timeout(Duration::from_secs(100), server.wait_exit())
        .await
        .expect("the leaky server must be killed within 100 s");
    let report = handle.stop().await;
    for user in users {
        user.abort();
    }
    assert!(
        exit.oom_killed,
        "{exit:?}; log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(exit.shell_code(), 137);
    assert_eq!(exit.emulated, !server.enforcement().is_kernel());

    let series = Series::read(&dir.path().join("samples.csv")).unwrap();
    let memory = clw_run::analysis::analyze(
        &series,
        &clw_run::analysis::AnalysisInput {
            limit_bytes: Some(LIMIT),
            ramp_up_s: 0.0,
            sources: Some(report.sources.clone()),
            oom_killed: exit.oom_killed,
            server_died: true,
        },
    );
    println!(
        "{} samples: {:?} {:#?}",
        report.samples, memory.verdict, memory.evidence
    );
    assert_eq!(
        memory.verdict,
        Some(clw_run::Verdict::Leak),
        "{:#?}",
        memory.evidence
    );
    assert!(memory.peak_rss_percent.unwrap() > 50.0, "{memory:?}");
    assert!(
        memory.retained_bytes_per_session.unwrap() > 4096.0,
        "{memory:?}"
    );
}
