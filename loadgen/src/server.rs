//! `--spawn-server CMD --memory-limit SIZE`: start the server under a real
//! memory limit (clw-limit), wait until it is ready, and report how it ended:
//! in the field guide's words for clw-auth, plainly for any other service.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use clw_limit::{ExitInfo, Limited, SpawnSpec};

use crate::load::http::{self, Conn, Response};
use crate::target::Target;
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
    #[error(
        "--ready-path `{0}`: expected a path starting with / and without spaces (e.g. /healthz)"
    )]
    BadReadyPath(String),
    #[error("bad --spawn-server command `{0}`: empty or unbalanced quotes")]
    BadCommand(String),
    #[error("cannot start the server: {0}")]
    Spawn(#[from] clw_limit::LimitError),
    #[error("the server exited before it was ready ({exit}); see {log}")]
    DiedEarly { exit: String, log: String },
    #[error("the server was not ready ({what}) within {timeout:?}{last}; see {log}")]
    NotReady {
        what: String,
        timeout: Duration,
        /// What the last poll saw, with a hint when it says what to pass.
        last: String,
        log: String,
    },
}

/// When a spawned server counts as ready: `--ready-path`, `--ready-tcp`,
/// or `GET /ready` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// `GET base_path + path` answers 2xx. `default`: the path is the
    /// default `/ready`, not one the user chose.
    Http { path: String, default: bool },
    /// The port accepts a TCP connection (a server without a readiness
    /// endpoint).
    Tcp,
}

