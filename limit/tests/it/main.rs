//! clw-limit's integration tests, one binary (one link instead of one a
//! file). Each module is a former tests/<name>.rs and keeps its name
//! (`cargo test -p clw-limit --test it stale::`).

mod harness_death;
mod limits;
mod stale;
