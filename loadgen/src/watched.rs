//! `--server-pid PID`: a server clw-cli did not start, watched for its
//! death. It is not our child, so its exit status cannot be read; what can
//! be told is that the process is gone (no /proc entry, a zombie, or a new
//! process that reused the PID, recognised by its start time).

use std::time::{Duration, Instant};

use clw_limit::ExitInfo;

/// How often the watched PID is checked.
const POLL: Duration = Duration::from_millis(100);

/// `--server-pid` names no running process (bad usage, exit 2).
#[derive(Debug, thiserror::Error)]
#[error("--server-pid {0}: no such process on this host")]
pub(crate) struct NoSuchProcess(pub(crate) u32);

/// A process on this host whose death ends (or fails) the run.
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pid: u32,
    /// Field 22 of /proc/PID/stat: tells the process from a later one with
    /// the same PID.
    start_time: u64,
}

impl Watched {
    /// Start watching `pid`; Err when no such process runs now.
    pub(crate) fn new(pid: u32) -> Result<Watched, NoSuchProcess> {
        match stat(pid) {
            Some(now) if !now.is_dead() => Ok(Watched {
                pid,
                start_time: now.start_time,
            }),
            _ => Err(NoSuchProcess(pid)),
        }
    }

    /// Whether the process is still there (and still the same process).
    pub(crate) fn alive(&self) -> bool {
        stat(self.pid).is_some_and(|now| now.start_time == self.start_time && !now.is_dead())
    }

    /// Wait until the process is gone. Code and signal are unknown (None):
    /// only a parent can read them.
    pub(crate) async fn wait_exit(&self) -> ExitInfo {
        while self.alive() {
            tokio::time::sleep(POLL).await;
        }
        ExitInfo {
            code: None,
            signal: None,
            oom_killed: false,
            emulated: false,
            exited_at: Instant::now(),
        }
    }
}

/// State and start time from /proc/PID/stat.
fn stat(pid: u32) -> Option<clw_limit::ProcStat> {
    clw_limit::parse_stat(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_that_exits_is_seen_gone() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let watched = Watched::new(child.id()).unwrap();
        assert!(watched.alive());
        child.kill().unwrap();
        // Not yet reaped: a zombie still counts as gone.
        let exit = tokio::time::timeout(Duration::from_secs(10), watched.wait_exit())
            .await
            .expect("the death is noticed");
        assert_eq!((exit.code, exit.signal), (None, None));
        child.wait().unwrap();
        assert!(!watched.alive());
        assert!(Watched::new(child.id()).is_err());
    }
}
