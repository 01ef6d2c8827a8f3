//! End-to-end runs of `clw_cli::run` in-process: against the real clw-auth on
//! 127.0.0.1:0, and against stand-in servers that misbehave on purpose.
//! Every load is 1-3 s and a handful of users.

use std::time::Duration;

use crate::common::{
    opts, scrape, server_count, start_auth, summary, write_scenario, LoadTest, SESSIONS,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_match_the_servers_own_counters() {
    let handle = start_auth().await;
    let addr = handle.addr();
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), SESSIONS);
    let out = &test.out;
    let outcome = clw_cli::run(test.opts("--concurrent-users 4 --duration 2s --no-memory"))
        .await
        .expect("run succeeds");
    assert_eq!(outcome.exit_code, 0);
    let s = summary(out);
    assert_eq!(s["complete"], true);
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!(
        total > 20,
        "a 2 s run against a local server sends more than 20 requests: {s}"
    );
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    let metrics = scrape(addr).await;
    let login = server_count(&metrics, "route=\"/auth/login\"");
    let validate = server_count(&metrics, "route=\"/auth/validate\"");
    assert_eq!(
        s["steps"]["login"]["requests"].as_u64().unwrap(),
        login,
        "{metrics}"
    );
    assert_eq!(
        s["steps"]["validate"]["requests"].as_u64().unwrap(),
        validate
    );
    assert_eq!(total, login + validate);
    assert_eq!(s["requests"]["by_status"]["200"].as_u64().unwrap(), total);
    assert!(s["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    assert!(
        s["latency_corrected_ms"].is_null(),
        "closed model has no corrected latency"
    );
    assert_eq!(
        s["connections_opened"], 4,
        "one keep-alive connection per user"
    );

    // latency.csv: the contract's header; rows per step and `all`; counts
    // that add up to the summary's.
    let csv = std::fs::read_to_string(out.join("latency.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "t_s,step,count,p50_ms,p90_ms,p99_ms,max_ms,cp50_ms,cp90_ms,cp99_ms,cmax_ms,users"
    );
    let all_rows: u64 = csv
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("all"))
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(all_rows, total);
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hdr_log_reads_back_to_the_same_counts() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let handle = start_auth().await;
    let addr = handle.addr();
    let test = LoadTest::with_scenario_text(
        format!("http://{addr}"),
        "name = \"ready\"\n[[steps]]\nmethod = \"GET\"\npath = \"/ready\"\n",
    );
    let out = &test.out;
    clw_cli::run(test.opts("--concurrent-users 2 --duration 1.5s --no-metrics"))
        .await
        .unwrap();
    let s = summary(out);
    let bytes = std::fs::read(out.join("latency.hlog")).unwrap();
    let mut count = 0;
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(h) = entry.expect("a valid interval log") {
            assert_eq!(h.tag().unwrap().as_str(), "ready");
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h.encoded_histogram())
                .unwrap();
            let hist: hdrhistogram::Histogram<u64> =
                hdrhistogram::serialization::Deserializer::new()
                    .deserialize(&mut &raw[..])
                    .unwrap();
            count += hist.len();
        }
    }
    assert_eq!(count, s["requests"]["total"].as_u64().unwrap());
    handle.shutdown().await.unwrap();
}

