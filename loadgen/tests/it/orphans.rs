//! The harness cleans up however it dies (docs/loadgen.md, "No
//! orphans"): `kill -9` of clw-cli whose `--spawn-server` is a wrapper that
//! does not `exec` the server takes the real server with it, at once, not
//! at the next run: clw-limit's reaper kills the server's process group and
//! cgroup. Against Python's http.server under `sh -c`.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::{children, free_port, python3, wait_until, write_scenario, ROOT_ONLY};

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
fn a_killed_harness_takes_the_server_it_did_not_exec() {
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
        .stderr(Stdio::piped())
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
    let killed = first.wait_with_output().unwrap();
    wait_until(
        Duration::from_secs(2),
        "the wrapper and the server it did not exec die with the harness",
        || !alive(wrapper) && !alive(server),
    );
    let stderr = String::from_utf8_lossy(&killed.stderr);
    assert!(
        stderr.contains(&format!(
            "the harness ended without cleaning up; killed the server's process group {wrapper}"
        )),
        "{enforcement}: {stderr}"
    );

    // The port is free at once: the next run starts its own server on it.
    let second = run("second", "1s").output().unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(0), "{stderr}");
    assert!(
        !stderr.contains("left by an earlier run"),
        "nothing was left to sweep: {stderr}"
    );
    println!("{enforcement}: wrapper {wrapper} and server {server} died with clw-cli");
}
