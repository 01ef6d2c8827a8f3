//! The session cache: where the field guide's `clw-auth-oom` is born or
//! prevented.
//!
//! [`SessionCache`] is what the routes see. It owns the clock and the
//! eviction counters and dispatches to one of two stores:
//! - [`fixed::FixedCache`], the guide's "After" cache, bounded by entry count
//!   AND bytes (pitfall 4), with LRU or reject on overflow, idle TTL,
//!   absolute max age, a cleanup sweep and heap-budget eviction;
//! - [`leaky::LeakyCache`], which reproduces one of the guide's root causes
//!   ([`LeakKind`]) for real, so that memory stays after logout or expiry.

mod fixed;
mod leaky;
mod slab_lru;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[cfg(test)]
use tokio::time::Instant;

use crate::config::{CacheConfig, CacheMode, EvictionPolicy, LeakKind};
use crate::token::TokenDigest;

pub(crate) use fixed::FixedCache;
use leaky::LeakyCache;

/// A session as stored: 48 bytes plus its claims.
///
/// Times are milliseconds since the cache's own epoch, so two `u64`s cost
/// less than two `Instant`s and still work with tokio's paused clock.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// Shared with the user store: one allocation per user, not per session.
    pub(crate) user: Arc<str>,
    /// Serialized JSON object, or empty for none.
    pub(crate) claims: Box<str>,
    pub(crate) created_ms: u64,
    pub(crate) last_ms: u64,
}

/// Bytes one stored session costs beyond its claims: key, session, the
/// slab's two u32 LRU links, and the hash table's u32 index with its
/// control byte (rounded up for the table's 7/8 load). Used to weigh
/// sessions against `max_bytes`.
pub(crate) const ENTRY_OVERHEAD: u64 =
    (std::mem::size_of::<TokenDigest>() + std::mem::size_of::<Option<Session>>() + 2 * 4 + 8)
        as u64;

impl Session {
    /// The bytes this session is charged against `max_bytes`.
    pub(crate) fn weight(&self) -> u64 {
        ENTRY_OVERHEAD + self.claims.len() as u64
    }
}

/// What a read of the cache found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup<T> {
    /// A live session; `T` is what the caller's closure made of it.
    Found(T),
    /// The session existed but its TTL or max age has passed.
    Expired,
    /// The cache evicted it (capacity, bytes or heap budget).
    Evicted,
    /// Never issued, logged out, rotated away, or forgotten.
    Unknown,
}

/// Why a session left the cache other than by logout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictionCause {
    /// `max_size` reached.
    Capacity,
    /// `max_bytes` reached.
    Bytes,
    /// Idle TTL or max age passed.
    Ttl,
    /// The heap went over `memory.max_heap_size`.
    Heap,
}

impl EvictionCause {
    /// All causes, in metric-label order.
    pub const ALL: [EvictionCause; 4] = [
        EvictionCause::Capacity,
        EvictionCause::Bytes,
        EvictionCause::Ttl,
        EvictionCause::Heap,
    ];

    /// The `cause` label of `clw_session_cache_evictions_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            EvictionCause::Capacity => "capacity",
            EvictionCause::Bytes => "bytes",
            EvictionCause::Ttl => "ttl",
            EvictionCause::Heap => "heap",
        }
    }
}

/// A login the cache refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InsertError {
    /// Full under the `reject` policy: `clw-session-overflow`.
    Overflow,
    /// `session.cache.enabled` is false.
    Disabled,
    /// The session alone weighs more than `max_bytes`: no eviction could
    /// make room for it (`clw-session-too-large`).
    TooLarge {
        /// What the session weighs (claims plus the fixed entry overhead).
        weight: u64,
        /// `max_bytes`.
        max_bytes: u64,
    },
}

/// Counters by [`EvictionCause`], shared by the stores.
#[derive(Debug, Default)]
pub(crate) struct Evictions([AtomicU64; 4]);

impl Evictions {
    pub(crate) fn add(&self, cause: EvictionCause, n: u64) {
        self.0[cause as usize].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(&self, cause: EvictionCause) -> u64 {
        self.0[cause as usize].load(Ordering::Relaxed)
    }
}

/// Figures for /health and /metrics.
#[derive(Debug, Clone, Default)]
pub struct CacheStats {
    /// Sessions stored (in leaky modes, including dead ones still held).
    pub entries: usize,
    /// Bytes the sessions are charged (see [`Session::weight`]).
    pub bytes: u64,
    /// Heap bytes evicting every session would give back: their claims
    /// (the slab and table are allocated up front and stay).
    pub evictable_bytes: u64,
    /// Bytes the leak holds outside the cache (leaky modes; estimate).
    pub leaked_bytes: u64,
    /// `max_size`.
    pub max_capacity: usize,
    /// Evictions by cause, in [`EvictionCause::ALL`] order.
    pub evictions: [u64; 4],
}

/// Limits the stores enforce, derived from [`CacheConfig`] and the session config.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub(crate) max_size: usize,
    pub(crate) max_bytes: u64,
    pub(crate) policy: EvictionPolicy,
    pub(crate) ttl_ms: u64,
    pub(crate) max_age_ms: u64,
    pub(crate) shards: usize,
}