impl Readiness {
    /// From `--ready-path` and `--ready-tcp` (clap keeps them apart); a
    /// path that cannot go in a request line is bad usage.
    pub(crate) fn from_flags(path: Option<&str>, tcp: bool) -> Result<Readiness, ServerError> {
        match (path, tcp) {
            (_, true) => Ok(Readiness::Tcp),
            (None, false) => Ok(Readiness::Http {
                path: "/ready".into(),
                default: true,
            }),
            (Some(path), false) => {
                if !path.starts_with('/')
                    || path.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(ServerError::BadReadyPath(path.to_string()));
                }
                Ok(Readiness::Http {
                    path: path.into(),
                    default: false,
                })
            }
        }
    }
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
    /// Poll the server every 100 ms as `readiness` says until it is ready,
    /// the server dies, or `timeout` passes.
    pub(crate) async fn wait_ready(
        &mut self,
        readiness: &Readiness,
        addr: SocketAddr,
        target: &Target,
        timeout: Duration,
        log: &Path,
    ) -> Result<(), ServerError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut poll = Poll::new(readiness, target);
        loop {
            if let Some(exit) = self.child.try_exit() {
                return Err(ServerError::DiedEarly {
                    exit: describe_exit(&exit),
                    log: log.display().to_string(),
                });
            }
            if poll.ready(addr).await {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServerError::NotReady {
                    what: poll.what(addr),
                    timeout,
                    last: poll.last(),
                    log: log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One readiness check, repeated, and what the last one saw.
struct Poll<'a> {
    readiness: &'a Readiness,
    /// The GET request of an HTTP readiness check.
    request: Vec<u8>,
    tls: Option<TlsDial>,
    resp: Response,
    /// The last HTTP status seen, if any answer came.
    last_status: Option<u16>,
}

impl<'a> Poll<'a> {
    fn new(readiness: &'a Readiness, target: &Target) -> Poll<'a> {
        let mut request = Vec::new();
        if let Readiness::Http { path, .. } = readiness {
            let path = format!("{}{path}", target.base_path);
            http::write_request(
                &mut request,
                "GET",
                &target.authority,
                path.as_bytes(),
                None,
            );
        }
        Poll {
            readiness,
            request,
            tls: target.dial(),
            resp: Response::default(),
            last_status: None,
        }
    }

    async fn ready(&mut self, addr: SocketAddr) -> bool {
        match self.readiness {
            Readiness::Tcp => {
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                    .await
                    .is_ok_and(|c| c.is_ok())
            }
            Readiness::Http { .. } => {
                let mut conn = Conn::new(addr).with_tls(self.tls.clone());
                let sent = conn
                    .send(&self.request, &mut self.resp, Duration::from_secs(1))
                    .await;
                if sent.is_err() {
                    return false;
                }
                self.last_status = Some(self.resp.status);
                (200..300).contains(&self.resp.status)
            }
        }
    }

    /// What readiness means, for the error.
    fn what(&self, addr: SocketAddr) -> String {
        match self.readiness {
            Readiness::Tcp => format!("{addr} accepting a TCP connection, --ready-tcp"),
            Readiness::Http { path, default } => {
                let by = if *default {
                    "the default"
                } else {
                    "--ready-path"
                };
                format!("GET {path} answering 2xx, {by}")
            }
        }
    }

    /// What the last poll saw, and what to pass when the default `/ready`
    /// does not exist on this server.
    fn last(&self) -> String {
        match (self.readiness, self.last_status) {
            (Readiness::Tcp, _) => ": the port never accepted a connection".into(),
            (Readiness::Http { .. }, None) => ": no HTTP answer".into(),
            (Readiness::Http { default, .. }, Some(status)) => {
                let mut text = format!(": the last answer was {status}");
                if *default && status == 404 {
                    text += "; the server has no /ready: pass --ready-path PATH (a path that answers 2xx, e.g. /healthz or /) or --ready-tcp (ready once the port accepts a connection)";
                }
                text
            }
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
        message: None,
    }
}

/// The console line for a `--server-pid` process that disappeared.
pub(crate) fn vanished_message(pid: u32, at_s: f64) -> String {
    format!(
        "ERROR: the server being watched (pid {pid}) is gone at {at_s:.1}s; the run fails (its exit status is unknown: it is not clw-cli's child)"
    )
}

/// Whose words a server's death is told in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Voice {
    /// clw-auth: the field guide's words (`FATAL: clw-auth-oom: ...`,
    /// `ERROR: authentication service terminated unexpectedly`), which
    /// `make leak-repro` and the README show.
    ClwAuth,
    /// The service's own log printed the guide's lines: those lines, as it
    /// wrote them, then clw-cli's reading.
    Logged(Vec<String>),
    /// Any other service: clw-cli's reading, plainly.
    Plain,
}

/// The lines of the field guide's failure a service writes itself
/// (auth-server/src/oom.rs): echoed only when its log has them.
const GUIDE_LINES: [&str; 2] = ["FATAL: clw-auth-oom:", "CRITICAL: service cannot allocate"];

/// How much of the end of server.log is searched for them.
const LOG_TAIL: u64 = 64 << 10;

impl Voice {
    /// From the spawned command (its program's file name) and the tail of
    /// its log, which clw-cli captured (server.log).
    pub(crate) fn of(program: &str, log: &Path) -> Voice {
        let logged: Vec<String> = log_tail(log)
            .lines()
            .filter(|l| GUIDE_LINES.iter().any(|g| l.starts_with(g)))
            .map(String::from)
            .collect();
        if !logged.is_empty() {
            Voice::Logged(logged)
        } else if is_clw_auth(program) {
            Voice::ClwAuth
        } else {
            Voice::Plain
        }
    }
}

/// The program of a command line is clw-auth (by its file name).
pub(crate) fn is_clw_auth(command: &str) -> bool {
    split_command(command)
        .ok()
        .and_then(|words| {
            let program = Path::new(&words[0]).file_name()?.to_str()?.to_string();
            Some(program == "clw-auth")
        })
        .unwrap_or(false)
}

fn log_tail(log: &Path) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(LOG_TAIL)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The console lines for a server that died during the run: the field
/// guide's words for clw-auth (or the service's own lines, when its log
/// printed them), else clw-cli's plain reading with the real exit code or
/// signal.
pub(crate) fn death_message(
    exit: &ExitInfo,
    at_s: f64,
    limit_bytes: u64,
    pid: Option<u32>,
    voice: &Voice,
) -> String {
    let mut lines = Vec::new();
    match voice {
        Voice::ClwAuth => {
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
        }
        Voice::Logged(logged) => {
            lines.extend(logged.iter().cloned());
            lines.push(plain_death(exit, at_s, limit_bytes, pid));
        }
        Voice::Plain => lines.push(plain_death(exit, at_s, limit_bytes, pid)),
    }
    lines.join("\n")
}

/// "clw-cli: the server (pid 4242) was killed by the kernel OOM killer at
/// 55.2s (exit code 137, limit 256 MiB)".
fn plain_death(exit: &ExitInfo, at_s: f64, limit_bytes: u64, pid: Option<u32>) -> String {
    let who = match pid {
        Some(pid) => format!("the server (pid {pid})"),
        None => "the server".into(),
    };
    let limit = if limit_bytes > 0 {
        format!(", limit {} MiB", limit_bytes >> 20)
    } else {
        String::new()
    };
    let code = exit.shell_code();
    let how = match (exit.oom_killed, exit.emulated, exit.code, exit.signal) {
        (true, false, ..) => "was killed by the kernel OOM killer".to_string(),
        (true, true, ..) => "was killed by clw-cli's watchdog at its memory limit (an emulated OOM kill: no memory cgroup was available)".to_string(),
        (false, _, Some(c), _) => format!("exited with status {c}"),
        (false, _, None, Some(signal)) => format!("was killed by {}", signal_name(signal)),
        _ => "ended (status unknown)".to_string(),
    };
    format!("clw-cli: {who} {how} at {at_s:.1}s (exit code {code}{limit})")
}

/// "signal 9 (SIGKILL)".
fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGHUP => "SIGHUP",
        _ => return format!("signal {signal}"),
    };
    format!("signal {signal} ({name})")
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
    fn death_message_uses_the_field_guides_words_for_clw_auth_only() {
        let exit = ExitInfo {
            code: None,
            signal: Some(9),
            oom_killed: true,
            emulated: false,
            exited_at: Instant::now(),
        };
        let msg = death_message(&exit, 41.2, 256 << 20, Some(7), &Voice::ClwAuth);
        assert_eq!(
            msg,
            "FATAL: clw-auth-oom: memory allocation failed: server killed by the kernel OOM killer at 41.2s (limit 256 MiB)\n\
             ERROR: authentication service terminated unexpectedly (exit code 137)"
        );
        // Another service: clw-cli's reading, none of clw-auth's words.
        let msg = death_message(&exit, 55.2, 256 << 20, Some(4242), &Voice::Plain);
        assert_eq!(
            msg,
            "clw-cli: the server (pid 4242) was killed by the kernel OOM killer at 55.2s (exit code 137, limit 256 MiB)"
        );
        let killed = ExitInfo {
            oom_killed: false,
            ..exit.clone()
        };
        let msg = death_message(&killed, 3.0, 0, Some(9), &Voice::Plain);
        assert_eq!(
            msg,
            "clw-cli: the server (pid 9) was killed by signal 9 (SIGKILL) at 3.0s (exit code 137)"
        );
        let exited = ExitInfo {
            code: Some(1),
            signal: None,
            oom_killed: false,
            ..exit.clone()
        };
        let msg = death_message(&exited, 1.0, 1 << 20, Some(9), &Voice::ClwAuth);
        assert!(
            !msg.contains("FATAL") && msg.contains("(exit code 1)"),
            "{msg}"
        );
        let msg = death_message(&exited, 1.0, 1 << 20, Some(9), &Voice::Plain);
        assert_eq!(
            msg,
            "clw-cli: the server (pid 9) exited with status 1 at 1.0s (exit code 1, limit 1 MiB)"
        );
    }

    #[test]
    fn the_voice_is_the_logs_lines_else_clw_auths_by_name_else_plain() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        std::fs::write(&log, "listening on 127.0.0.1:1\n").unwrap();
        assert_eq!(
            Voice::of("/opt/bin/clw-auth --port 1", &log),
            Voice::ClwAuth
        );
        assert_eq!(Voice::of("node server.js", &log), Voice::Plain);
        assert_eq!(Voice::of("clw-authx", &log), Voice::Plain);
        assert_eq!(
            Voice::of("node server.js", &dir.path().join("none")),
            Voice::Plain
        );
        std::fs::write(
            &log,
            "ok\nFATAL: clw-auth-oom: memory allocation failed\nCRITICAL: service cannot allocate 8192 bytes for session cache\n",
        )
        .unwrap();
        let voice = Voice::of("node server.js", &log);
        assert_eq!(
            voice,
            Voice::Logged(vec![
                "FATAL: clw-auth-oom: memory allocation failed".into(),
                "CRITICAL: service cannot allocate 8192 bytes for session cache".into()
            ])
        );
        let exit = ExitInfo {
            code: None,
            signal: Some(6),
            oom_killed: false,
            emulated: false,
            exited_at: Instant::now(),
        };
        let msg = death_message(&exit, 2.0, 0, Some(5), &voice);
        assert!(
            msg.starts_with("FATAL: clw-auth-oom: memory allocation failed\nCRITICAL:")
                && msg.ends_with("clw-cli: the server (pid 5) was killed by signal 6 (SIGABRT) at 2.0s (exit code 134)"),
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
