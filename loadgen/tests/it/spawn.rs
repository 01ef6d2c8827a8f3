//! `--spawn-server`: clw-cli starts the real clw-auth binary under a memory
//! limit, waits for /ready, and reports a server that dies mid-run.

use std::time::{Duration, Instant};

use crate::common;
use crate::common::{clw_auth_command, free_port, read_summary, LoadTest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_is_reported_and_stops_the_load() {
    let (port, command) = clw_auth_command("fixed.json");
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let out = &test.out;
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 2 --duration 20s --memory-limit 512M",
    );
    let started = Instant::now();
    let run = tokio::spawn(clw_cli::run(opts));

    // summary.json is written (incomplete) before the load; it names the pid.
    let pid = loop {
        if let Some(pid) = read_summary(out).and_then(|s| s["server"]["pid"].as_u64()) {
            break pid as i32;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no summary.json with a server pid"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    // SAFETY: plain kill(2) of the server this run started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);

    let outcome = run.await.unwrap().expect("the run still completes");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "load stops a few seconds after the death"
    );
    let s = read_summary(out).unwrap();
    assert_eq!(s["complete"], true);
    let exit = &s["server"]["exit"];
    assert_eq!(exit["signal"], 9, "{s}");
    assert_eq!(exit["shell_code"], 137, "{s}");
    assert!(exit["at_s"].as_f64().unwrap() > 0.5, "{s}");
    assert!(s["server"]["limit_enforcement"].is_string());
    assert!(
        s["requests"]["ok"].as_u64().unwrap() > 0,
        "load ran before the kill: {s}"
    );
    // Requests sent after the death are counted apart (`after_death`);
    // those in flight at the kill may land in either.
    let failed = s["requests"]["failed"].as_u64().unwrap()
        + s["after_death"]["failed"].as_u64().unwrap_or(0);
    assert!(failed > 0, "requests after the kill failed: {s}");
    assert_eq!(
        outcome.exit_code, 1,
        "error_rate threshold of ready-only fails: {s}"
    );
    assert!(test.dir.path().join("run/server.log").exists());
}

#[tokio::test]
async fn a_server_that_never_gets_ready_exits_3() {
    let port = free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let opts = test.spawn_opts("sleep 30", "--memory-limit 64M --ready-timeout 1s");
    let err = clw_cli::run(opts).await.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert!(err.to_string().contains("not ready"), "{err}");
}

/// The whole pipeline: the leaky server under a small real limit, the
/// large-claims scenario, until the OOM kill; summary.json says leak and
/// OOM-killed, in the field guide's terms. Where neither a cgroup nor
/// systemd-run is available, clw-limit's watchdog kills at the limit and the
/// exit is marked emulated: the test then checks that instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaky_server_under_a_small_limit_ends_in_a_detected_oom_kill() {
    let (port, command) = clw_auth_command("leaky.json");
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/large-claims.toml",
    );
    let out = &test.out;
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 8 --ramp-up 0s --duration 60s --sample-interval 100ms \
         --memory-limit 64M",
    );
    let started = Instant::now();
    let outcome = clw_cli::run(opts).await.expect("the run completes");
    let s = read_summary(out).unwrap();
    println!("limit enforced by {}", s["server"]["limit_enforcement"]);
    assert!(
        started.elapsed() < Duration::from_secs(50),
        "the 64 MiB limit is hit within seconds, and the load stops soon after"
    );
    let exit = &s["server"]["exit"];
    assert_eq!(exit["oom_killed"], true, "{s}");
    assert_eq!(exit["shell_code"], 137, "{s}");
    assert_eq!(
        exit["emulated"],
        s["server"]["limit_enforcement"] == "watchdog",
        "{s}"
    );
    assert_eq!(s["memory"]["verdict"], "leak", "{}", s["memory"]);
    assert!(
        s["memory"]["peak_rss_percent"].as_f64().unwrap() > 80.0,
        "{}",
        s["memory"]
    );
    assert_eq!(outcome.exit_code, 1, "the 80% rule fails");
}

/// An empty `--spawn-server` command or one with an unbalanced quote is bad
/// usage (exit 2), found before anything is started or created.
#[tokio::test]
async fn an_empty_or_unbalanced_server_command_is_bad_usage() {
    let port = free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    for command in ["", "   ", "clw-auth --password 'hunter2"] {
        let err = clw_cli::run(test.spawn_opts(command, "--memory-limit 64M"))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{command:?}: {err}");
        assert!(err.to_string().contains("--spawn-server"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!test.out.exists(), "{command:?} left a run folder");
    }
}

/// A token given to the server through its command line never reaches
/// summary.json or the report.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_in_the_server_command_are_redacted_in_summary_and_report() {
    let (port, command) = clw_auth_command("fixed.json");
    let secret = "s3cr3t-t0ken-value";
    let command = format!("env CLW_API_TOKEN={secret} {command}");
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let outcome = clw_cli::run(test.spawn_opts(
        &command,
        "--concurrent-users 1 --duration 1s --memory-limit 512M",
    ))
    .await
    .expect("the run completes");
    assert_eq!(outcome.exit_code, 0);
    clw_report::render_run(&test.out).unwrap();
    let s = read_summary(&test.out).unwrap();
    let recorded = s["server"]["command"].as_str().unwrap();
    assert!(recorded.contains("CLW_API_TOKEN=REDACTED"), "{recorded}");
    for file in ["summary.json", "index.html"] {
        let text = std::fs::read_to_string(test.out.join(file)).unwrap();
        assert!(!text.contains(secret), "{file} holds the secret");
    }
}

