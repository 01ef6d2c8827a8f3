//! The results stage: what the run tells the user and leaves on disk.
//!
//! [`collector`] merges the workers' per-second stats and writes
//! latency.csv / latency.hlog through [`output`], [`progress`] prints the
//! live line, [`summary`] builds summary.json, and [`console`] renders the
//! end-of-run report. File formats are clw-run's (docs/run-folder.md).

pub(crate) mod collector;
pub(crate) mod console;
pub(crate) mod output;
pub(crate) mod progress;
pub(crate) mod summary;
