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
/// code, and a heap over `max_heap_size` makes the cache evict.
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
    if let Some(budget) = s.config.memory.max_heap_size {
        let allocated = alloc_stats().allocated;
        if allocated > budget {
            // Free the excess plus 5% of the budget, so the check does not
            // fire again on the next request.
            let want = allocated - budget + budget / 20;
            let freed = s.cache.evict_for_heap(want);
            tracing::warn!(
                allocated_bytes = allocated,
                max_heap_size = budget,
                freed_bytes = freed,
                "heap over memory.max_heap_size: evicted {} of sessions",
                format_size(freed)
            );
        }
    }
}
