//! clw-run: the run folder that clw-cli writes and clw-report reads
//! (docs/run-folder.md), as one typed model.
//!
//! Every tool that reads or writes a run folder goes through these types, so
//! a field has one name, one type and one meaning everywhere:
//!
//! - [`RunSummary`]: summary.json, with its [`MemoryReport`] and [`Verdict`],
//!   its [`Model`] and [`LimitEnforcement`];
//! - [`SampleRow`] / [`SamplesWriter`] / [`read_samples`]: samples.csv;
//! - [`LatencyRow`] / [`LatencyWriter`] / [`read_latency`]: latency.csv;
//! - [`HdrLog`] / [`read_hlog`]: latency.hlog;
//! - [`ErrorsRow`] / [`ErrorsWriter`] / [`read_errors`]: errors.csv;
//! - [`analysis`]: the memory verdict, a pure function of samples.csv (plus
//!   the limit, ramp-up and OOM kill), run by clw-cli at the end of a load
//!   test and by clw-report when summary.json lacks one.
//!
//! Readers are tolerant of what a killed run leaves behind (a final CSV row
//! cut off mid-write, a partial summary.json with nulls and missing keys);
//! writers flush row by row and replace summary.json atomically.

pub mod analysis;
pub mod atomic;
pub mod baseline;
pub mod bounded;
pub mod capacity;
mod de;
mod error;
mod errors;
pub mod heap;
mod hlog;
mod latency;
pub mod lock;
mod memory;
pub mod merge;
mod samples;
mod stages;
mod summary;
mod table;
pub mod threshold;
pub mod verify;
mod words;

pub use atomic::write_atomic;
/// The methods [`LimitEnforcement::By`] names (clw-limit's, from clw-units).
pub use clw_units::Enforcement;
pub use error::RunFileError;
pub use errors::{read_errors, ErrorsRow, ErrorsWriter, ERRORS_HEADER};
pub use heap::GrowthSite;
pub use hlog::{read_hlog, read_hlog_start, HdrLog, HlogInterval};
pub use latency::{read_latency, LatencyRow, LatencyWriter, LATENCY_HEADER};
pub use memory::{MemoryReport, MemorySources, TrendReport, Verdict};
pub use samples::{
    memory_noun, read_samples, MemorySource, SampleRow, SamplesFile, SamplesWriter, SAMPLES_HEADER,
};
pub use stages::{fill_figures as fill_stage_figures, StageSummary};
pub use summary::{
    AfterDeath, Host, MergeInfo, Percentiles, Requests, RunSummary, ServerExit, ServerInfo,
    ShardInfo, StepSummary, ThresholdResult, TlsSummary, SCHEMA_VERSION,
};
pub use words::{LimitEnforcement, Model};

/// The file names inside a run folder.
pub mod files {
    pub const SUMMARY: &str = "summary.json";
    pub const SAMPLES: &str = "samples.csv";
    pub const LATENCY: &str = "latency.csv";
    pub const HLOG: &str = "latency.hlog";
    pub const ERRORS: &str = "errors.csv";
}
