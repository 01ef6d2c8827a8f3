//! A failed run never passes: whatever the thresholds say, a run whose
//! server died, whose watched PID vanished, or in which no request
//! succeeded exits 1 and says why (summary.json `failures`).

use std::time::{Duration, Instant};

use crate::common;
use crate::common::{
    clw_auth_binary, clw_auth_command, read_summary, wait_until, workspace, LoadTest,
};
use tokio::net::TcpListener;

/// A scenario with no thresholds at all (so no `error_rate` to catch a
/// broken run) and a flat memory profile.
const READY_ONLY_NO_THRESHOLDS: &str = r#"
name = "ready-no-thresholds"
[[steps]]
name = "ready"
method = "GET"
path = "/ready"
"#;

/// A server that accepts connections and never answers.
async fn silent_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_never_answers_fails() {
    let addr = silent_server().await;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), READY_ONLY_NO_THRESHOLDS);
    let outcome =
        clw_cli::run(test.opts("--concurrent-users 2 --duration 1s --timeout 300ms --no-metrics"))
            .await
            .expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert_eq!(s["requests"]["ok"], 0, "{s}");
    assert_eq!(outcome.exit_code, 1, "{s}");
    assert!(!outcome.passed);
    assert_eq!(s["passed"], false, "{s}");
    let failures = s["failures"].to_string();
    assert!(
        failures.contains("no request succeeded") && failures.contains("clw-auth-timeout"),
        "{failures}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_server_killed_mid_run_fails_without_an_error_rate_threshold() {
    let (port, command) = clw_auth_command("fixed.json");
    let test =
        LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), READY_ONLY_NO_THRESHOLDS);
    let run = tokio::spawn(clw_cli::run(test.spawn_opts(
        &command,
        "--concurrent-users 2 --duration 20s --memory-limit 512M",
    )));
    let pid = wait_for_pid(&test).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    // SAFETY: plain kill(2) of the server this run started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let outcome = run.await.unwrap().expect("the run completes");
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 1, "{s}");
    assert_eq!(s["passed"], false, "{s}");
    assert!(
        s["failures"][0].as_str().unwrap().contains("died"),
        "{}",
        s["failures"]
    );
}

/// `--server-pid`: the watched server is killed a second into a 30 s run.
/// The death is noticed, recorded like a spawned server's, the load stops,
/// the samples stop, and the run fails; the verdict is not "bounded".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_server_killed_mid_run_is_noticed_and_fails_the_run() {
    let port = common::free_port();
    let mut server = std::process::Command::new(clw_auth_binary())
        .args(["--config"])
        .arg(workspace().join("profiles/fixed.json"))
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "clw-auth listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let test =
        LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), READY_ONLY_NO_THRESHOLDS);
    let pid = server.id();
    let run = tokio::spawn(clw_cli::run(test.opts(&format!(
        "--concurrent-users 2 --duration 30s --sample-interval 100ms --server-pid {pid}"
    ))));
    wait_for_pid(&test).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = Instant::now();
    server.kill().unwrap();
    server.wait().unwrap();
    let outcome = run.await.unwrap().expect("the run completes");
    assert!(
        killed_at.elapsed() < Duration::from_secs(20),
        "the load stops a few seconds after the death, not at the end of the 30 s"
    );
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 1, "{s}");
    let exit = &s["server"]["exit"];
    assert_eq!(exit["vanished"], true, "{s}");
    assert!(exit["at_s"].as_f64().unwrap() > 1.0, "{s}");
    assert!(
        s["failures"][0].as_str().unwrap().contains("vanished"),
        "{}",
        s["failures"]
    );
    assert_ne!(s["memory"]["verdict"], "bounded", "{}", s["memory"]);
    // The samples stop at the death: none more than a sample interval and
    // a final read after it.
    let at_s = exit["at_s"].as_f64().unwrap();
    let samples = std::fs::read_to_string(test.out.join("samples.csv")).unwrap();
    let last_t: f64 = samples
        .lines()
        .last()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        last_t < at_s + 1.5,
        "samples went on to {last_t} s after a death at {at_s} s"
    );
}

/// The spawned server's PID, from the summary.json written before the load.
async fn wait_for_pid(test: &LoadTest) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = read_summary(&test.out).and_then(|s| s["server"]["pid"].as_u64()) {
            return pid as i32;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no summary.json with a server pid"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A `--server-pid` that is not running is bad input (exit 2), found before
/// any load is sent: its "death" would otherwise fail the run at once.
#[tokio::test]
async fn a_server_pid_that_is_not_running_is_bad_usage() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    // A reachable target, so only the PID is wrong.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let test = LoadTest::with_scenario_text(
        format!("http://{}", listener.local_addr().unwrap()),
        READY_ONLY_NO_THRESHOLDS,
    );
    let err = clw_cli::run(test.opts(&format!("--duration 1s --server-pid {dead}")))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains(&format!("--server-pid {dead}")),
        "{err}"
    );
    assert!(!test.out.exists());
}