/// A spawned server without /ready: ready once its port accepts a
/// connection (`--ready-tcp`) or once `--ready-path /` answers 2xx; the run
/// completes either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_ready_is_spawned_with_ready_tcp_or_ready_path() {
    let Some(python) = common::python3() else {
        return;
    };
    for readiness in ["--ready-tcp", "--ready-path /"] {
        let port = free_port();
        let test =
            LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), common::ROOT_ONLY);
        let command = common::http_server_command(python, test.dir.path(), port);
        let flags = format!(
            "--concurrent-users 2 --duration 1s --sample-interval 200ms --memory-limit 256M \
             --no-metrics {readiness}"
        );
        let outcome = clw_cli::run(test.spawn_opts(&command, &flags))
            .await
            .unwrap_or_else(|e| panic!("{readiness}: {e}"));
        let s = read_summary(&test.out).unwrap();
        assert_eq!(outcome.exit_code, 0, "{readiness}: {s}");
        assert_eq!(s["complete"], true, "{s}");
        assert_eq!(s["requests"]["failed"], 0, "{readiness}: {s}");
        assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "{s}");
        assert!(s["memory"]["samples"].as_u64().unwrap() >= 3, "{s}");
    }
}

/// The default readiness check against a server that answers 404 on
/// /ready: exit 3, saying what to pass instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_on_the_default_ready_says_to_pass_ready_path_or_ready_tcp() {
    let Some(python) = common::python3() else {
        return;
    };
    let port = free_port();
    let test = LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), common::ROOT_ONLY);
    let command = common::http_server_command(python, test.dir.path(), port);
    let err = clw_cli::run(test.spawn_opts(&command, "--memory-limit 256M --ready-timeout 5s"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    let msg = err.to_string();
    for says in [
        "not ready (GET /ready answering 2xx, the default) within 5s",
        "the last answer was 404",
        "pass --ready-path PATH",
        "--ready-tcp",
    ] {
        assert!(msg.contains(says), "{says}: {msg}");
    }
    // A path the user chose that answers 404 names the path, with no hint.
    let err = clw_cli::run(test.spawn_opts(
        &command,
        "--memory-limit 256M --ready-timeout 5s --ready-path /healthz",
    ))
    .await
    .unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("GET /healthz answering 2xx, --ready-path")
            && msg.contains("the last answer was 404")
            && !msg.contains("--ready-tcp"),
        "{msg}"
    );
}

/// `--ready-path` must be a path; `--ready-path` and `--ready-tcp` go
/// without each other, and with --spawn-server only (exit 2).
#[tokio::test]
async fn ready_flags_are_checked_before_anything_starts() {
    let port = free_port();
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/ready-only.toml",
    );
    let err = clw_cli::run(test.spawn_opts("sleep 30", "--memory-limit 64M --ready-path healthz"))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("--ready-path `healthz`"), "{err}");
    assert!(!test.out.exists());
    let base = [
        "clw-cli",
        "auth",
        "load-test",
        "--target",
        "http://127.0.0.1:1",
        "--scenario",
        "x.toml",
    ];
    for extra in [
        &[
            "--spawn-server",
            "sleep 1",
            "--memory-limit",
            "64M",
            "--ready-tcp",
            "--ready-path",
            "/",
        ][..],
        &["--ready-tcp"][..],
        &["--ready-path", "/"][..],
    ] {
        let args = base.iter().chain(extra).copied();
        assert!(
            <clw_cli::Opts as clap::Parser>::try_parse_from(args).is_err(),
            "{extra:?} accepted"
        );
    }
}

/// A server spawned through a wrapper (`sh -c '... & wait'`): the
/// wrapper's process tree is measured, and every output says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_spawned_through_a_wrapper_is_measured_as_its_process_tree() {
    let Some(python) = common::python3() else {
        return;
    };
    let port = free_port();
    let test = LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), common::ROOT_ONLY);
    let server = common::http_server_command(python, test.dir.path(), port);
    let command = format!("sh -c \"{}\"", common::wrapped(&server));
    let flags = "--concurrent-users 2 --duration 2s --sample-interval 200ms --memory-limit 256M \
                 --no-metrics --ready-tcp";
    let outcome = clw_cli::run(test.spawn_opts(&command, flags))
        .await
        .expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    let sh = s["server"]["pid"].as_u64().unwrap();
    assert_eq!(
        s["memory"]["sources"]["rss_scope"],
        format!("process tree of {sh} (2 processes)"),
        "{s}"
    );
    let note =
        format!("memory is the process tree of {sh}: port {port} is held by its descendant pid ");
    assert!(
        s["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().starts_with(&note)
                && n.as_str().unwrap().ends_with(" (python3)")),
        "{s}"
    );
    // python's RSS (10+ MiB), not the shell's alone.
    assert!(
        s["memory"]["peak_rss_bytes"].as_u64().unwrap() > 8 << 20,
        "{s}"
    );
}
