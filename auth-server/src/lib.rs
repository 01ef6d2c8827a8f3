//! clw-auth: an HTTP authentication service whose session cache either
//! reproduces the field guide's `clw-auth-oom` root causes (`leaky`) or
//! stays bounded by count, bytes, time and heap budget (`fixed`).
//!
//! The library holds everything but the global allocator, which is set in
//! `main.rs` only, so that tests and the load generator can embed the
//! server without inheriting an allocator choice.

pub mod config;
pub mod units;

pub use config::{CacheMode, Config, EvictionPolicy, LeakKind};
pub mod cache;
pub mod memory;
pub mod oom;
pub mod token;
pub mod users;
