//! State shared by every connection: config, user store, session cache,
//! metrics, and what the memory monitor last saw.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

use crate::cache::SessionCache;
use crate::config::Config;
use crate::memory::MemoryLimit;
use crate::metrics::Metrics;
use crate::throttle::LoginThrottle;
use crate::users::UserStore;

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
    /// The limit the service will be killed at.
    pub limit: MemoryLimit,
    /// Failed-login budgets per user name and client address.
    pub(crate) throttle: LoginThrottle,
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
            limit,
            throttle: LoginThrottle::new(&config.login_throttle),
            inline_hashing,
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

    /// RSS at the last memory check.
    pub fn last_rss(&self) -> u64 {
        self.last_rss.load(Ordering::Relaxed)
    }
}