impl Limits {
    /// Milliseconds until the session expires, or `None` if it has.
    #[inline]
    pub(crate) fn remaining_ms(&self, s: &Session, now_ms: u64) -> Option<u64> {
        let deadline = (s.created_ms + self.max_age_ms).min(s.last_ms + self.ttl_ms);
        deadline.checked_sub(now_ms).filter(|left| *left > 0)
    }

    /// A read of a live session: marks it used now and lends it out, with
    /// its refreshed lifetime. `None` (and the session untouched) if it has
    /// expired; what then happens to it is the store's business.
    #[inline]
    pub(crate) fn touch<'s>(&self, s: &'s mut Session, now_ms: u64) -> Option<SessionRef<'s>> {
        self.remaining_ms(s, now_ms)?;
        s.last_ms = now_ms;
        let left = self.remaining_ms(s, now_ms).unwrap_or(0);
        Some(SessionRef {
            user: &s.user,
            claims: &s.claims,
            expires_in: left.div_ceil(1000),
        })
    }
}

/// A live session as a route sees it (borrowed for the closure's duration).
pub struct SessionRef<'a> {
    /// The user name.
    pub user: &'a str,
    /// The claims JSON, or "" for none.
    pub claims: &'a str,
    /// Whole seconds until expiry (rounded up).
    pub expires_in: u64,
}

/// The cache's clock, in milliseconds since the cache was built.
///
/// Two reads per request make the clock a measurable share of a cache
/// operation: `Coarse` reads CLOCK_MONOTONIC_COARSE (a vDSO variable read,
/// a few ns, ~4 ms resolution, plenty for TTLs in seconds), where a
/// precise clock costs 10x more (see `make bench-cache`). `Tokio` follows
/// tokio's clock so tests can pause and advance time.
#[derive(Debug)]
pub(crate) enum Clock {
    Coarse(u64),
    #[cfg(test)]
    Tokio(Instant),
}

impl Clock {
    fn coarse_ms() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000
    }

    /// The production clock.
    pub(crate) fn coarse() -> Clock {
        Clock::Coarse(Self::coarse_ms())
    }

    /// A clock that follows tokio's (pausable) time.
    #[cfg(test)]
    pub(crate) fn tokio() -> Clock {
        Clock::Tokio(Instant::now())
    }

    #[inline]
    fn now_ms(&self) -> u64 {
        match self {
            Clock::Coarse(epoch) => Self::coarse_ms().saturating_sub(*epoch),
            #[cfg(test)]
            Clock::Tokio(epoch) => Instant::now().duration_since(*epoch).as_millis() as u64,
        }
    }
}

enum Store {
    Fixed(FixedCache),
    Leaky(LeakyCache),
}

/// The session cache the routes use; see the module docs.
pub struct SessionCache {
    store: Store,
    limits: Limits,
    clock: Clock,
    enabled: bool,
    evictions: Arc<Evictions>,
    overflow_logged_ms: AtomicU64,
}

impl SessionCache {
    /// Builds the cache the config describes, pre-sized for `max_size`.
    pub fn new(cfg: &CacheConfig, max_age: Duration) -> SessionCache {
        Self::with_clock(cfg, max_age, Clock::coarse())
    }

