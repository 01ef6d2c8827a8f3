//! The load stage: offering the scenario's requests to the target.
//!
//! [`plan`] is what every worker shares (the run's settings and each
//! worker's per-thread state), [`engine`] starts the worker threads,
//! [`vu`] is one virtual user running iterations over an [`http`]
//! connection (over a [`stream`], TCP or TLS), [`stats`] records each request's outcome and latency (those sent after
//! the server's [`death`] apart), and
//! [`counters`] are the running totals the memory sampler reads.
//! [`sched`] keeps the workers from preempting a server on the same cores.
//! [`shape`] resolves the load's shape from the scenario and the flags,
//! and [`stages`] answers, for a load that changes over time, how many
//! users run and when each iteration is due at any moment.
//! Nothing here knows about memory or result files: the engine hands its
//! per-second [`engine::WorkerMsg`]s to the results stage.

pub(crate) mod counters;
pub(crate) mod death;
pub(crate) mod engine;
pub(crate) mod http;
pub(crate) mod jar;
pub(crate) mod plan;
pub(crate) mod redirect;
pub(crate) mod sched;
pub(crate) mod shape;
pub(crate) mod stages;
pub(crate) mod stats;
pub(crate) mod stream;
pub(crate) mod vu;
