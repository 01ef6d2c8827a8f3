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

mod collector;
mod console;
mod counters;
mod dhat;
mod engine;
mod gate;
mod http;
mod memory;
mod opts;
mod output;
mod progress;
mod redact;
mod run;
mod sampler;
mod scenario;
mod server;
mod signals;
mod stats;
mod summary;
mod target;
mod vu;
mod watched;

pub use opts::{
    AuthCommand, Command, DhatOpts, GateOpts, LoadTestOpts, OnServerExit, Opts, ReportOpts,
};
pub use run::{run, Error, Outcome};
pub use scenario::{check_file, check_str, ScenarioError, ScenarioOutline};
