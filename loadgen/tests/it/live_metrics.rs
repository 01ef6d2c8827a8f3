//! `--metrics-listen`: clw-cli's own /metrics during real load tests of an
//! in-process clw-auth: Prometheus's linter passes it, a real Prometheus
//! scraping it stores the request count summary.json reports, a taken
//! address is bad usage before any load, and port 0 is printed.

use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common;
use crate::common::prometheus::{get, Prometheus};
use crate::common::promtool;
use crate::common::{free_port, start_auth, summary, LoadTest, SESSIONS};

/// A free 127.0.0.1 address for --metrics-listen.
fn metrics_addr() -> SocketAddr {
    format!("127.0.0.1:{}", free_port()).parse().unwrap()
}

/// The sum of the samples of `name` (exact name, any labels) in `text`.
fn total(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// /metrics, polled off the runtime's threads until `done` holds.
async fn scrape_until(addr: SocketAddr, what: &'static str, done: fn(&str) -> bool) -> String {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            if let Some((200, text)) = get(addr, "/metrics") {
                if done(&text) {
                    return text;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{what} within 20 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_during_a_load_test_pass_promtool() {
    if !promtool::available(
        "metrics_during_a_load_test_pass_promtool",
        "Debian package `prometheus`; `make test` installs it",
    ) {
        return;
    }
    let auth = start_auth().await;
    // A step that fails, so errors and a 404 are in the exposition too.
    let scenario =
        format!("{SESSIONS}\n[[steps]]\nname = \"missing\"\nmethod = \"GET\"\npath = \"/nope\"\n");
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), &scenario);
    let addr = metrics_addr();
    let run = tokio::spawn(clw_cli::run(test.opts(&format!(
        "--concurrent-users 4 --duration 4s --metrics-listen {addr}"
    ))));
    // Mid-run: requests counted and the server's memory sampled.
    let text = scrape_until(addr, "requests and server memory in /metrics", |t| {
        total(t, "clw_loadtest_errors_total").is_some_and(|n| n > 0.0)
            && t.contains("clw_loadtest_server_rss_bytes{source=\"metrics\"}")
    })
    .await;
    assert!(!run.is_finished(), "the scrape was taken during the load");
    for needle in [
        "clw_loadtest_requests_total{code=\"200\",step=\"login\"}",
        "clw_loadtest_requests_total{code=\"200\",step=\"validate\"}",
        "clw_loadtest_request_duration_seconds_bucket{step=\"validate\",le=\"0.005\"}",
        "clw_loadtest_virtual_users 4",
        "clw_loadtest_virtual_users_max 4",
        "clw_loadtest_verdict{verdict=\"leak\"}",
        "clw_loadtest_requests_total{code=\"404\",step=\"missing\"}",
        "clw_loadtest_errors_total{kind=\"clw-not-found\",step=\"missing\"}",
    ] {
        assert!(text.contains(needle), "no {needle} in\n{text}");
    }
    let check = promtool::check_metrics(&text);
    let findings = check.findings;
    assert!(
        check.passed && findings.trim().is_empty(),
        "promtool check metrics:\n{findings}\n---\n{text}"
    );
    let outcome = run.await.unwrap().expect("run succeeds");
    assert_eq!(outcome.exit_code, 0);
    // The endpoint stops with the run.
    assert_eq!(
        get(addr, "/metrics"),
        None,
        "{addr} still answers after the run"
    );
}

/// The sum of the last stored samples of `selector`: once the endpoint
/// stops, Prometheus marks its series stale and a plain instant query
/// returns nothing.
fn last(selector: &str) -> String {
    format!("sum(last_over_time({selector}[1m]))")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_stores_the_request_count_summary_json_reports() {
    let addr = metrics_addr();
    let Some(prometheus) = Prometheus::start(
        "prometheus_stores_the_request_count_summary_json_reports",
        &[addr],
    ) else {
        return;
    };
    let auth = start_auth().await;
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), SESSIONS);
    // --metrics-linger: the endpoint waits (at most 10 s) for one scrape of
    // the final figures, so what Prometheus stored last is the run's total.
    let outcome = clw_cli::run(test.opts(&format!(
        "--concurrent-users 4 --duration 5s --metrics-listen {addr} --metrics-linger 10s"
    )))
    .await
    .expect("run succeeds");
    assert_eq!(outcome.exit_code, 0);
    let s = summary(&test.out);
    let reported = s["requests"]["total"].as_f64().unwrap();
    assert!(reported > 20.0, "{s}");
    let by_step = |step: &str| s["steps"][step]["requests"].as_f64().unwrap();
    // The last scrape is ingested a moment after it was served.
    let stored = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            let stored = prometheus.value(&last("clw_loadtest_requests_total"));
            if stored == Some(reported) || started.elapsed() > Duration::from_secs(10) {
                return (stored, prometheus);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap();
    let (stored, prometheus) = stored;
    assert_eq!(
        stored,
        Some(reported),
        "Prometheus's last stored clw_loadtest_requests_total vs summary.json requests.total; its log:\n{}",
        prometheus.log()
    );
    for step in ["login", "validate"] {
        let q = last(&format!("clw_loadtest_requests_total{{step=\"{step}\"}}"));
        assert_eq!(prometheus.value(&q), Some(by_step(step)), "{q}");
        let q = last(&format!(
            "clw_loadtest_request_duration_seconds_count{{step=\"{step}\"}}"
        ));
        assert_eq!(prometheus.value(&q), Some(by_step(step)), "{q}");
    }
    // It scraped during the load too: a counter that rose over several
    // scrapes, not one sample at the end.
    let samples = prometheus.query("count_over_time(clw_loadtest_virtual_users_max[1m])");
    let n: f64 = samples[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(n >= 3.0, "{n} scrapes of a 5 s run at 1 s");
    assert_eq!(
        prometheus.value("max_over_time(clw_loadtest_virtual_users[1m])"),
        Some(4.0)
    );
}

#[tokio::test]
async fn a_taken_address_is_bad_usage_before_any_load() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    // The target counts connections: there must be none.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let test =
        LoadTest::with_scenario_text(format!("http://{}", target.local_addr().unwrap()), SESSIONS);
    let err = clw_cli::run(test.opts(&format!(
        "--concurrent-users 2 --duration 2s --metrics-listen {addr}"
    )))
    .await
    .expect_err("the address is taken");
    assert_eq!(err.exit_code(), 2, "{err}");
    let message = err.to_string();
    assert!(
        message.contains("--metrics-listen") && message.contains(&addr.to_string()),
        "{message}"
    );
    assert!(
        !test.out.exists(),
        "no run folder for a run that never started"
    );
    let accepted = tokio::time::timeout(Duration::from_millis(300), target.accept()).await;
    assert!(accepted.is_err(), "the target was contacted");
    drop(taken);
}

/// The clw-cli binary running `test` with 2 users and `args` (the run's
/// length and its metrics flags), stdout discarded, stderr as given.
fn clw_cli_child(test: &LoadTest, args: &[&str], stderr: Stdio) -> std::process::Child {
    common::load_test_command(&test.target, &test.scenario, &test.out)
        .args(["--no-report", "--no-memory", "--concurrent-users", "2"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_zero_is_bound_and_printed() {
    let auth = start_auth().await;
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), SESSIONS);
    let mut child = clw_cli_child(
        &test,
        &["--duration", "3s", "--metrics-listen", "127.0.0.1:0"],
        Stdio::piped(),
    );
    let stderr = child.stderr.take().unwrap();
    let (addr, child) = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let line = lines.next().expect("a line on stderr").unwrap();
        let addr: SocketAddr = line
            .strip_prefix("metrics: serving http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("first stderr line: {line}"))
            .parse()
            .unwrap();
        (addr, child)
    })
    .await
    .unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    let text = scrape_until(addr, "the run's requests at the printed address", |t| {
        t.contains("clw_loadtest_virtual_users_max 2")
            && total(t, "clw_loadtest_requests_total").is_some_and(|n| n > 0.0)
    })
    .await;
    assert!(
        text.contains("# TYPE clw_loadtest_requests_total counter"),
        "{text}"
    );
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn virtual_users_follow_the_stages() {
    let auth = start_auth().await;
    // Two users for 2 s, then five for 3 s.
    let text = format!(
        "{SESSIONS}\n[[load.stages]]\nduration = 0\ntarget = 2\n[[load.stages]]\nduration = \"2s\"\ntarget = 2\n\
         [[load.stages]]\nduration = 0\ntarget = 5\n[[load.stages]]\nduration = \"3s\"\ntarget = 5\n"
    );
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), &text);
    let addr = metrics_addr();
    let run = tokio::spawn(clw_cli::run(test.opts(&format!("--metrics-listen {addr}"))));
    let at_two = scrape_until(addr, "2 virtual users in the first stage", |t| {
        t.lines().any(|l| l == "clw_loadtest_virtual_users 2")
    })
    .await;
    assert!(
        at_two.contains("clw_loadtest_virtual_users_max 5"),
        "{at_two}"
    );
    scrape_until(addr, "5 virtual users in the second stage", |t| {
        t.lines().any(|l| l == "clw_loadtest_virtual_users 5")
    })
    .await;
    let outcome = run.await.unwrap().expect("run succeeds");
    assert_eq!(outcome.exit_code, 0);
}