    pub(crate) fn with_clock(cfg: &CacheConfig, max_age: Duration, clock: Clock) -> SessionCache {
        let limits = Limits {
            max_size: cfg.max_size,
            max_bytes: cfg.max_bytes,
            policy: cfg.eviction_policy,
            ttl_ms: cfg.ttl_seconds.as_millis() as u64,
            max_age_ms: max_age.as_millis() as u64,
            shards: cfg.shards.max(1),
        };
        let evictions = Arc::new(Evictions::default());
        let store = match cfg.mode {
            CacheMode::Fixed => Store::Fixed(FixedCache::new(&limits, evictions.clone())),
            CacheMode::Leaky => Store::Leaky(LeakyCache::new(cfg.leak, &limits, evictions.clone())),
        };
        SessionCache {
            store,
            limits,
            clock,
            enabled: cfg.enabled,
            evictions,
            overflow_logged_ms: AtomicU64::new(u64::MAX),
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The leak this cache reproduces, if any.
    pub fn leak(&self) -> Option<LeakKind> {
        match &self.store {
            Store::Fixed(_) => None,
            Store::Leaky(l) => Some(l.kind()),
        }
    }

    /// Stores a new session for `user`; returns its lifetime in seconds.
    pub fn insert(
        &self,
        key: TokenDigest,
        user: Arc<str>,
        claims: Box<str>,
    ) -> Result<u64, InsertError> {
        if !self.enabled {
            return Err(InsertError::Disabled);
        }
        let now = self.now_ms();
        let session = Session {
            user,
            claims,
            created_ms: now,
            last_ms: now,
        };
        let res = match &self.store {
            Store::Fixed(c) => c.insert(key, session, now),
            Store::Leaky(c) => c.insert(key, session, now),
        };
        match &res {
            Err(InsertError::Overflow) => {
                self.log_overflow(now, "rejecting new sessions (eviction_policy reject)")
            }
            Ok(full) if *full => self.log_overflow(now, self.overflow_consequence()),
            _ => {}
        }
        res.map(|_| {
            self.limits
                .ttl_ms
                .min(self.limits.max_age_ms)
                .div_ceil(1000)
        })
    }

    fn overflow_consequence(&self) -> &'static str {
        match &self.store {
            Store::Fixed(_) => "evicting least recently used sessions",
            Store::Leaky(_) => "cache keeps growing past max_size (leaky mode)",
        }
    }

    /// Logs `clw-session-overflow` at most every 10 s: the event is
    /// per-login, the log line must not be.
    fn log_overflow(&self, now: u64, consequence: &str) {
        let last = self.overflow_logged_ms.load(Ordering::Relaxed);
        if last == u64::MAX || now.saturating_sub(last) >= 10_000 {
            self.overflow_logged_ms.store(now, Ordering::Relaxed);
            let stats = self.stats();
            tracing::warn!(
                code = "clw-session-overflow",
                active_sessions = stats.entries,
                max_size = self.limits.max_size,
                session_bytes = stats.bytes,
                max_bytes = self.limits.max_bytes,
                "clw-session-overflow: session cache reached its configured capacity; {consequence}"
            );
        }
    }

    /// Looks a session up, refreshing its idle TTL, and lets `f` read it
    /// under the shard lock (no clone of the claims).
    pub fn with_session<R>(
        &self,
        key: &TokenDigest,
        f: impl FnOnce(SessionRef<'_>) -> R,
    ) -> Lookup<R> {
        let now = self.now_ms();
        match &self.store {
            Store::Fixed(c) => c.with_session(key, now, f),
            Store::Leaky(c) => c.with_session(key, now, f),
        }
    }

    /// Replaces the session under `old` by the same session under `new`,
    /// with fresh timestamps; returns the new lifetime in seconds.
    pub fn rotate(&self, old: &TokenDigest, new: TokenDigest) -> Lookup<u64> {
        let now = self.now_ms();
        let found = match &self.store {
            Store::Fixed(c) => c.take(old, now),
            Store::Leaky(c) => c.take(old, now),
        };
        match found {
            Lookup::Found(s) => match self.insert(new, s.user, s.claims) {
                Ok(secs) => Lookup::Found(secs),
                Err(_) => Lookup::Evicted,
            },
            Lookup::Expired => Lookup::Expired,
            Lookup::Evicted => Lookup::Evicted,
            Lookup::Unknown => Lookup::Unknown,
        }
    }

    /// Logs a session out; false if there was no live session.
    pub fn remove(&self, key: &TokenDigest) -> bool {
        let now = self.now_ms();
        match &self.store {
            Store::Fixed(c) => matches!(c.take(key, now), Lookup::Found(_)),
            Store::Leaky(c) => matches!(c.take(key, now), Lookup::Found(_)),
        }
    }

    /// Called once per authenticated request (handle-accumulation leaks here).
    pub(crate) fn on_request(&self) {
        if let Store::Leaky(c) = &self.store {
            c.on_request();
        }
    }

    /// Removes expired sessions; returns how many. Run every `cleanup_interval`.
    pub fn cleanup(&self) -> usize {
        let now = self.now_ms();
        match &self.store {
            Store::Fixed(c) => c.cleanup(now),
            Store::Leaky(c) => c.cleanup(now),
        }
    }

    /// Evicts least recently used sessions until their claims add up to at
    /// least `bytes` (what eviction gives back to the heap), because the
    /// heap is over budget; returns the claim bytes freed.
    pub fn evict_for_heap(&self, bytes: u64) -> u64 {
        match &self.store {
            Store::Fixed(c) => c.evict_bytes(bytes, EvictionCause::Heap),
            Store::Leaky(c) => c.evict_bytes(bytes),
        }
    }

    /// Current figures.
    pub fn stats(&self) -> CacheStats {
        let (entries, bytes, leaked_bytes) = match &self.store {
            Store::Fixed(c) => {
                let (e, b) = c.totals();
                (e, b, 0)
            }
            Store::Leaky(c) => c.totals(),
        };
        // Only a bounded (fixed) store gives anything back when evicting.
        let evictable_bytes = match &self.store {
            Store::Leaky(c) if !c.evicts() => 0,
            _ => bytes.saturating_sub(entries as u64 * ENTRY_OVERHEAD),
        };
        CacheStats {
            entries,
            bytes,
            evictable_bytes,
            leaked_bytes,
            max_capacity: self.limits.max_size,
            evictions: EvictionCause::ALL.map(|c| self.evictions.get(c)),
        }
    }
}

#[cfg(test)]
mod tests;
