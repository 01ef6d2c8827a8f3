//! One run, one folder (docs/run-folder.md, "One writer"): while a load test
//! writes its `--out`, a second load test, a `report`, a `merge --out` and a
//! `gate --update-baseline` into that folder are refused at start (exit 2),
//! and the lock dies with its holder: after `kill -9` the folder is free.
//! Against Python's `http.server`, with the clw-cli binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::common::{
    load_test_command, python3, python_http_server, wait_until, write_scenario, Started, ROOT_ONLY,
};

fn clw_cli(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_clw-cli"));
    c.args(args).stdin(Stdio::null());
    c
}

fn load_test(target: &str, scenario: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = load_test_command(target, scenario, out);
    c.args(["--no-memory", "--concurrent-users", "1"])
        .args(extra)
        .stdin(Stdio::null());
    c
}

fn refused(what: &str, out: Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert!(
        stderr.contains("is in use by another clw-cli run"),
        "{what}: {stderr}"
    );
}

#[test]
fn a_folder_being_written_is_refused_to_every_other_writer_until_its_run_dies() {
    let Some(python) = python3() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let (target, _server) = python_http_server(python, work.path());
    let scenario = write_scenario(work.path(), ROOT_ONLY);

    // A finished run and a one-shard run, for gate and merge to read.
    let done = work.path().join("done");
    let status = load_test(
        &target,
        &scenario,
        &done,
        &["--duration", "1s", "--no-report"],
    )
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0));
    let shard = work.path().join("shard");
    let status = load_test(
        &target,
        &scenario,
        &shard,
        &["--duration", "1s", "--no-report", "--shard", "1/1"],
    )
    .status()
    .unwrap();
    assert_eq!(status.code(), Some(0));

    let busy = work.path().join("busy");
    let first = load_test(&target, &scenario, &busy, &["--duration", "20s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = Started(first);
    wait_until(Duration::from_secs(10), "the first run writes", || {
        busy.join("latency.hlog").exists()
    });

    refused(
        "a second load test",
        load_test(&target, &scenario, &busy, &["--duration", "1s"])
            .output()
            .unwrap(),
    );
    refused(
        "report",
        clw_cli(&["report", busy.to_str().unwrap()])
            .output()
            .unwrap(),
    );
    refused(
        "merge --out",
        clw_cli(&[
            "merge",
            shard.to_str().unwrap(),
            "--out",
            busy.to_str().unwrap(),
        ])
        .output()
        .unwrap(),
    );
    let baseline = busy.join("baseline.json");
    refused(
        "gate --update-baseline",
        clw_cli(&[
            "gate",
            done.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
            "--update-baseline",
        ])
        .output()
        .unwrap(),
    );
    assert!(!baseline.exists());

    // kill -9: no cleanup ran, and yet the folder is free.
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    let out = load_test(&target, &scenario, &busy, &["--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
