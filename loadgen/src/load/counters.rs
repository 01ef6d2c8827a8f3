//! Cumulative request counters shared by the load engine (writer) and the
//! memory sampler (reader), so each sample row can carry the load that was
//! running when memory was measured.

use std::sync::atomic::AtomicU64;

/// Cumulative counts since load start; readers diff two snapshots.
#[derive(Debug, Default)]
pub(crate) struct LoadCounters {
    /// Requests that completed (any status, including errors).
    pub(crate) completed: AtomicU64,
    /// Requests that failed (transport error, timeout, or unexpected status).
    pub(crate) failed: AtomicU64,
}
