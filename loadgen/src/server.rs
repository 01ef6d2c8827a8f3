//! `--spawn-server CMD --memory-limit SIZE`: start the server under a real
//! memory limit (clw-limit), wait until it is ready, and report how it ended
//! in the field guide's words.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use clw_limit::{ExitInfo, Limited, SpawnSpec};

use crate::load::http::{self, Conn, Response};
use crate::tls::TlsDial;
use clw_run::ServerExit;

/// How long the server gets to stop after SIGTERM before SIGKILL.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// A server clw-cli started.
pub(crate) struct Spawned {
    pub(crate) child: Limited,
    /// The command line as recorded: secrets redacted.
    pub(crate) command: String,
}

/// Why the server could not be started or never became ready.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServerError {
    #[error("bad --spawn-server command `{0}`: empty or unbalanced quotes")]
    BadCommand(String),
    #[error("cannot start the server: {0}")]
    Spawn(#[from] clw_limit::LimitError),
    #[error("the server exited before it was ready ({exit}); see {log}")]
    DiedEarly { exit: String, log: String },
    #[error("the server was not ready (GET /ready = 200) within {timeout:?}; see {log}")]
    NotReady { timeout: Duration, log: String },
}

/// `command` split like a POSIX shell would; an empty command or an
/// unbalanced quote is refused (bad usage, found before anything starts).
/// The error shows the command with its secrets redacted.
pub(crate) fn split_command(command: &str) -> Result<Vec<String>, ServerError> {
    match shlex::split(command) {
        Some(words) if words.first().is_some_and(|w| !w.is_empty()) => Ok(words),
        _ => Err(ServerError::BadCommand(crate::redact::command(command))),
    }
}

/// Start `command` (split like a POSIX shell would) under `limit_bytes`,
/// its output going to `log`.
pub(crate) fn spawn(command: &str, limit_bytes: u64, log: &Path) -> Result<Spawned, ServerError> {
    let words = split_command(command)?;
    let (program, args) = words
        .split_first()
        .ok_or_else(|| ServerError::BadCommand(String::new()))?;
    let spec = SpawnSpec::new(program, args.to_vec(), limit_bytes, log);
    let child = clw_limit::spawn(spec)?;
    Ok(Spawned {
        child,
        command: crate::redact::command(command),
    })
}

impl Spawned {
    /// Poll `GET /ready` every 100 ms until it answers 200, the server dies,
    /// or `timeout` passes.
    pub(crate) async fn wait_ready(
        &mut self,
        addr: SocketAddr,
        authority: &str,
        base_path: &str,
        tls: Option<TlsDial>,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut request = Vec::new();
        http::write_request(
            &mut request,
            "GET",
            authority,
            format!("{base_path}/ready").as_bytes(),
            None,
        );
        let mut resp = Response::default();
        loop {
            if let Some(exit) = self.child.try_exit() {
                return Err(ServerError::DiedEarly {
                    exit: describe_exit(&exit),
                    log: log.display().to_string(),
                });
            }
            let mut conn = Conn::new(addr).with_tls(tls.clone());
            if let Ok(()) = conn.send(&request, &mut resp, Duration::from_secs(1)).await {
                if resp.status == 200 {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::NotReady {
                    timeout,
                    log: log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// summary.json's `server.exit` for `exit`, timed from `load_start`.
/// `vanished`: a watched process (not our child) whose status is unknown.
pub(crate) fn exit_summary(exit: &ExitInfo, load_start: Instant, vanished: bool) -> ServerExit {
    ServerExit {
        code: exit.code,
        signal: exit.signal,
        shell_code: (exit.code.is_some() || exit.signal.is_some()).then(|| exit.shell_code()),
        at_s: Some(
            exit.exited_at
                .saturating_duration_since(load_start)
                .as_secs_f64(),
        ),
        oom_killed: exit.oom_killed,
        emulated: exit.emulated,
        vanished,
    }
}

/// The console line for a `--server-pid` process that disappeared.
pub(crate) fn vanished_message(pid: u32, at_s: f64) -> String {
    format!(
        "ERROR: the server being watched (pid {pid}) is gone at {at_s:.1}s; the run fails (its exit status is unknown: it is not clw-cli's child)"
    )
}

/// The console lines for a server that died during the run, in the field
/// guide's words.
pub(crate) fn death_message(exit: &ExitInfo, at_s: f64, limit_bytes: u64) -> String {
    let mut lines = Vec::new();
    if exit.oom_killed {
        let how = if exit.emulated {
            "killed by clw-cli's watchdog at the limit (emulated OOM kill: no memory cgroup was available)"
        } else {
            "killed by the kernel OOM killer"
        };
        lines.push(format!(
            "FATAL: clw-auth-oom: memory allocation failed: server {how} at {at_s:.1}s (limit {} MiB)",
            limit_bytes >> 20
        ));
    }
    lines.push(format!(
        "ERROR: authentication service terminated unexpectedly (exit code {})",
        exit.shell_code()
    ));
    lines.join("\n")
}

fn describe_exit(exit: &ExitInfo) -> String {
    match (exit.code, exit.signal) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => {
            format!("killed by signal {signal}, exit code {}", exit.shell_code())
        }
        _ => "unknown status".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn death_message_uses_the_field_guides_words() {
        let exit = ExitInfo {
            code: None,
            signal: Some(9),
            oom_killed: true,
            emulated: false,
            exited_at: Instant::now(),
        };
        let msg = death_message(&exit, 41.2, 256 << 20);
        assert!(msg.contains("FATAL: clw-auth-oom"), "{msg}");
        assert!(
            msg.contains("ERROR: authentication service terminated unexpectedly (exit code 137)"),
            "{msg}"
        );
        let exit = ExitInfo {
            code: Some(1),
            signal: None,
            oom_killed: false,
            ..exit
        };
        let msg = death_message(&exit, 1.0, 1);
        assert!(
            !msg.contains("FATAL") && msg.contains("(exit code 1)"),
            "{msg}"
        );
    }

    #[test]
    fn bad_commands_are_refused() {
        let log = std::env::temp_dir().join("clw-cli-never-written.log");
        assert!(matches!(
            spawn("clw-auth 'open", 1 << 20, &log),
            Err(ServerError::BadCommand(_))
        ));
        for bad in ["   ", "", "''"] {
            assert!(
                matches!(spawn(bad, 1 << 20, &log), Err(ServerError::BadCommand(_))),
                "{bad:?}"
            );
        }
        let err = split_command("clw-auth --password 'hunter2").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }
}
