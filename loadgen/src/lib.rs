//! clw-cli: the load generator and memory harness for clw-auth.
//!
//! `Opts` and `run()` live here, not in main.rs, so tests drive the whole
//! command in-process.

mod analysis;
mod counters;
mod sampler;
mod scenario;
