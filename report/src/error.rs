//! The one error type of the crate: every variant names the file (and where
//! it helps, the line) so a user can find what to fix.

use std::path::PathBuf;

/// Why a report could not be rendered.
///
/// Damaged *data* (a truncated last row, an unreadable summary.json) is not
/// an error: it becomes a notice in [`crate::Rendered`]. Errors are for
/// folders that are not run folders, input that contradicts the contract in
/// the middle of a file, and output that cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder has none of samples.csv, latency.csv, summary.json.
    #[error("{0}: not a run folder (no samples.csv, latency.csv or summary.json)")]
    NotARunFolder(PathBuf),
    /// Reading a file (or listing a folder) of the run failed: bad input.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing an output (a page, a chart, a folder for them) failed: the
    /// disk is full or the folder is read-only. Apart from [`ReportError::Io`]
    /// so that callers can tell a broken input from an output they promised
    /// and could not write (clw-cli exits 4 on this one).
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A CSV file breaks the run-folder contract before its last line.
    #[error("{path}:{line}: {reason}")]
    Csv {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    /// plotters could not draw a chart.
    #[error("chart {chart}: {reason}")]
    Chart { chart: String, reason: String },
    /// The HTML template failed to render (a bug in the crate, not the data).
    #[error("template {name}: {reason}")]
    Template { name: String, reason: String },
    /// `render_comparison` was given no runs.
    #[error("a comparison needs at least one run folder")]
    NoRuns,
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Io {
            path: path.into(),
            source,
        }
    }

    /// An output at `path` could not be written.
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ReportError::Write {
            path: path.into(),
            source,
        }
    }

    /// The failure is an output the caller asked for, not its input.
    pub fn is_output(&self) -> bool {
        matches!(self, ReportError::Write { .. })
    }
}

impl From<clw_run::RunFileError> for ReportError {
    fn from(e: clw_run::RunFileError) -> Self {
        use clw_run::RunFileError as E;
        match e {
            E::Read { path, source } => ReportError::Io { path, source },
            E::Write { path, source } => ReportError::Write { path, source },
            E::Parse { path, line, reason } => ReportError::Csv { path, line, reason },
            E::MissingColumn { path, column } => ReportError::Csv {
                path,
                line: 1,
                reason: format!("required column `{column}` missing from the header"),
            },
            E::Json { path, source } => ReportError::Csv {
                path,
                line: source.line() as u64,
                reason: source.to_string(),
            },
            E::Invalid { path, message } => ReportError::Csv {
                path,
                line: 1,
                reason: message,
            },
        }
    }
}

/// The result of reading a run-folder file that may be absent (a folder
/// written before the file existed): `Ok(None)` then, any other failure
/// an error.
pub(crate) fn unless_absent<T>(
    read: Result<T, clw_run::RunFileError>,
) -> Result<Option<T>, ReportError> {
    match read {
        Ok(v) => Ok(Some(v)),
        Err(clw_run::RunFileError::Read { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
