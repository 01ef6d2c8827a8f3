//! clw-run's integration tests, one binary (one link instead of one a
//! file). Each module is a former tests/<name>.rs and keeps its name
//! (`cargo test -p clw-run --test it contract::`); the run folders they
//! read stay in tests/fixtures.

mod contract;
mod heap;
