//! The heap budget (`memory.max_heap_size`): when the heap is over it,
//! evict sessions only when that is what brings it back, and otherwise say
//! why, once.
//!
//! Evicting a session gives the heap back its claims and nothing else (the
//! slab and hash table are allocated up front and stay). So when memory
//! the cache does not hold (metric labels, connection buffers, a leak)
//! pushes the heap over budget, evicting sessions frees nothing, and an
//! eviction loop on a 100 ms monitor would empty the cache, log "evicted
//! 0 B" ten times a second and log every user out, for nothing. The rule:
//! evict only when the cache's claims are a real share of the heap
//! ([`MIN_CACHE_SHARE`]) and evicting them can bring the heap down to
//! [`TARGET_PERCENT`] of the budget; then evict just that much. Otherwise
//! the heap is over budget "outside the cache": /health says so
//! (`pressure`), /ready fails (something other than sessions is growing:
//! send traffic elsewhere), the log says it once on entry and once on
//! exit, and no session is touched.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::cache::SessionCache;
use crate::units::format_size;

/// Eviction aims at this share of the budget, so one eviction buys room
/// for a while instead of firing on every check.
pub(crate) const TARGET_PERCENT: u64 = 95;

/// The cache's claims must be at least 1/`MIN_CACHE_SHARE` of the heap
/// for eviction to be considered: below that the excess is not theirs.
pub(crate) const MIN_CACHE_SHARE: u64 = 4;

/// How often, at most, an eviction is logged (they are summed between).
const EVICTION_LOG_EVERY: Duration = Duration::from_secs(10);

/// What to do about the heap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Within budget.
    Within,
    /// Evict sessions whose claims add up to this many bytes.
    Evict(u64),
    /// Over budget, and evicting sessions cannot help.
    OutsideCache,
}

/// The decision, from the heap's size, the budget and the bytes eviction
/// would give back (the sessions' claims). See the module docs.
pub(crate) fn plan(allocated: u64, budget: u64, evictable: u64) -> Plan {
    if allocated <= budget {
        return Plan::Within;
    }
    let need = allocated - budget * TARGET_PERCENT / 100;
    if evictable >= need && evictable.saturating_mul(MIN_CACHE_SHARE) >= allocated {
        Plan::Evict(need)
    } else {
        Plan::OutsideCache
    }
}

/// The last check's figures, while the heap is over budget outside the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OutsideCache {
    /// jemalloc's `stats.allocated`.
    pub allocated_bytes: u64,
    /// `memory.max_heap_size`.
    pub max_heap_size: u64,
    /// What evicting every session would give back.
    pub cache_bytes: u64,
}

impl OutsideCache {
    /// The sentence /health, /ready and the log use.
    pub fn message(&self) -> String {
        format!(
            "heap {} is over memory.max_heap_size {} but the session cache holds only {} of it: evicting sessions cannot bring it back, so none are evicted",
            format_size(self.allocated_bytes),
            format_size(self.max_heap_size),
            format_size(self.cache_bytes)
        )
    }
}

#[derive(Default)]
struct Inner {
    outside: Option<OutsideCache>,
    /// Evictions not yet logged: (bytes, sessions), and when one last was.
    unlogged: (u64, u64),
    logged_at: Option<Instant>,
}

/// The budget's state between checks; one per server.
#[derive(Default)]
pub(crate) struct HeapBudget {
    inner: Mutex<Inner>,
}

impl HeapBudget {
    /// One check of a heap of `allocated` bytes against `budget`: evicts
    /// what [`plan`] says, records and logs state changes.
    pub(crate) fn check(&self, allocated: u64, budget: u64, cache: &SessionCache) {
        let stats = cache.stats();
        let decision = plan(allocated, budget, stats.evictable_bytes);
        let mut inner = self.inner.lock();
        match decision {
            Plan::OutsideCache => {
                let now = OutsideCache {
                    allocated_bytes: allocated,
                    max_heap_size: budget,
                    cache_bytes: stats.evictable_bytes,
                };
                if inner.outside.is_none() {
                    tracing::warn!(
                        code = "clw-memory-pressure",
                        cause = "heap-outside-cache",
                        allocated_bytes = allocated,
                        max_heap_size = budget,
                        cache_bytes = stats.evictable_bytes,
                        "clw-memory-pressure (heap-outside-cache): {}; /ready reports 503",
                        now.message()
                    );
                }
                inner.outside = Some(now);
            }
            Plan::Within | Plan::Evict(_) => {
                if inner.outside.take().is_some() {
                    tracing::info!(
                        allocated_bytes = allocated,
                        max_heap_size = budget,
                        "heap pressure cleared: heap {} of max_heap_size {}",
                        format_size(allocated),
                        format_size(budget)
                    );
                }
            }
        }
        if let Plan::Evict(want) = decision {
            let before = stats.entries;
            let freed = cache.evict_for_heap(want);
            let evicted = before.saturating_sub(cache.stats().entries) as u64;
            inner.unlogged.0 += freed;
            inner.unlogged.1 += evicted;
            let due = inner
                .logged_at
                .is_none_or(|t| t.elapsed() >= EVICTION_LOG_EVERY);
            if due {
                let (bytes, sessions) = std::mem::take(&mut inner.unlogged);
                inner.logged_at = Some(Instant::now());
                tracing::warn!(
                    allocated_bytes = allocated,
                    max_heap_size = budget,
                    freed_bytes = bytes,
                    sessions,
                    "heap over memory.max_heap_size: evicted {sessions} least recently used sessions ({} of claims)",
                    format_size(bytes)
                );
            }
        }
    }

    /// Set while the heap is over budget and eviction cannot help.
    pub(crate) fn outside_cache(&self) -> Option<OutsideCache> {
        self.inner.lock().outside
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_evicts_only_what_the_cache_can_give_back() {
        const K: u64 = 1024;
        assert_eq!(plan(100 * K, 100 * K, 0), Plan::Within);
        // Over by 10 K, 60 K of claims: down to 95 K.
        assert_eq!(plan(110 * K, 100 * K, 60 * K), Plan::Evict(15 * K));
        // Everything the cache holds would not be enough.
        assert_eq!(plan(200 * K, 100 * K, 60 * K), Plan::OutsideCache);
        // Enough, but the claims are under a quarter of the heap.
        assert_eq!(plan(1000 * K, 990 * K, 200 * K), Plan::OutsideCache);
        assert_eq!(
            plan(1000 * K, 990 * K, 250 * K),
            Plan::Evict(1000 * K - 990 * K * 95 / 100)
        );
        // The probe: sessions without claims give nothing back.
        assert_eq!(plan(218 << 20, 160 << 20, 0), Plan::OutsideCache);
    }
}
