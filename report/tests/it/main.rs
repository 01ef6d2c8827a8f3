//! clw-report's integration tests, one binary (one link instead of one a
//! file). Each module is a former tests/<name>.rs and keeps its name
//! (`cargo test -p clw-report --test it render::`); shared run-folder
//! builders are in `common`.

mod common;

mod atomic;
mod heap_growth;
mod render;
mod stages;
mod verdict_agrees;
