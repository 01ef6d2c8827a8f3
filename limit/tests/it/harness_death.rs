//! A harness that dies without cleaning up (SIGKILL: no destructor runs)
//! takes the server's whole tree with it, at once and without a next run:
//! a wrapper that does not `exec` (`sh -c 'sleep & wait'`) leaves nothing
//! behind, under a cgroup or under the watchdog (no cgroup at all).
//!
//! The harness is this test binary itself, re-run as
//! `harness_death::harness` (an ignored test that only acts when
//! `CLW_HARNESS_DIR` is set), so it is a real separate process the test
//! can `kill -9`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clw_limit::{spawn, Enforcement, LimitError, SpawnSpec};

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The harness: spawn the wrapper under `CLW_HARNESS_METHOD`, write the
/// wrapper's PID, the enforcement and the cgroup to `ready`, then wait to
/// be killed.
#[test]
#[ignore = "run by the tests below as a separate process"]
fn harness() {
    let Some(dir) = std::env::var_os("CLW_HARNESS_DIR") else {
        return;
    };
    let dir = Path::new(&dir);
    let script = format!(
        "sleep 300 & echo $! > {}; wait",
        dir.join("orphan").display()
    );
    let mut spec = SpawnSpec::new("sh", ["-c", &script], 64 << 20, dir.join("log"));
    spec.prefer = match std::env::var("CLW_HARNESS_METHOD").as_deref() {
        Ok("watchdog") => Some(Enforcement::Watchdog),
        _ => None,
    };
    let limited = match spawn(spec) {
        Ok(limited) => limited,
        Err(LimitError::Unavailable { reason, .. }) => {
            std::fs::write(dir.join("unavailable"), reason).unwrap();
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let cgroup = limited
        .cgroup_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    std::fs::write(
        dir.join("ready.tmp"),
        format!("{} {} {cgroup}", limited.pid(), limited.enforcement()),
    )
    .unwrap();
    std::fs::rename(dir.join("ready.tmp"), dir.join("ready")).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// Start the harness, let it spawn, `kill -9` it: the wrapper, its child and
/// the cgroup are gone within 2 s. The reaper's line is on its stderr.
fn killed_harness_leaves_nothing(method: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut harness = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "harness_death::harness",
            "--ignored",
            "--nocapture",
        ])
        .env("CLW_HARNESS_DIR", dir.path())
        .env("CLW_HARNESS_METHOD", method)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = dir.path().join("ready");
    let orphan = dir.path().join("orphan");
    wait_for("the harness spawns", Duration::from_secs(20), || {
        ready.exists() || dir.path().join("unavailable").exists()
    });
    if !ready.exists() {
        let _ = harness.kill();
        harness.wait().unwrap();
        let why = std::fs::read_to_string(dir.path().join("unavailable")).unwrap();
        println!("SKIP {method}: no limit method here: {why}");
        return;
    }
    wait_for(
        "the wrapper starts its child",
        Duration::from_secs(5),
        || std::fs::read_to_string(&orphan).is_ok_and(|s| s.ends_with('\n')),
    );
    let text = std::fs::read_to_string(&ready).unwrap();
    let mut words = text.split(' ');
    let wrapper: i32 = words.next().unwrap().parse().unwrap();
    let enforcement = words.next().unwrap().to_string();
    let cgroup = words.next().unwrap_or("").to_string();
    let child: i32 = std::fs::read_to_string(&orphan)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(running(wrapper) && running(child));

    harness.kill().unwrap(); // SIGKILL: no destructor runs.
    let output = harness.wait_with_output().unwrap();
    wait_for(
        &format!("the wrapper's child ({enforcement}) dies with the harness"),
        Duration::from_secs(2),
        || !running(child) && !running(wrapper),
    );
    if !cgroup.is_empty() {
        wait_for("the cgroup is removed", Duration::from_secs(2), || {
            !Path::new(&cgroup).exists()
        });
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "the harness ended without cleaning up; killed the server's process group {wrapper}"
        )),
        "{stderr}"
    );
    println!("{method}: {enforcement}: wrapper {wrapper} and child {child} died with the harness");
}

#[test]
fn a_killed_harness_takes_the_tree_under_the_watchdog() {
    killed_harness_leaves_nothing("watchdog");
}

#[test]
fn a_killed_harness_takes_the_tree_and_its_cgroup() {
    killed_harness_leaves_nothing("best");
}

/// Not only on death: when the wrapper itself exits, what it left in its
/// group dies with it, as a container's processes die with its PID 1.
#[tokio::test]
async fn the_wrappers_end_is_its_childrens_end() {
    let dir = tempfile::tempdir().unwrap();
    let orphan = dir.path().join("orphan");
    let script = format!("sleep 300 & echo $! > {}; exit 3", orphan.display());
    let mut spec = SpawnSpec::new("sh", ["-c", &script], 64 << 20, dir.path().join("log"));
    spec.prefer = Some(Enforcement::Watchdog);
    let mut limited = spawn(spec).unwrap();
    let exit = limited.wait_exit().await;
    assert_eq!(exit.code, Some(3));
    let child: i32 = std::fs::read_to_string(&orphan)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_for("the wrapper's child dies", Duration::from_secs(2), || {
        !running(child)
    });
}
