//! clw-limit: run a process under a real memory limit and report how it ended.
//!
//! The field guide's failure is a container killed by the kernel's OOM killer
//! at its memory limit (exit 137). To reproduce that on a developer's machine
//! without Docker, [`spawn`] starts the command as a child inside a fresh
//! memory cgroup with the limit set and swap off, trying in order:
//!
//! 1. cgroup v2 (`memory.max`, `memory.swap.max`) where a writable subtree with
//!    the memory controller exists;
//! 2. cgroup v1 (`memory.limit_in_bytes`, `memory.memsw.limit_in_bytes`,
//!    `memory.swappiness` 0);
//! 3. `systemd-run --scope -p MemoryMax=... -p MemorySwapMax=0`;
//! 4. a watchdog thread that polls the child's RSS and sends SIGKILL at the
//!    limit; such a kill is marked [`ExitInfo::emulated`] so every output can
//!    say the OOM kill was not the kernel's.
//!
//! With a cgroup the child joins it between fork and exec, so not one
//! allocation of the command escapes the limit. An exit counts as an OOM kill
//! when the cgroup's `oom_kill` counter rose, or when the watchdog fired.

mod cgroup;
mod child;
mod container;
mod proc_mem;
mod proc_stat;
mod reaper;
mod systemd;

use std::path::PathBuf;
use std::time::Instant;

pub use cgroup::UsageProbe;
pub use cgroup::Version as CgroupVersion;
pub use child::Limited;
pub use container::{
    find_container, find_container_in, CgroupMemory, CgroupReading, ContainerError, CGROUP_ROOT,
};
pub use proc_mem::{ProcMem, ProcMemory};
pub use proc_stat::{parse_stat, ProcStat};

/// How the memory limit is enforced, reported as `server.limit_enforcement`:
/// clw-units holds the enum so that clw-run can record it without
/// depending on this crate.
pub use clw_units::Enforcement;

/// What to run and under which limit.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// The program (a path, or a name looked up in PATH).
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment variables on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// Memory limit in bytes (RSS + page cache charged to the cgroup).
    pub limit_bytes: u64,
    /// stdout and stderr of the child both go here (created or truncated).
    pub log_path: PathBuf,
    /// Use only this method (fail if it is unavailable) instead of trying all.
    pub prefer: Option<Enforcement>,
}

impl SpawnSpec {
    /// A spec for `program args...` with no extra env and no preference.
    pub fn new(
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<String>>,
        limit_bytes: u64,
        log_path: impl Into<PathBuf>,
    ) -> SpawnSpec {
        SpawnSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            limit_bytes,
            log_path: log_path.into(),
            prefer: None,
        }
    }

    /// A spec from a shell-like command line (`"clw-auth --config x.json"`),
    /// split on whitespace with simple single/double quoting.
    pub fn from_command_line(
        command: &str,
        limit_bytes: u64,
        log_path: impl Into<PathBuf>,
    ) -> Result<SpawnSpec, LimitError> {
        let words = split_command_line(command)?;
        let (program, args) = words.split_first().ok_or_else(|| LimitError::BadCommand {
            command: command.to_string(),
            reason: "it is empty".into(),
        })?;
        Ok(SpawnSpec::new(
            program,
            args.to_vec(),
            limit_bytes,
            log_path,
        ))
    }
}

/// How the child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitInfo {
    /// Exit code when it exited normally.
    pub code: Option<i32>,
    /// Signal number when a signal killed it (9 for an OOM kill).
    pub signal: Option<i32>,
    /// The cgroup's oom_kill count rose, or the watchdog killed it.
    pub oom_killed: bool,
    /// The kill was the watchdog's, not the kernel's.
    pub emulated: bool,
    /// When the exit was observed (for `server.exit.at_s`).
    pub exited_at: Instant,
}

impl ExitInfo {
    /// The exit status as a shell (and Docker) reports it: the code, or 128 +
    /// signal, so an OOM kill reads as 137 like in the field guide.
    pub fn shell_code(&self) -> i32 {
        match (self.code, self.signal) {
            (Some(code), _) => code,
            (None, Some(signal)) => 128 + signal,
            (None, None) => -1,
        }
    }
}

/// Failures of [`spawn`] and of reading memory figures.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("bad server command `{command}`: {reason}")]
    BadCommand { command: String, reason: String },
    #[error("cannot open the server log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{method} limit unavailable: {reason}")]
    Unavailable { method: Enforcement, reason: String },
    #[error("the memory limit must be above 0 bytes")]
    ZeroLimit,
}

/// Removes the memory cgroups an earlier clw-limit left behind when it was
/// killed (SIGKILL: no drop ran), killing any process still inside first:
/// a wrapper's server that outlived its harness would otherwise keep the
/// port and the cgroup. Call it before checking that a port is free; a
/// spawn does it too. Returns the cgroups removed.
pub fn sweep_leftover_cgroups() -> Vec<std::path::PathBuf> {
    cgroup::sweep()
}

/// Start `spec.program` under `spec.limit_bytes`, with the first method that
/// works (or only `spec.prefer`). The reasons earlier methods were skipped are
/// in [`Limited::notes`].
pub fn spawn(spec: SpawnSpec) -> Result<Limited, LimitError> {
    if spec.limit_bytes == 0 {
        return Err(LimitError::ZeroLimit);
    }
    let methods: Vec<Enforcement> = match spec.prefer {
        Some(method) => vec![method],
        None => Enforcement::ORDER.to_vec(),
    };
    let mut notes = Vec::new();
    let mut last_err = None;
    for method in methods {
        match child::spawn_with(&spec, method) {
            Ok(mut limited) => {
                limited.set_notes(notes);
                return Ok(limited);
            }
            Err(err @ (LimitError::Log { .. } | LimitError::BadCommand { .. })) => return Err(err),
            Err(err) => {
                tracing::debug!(%method, error = %err, "memory limit method skipped");
                notes.push(err.to_string());
                last_err = Some(err);
            }
        }
    }
    Err(last_err.unwrap_or(LimitError::ZeroLimit))
}

/// Split a command line on whitespace, honouring '...' and "..." quoting.
fn split_command_line(command: &str) -> Result<Vec<String>, LimitError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for ch in command.chars() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(ch);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(LimitError::BadCommand {
            command: command.to_string(),
            reason: format!("unclosed {q} quote"),
        });
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_splits_with_quotes() {
        let words = split_command_line(r#"clw-auth --config "my dir/x.json" -v 'a b'"#).unwrap();
        assert_eq!(
            words,
            ["clw-auth", "--config", "my dir/x.json", "-v", "a b"]
        );
        assert!(split_command_line("x 'open").is_err());
        assert!(SpawnSpec::from_command_line("   ", 1, "/tmp/x").is_err());
    }

    #[test]
    fn shell_code_is_128_plus_signal() {
        let exit = ExitInfo {
            code: None,
            signal: Some(9),
            oom_killed: true,
            emulated: false,
            exited_at: Instant::now(),
        };
        assert_eq!(exit.shell_code(), 137);
        let exit = ExitInfo {
            code: Some(3),
            signal: None,
            ..exit
        };
        assert_eq!(exit.shell_code(), 3);
    }
}
