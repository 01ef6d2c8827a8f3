//! clw-cli: the load generator and memory harness for clw-auth.
//!
//! `Opts` and `run()` live here, not in main.rs, so tests drive the whole
//! command in-process:
//!
//! ```no_run
//! # async fn demo() {
//! use clap::Parser;
//! let opts = clw_cli::Opts::try_parse_from(["clw-cli", "auth", "load-test", "--target", "http://127.0.0.1:8443"]).unwrap();
//! let outcome = clw_cli::run(opts).await;
//! # }
//! ```

// The stages of a load test: `scenario` is read, `target` (and optionally
// `server`) is set up, `load` runs while `memory` is sampled, then
// `results` are written. `load_test` strings them together.
mod load;
mod load_test;
mod memory;
mod results;
mod scenario;
mod server;
mod target;
mod tls;

// Top-level concerns the stages share, and the other commands.
mod command;
mod connect_to;
mod dhat;
mod escape;
mod exporter;
mod gate;
mod merge;
mod opts;
mod outcome;
mod proctree;
mod redact;
pub mod shard;
mod signals;
mod watched;

pub use command::run;
pub use connect_to::ConnectTo;
pub use memory::MemoryAggregate;
pub use opts::{
    AuthCommand, CapacityOpts, Command, DhatOpts, Expect, GateOpts, LoadTestOpts, MergeOpts,
    OnServerExit, Opts, ReportOpts, StageFlag, VerifyOpts,
};
pub use outcome::{Error, Outcome};
pub use scenario::{check_file, check_str, HeaderFlag, ScenarioError, ScenarioOutline};