/// A server that answers `GET /` at once, except that it holds every
/// response between `stall_from` and `stall_from + stall` (since its start).
async fn stalling_server(stall_from: Duration, stall: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let start = tokio::time::Instant::now();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                loop {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    let stall_end = start + stall_from + stall;
                    let now = tokio::time::Instant::now();
                    if now >= start + stall_from && now < stall_end {
                        tokio::time::sleep_until(stall_end).await;
                    }
                    if sock
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_corrects_for_coordinated_omission() {
    // 200 iterations/s over 2 users for 2.5 s; the server freezes for 500 ms
    // after 1 s. Measured from send time only the few requests caught in the
    // freeze are slow; measured from their schedule, all the ~100 requests
    // that should have gone out during the freeze are, so the corrected p90
    // is far above the uncorrected one.
    let addr = stalling_server(Duration::from_millis(1000), Duration::from_millis(500)).await;
    let test = LoadTest::with_scenario_text(
        format!("http://{addr}"),
        "name = \"root\"\n[[steps]]\nmethod = \"GET\"\npath = \"/\"\n",
    );
    let out = &test.out;
    let opts = test.opts("--concurrent-users 2 --arrival-rate 200 --duration 2.5s --no-metrics");
    clw_cli::run(opts).await.unwrap();
    let s = summary(out);
    assert_eq!(s["model"], "open");
    let plain = &s["latency_ms"];
    let corrected = &s["latency_corrected_ms"];
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!(
        (400..=520).contains(&total),
        "about 500 iterations scheduled: {s}"
    );
    assert!(
        plain["p90"].as_f64().unwrap() < 50.0,
        "uncorrected p90 stays low: {s}"
    );
    assert!(
        corrected["p90"].as_f64().unwrap() > 100.0,
        "corrected p90 shows the stall: {s}"
    );
    assert!(corrected["max"].as_f64().unwrap() >= 450.0, "{s}");
    let csv = std::fs::read_to_string(out.join("latency.csv")).unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(
        !row.ends_with(",,,,"),
        "open model fills the corrected columns: {row}"
    );
}

#[tokio::test]
async fn unreachable_target_exits_3_and_bad_input_exits_2() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let test = LoadTest::with_scenario_text(
        dead,
        "name = \"root\"\n[[steps]]\nmethod = \"GET\"\npath = \"/\"\n",
    );
    let (dead, scenario) = (&test.target, &test.scenario);
    let err = clw_cli::run(test.opts("--duration 1")).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(
        !test.out.exists(),
        "a run whose target check failed leaves no empty run folder"
    );

    let bad = write_scenario(
        test.dir.path(),
        "name = \"x\"\n[[steps]]\nmethod = \"GET\"\npath = \"/\"\nbogus = 1\n",
    );
    let err = clw_cli::run(opts(&[
        "--target",
        dead,
        "--scenario",
        bad.to_str().unwrap(),
    ]))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains("scenario.toml:5:"),
        "error names file:line: {err}"
    );

    let err = clw_cli::run(opts(&[
        "--target",
        "https://x",
        "--scenario",
        scenario.to_str().unwrap(),
    ]))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
}

/// Without a PID or --memory-limit, memory comes from the service's own
/// metrics, and so does the limit the 80% rule is judged against.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_and_limit_come_from_the_services_metrics() {
    let handle = start_auth().await;
    let addr = handle.addr();
    let advertised = handle.state().limit.bytes;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), SESSIONS);
    let out = &test.out;
    let outcome =
        clw_cli::run(test.opts("--concurrent-users 2 --duration 2s --sample-interval 100ms"))
            .await
            .expect("run succeeds");
    handle.shutdown().await.unwrap();
    let s = summary(out);
    let memory = &s["memory"];
    assert_eq!(memory["sources"]["rss"], "metrics", "{memory}");
    assert_eq!(memory["sources"]["limit"], "metrics", "{memory}");
    assert_eq!(memory["limit_bytes"].as_u64(), Some(advertised), "{memory}");
    assert!(memory["samples"].as_u64().unwrap() >= 10, "{memory}");
    assert!(
        memory["peak_rss_percent"].as_f64().unwrap() > 0.0,
        "{memory}"
    );
    let rss_rule = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "peak_rss_percent")
        .expect("the guide's 80% rule is evaluated");
    assert_eq!(rss_rule["passed"], outcome.passed, "{rss_rule}");
    assert!(
        rss_rule["passed"].is_boolean(),
        "judged, not skipped: {rss_rule}"
    );
    let samples = std::fs::read_to_string(out.join("samples.csv")).unwrap();
    let last = samples.lines().last().unwrap();
    let sessions: u64 = last.split(',').nth(7).unwrap().parse().unwrap();
    assert!(sessions > 0, "sessions column filled from /metrics: {last}");
}
