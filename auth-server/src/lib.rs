//! clw-auth: an HTTP authentication service whose session cache either
//! reproduces the field guide's `clw-auth-oom` root causes (`leaky`) or
//! stays bounded by count, bytes, time and heap budget (`fixed`).
//!
//! Layout, after mini-redis: [`server`] (listener, connections, shutdown),
//! `routes` (handlers), [`state`] (what connections share), [`cache`] (the
//! session cache, fixed and leaky), `tasks` (cleanup, memory monitor,
//! purge), `heap` (the heap budget's decisions), [`config`], [`users`], [`token`], [`memory`], [`metrics`].
//!
//! The library holds everything but the global allocator, which is set in
//! `main.rs` only, so tests and the load generator can embed the server
//! without inheriting an allocator choice.

mod admin;
pub mod cache;
pub mod config;
mod connections;
pub mod error;
mod heap;
mod input;
pub mod memory;
pub mod metrics;
pub mod oom;
pub mod profiling;
mod routes;
pub mod server;
pub mod state;
mod tasks;
#[cfg(test)]
mod test_log;
mod throttle;
mod tls;
pub mod token;
pub mod users;

pub use clw_units as units;
pub use config::{CacheMode, Config, EvictionPolicy, LeakKind};
pub use server::{Server, ServerError, ServerHandle};
