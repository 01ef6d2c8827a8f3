//! The clw-cli binary under signals, as a user or a CI job sends them:
//! Ctrl-C (SIGINT) and SIGTERM stop the load, write every output, mark the
//! run interrupted and exit 130 / 143; a second one exits at once; and a
//! spawned server never outlives the harness, not even a SIGKILLed one.

use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    clw_auth_command, load_test_command, read_summary, start_auth, wait_until, write_scenario,
};

const READY_ONLY: &str = r#"
name = "ready"
[[steps]]
name = "ready"
method = "GET"
path = "/ready"
"#;

/// `clw-cli auth load-test --quiet --no-report --out DIR/run` + `args`.
fn clw_cli(dir: &Path, target: &str, args: &[&str]) -> Child {
    let scenario = write_scenario(dir, READY_ONLY);
    load_test_command(target, &scenario, &dir.join("run"))
        .arg("--no-report")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clw-cli")
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: plain kill(2) of a process this test started.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

/// The exit status within `limit`, or a panic naming what was waited for.
fn wait_within(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: clw-cli still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server PID from the summary.json written before the load starts.
fn wait_for_start(dir: &Path, child: &mut Child) -> Option<u64> {
    let started = Instant::now();
    loop {
        if let Some(s) = read_summary(&dir.join("run")) {
            return s["server"]["pid"].as_u64();
        }
        assert!(child.try_wait().unwrap().is_none(), "clw-cli ended early");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the load never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Gone: no /proc entry, or a zombie waiting for a reaper.
fn process_gone(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

fn wait_gone(pid: u64, limit: Duration) -> bool {
    let started = Instant::now();
    while !process_gone(pid) {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// clw-cli with `--spawn-server` clw-auth for 60 s, once its load started:
/// the server's port, clw-cli, and the server's PID.
fn with_spawned_server(dir: &Path) -> (u16, Child, u64) {
    let (port, command) = clw_auth_command("fixed.json");
    let target = format!("http://127.0.0.1:{port}");
    let mut child = clw_cli(
        dir,
        &target,
        &[
            "--concurrent-users",
            "1",
            "--duration",
            "60s",
            "--memory-limit",
            "512M",
            "--spawn-server",
            &command,
        ],
    );
    let pid = wait_for_start(dir, &mut child).expect("the server's pid");
    (port, child, pid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_writes_every_output_marks_the_run_interrupted_and_exits_130() {
    let server = start_auth().await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("http://{}", server.addr());
    let mut child = clw_cli(
        dir.path(),
        &target,
        &[
            "--concurrent-users",
            "2",
            "--duration",
            "60s",
            "--no-metrics",
        ],
    );
    wait_for_start(dir.path(), &mut child);
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&child, libc::SIGINT);
    let status = wait_within(&mut child, Duration::from_secs(30), "after one SIGINT");
    let s = read_summary(&dir.path().join("run")).unwrap();
    assert_eq!(status.code(), Some(130), "{s}");
    assert_eq!(s["complete"], true, "{s}");
    assert_eq!(s["interrupted"], true, "{s}");
    assert_eq!(s["interrupted_by"], "SIGINT", "{s}");
    assert_eq!(s["passed"], false, "{s}");
    assert!(s["requests"]["ok"].as_u64().unwrap() > 0, "{s}");
}

/// The first Ctrl-C waits for the requests in flight (here: up to a 60 s
/// timeout against a server that never answers); the second ends it now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_ctrl_c_exits_at_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("http://{}", listener.local_addr().unwrap());
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for sock in listener.incoming().take(8) {
            held.push(sock);
        }
        std::thread::sleep(Duration::from_secs(90));
    });
    let dir = tempfile::tempdir().unwrap();
    let mut child = clw_cli(
        dir.path(),
        &target,
        &[
            "--concurrent-users",
            "2",
            "--duration",
            "60s",
            "--timeout",
            "60s",
            "--no-metrics",
        ],
    );
    wait_for_start(dir.path(), &mut child);
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&child, libc::SIGINT);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "the first Ctrl-C waits for the requests in flight"
    );
    signal(&child, libc::SIGINT);
    let status = wait_within(&mut child, Duration::from_secs(10), "after a second SIGINT");
    assert_eq!(status.code(), Some(130));
    drop(holder);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_spawned_server_writes_outputs_and_exits_143() {
    let dir = tempfile::tempdir().unwrap();
    let (_port, mut child, pid) = with_spawned_server(dir.path());
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(&child, libc::SIGTERM);
    let status = wait_within(&mut child, Duration::from_secs(30), "after SIGTERM");
    let s = read_summary(&dir.path().join("run")).unwrap();
    assert_eq!(status.code(), Some(143), "{s}");
    assert_eq!(
        (s["complete"].clone(), s["interrupted_by"].clone()),
        (true.into(), "SIGTERM".into()),
        "{s}"
    );
    assert!(
        process_gone(pid),
        "the spawned server {pid} outlived clw-cli"
    );
}

/// SIGKILL leaves clw-cli no chance to clean up: the server must die by
/// itself (the parent-death signal clw-limit sets before exec), freeing
/// its port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_harness_takes_its_spawned_server_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (port, mut child, pid) = with_spawned_server(dir.path());
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let gone = wait_gone(pid, Duration::from_secs(10));
    if !gone {
        // Do not leave it behind for the next test run.
        // SAFETY: plain kill(2) of the server our clw-cli started.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    }
    assert!(gone, "clw-auth {pid} outlived the SIGKILLed clw-cli");
    wait_until(Duration::from_secs(10), "the server's port freed", || {
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    });
}
