//! clw-cli's integration tests, one binary (linking clw-cli, clw-auth and
//! their dependencies once instead of once a file). Each module is a former
//! tests/<name>.rs and keeps its name: `cargo test -p clw-cli --test it
//! live_metrics::` runs what `--test live_metrics` did. Shared helpers are
//! in `common` (and `real`, for the services of services/); the fixtures
//! stay in tests/fixtures.

mod common;
mod real;

mod death;
mod disk_full;
mod engine;
mod failed_runs;
mod gate;
mod headers;
mod heap_profiles;
mod hostile_folders;
mod layout;
mod live_metrics;
mod loadtest_manifests;
mod memory_gate;
mod memory_sources;
mod one_folder;
mod orphans;
mod other_services;
mod real_services;
mod report;
mod scenarios;
mod secrets;
mod server_pid;
mod sessions;
mod shard;
mod signals;
mod spawn;
mod stages;
mod tls;
mod workflow;
