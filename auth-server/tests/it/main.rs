//! clw-auth's integration tests that run on the system allocator, one
//! binary (one link instead of one a file). Each module is a former
//! tests/<name>.rs and keeps its name (`cargo test -p clw-auth --test it
//! promtool::`).
//!
//! The files that set their own `#[global_allocator]` stay binaries of
//! their own (tests/heap.rs, heap_profile.rs, leaks.rs, tls.rs,
//! dhat_heap.rs): a process has one allocator, and each of them reads or
//! profiles the whole process's heap, which other tests running beside
//! them in one process would disturb.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod binary;
mod config_errors;
mod connections;
mod labels;
mod limits;
mod profiles;
mod promtool;
mod shutdown;
mod strict_input;
mod throttle;
