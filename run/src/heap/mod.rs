//! Heap profiles in the run folder (`heap/<t_s>.pb.gz`, pprof as served at
//! `/debug/pprof/heap`): decoded, diffed last against first by stack, and
//! ranked by the allocation sites that grew (`memory.growth_sites`).
//!
//! [`site`] states which frame of a stack is its allocation site.

mod diff;
mod pprof;
mod profile;
mod site;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use diff::HeapDiff;
pub use pprof::{Profile, ProfileBuilder};
pub use profile::{Frame, HeapProfile};

/// The run folder's subfolder of heap profiles.
pub const HEAP_DIR: &str = "heap";

/// `memory.growth_sites[]`: an allocation site and what it gained between
/// the first and the last heap profile of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GrowthSite {
    pub function: String,
    /// Source file, when the profile names one.
    pub file: Option<String>,
    pub line: Option<i64>,
    pub bytes_grown: u64,
    /// Part of the growth of all sites that grew, 0–100.
    pub share_percent: f64,
}

impl GrowthSite {
    /// `file:line` (or what of it is known), for tables and the console.
    pub fn location(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}"),
            (Some(f), None) => f.clone(),
            (None, _) => "?".into(),
        }
    }
}

/// Why a heap profile could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HeapError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Bytes that are not a pprof profile (no file involved yet).
    #[error("{0}")]
    Format(String),
}

impl HeapError {
    /// Names the file a [`HeapError::Format`] came from.
    pub(crate) fn at(self, path: &Path) -> HeapError {
        match self {
            HeapError::Format(reason) => HeapError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        }
    }
}

/// The profiles of a run folder, `heap/<t_s>.pb.gz`, by time (seconds
/// after load start, the file name). Files with other names are ignored;
/// an absent folder is an empty list.
pub fn profile_files(run_dir: &Path) -> Result<Vec<(f64, PathBuf)>, HeapError> {
    let dir = run_dir.join(HEAP_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(HeapError::Read { path: dir, source }),
    };
    let mut files: Vec<(f64, PathBuf)> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?;
            let t: f64 = name.strip_suffix(".pb.gz")?.parse().ok()?;
            t.is_finite().then_some((t, p))
        })
        .collect();
    files.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(files)
}

/// The file name of a profile taken `t_s` seconds after load start.
pub fn profile_file_name(t_s: f64) -> String {
    format!("{t_s:.3}.pb.gz")
}

/// Diffs the run folder's last profile against its first: `None` with
/// fewer than two profiles.
pub fn diff_run(run_dir: &Path) -> Result<Option<HeapDiff>, HeapError> {
    let files = profile_files(run_dir)?;
    match files.as_slice() {
        [(_, first), .., (_, last)] => Ok(Some(HeapDiff::between(
            &HeapProfile::read(first)?,
            &HeapProfile::read(last)?,
        ))),
        _ => Ok(None),
    }
}
