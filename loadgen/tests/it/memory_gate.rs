//! The memory gate never turns itself off (docs/memory.md, Sources; docs/gate.md):
//! against a service nobody here wrote (Python's `http.server`, which has no
//! /metrics), a mistyped or dead `--metrics-url` stops the run before the
//! load, naming the flag, and a run whose memory could not be measured at all
//! fails its memory rules with "no memory samples" unless `--no-memory` says
//! memory is out of scope, which every output then states.

use crate::common::{python3, python_http_server, read_summary, LoadTest, ROOT_ONLY, SESSIONS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_source_that_gives_nothing_never_passes_the_memory_gate() {
    let Some(python) = python3() else {
        eprintln!(
            "SKIPPED a_memory_source_that_gives_nothing_never_passes_the_memory_gate: no python3"
        );
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let (target, _server) = python_http_server(python, root.path());
    let port = target.rsplit(':').next().unwrap().to_string();

    // An unreachable --metrics-url: exit 3 before the load, naming the flag.
    let test = LoadTest::with_scenario_text(target.clone(), ROOT_ONLY);
    let opts = test.opts("--duration 2s --metrics-url http://127.0.0.1:1/metrics");
    let err = clw_cli::run(opts).await.expect_err("nothing to measure");
    let text = err.to_string();
    assert_eq!(err.exit_code(), 3, "{text}");
    assert!(
        text.contains("--metrics-url http://127.0.0.1:1/metrics"),
        "{text}"
    );
    let rows = std::fs::read_to_string(test.out.join("latency.csv")).unwrap_or_default();
    assert!(rows.lines().count() <= 1, "no load was run: {rows}");

    // The page exists but is not a metrics page (404): the same.
    let test = LoadTest::with_scenario_text(target.clone(), ROOT_ONLY);
    let opts = test.opts(&format!("--duration 2s --metrics-url {target}/metrics"));
    let err = clw_cli::run(opts).await.expect_err("a 404 page");
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(err.to_string().contains("--metrics-url"), "{err}");

    // A mistyped one is bad input: exit 2, naming the flag.
    let test = LoadTest::with_scenario_text(target.clone(), ROOT_ONLY);
    let opts = test.opts(&format!(
        "--duration 2s --metrics-url htp:/127.0.0.1:{port}/metrics"
    ));
    let err = clw_cli::run(opts).await.expect_err("not a URL");
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().starts_with("--metrics-url"), "{err}");

    // No memory source answered (the default /metrics is a 404, no PID):
    // the run completes, and its memory rules fail for want of samples.
    let test = LoadTest::with_scenario_text(target.clone(), ROOT_ONLY);
    let outcome = clw_cli::run(test.opts("--duration 2s"))
        .await
        .expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 1, "{s}");
    for name in ["peak_rss_percent", "verdict"] {
        let t = s["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {s}"));
        assert_eq!(
            (&t["passed"], &t["why"]),
            (&false.into(), &"no memory samples".into()),
            "{t}"
        );
    }
    assert_eq!(s["passed"], false);

    // --no-memory: the same run passes, and says memory was not measured.
    let test = LoadTest::with_scenario_text(target.clone(), ROOT_ONLY);
    let outcome = clw_cli::run(test.opts("--duration 2s --no-memory"))
        .await
        .expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["no_memory"], true);
    assert!(
        s["notes"]
            .to_string()
            .contains("memory not measured (--no-memory)"),
        "{}",
        s["notes"]
    );
    for t in s["thresholds"].as_array().unwrap() {
        assert_eq!(
            (&t["passed"], &t["why"]),
            (
                &serde_json::Value::Null,
                &"memory not measured (--no-memory)".into()
            ),
            "{t}"
        );
    }
    assert!(
        !test.out.join("samples.csv").exists()
            || std::fs::read_to_string(test.out.join("samples.csv"))
                .unwrap()
                .lines()
                .count()
                <= 1
    );
}

/// `--abort-on-fail` judges the limit the service advertises
/// (`clw_memory_limit_bytes`) when no `--memory-limit` is given, as the
/// final verdict does: an in-process clw-auth told its limit is 16 MiB (the least it accepts; (the
/// test process holds far more) is over 80% at the first samples, so the
/// load stops early on peak_rss_percent instead of running its 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_judges_the_limit_the_service_advertises() {
    let mut config = clw_auth::Config::for_tests();
    config.memory.limit = Some(16 << 20);
    config.memory.shed_on_pressure = Some(false);
    let auth = clw_auth::Server::bind(config).await.unwrap().spawn();
    let test = LoadTest::with_scenario_text(format!("http://{}", auth.addr()), SESSIONS);
    let started = std::time::Instant::now();
    let outcome = clw_cli::run(
        test.opts("--concurrent-users 2 --duration 30s --sample-interval 100ms --abort-on-fail"),
    )
    .await
    .expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 1, "{s}");
    assert_eq!(s["memory"]["limit_bytes"], 16 << 20, "{s}");
    let aborted = s["aborted"].as_str().unwrap_or_default();
    println!("aborted: {aborted}; after {:?}", started.elapsed());
    assert!(aborted.contains("peak_rss_percent"), "{s}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "stopped early, not after the whole 30 s: {:?}",
        started.elapsed()
    );
}
