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

/// A failure's cause, kept whole: its message is what the user reads, its
/// type and `source()` chain stay for whoever handles or debugs it.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a command could not do its job; [`Error::exit_code`] maps it. The
/// modules' own error types (thiserror enums) become one of these at the
/// command's edge, in this module's `From` impls and helpers, so each
/// kind of failure has its exit code decided in one place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input, found before any load was sent (exit 2).
    #[error(transparent)]
    Usage(Cause),
    /// The target is unreachable or setup failed (exit 3).
    #[error(transparent)]
    Setup(Cause),
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

/// A flag's value refused, as `--flag: why`: the flag named, the reason
/// (a module's own error) kept as the source.
#[derive(Debug, thiserror::Error)]
#[error("{flag}: {source}")]
pub(crate) struct FlagError {
    pub(crate) flag: &'static str,
    #[source]
    pub(crate) source: Cause,
}

impl FlagError {
    pub(crate) fn new(flag: &'static str, source: impl Into<Cause>) -> FlagError {
        FlagError {
            flag,
            source: source.into(),
        }
    }
}

/// Bad usage or input (exit 2), its cause kept.
pub(crate) fn usage(e: impl Into<Cause>) -> Error {
    Error::Usage(e.into())
}

/// A setup failure (exit 3), its cause kept.
pub(crate) fn setup(e: impl Into<Cause>) -> Error {
    Error::Setup(e.into())
}

/// A report's failure: a folder that is no run, a file that cannot be read
/// or breaks its contract is bad input (2); a page or chart that cannot be
/// written is an output not written (4); a chart or template that fails to
/// render is a setup failure (3).
impl From<clw_report::ReportError> for Error {
    fn from(e: clw_report::ReportError) -> Error {
        use clw_report::ReportError as R;
        match e {
            R::NotARunFolder(_) | R::Io { .. } | R::Csv { .. } | R::NoRuns => usage(e),
            R::Write { .. } => Error::Output(e.to_string()),
            R::Chart { .. } | R::Template { .. } => setup(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    #[test]
    fn an_error_keeps_its_type_and_cause_and_reads_as_before() {
        let parsed = crate::shard::parse_start_at("tomorrow").unwrap_err();
        let err = usage(parsed);
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.to_string()
                .starts_with("`tomorrow` is not an RFC 3339 UTC time"),
            "{err}"
        );
        // The module's own type is still there, and its cause below it.
        let Error::Usage(cause) = &err else {
            panic!("{err:?}")
        };
        assert!(cause.downcast_ref::<crate::shard::ShardError>().is_some());
        assert!(err.source().is_some(), "humantime's error under it");
        // A bare message still works, and maps as its variant says.
        assert_eq!(setup("no route").exit_code(), 3);
        assert_eq!(setup("no route").to_string(), "no route");
    }
}
