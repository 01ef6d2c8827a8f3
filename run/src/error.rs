//! Why a run-folder file could not be read or written: always with the path,
//! and for CSV with the line, so the user can open the file at the fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A CSV row or cell that breaks the contract (not a cut-off last row,
    /// which readers drop and report instead).
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: PathBuf,
        line: u64,
        reason: String,
    },
    #[error("{path}: no `{column}` column in the header")]
    MissingColumn { path: PathBuf, column: &'static str },
    #[error("{path} is not valid JSON for {}: {source}", json_kind(path))]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// Valid JSON that breaks the file's contract.
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

/// What a JSON file is, from its name: summary.json, else a baseline.
fn json_kind(path: &std::path::Path) -> &'static str {
    if path.file_name().is_some_and(|n| n == "summary.json") {
        "summary.json"
    } else {
        "a baseline"
    }
}

impl RunFileError {
    pub(crate) fn read(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RunFileError {
        let path = path.to_path_buf();
        move |source| RunFileError::Read { path, source }
    }

    pub(crate) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> RunFileError {
        let path = path.to_path_buf();
        move |source| RunFileError::Write { path, source }
    }
}
