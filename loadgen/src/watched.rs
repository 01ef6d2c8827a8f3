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
            Some((state, start_time)) if !is_dead_state(state) => Ok(Watched { pid, start_time }),
            _ => Err(NoSuchProcess(pid)),
        }
    }

    /// Whether the process is still there (and still the same process).
    pub(crate) fn alive(&self) -> bool {
        stat(self.pid)
            .is_some_and(|(state, start)| start == self.start_time && !is_dead_state(state))
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

/// Z (zombie) and X (dead): exited, only not yet reaped by its parent.
fn is_dead_state(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// (state, start time) from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// The command name is in parentheses and may hold spaces and ')': the
/// fields after it start after the last ')'.
fn parse_stat(text: &str) -> Option<(char, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 3 (state) is fields[0], so field 22 (starttime) is fields[19].
    let start_time = fields.get(19)?.parse().ok()?;
    Some((state, start_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        let line = "4242 (clw auth) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 9 0 123456 1000 50 18446744073709551615";
        assert_eq!(parse_stat(line), Some(('S', 123456)));
        assert_eq!(parse_stat("garbage"), None);
    }

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
