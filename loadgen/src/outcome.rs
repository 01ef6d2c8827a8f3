//! What a command ends with: an [`Outcome`] (the exit code and where the
//! results are) or an [`Error`] that maps to one. Its own module so the
//! commands (run.rs's load test and report, gate/) share it without
//! importing each other.

use std::path::PathBuf;

/// What a finished command produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// 0 pass, 1 the run failed (a threshold, or the run itself: the
    /// server died, no request succeeded), 130 / 143 interrupted by SIGINT
    /// / SIGTERM.
    pub exit_code: i32,
    /// The run folder (load tests) or report folder.
    pub out_dir: Option<PathBuf>,
    /// Whether the run passed: every threshold passed (true when there
    /// were none) and nothing failed the run itself (summary.json
    /// `failures`).
    pub passed: bool,
}

/// Why a command could not do its job; [`Error::exit_code`] maps it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input, found before any load was sent (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The target is unreachable or setup failed (exit 3).
    #[error("{0}")]
    Setup(String),
    /// An output the command promised (summary.json, the report, a CSV the
    /// load wrote) could not be written: a full disk, a read-only folder
    /// (exit 4). The run may have measured everything; its folder is not
    /// whole, so it never passes.
    #[error("outputs not written: {0}")]
    Output(String),
    /// SIGINT or SIGTERM (named) came before the load started (exit 128 +
    /// the signal: 130, 143).
    #[error("interrupted by {0} before the load started")]
    Interrupted(&'static str, i32),
}

impl Error {
    /// 2 for bad usage or input, 3 for an unreachable target or setup
    /// failure, 4 for an output not written, 130 / 143 when interrupted by
    /// SIGINT / SIGTERM.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => 2,
            Error::Setup(_) => 3,
            Error::Output(_) => 4,
            Error::Interrupted(_, code) => *code,
        }
    }
}

/// A run-folder file's failure: one that cannot be written is an output
/// not written (4); one that cannot be read or breaks its contract is bad
/// input (2), for every command that reads run folders (report, merge,
/// gate).
pub(crate) fn run_file(e: clw_run::RunFileError) -> Error {
    match e {
        clw_run::RunFileError::Write { .. } => Error::Output(e.to_string()),
        other => usage(other),
    }
}

/// A folder another clw-cli is writing is refused at start (2); one that
/// cannot be locked at all is a setup failure (3).
pub(crate) fn folder_lock(e: clw_run::lock::LockError) -> Error {
    match e {
        clw_run::lock::LockError::Busy { .. } => usage(e),
        clw_run::lock::LockError::Io { .. } => setup(e),
    }
}

/// Takes the lock on `dir`, creating it first (see [`clw_run::lock`]).
pub(crate) fn lock_folder(dir: &std::path::Path) -> Result<clw_run::lock::FolderLock, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| setup(format!("cannot create {}: {e}", dir.display())))?;
    clw_run::lock::FolderLock::acquire(dir).map_err(folder_lock)
}

pub(crate) fn usage(e: impl std::fmt::Display) -> Error {
    Error::Usage(e.to_string())
}

pub(crate) fn setup(e: impl std::fmt::Display) -> Error {
    Error::Setup(e.to_string())
}
