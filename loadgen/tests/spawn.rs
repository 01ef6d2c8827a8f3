//! `--spawn-server`: clw-cli starts the real clw-auth binary under a memory
//! limit, waits for /ready, and reports a server that dies mid-run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

/// The clw-auth binary next to this test's target dir, built if missing.
fn clw_auth_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let bin = profile_dir.join("clw-auth");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = std::process::Command::new(cargo)
            .args(["build", "-p", "clw-auth", "--bin", "clw-auth"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building clw-auth failed");
    }
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read_summary(dir: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).ok()?).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_is_reported_and_stops_the_load() {
    let bin = clw_auth_binary();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let command = format!(
        "'{}' --config '{}' --host 127.0.0.1 --port {port}",
        bin.display(),
        workspace().join("profiles/fixed.json").display()
    );
    let target = format!("http://127.0.0.1:{port}");
    let scenario = workspace().join("scenarios/ready-only.toml");
    let opts = clw_cli::Opts::try_parse_from([
        "clw-cli",
        "auth",
        "load-test",
        "--quiet",
        "--no-report",
        "--target",
        &target,
        "--scenario",
        scenario.to_str().unwrap(),
        "--concurrent-users",
        "2",
        "--duration",
        "20s",
        "--spawn-server",
        &command,
        "--memory-limit",
        "512M",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let started = Instant::now();
    let run = tokio::spawn(clw_cli::run(opts));

    // summary.json is written (incomplete) before the load; it names the pid.
    let pid = loop {
        if let Some(pid) = read_summary(&out).and_then(|s| s["server"]["pid"].as_u64()) {
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
    let s = read_summary(&out).unwrap();
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
    assert!(
        s["requests"]["failed"].as_u64().unwrap() > 0,
        "requests after the kill failed: {s}"
    );
    assert_eq!(
        outcome.exit_code, 1,
        "error_rate threshold of ready-only fails: {s}"
    );
    assert!(dir.path().join("run/server.log").exists());
}

#[tokio::test]
async fn a_server_that_never_gets_ready_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let port = free_port();
    let target = format!("http://127.0.0.1:{port}");
    let scenario = workspace().join("scenarios/ready-only.toml");
    let opts = clw_cli::Opts::try_parse_from([
        "clw-cli",
        "auth",
        "load-test",
        "--quiet",
        "--no-report",
        "--target",
        &target,
        "--scenario",
        scenario.to_str().unwrap(),
        "--spawn-server",
        "sleep 30",
        "--memory-limit",
        "64M",
        "--ready-timeout",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
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
    let bin = clw_auth_binary();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let command = format!(
        "'{}' --config '{}' --host 127.0.0.1 --port {port}",
        bin.display(),
        workspace().join("profiles/leaky.json").display()
    );
    let target = format!("http://127.0.0.1:{port}");
    let scenario = workspace().join("scenarios/large-claims.toml");
    let opts = clw_cli::Opts::try_parse_from([
        "clw-cli",
        "auth",
        "load-test",
        "--quiet",
        "--no-report",
        "--target",
        &target,
        "--scenario",
        scenario.to_str().unwrap(),
        "--concurrent-users",
        "8",
        "--ramp-up",
        "0s",
        "--duration",
        "60s",
        "--sample-interval",
        "100ms",
        "--spawn-server",
        &command,
        "--memory-limit",
        "64M",
        "--out",
        out.to_str().unwrap(),
    ])
    .unwrap();
    let started = Instant::now();
    let outcome = clw_cli::run(opts).await.expect("the run completes");
    let s = read_summary(&out).unwrap();
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
