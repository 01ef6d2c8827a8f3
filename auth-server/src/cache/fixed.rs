//! The bounded cache: the field guide's "After" `SessionCache`, plus the
//! byte bound its pitfall 4 asks for.
//!
//! Sharded `Mutex<LruCache>`: each shard owns `1/shards` of the count and
//! byte budgets, its hash table is allocated at full size up front (no
//! request ever waits behind a whole-table resize), and requests on
//! different sessions rarely contend. Eviction is LRU within a shard,
//! which with uniformly random keys approximates a global LRU closely.

use std::num::NonZeroUsize;
use std::sync::Arc;

use lru::LruCache;
use parking_lot::Mutex;

use super::slab_lru::SlabLru;
use super::{EvictionCause, Evictions, InsertError, Limits, Lookup, Session, SessionRef};
use crate::config::EvictionPolicy;
use crate::token::{DigestBuildHasher, TokenDigest};

/// Why a recently removed session is gone, so a client can be told
/// `clw-session-expired` or `clw-session-evicted` rather than "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Expired,
    Evicted,
}

struct Shard {
    map: SlabLru<Session>,
    bytes: u64,
    /// A small, bounded memory of recent removals (8 bytes of key each).
    gone: LruCache<u64, Gone, DigestBuildHasher>,
}

impl Shard {
    /// What to tell a client whose session is not in the map.
    fn gone_lookup<T>(&self, key: &TokenDigest) -> Lookup<T> {
        match self.gone.peek(&key.tomb_bits()) {
            Some(Gone::Expired) => Lookup::Expired,
            Some(Gone::Evicted) => Lookup::Evicted,
            None => Lookup::Unknown,
        }
    }

    fn pop_lru(&mut self, cause: EvictionCause, evictions: &Evictions) -> Option<u64> {
        let (key, s) = self.map.pop_lru()?;
        let w = s.weight();
        self.bytes -= w;
        let gone = if cause == EvictionCause::Ttl {
            Gone::Expired
        } else {
            Gone::Evicted
        };
        self.gone.put(key.tomb_bits(), gone);
        evictions.add(cause, 1);
        Some(w)
    }
}

/// The bounded session store.
pub(crate) struct FixedCache {
    shards: Box<[Mutex<Shard>]>,
    shard_cap: usize,
    shard_bytes: u64,
    limits: Limits,
    evictions: Arc<Evictions>,
}

impl FixedCache {
    pub(crate) fn new(limits: &Limits, evictions: Arc<Evictions>) -> FixedCache {
        let n = limits.shards;
        let shard_cap = limits.max_size.div_ceil(n).max(1);
        let shard_bytes = (limits.max_bytes / n as u64).max(1);
        let tomb_cap = NonZeroUsize::new((shard_cap / 4).clamp(64, 4096)).expect("non-zero");
        let shards = (0..n)
            .map(|_| {
                Mutex::new(Shard {
                    map: SlabLru::with_capacity(shard_cap),
                    bytes: 0,
                    gone: LruCache::with_hasher(tomb_cap, Default::default()),
                })
            })
            .collect();
        FixedCache {
            shards,
            shard_cap,
            shard_bytes,
            limits: limits.clone(),
            evictions,
        }
    }

    #[inline]
    fn shard(&self, key: &TokenDigest) -> &Mutex<Shard> {
        key.pick(&self.shards)
    }

