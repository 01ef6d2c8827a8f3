use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::proc_stat::parse_stat;

/// `sh` leading its own process group, with a `sleep` it started and did
/// not exec: the wrapper and its orphan-to-be. Returns both.
fn wrapper_with_child() -> (Child, i32) {
    let mut sh = Command::new("sh")
        .args(["-c", "sleep 300 & echo $!; wait"])
        .process_group(0)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (sh, line.trim().parse().unwrap())
}

/// Alive and not a zombie.
fn running(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let close = s.iter().rposition(|&b| b == b')')?;
            s.get(close + 2).copied()
        })
        .is_some_and(|state| state != b'Z')
}

fn gone_within(pid: i32, limit: Duration) -> bool {
    let started = Instant::now();
    while running(pid) {
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

#[test]
fn the_harness_ending_kills_the_whole_group() {
    let (mut sh, sleep) = wrapper_with_child();
    let reaper = Reaper::arm(sh.id(), None).unwrap();
    assert!(running(sleep));
    // As the harness's death: the write end closes without the byte.
    drop(reaper);
    let status = sh.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(
        gone_within(sleep, Duration::from_secs(2)),
        "the wrapper's child outlived the harness"
    );
}

#[test]
fn a_disarmed_reaper_touches_nothing() {
    let (mut sh, sleep) = wrapper_with_child();
    let reaper = Reaper::arm(sh.id(), None).unwrap();
    let pid = reaper.pid;
    reaper.disarm();
    // Reaped by the drop inside disarm: no such child any more.
    // SAFETY: kill(pid, 0) only checks existence.
    assert_ne!(unsafe { libc::kill(pid, 0) }, 0, "the reaper exited");
    std::thread::sleep(Duration::from_millis(100));
    assert!(running(sleep) && sh.try_wait().unwrap().is_none());
    // SAFETY: the group this test started.
    unsafe { libc::kill(-(sh.id() as i32), libc::SIGKILL) };
    sh.wait().unwrap();
}

#[test]
fn the_reaper_holds_only_its_pipe_and_stderr() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (mut sh, _) = wrapper_with_child();
    let reaper = Reaper::arm(sh.id(), None).unwrap();
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", reaper.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let started = Instant::now();
    while fds() != 2 && started.elapsed() < Duration::from_secs(2) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(fds(), 2, "pipe and stderr, not the listener or the rest");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", reaper.pid)).unwrap();
    assert_eq!(comm.trim(), "clw-reaper");
    drop(listener);
    drop(reaper);
    sh.wait().unwrap();
}

#[test]
fn a_reused_leader_pid_is_not_our_group() {
    let own = std::fs::read("/proc/self/stat").unwrap();
    let mut plan = Plan::new(std::process::id() as i32, None);
    assert_eq!(plan.leader_start, parse_stat(&own).map(|s| s.start_time));
    // SAFETY: reads /proc only.
    assert!(unsafe { group_is_ours(&plan) });
    plan.leader_start = plan.leader_start.map(|t| t + 1);
    // SAFETY: as above.
    assert!(!unsafe { group_is_ours(&plan) });
}