/// The Grafana dashboard's queries, with its variables given values.
fn dashboard_queries() -> Vec<String> {
    let path = common::workspace().join("profiles/grafana/clw-loadtest.json");
    let dashboard: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    panels
        .iter()
        .flat_map(|p| p["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| {
            t["expr"]
                .as_str()
                .unwrap()
                .replace("$__rate_interval", "30s")
                .replace("$instance", ".*")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboards_queries_answer_from_a_running_load_test() {
    let addr = metrics_addr();
    let Some(prometheus) = Prometheus::start(
        "the_dashboards_queries_answer_from_a_running_load_test",
        &[addr],
    ) else {
        return;
    };
    let auth = start_auth().await;
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), SESSIONS);
    // Long enough for three scrapes on a loaded machine (the whole suite
    // runs beside it): the queries are answered as soon as they are there.
    let run = tokio::spawn(clw_cli::run(test.opts(&format!(
        "--concurrent-users 3 --duration 25s --metrics-listen {addr}"
    ))));
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{queries:?}");
    let answers = tokio::task::spawn_blocking(move || {
        // rate() needs two samples of the run, the verdict one sample.
        let started = Instant::now();
        while prometheus
            .value("count_over_time(clw_loadtest_requests_total{step=\"login\"}[1m])")
            .unwrap_or(0.0)
            < 3.0
        {
            assert!(
                started.elapsed() < Duration::from_secs(25),
                "3 scrapes within 25 s; the scrapes: {}; its log:\n{}",
                prometheus.target_health(),
                prometheus.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        queries
            .into_iter()
            .map(|q| {
                let result = prometheus.query(&q);
                (q, result)
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    // Figures this setup has no source for: no errors, no spawned server's
    // cgroup, no allocator or limit figures from an in-process clw-auth.
    let may_be_empty = [
        "errors_total",
        "cgroup_bytes",
        "allocated_bytes",
        "memory_limit_bytes",
    ];
    for (q, result) in &answers {
        if may_be_empty.iter().any(|m| q.contains(m)) {
            continue;
        }
        assert!(
            !result.is_empty(),
            "the dashboard query {q} returned nothing"
        );
    }
    let outcome = run.await.unwrap().expect("run succeeds");
    assert_eq!(outcome.exit_code, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_ends_the_linger() {
    let auth = start_auth().await;
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), SESSIONS);
    // Nothing scrapes: without the signal it would wait the whole 120 s.
    let mut child = clw_cli_child(
        &test,
        &[
            "--duration",
            "1s",
            "--metrics-listen",
            "127.0.0.1:0",
            "--metrics-linger",
            "120s",
        ],
        Stdio::null(),
    );
    let out = test.out.clone();
    let status = tokio::task::spawn_blocking(move || {
        common::wait_until(Duration::from_secs(60), "the run's summary", || {
            common::read_summary(&out).is_some_and(|s| s["complete"] == true)
        });
        // Lingering now; our own child, by its PID.
        let pid = i32::try_from(child.id()).unwrap();
        let signalled = Instant::now();
        assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
        let status = child.wait().unwrap();
        (status, signalled.elapsed())
    })
    .await
    .unwrap();
    let (status, waited) = status;
    assert!(
        waited < Duration::from_secs(60),
        "clw-cli lingered {waited:?} after SIGINT"
    );
    assert!(
        status.success(),
        "the run passed before the signal: {status}"
    );
}