    /// Stores `session`; `Ok(true)` when room had to be made (the cache is
    /// at capacity), `Err(Overflow)` when the `reject` policy refused it.
    pub(crate) fn insert(
        &self,
        key: TokenDigest,
        session: Session,
        now: u64,
    ) -> Result<bool, InsertError> {
        let w = session.weight();
        let mut shard = self.shard(&key).lock();
        let over = |s: &Shard| s.map.len() >= self.shard_cap || s.bytes + w > self.shard_bytes;
        if over(&shard) {
            // Expired sessions at the cold end go first: they are free room.
            while let Some((_, s)) = shard.map.peek_lru() {
                if self.limits.remaining_ms(s, now).is_some() {
                    break;
                }
                shard.pop_lru(EvictionCause::Ttl, &self.evictions);
            }
        }
        let mut full = false;
        while !shard.map.is_empty() && over(&shard) {
            full = true;
            if self.limits.policy == EvictionPolicy::Reject {
                return Err(InsertError::Overflow);
            }
            let cause = if shard.map.len() >= self.shard_cap {
                EvictionCause::Capacity
            } else {
                EvictionCause::Bytes
            };
            shard.pop_lru(cause, &self.evictions);
        }
        shard.bytes += w;
        shard.map.push(key, session);
        Ok(full)
    }

    pub(crate) fn with_session<R>(
        &self,
        key: &TokenDigest,
        now: u64,
        f: impl FnOnce(SessionRef<'_>) -> R,
    ) -> Lookup<R> {
        let mut shard = self.shard(key).lock();
        let Some(s) = shard.map.get_mut(key) else {
            return shard.gone_lookup(key);
        };
        if let Some(view) = self.limits.touch(s, now) {
            return Lookup::Found(f(view));
        }
        let w = s.weight();
        shard.map.pop(key);
        shard.bytes -= w;
        shard.gone.put(key.tomb_bits(), Gone::Expired);
        self.evictions.add(EvictionCause::Ttl, 1);
        Lookup::Expired
    }

    /// Removes and returns a live session (logout, refresh).
    pub(crate) fn take(&self, key: &TokenDigest, now: u64) -> Lookup<Session> {
        let mut shard = self.shard(key).lock();
        match shard.map.pop(key) {
            Some(s) => {
                shard.bytes -= s.weight();
                if self.limits.remaining_ms(&s, now).is_some() {
                    Lookup::Found(s)
                } else {
                    shard.gone.put(key.tomb_bits(), Gone::Expired);
                    self.evictions.add(EvictionCause::Ttl, 1);
                    Lookup::Expired
                }
            }
            None => shard.gone_lookup(key),
        }
    }

    /// Sweeps every shard for expired sessions, one shard lock at a time.
    pub(crate) fn cleanup(&self, now: u64) -> usize {
        let mut removed = 0;
        let mut expired = Vec::new();
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            expired.clear();
            expired.extend(
                shard
                    .map
                    .iter()
                    .filter(|(_, s)| self.limits.remaining_ms(s, now).is_none())
                    .map(|(k, _)| *k),
            );
            for key in &expired {
                if let Some(s) = shard.map.pop(key) {
                    shard.bytes -= s.weight();
                    shard.gone.put(key.tomb_bits(), Gone::Expired);
                }
            }
            removed += expired.len();
        }
        self.evictions.add(EvictionCause::Ttl, removed as u64);
        removed
    }

    /// Evicts least recently used sessions, round-robin over shards, until
    /// `bytes` have been freed or the cache is empty.
    pub(crate) fn evict_bytes(&self, bytes: u64, cause: EvictionCause) -> u64 {
        let mut freed = 0;
        let per_round = (bytes / self.shards.len() as u64).max(1);
        while freed < bytes {
            let mut progressed = false;
            for shard in self.shards.iter() {
                let mut shard = shard.lock();
                let mut here = 0;
                while here < per_round {
                    match shard.pop_lru(cause, &self.evictions) {
                        Some(w) => {
                            here += w;
                            progressed = true;
                        }
                        None => break,
                    }
                }
                freed += here;
            }
            if !progressed {
                break;
            }
        }
        freed
    }

    /// (sessions, bytes) over all shards.
    pub(crate) fn totals(&self) -> (usize, u64) {
        self.shards.iter().fold((0, 0), |(n, b), s| {
            let s = s.lock();
            (n + s.map.len(), b + s.bytes)
        })
    }
}
