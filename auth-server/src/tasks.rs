//! Background work: the cleanup sweep, the memory monitor (pressure and the
//! heap budget) and the periodic jemalloc purge. Each is a loop on its own
//! interval, aborted when the server stops.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{interval, MissedTickBehavior};

use crate::memory::{alloc_stats, purge, rss_bytes};
use crate::state::State;
use crate::units::format_size;

/// The running loops; dropping this stops them.
pub(crate) struct Background(Vec<JoinHandle<()>>);

impl Background {
    /// Stops the loops and waits until they are gone (and with them their
    /// references to the state).
    pub(crate) async fn stop(mut self) {
        for task in std::mem::take(&mut self.0) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn every(
    period: Duration,
    state: &Arc<State>,
    mut tick: impl FnMut(&State) + Send + 'static,
) -> JoinHandle<()> {
    let state = state.clone();
    tokio::spawn(async move {
        let mut timer = interval(period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        timer.tick().await; // the first tick is immediate
        loop {
            timer.tick().await;
            tick(&state);
        }
    })
}

/// Starts the loops for `state`.
pub(crate) fn start(state: &Arc<State>) -> Background {
    let cfg = &state.config;
    let cleanup = every(cfg.session.cache.cleanup_interval, state, |s| {
        let removed = s.cache.cleanup();
        if removed > 0 {
            tracing::debug!(removed, "cleanup removed expired sessions");
        }
    });
    let gc = every(cfg.memory.gc_frequency, state, |_| purge());
    let monitor = every(cfg.memory.monitor_interval, state, check_memory);
    Background(vec![cleanup, gc, monitor])
}

/// One memory check: pressure transitions are logged with the guide's
/// code, and a heap over `max_heap_size` is dealt with by [`crate::heap`].
pub(crate) fn check_memory(s: &State) {
    let rss = rss_bytes().unwrap_or(0);
    if s.record_memory(rss) {
        let percent = rss as f64 * 100.0 / s.limit.bytes.max(1) as f64;
        if s.under_pressure() {
            tracing::warn!(
                code = "clw-memory-pressure",
                rss_bytes = rss,
                limit_bytes = s.limit.bytes,
                "clw-memory-pressure: RSS {} is {percent:.1}% of the {} limit (threshold {}%); /ready reports 503",
                format_size(rss),
                format_size(s.limit.bytes),
                s.config.memory.pressure_threshold
            );
        } else {
            tracing::info!(
                rss_bytes = rss,
                "memory pressure cleared: RSS {} ({percent:.1}% of limit)",
                format_size(rss)
            );
        }
    }
    enforce_heap_budget(s, alloc_stats().allocated);
}

/// The heap budget step of [`check_memory`], given the heap's size (see
/// [`crate::heap`]: sessions are evicted only when that can help).
pub(crate) fn enforce_heap_budget(s: &State, allocated: u64) {
    if let Some(budget) = s.config.memory.max_heap_size {
        s.heap.check(allocated, budget, &s.cache);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::memory::{LimitSource, MemoryLimit};
    use crate::test_log::logged;
    use crate::token::issue;
    use crate::users::UserStore;

    const KIB: u64 = 1024;

    /// A server state whose heap budget is `budget`, holding `sessions`
    /// sessions of `claims` bytes of claims each.
    fn state(budget: u64, sessions: usize, claims: usize) -> State {
        let mut cfg = Config::for_tests();
        cfg.users.count = 0;
        cfg.memory.max_heap_size = Some(budget);
        let users = UserStore::from_config(&cfg.users).unwrap();
        let limit = MemoryLimit {
            bytes: 1 << 30,
            source: LimitSource::Config,
        };
        let s = State::new(cfg, users, limit);
        let claims = if claims == 0 {
            String::new()
        } else {
            format!("{{\"p\":\"{}\"}}", "x".repeat(claims - 8))
        };
        for _ in 0..sessions {
            let (_, d) = issue();
            s.cache
                .insert(d, Arc::from("alice"), claims.as_str().into())
                .unwrap();
        }
        s
    }

    #[test]
    fn sessions_are_not_evicted_for_heap_the_cache_does_not_hold() {
        // The probe: 200 MB of metric labels over a 1 MiB budget, and
        // sessions whose claims are empty (evicting them frees nothing).
        let s = state(MIB, 100, 0);
        let log = logged(|| {
            for _ in 0..50 {
                enforce_heap_budget(&s, 200 * MIB);
            }
        });
        assert_eq!(s.cache.stats().entries, 100, "sessions were evicted");
        assert_eq!(log.lines().count(), 1, "said once, not every check:\n{log}");
        assert!(log.contains("heap-outside-cache"), "{log}");
        assert_eq!(s.pressure().causes(), ["heap-outside-cache"]);
    }

    #[test]
    fn a_small_share_of_the_heap_is_not_evicted_even_if_it_would_do() {
        // 300 sessions of 1 KiB: the cache holds ~300 KiB of a 2 MiB heap
        // (15%). Evicting 200 KiB of them would get under a 1.9 MiB
        // budget, but the excess is not theirs.
        let s = state(1900 * KIB, 300, 1024);
        enforce_heap_budget(&s, 2 * MIB);
        assert_eq!(s.cache.stats().entries, 300);
        // Where eviction cannot reach the budget at all, neither.
        let s = state(900 * KIB, 10, 1024);
        enforce_heap_budget(&s, MIB);
        assert_eq!(s.cache.stats().entries, 10);
    }

    #[test]
    fn eviction_takes_what_brings_the_heap_back_under_budget_and_no_more() {
        // 100 sessions of 1 KiB (100 KiB of claims) in a 210 KiB heap over
        // a 200 KiB budget: the target is 95% of it, so 20 KiB go.
        let s = state(200 * KIB, 100, 1024);
        let log = logged(|| enforce_heap_budget(&s, 210 * KIB));
        let left = s.cache.stats().entries;
        assert!((78..=81).contains(&left), "{left} sessions left");
        assert!(log.contains("evicted"), "{log}");
        assert!(s.pressure().causes().is_empty());
        // The heap fell by what was freed: nothing more is evicted.
        let freed = (100 - left) as u64 * KIB;
        for _ in 0..20 {
            enforce_heap_budget(&s, 210 * KIB - freed);
        }
        assert_eq!(s.cache.stats().entries, left);
        assert!(s.pressure().causes().is_empty());
    }

    #[test]
    fn the_outside_cache_state_clears_when_the_heap_falls() {
        let s = state(MIB, 10, 0);
        let log = logged(|| {
            enforce_heap_budget(&s, 2 * MIB);
            enforce_heap_budget(&s, MIB / 2);
            enforce_heap_budget(&s, MIB / 2);
        });
        assert!(s.pressure().causes().is_empty());
        assert_eq!(log.lines().count(), 2, "one line in, one out:\n{log}");
        assert_eq!(s.cache.stats().entries, 10);
    }

    const MIB: u64 = 1 << 20;
}
