//! Heap profiles in the run folder (`heap/<t_s>.pb.gz`, pprof as served at
//! `/debug/pprof/heap`): decoded, diffed last against first by stack, and
//! ranked by the allocation sites that grew (`memory.growth_sites`).
//!
//! [`site`] states which frame of a stack is its allocation site.
//!
//! [`dhat`] reads the other heap profile clw knows, DHAT's JSON
//! (`dhat-heap.json`, `clw-cli dhat`).

pub mod dhat;
mod diff;
mod pprof;
mod profile;
mod site;
mod symbolize;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use diff::HeapDiff;
pub use pprof::{Profile, ProfileBuilder};
pub use profile::{Frame, HeapProfile};
pub use symbolize::{
    needs_symbols, profile_binary, symbolize, SymbolizeError, Symbolized, Symbolizer,
};

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
    #[error(transparent)]
    Symbolize(#[from] SymbolizeError),
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// A profile file of the run folder, read as every run-folder file is
/// ([`crate::bounded::read_capped`]: a regular file, not through a link,
/// at most [`crate::bounded::PROFILE_CAP`]), so `heap/1.000.pb.gz ->
/// /dev/zero` or a FIFO there is an error naming it, not a hang.
pub(crate) fn read_profile_file(path: &Path) -> Result<Vec<u8>, HeapError> {
    crate::bounded::read_capped(path, crate::bounded::PROFILE_CAP).map_err(|e| match e {
        crate::RunFileError::Read { path, source } => HeapError::Read { path, source },
        other => HeapError::Corrupt {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    })
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

/// What [`symbolize_run`] did.
#[derive(Debug, Default)]
pub struct RunSymbols {
    /// Profiles rewritten with names.
    pub files: usize,
    /// The binary the names came from, when one was needed.
    pub binary: Option<PathBuf>,
    pub named: usize,
    pub unknown: usize,
}

/// Symbolizes, in place, every profile of the run folder that has unnamed
/// addresses (clw-auth serves them so; see [`Symbolizer`]), from `binary`
/// or else the executable the first such profile names. Each file is
/// rewritten whole (temp file and rename), so a reader never sees half a
/// profile and a failure leaves the unsymbolized one, which pprof tools
/// can still read given the binary.
pub fn symbolize_run(run_dir: &Path, binary: Option<&Path>) -> Result<RunSymbols, HeapError> {
    let mut done = RunSymbols::default();
    let mut sym: Option<Symbolizer> = None;
    for (_, path) in profile_files(run_dir)? {
        let body = read_profile_file(&path)?;
        let mut profile = Profile::decode_bytes(&body).map_err(|e| e.at(&path))?;
        if !needs_symbols(&profile) {
            continue;
        }
        let sym = match &mut sym {
            Some(sym) => sym,
            None => {
                let wanted = match binary {
                    Some(b) => b.to_path_buf(),
                    None => profile_binary(&profile)?.0,
                };
                sym.insert(Symbolizer::open(&wanted)?)
            }
        };
        let named = symbolize(&mut profile, sym)?;
        done.named += named.named;
        done.unknown += named.unknown;
        done.binary = Some(sym.path().to_path_buf());
        if named.named > 0 {
            crate::atomic::write_atomic(&path, &profile.to_gzip())
                .map_err(|source| HeapError::Write { path, source })?;
            done.files += 1;
        }
    }
    Ok(done)
}
