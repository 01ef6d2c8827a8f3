//! The harness cleans up however it dies (docs/loadgen.md, "No
//! orphans"): `kill -9` of clw-cli whose `--spawn-server` is a wrapper that
//! does not `exec` the server leaves the real server running, reparented
//! to init, in its memory cgroup; the next run kills it with its cgroup and
//! starts on the freed port. Against Python's http.server under `sh -c`;
//! skips, saying why, where no memory cgroup can be made.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{children, free_port, python3, wait_until, write_scenario, ROOT_ONLY};

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn the_next_run_kills_what_a_killed_run_left_in_its_cgroup() {
    let Some(python) = python3() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let scenario = write_scenario(work.path(), ROOT_ONLY);
    let script = common::wrapped(&common::http_server_command(python, work.path(), port));
    let command = format!("sh -c \"{script}\"");
    let target = format!("http://127.0.0.1:{port}");
    let run = |out: &str, duration: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_clw-cli"));
        c.args([
            "auth",
            "load-test",
            "--quiet",
            "--no-report",
            "--no-metrics",
        ])
        .args([
            "--target",
            &target,
            "--scenario",
            scenario.to_str().unwrap(),
        ])
        .args([
            "--spawn-server",
            &command,
            "--memory-limit",
            "256M",
            "--ready-tcp",
        ])
        .args(["--concurrent-users", "1", "--duration", duration])
        .arg("--out")
        .arg(work.path().join(out))
        .stdin(Stdio::null());
        c
    };
    let mut first = run("first", "30s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let summary = work.path().join("first/summary.json");
    wait_until(Duration::from_secs(20), "the first run's summary", || {
        common::read_summary(&work.path().join("first"))
            .is_some_and(|s| s["server"]["pid"].is_u64())
    });
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let wrapper = s["server"]["pid"].as_u64().unwrap() as u32;
    let servers = children(wrapper);
    assert_eq!(servers.len(), 1, "the wrapper's server: {servers:?}");
    let server = servers[0];
    let enforcement = s["server"]["limit_enforcement"]
        .as_str()
        .unwrap_or("")
        .to_string();

    first.kill().unwrap(); // SIGKILL: no destructor runs.
    first.wait().unwrap();
    wait_until(
        Duration::from_secs(5),
        "the wrapper dies with its parent",
        || !alive(wrapper),
    );
    assert!(alive(server), "the orphan outlived the harness");

    if !enforcement.starts_with("cgroup") {
        // SAFETY: kill(2) of the server this test's run started.
        unsafe { libc::kill(server as i32, libc::SIGKILL) };
        println!("SKIPPED the_next_run_kills_what_a_killed_run_left_in_its_cgroup: the limit was {enforcement}, no memory cgroup here");
        return;
    }
    let second = run("second", "1s").output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("left by an earlier run that was killed"),
        "{stderr}"
    );
    assert!(!alive(server), "the orphan was killed with its cgroup");
}
