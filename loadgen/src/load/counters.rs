//! Cumulative request counters shared by the load engine (writer) and the
//! memory sampler (reader), so each sample row can carry the load that was
//! running when memory was measured; and the number of virtual users
//! running, for the live metrics.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Cumulative counts since load start; readers diff two snapshots.
#[derive(Debug, Default)]
pub(crate) struct LoadCounters {
    /// Requests that completed (any status, including errors).
    pub(crate) completed: AtomicU64,
    /// Requests that failed (transport error, timeout, or unexpected status).
    pub(crate) failed: AtomicU64,
    /// Virtual users past their ramp-up start and not yet finished. Changed
    /// twice per user, never per request.
    active_users: AtomicU32,
}

impl LoadCounters {
    /// Count a virtual user as running until the guard is dropped.
    pub(crate) fn user_running(&self) -> RunningUser<'_> {
        self.active_users.fetch_add(1, Ordering::Relaxed);
        RunningUser(self)
    }

    /// Virtual users running now.
    pub(crate) fn active_users(&self) -> u32 {
        self.active_users.load(Ordering::Relaxed)
    }
}

/// One running virtual user; see [`LoadCounters::user_running`].
pub(crate) struct RunningUser<'a>(&'a LoadCounters);

impl Drop for RunningUser<'_> {
    fn drop(&mut self) {
        self.0.active_users.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn running_users_count_until_dropped() {
        let c = LoadCounters::default();
        let a = c.user_running();
        let b = c.user_running();
        assert_eq!(c.active_users(), 2);
        drop(a);
        assert_eq!(c.active_users(), 1);
        drop(b);
        assert_eq!(c.active_users(), 0);
    }
}
