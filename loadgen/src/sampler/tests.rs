//! The sampler against a real clw-auth in-process, a dead endpoint, and a
//! file cut off mid-row.

use std::net::SocketAddr;

use super::*;
use crate::analysis::read_samples;
use crate::http::{write_request, Conn, Response};

fn config(dir: &tempfile::TempDir, metrics_url: Option<String>) -> SamplerConfig {
    SamplerConfig {
        interval: Duration::from_millis(50),
        pid: Some(std::process::id()),
        metrics_url,
        cgroup: None,
        csv_path: dir.path().join("samples.csv"),
        counters: Arc::new(LoadCounters::default()),
        scrape_timeout: Duration::from_millis(500),
        start: None,
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
async fn wait_for_samples(handle: &SamplerHandle, after: f64) -> Sample {
    for _ in 0..200 {
        if let Some(sample) = handle.latest().filter(|s| s.t_s > after) {
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

    let series = read_samples(&dir.path().join("samples.csv")).unwrap();
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
    let series = read_samples(&dir.path().join("samples.csv")).unwrap();
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
    let series = read_samples(&path).unwrap();
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
