//! State shared by every connection: config, user store, session cache,
//! metrics, and what the memory monitor last saw.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use serde::Serialize;

use crate::cache::SessionCache;
use crate::config::Config;
use crate::heap::HeapBudget;
use crate::memory::MemoryLimit;
use crate::metrics::Metrics;
use crate::throttle::LoginThrottle;
use crate::units::format_size;
use crate::users::UserStore;

/// One reason the service is under memory pressure.
#[derive(Debug, Clone, Serialize)]
pub struct PressureCause {
    /// `rss-threshold` (RSS above `memory.pressure_threshold`: logins are
    /// shed where `shed_on_pressure`) or `heap-outside-cache` (heap over
    /// `memory.max_heap_size` in memory the session cache does not hold:
    /// no session is evicted for it).
    pub cause: &'static str,
    /// What was seen, in a sentence.
    pub message: String,
}

/// Why the service is under memory pressure now: /health lists the
/// causes, /ready fails while there is any.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pressure {
    /// Empty when there is no pressure.
    pub causes: Vec<PressureCause>,
}

impl Pressure {
    /// The causes' names.
    pub fn causes(&self) -> Vec<&'static str> {
        self.causes.iter().map(|c| c.cause).collect()
    }
}

/// Where the service is in its life; /ready is 200 only while `Serving`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Building the user store, binding.
    Starting = 0,
    /// Accepting and serving.
    Serving = 1,
    /// SIGTERM received: finishing in-flight requests.
    Draining = 2,
}

/// Shared state; one per server, behind an `Arc`.
pub struct State {
    /// The effective configuration.
    pub config: Config,
    /// The session cache.
    pub cache: SessionCache,
    /// The user store.
    pub users: UserStore,
    /// The metrics registry.
    pub metrics: Metrics,
    /// The heap budget's state between memory checks.
    pub(crate) heap: HeapBudget,
    /// The limit the service will be killed at.
    pub limit: MemoryLimit,
    /// Failed-login budgets per user name and client address.
    pub(crate) throttle: LoginThrottle,
    /// Whether `/debug/pprof/heap` has a profile to serve (set at start-up).
    pub heap_profiling: crate::profiling::HeapProfiling,
    /// Whether argon2 verification is cheap enough to run on the async
    /// worker (load-test profiles) rather than on the blocking pool.
    pub(crate) inline_hashing: bool,
    phase: AtomicU8,
    pressure: AtomicBool,
    last_rss: AtomicU64,
}

impl State {
    /// Assembles the state; the phase starts at `Starting`.
    pub fn new(config: Config, users: UserStore, limit: MemoryLimit) -> State {
        let cache = SessionCache::new(&config.session.cache, config.session.max_age);
        let a = &config.users.argon2;
        // Below ~1 MiB-pass of work a verify takes microseconds: cheaper
        // than a hop to the blocking pool.
        let inline_hashing = u64::from(a.memory_kib) * u64::from(a.iterations) <= 1024;
        State {
            cache,
            users,
            metrics: Metrics::new(),
            heap: HeapBudget::default(),
            limit,
            throttle: LoginThrottle::new(&config.login_throttle),
            inline_hashing,
            heap_profiling: crate::profiling::HeapProfiling::Unavailable,
            phase: AtomicU8::new(Phase::Starting as u8),
            pressure: AtomicBool::new(false),
            last_rss: AtomicU64::new(0),
            config,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Acquire) {
            0 => Phase::Starting,
            1 => Phase::Serving,
            _ => Phase::Draining,
        }
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// Whether RSS was above the pressure threshold at the last check.
    pub fn under_pressure(&self) -> bool {
        self.pressure.load(Ordering::Relaxed)
    }

    /// Records a memory check; returns true when the pressure state changed.
    pub(crate) fn record_memory(&self, rss: u64) -> bool {
        self.last_rss.store(rss, Ordering::Relaxed);
        let over =
            rss as f64 >= self.limit.bytes as f64 * self.config.memory.pressure_threshold / 100.0;
        self.pressure.swap(over, Ordering::Relaxed) != over
    }

    /// Why the service is under memory pressure, as of the last check.
    pub fn pressure(&self) -> Pressure {
        let mut causes = Vec::new();
        if self.under_pressure() {
            let rss = self.last_rss();
            causes.push(PressureCause {
                cause: "rss-threshold",
                message: format!(
                    "RSS {} is {:.1}% of the {} limit (threshold {}%)",
                    format_size(rss),
                    rss as f64 * 100.0 / self.limit.bytes.max(1) as f64,
                    format_size(self.limit.bytes),
                    self.config.memory.pressure_threshold
                ),
            });
        }
        if let Some(heap) = self.heap.outside_cache() {
            causes.push(PressureCause {
                cause: "heap-outside-cache",
                message: heap.message(),
            });
        }
        Pressure { causes }
    }

    /// RSS at the last memory check.
    pub fn last_rss(&self) -> u64 {
        self.last_rss.load(Ordering::Relaxed)
    }
}
