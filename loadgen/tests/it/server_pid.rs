//! `--server-pid`: the process (or one of its descendants) must hold the
//! target port's listening socket. A wrapper's PID is accepted and its
//! process tree measured; an unrelated PID stops the run (exit 3) naming
//! the listener. The server is `python3 -m http.server` (skipped, saying
//! so, where there is no python3).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common;
use crate::common::{free_port, summary, wait_until, LoadTest};

/// `sh -c` wrapping a python3 HTTP server on `port` (ours: ended by its pid
/// in [`stop`]), once the port listens.
fn start_wrapped_server(python: &str, dir: &std::path::Path, port: u16) -> Child {
    let server = common::http_server_command(python, dir, port);
    let child = Command::new("sh")
        .args(["-c", &common::wrapped(&server)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sh");
    wait_until(Duration::from_secs(20), "python3 listening", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    child
}

/// SIGTERM to the wrapper, which passes it on to the server, then reaped.
fn stop(mut child: Child) {
    // SAFETY: plain kill(2) of the wrapper this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrapper_pid_is_accepted_and_its_process_tree_measured() {
    let Some(python) = common::python3() else {
        return;
    };
    let port = free_port();
    let test = LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), common::ROOT_ONLY);
    let wrapper = start_wrapped_server(python, test.dir.path(), port);
    let sh = wrapper.id();
    let server = common::children(sh);
    let flags = format!(
        "--concurrent-users 2 --duration 2s --sample-interval 200ms --no-metrics --server-pid {sh}"
    );
    let outcome = clw_cli::run(test.opts(&flags)).await;
    // The second source: /proc read here, after the run, for both.
    let sh_rss = common::rss_bytes(sh);
    let tree_rss = sh_rss + server.iter().map(|p| common::rss_bytes(*p)).sum::<u64>();
    stop(wrapper);
    let outcome = outcome.expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(server.len(), 1, "{server:?}");
    assert_eq!(s["requests"]["failed"], 0, "{s}");
    assert_eq!(s["server"]["pid"], sh, "{s}");
    let memory = &s["memory"];
    assert_eq!(memory["sources"]["rss"], "proc", "{memory}");
    assert_eq!(
        memory["sources"]["rss_scope"],
        format!("process tree of {sh} (2 processes)"),
        "{memory}"
    );
    let note = format!(
        "memory is the process tree of {sh}: port {port} is held by its descendant pid {} (python3)",
        server[0]
    );
    assert!(
        s["notes"].as_array().unwrap().iter().any(|n| n == &note),
        "{note}: {s}"
    );
    // The peak is the tree's: near the sum read here, which sh alone (a
    // few MiB against python's 10+) is far from.
    let peak = memory["peak_rss_bytes"].as_u64().unwrap();
    assert!(tree_rss > 2 * sh_rss, "sh {sh_rss}, tree {tree_rss}");
    assert!(
        peak >= tree_rss * 9 / 10,
        "peak {peak} vs the tree's {tree_rss} now (sh {sh_rss})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrelated_pid_stops_the_run_naming_the_listener() {
    let Some(python) = common::python3() else {
        return;
    };
    let port = free_port();
    let test = LoadTest::with_scenario_text(format!("http://127.0.0.1:{port}"), common::ROOT_ONLY);
    let wrapper = start_wrapped_server(python, test.dir.path(), port);
    let server = common::children(wrapper.id());
    let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let flags = format!("--duration 1s --no-metrics --server-pid {}", sleep.id());
    let outcome = clw_cli::run(test.opts(&flags)).await;
    // Ours, ended by their pids.
    let _ = sleep.kill();
    let _ = sleep.wait();
    stop(wrapper);
    let err = outcome.unwrap_err();
    assert_eq!(err.exit_code(), 3, "{err}");
    assert_eq!(server.len(), 1, "{server:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!(
            "--server-pid {}: the target's port {port} is held by pid {} (python3), not by pid {} (sleep)",
            sleep.id(),
            server[0],
            sleep.id()
        )) && msg.contains(&format!("pass --server-pid {}", server[0])),
        "{msg}"
    );
    assert!(!test.out.exists(), "a run folder for nothing");
}
