//! The field guide's root causes, reproduced for real.
//!
//! Each [`LeakKind`] is a bug a plausible session handler could ship with.
//! None of them fakes a leak with a ballast allocation: memory grows
//! because of what the buggy code keeps, and it stays after logout or
//! expiry, which is what the tests measure from jemalloc's statistics.
//!
//! - `unbounded` and `expired-retained` keep sessions in a map that grows
//!   without bound (the guide's "Before" `SessionCache`).
//! - `payload-duplication`, `arc-cycle` and `handle-accumulation` sit next to
//!   a correctly bounded cache; the leak is in what they keep beside it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::{
    EvictionCause, Evictions, FixedCache, InsertError, Limits, Lookup, Session, SessionRef,
};
use crate::config::LeakKind;
use crate::token::{DigestBuildHasher, TokenDigest};

/// Buffer each leaked backend handle holds (a connection's read buffer).
const HANDLE_BUFFER: usize = 2048;

/// An entry in the retaining map: logout only marks it.
struct Retained {
    session: Session,
    revoked: bool,
}

/// A session record in the `arc-cycle` bug: it points at its user record...
#[allow(dead_code)] // the fields are the leak: they are kept, never read
struct SessionRecord {
    user: String,
    claims: String,
    owner: Mutex<Option<Arc<UserRecord>>>,
}

/// ...and the user record points back at its sessions.
#[allow(dead_code)]
struct UserRecord {
    name: String,
    sessions: Mutex<Vec<Arc<SessionRecord>>>,
}

/// A per-request "database handle" that is opened and never closed.
#[allow(dead_code)]
struct BackendHandle {
    id: u64,
    buffer: Vec<u8>,
}

enum Sessions {
    /// Grows forever (`unbounded`, `expired-retained`).
    Retaining(Box<[Mutex<HashMap<TokenDigest, Retained, DigestBuildHasher>>]>),
    /// Correctly bounded; the leak is beside it.
    Bounded(FixedCache),
}

/// A session store with one of the guide's leaks.
pub(crate) struct LeakyCache {
    kind: LeakKind,
    sessions: Sessions,
    limits: Limits,
    retained_len: AtomicUsize,
    retained_bytes: AtomicU64,
    /// `payload-duplication`: the second index, never cleaned.
    payload_index: Mutex<HashMap<TokenDigest, (String, String), DigestBuildHasher>>,
    /// `handle-accumulation`: handles opened per request, never closed.
    handles: Mutex<Vec<BackendHandle>>,
    leaked_bytes: AtomicU64,
}

impl LeakyCache {
    pub(crate) fn new(kind: LeakKind, limits: &Limits, evictions: Arc<Evictions>) -> LeakyCache {
        let sessions = match kind {
            LeakKind::Unbounded | LeakKind::ExpiredRetained => Sessions::Retaining(
                (0..limits.shards)
                    .map(|_| Mutex::new(HashMap::default()))
                    .collect(),
            ),
            _ => Sessions::Bounded(FixedCache::new(limits, evictions)),
        };
        LeakyCache {
            kind,
            sessions,
            limits: limits.clone(),
            retained_len: AtomicUsize::new(0),
            retained_bytes: AtomicU64::new(0),
            payload_index: Mutex::new(HashMap::default()),
            handles: Mutex::new(Vec::new()),
            leaked_bytes: AtomicU64::new(0),
        }
    }

    pub(crate) fn kind(&self) -> LeakKind {
        self.kind
    }

    fn shard<'a>(
        shards: &'a [Mutex<HashMap<TokenDigest, Retained, DigestBuildHasher>>],
        key: &TokenDigest,
    ) -> &'a Mutex<HashMap<TokenDigest, Retained, DigestBuildHasher>> {
        key.pick(shards)
    }

    /// Stores the session; `Ok(true)` once the map has grown past
    /// `max_size` (the guide's overflow that "precedes clw-auth-oom").
    pub(crate) fn insert(
        &self,
        key: TokenDigest,
        session: Session,
        now: u64,
    ) -> Result<bool, InsertError> {
        match self.kind {
            LeakKind::PayloadDuplication => {
                let copy = (session.user.to_string(), session.claims.to_string());
                let bytes = (copy.0.len() + copy.1.len() + 32 + 48) as u64;
                self.payload_index.lock().insert(key, copy);
                self.leaked_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            LeakKind::ArcCycle => {
                let record = Arc::new(SessionRecord {
                    user: session.user.to_string(),
                    claims: session.claims.to_string(),
                    owner: Mutex::new(None),
                });
                let owner = Arc::new(UserRecord {
                    name: session.user.to_string(),
                    sessions: Mutex::new(vec![record.clone()]),
                });
                *record.owner.lock() = Some(owner);
                // Both handles drop here; each record keeps the other alive.
                let bytes = (2 * session.user.len() + session.claims.len() + 160) as u64;
                self.leaked_bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            _ => {}
        }
        match &self.sessions {
            Sessions::Bounded(c) => c.insert(key, session, now),
            Sessions::Retaining(shards) => {
                let w = session.weight();
                let old = Self::shard(shards, &key).lock().insert(
                    key,
                    Retained {
                        session,
                        revoked: false,
                    },
                );
                debug_assert!(old.is_none(), "tokens are unique");
                self.retained_bytes.fetch_add(w, Ordering::Relaxed);
                let len = self.retained_len.fetch_add(1, Ordering::Relaxed) + 1;
                Ok(len > self.limits.max_size)
            }
        }
    }

    pub(crate) fn with_session<R>(
        &self,
        key: &TokenDigest,
        now: u64,
        f: impl FnOnce(SessionRef<'_>) -> R,
    ) -> Lookup<R> {
        let shards = match &self.sessions {
            Sessions::Bounded(c) => return c.with_session(key, now, f),
            Sessions::Retaining(shards) => shards,
        };
        let mut map = Self::shard(shards, key).lock();
        match map.get_mut(key) {
            None => Lookup::Unknown,
            Some(r) if r.revoked => Lookup::Unknown,
            Some(r) => match self.limits.touch(&mut r.session, now) {
                Some(view) => Lookup::Found(f(view)),
                // The bug: the read rejects the expired session and keeps it.
                None => Lookup::Expired,
            },
        }
    }

    /// Logout / refresh. `unbounded` only marks the entry revoked (a copy
    /// stays behind); `expired-retained` removes live sessions properly
    /// but never expired ones.
    pub(crate) fn take(&self, key: &TokenDigest, now: u64) -> Lookup<Session> {
        let shards = match &self.sessions {
            Sessions::Bounded(c) => return c.take(key, now),
            Sessions::Retaining(shards) => shards,
        };
        let mut map = Self::shard(shards, key).lock();
        let Some(r) = map.get_mut(key) else {
            return Lookup::Unknown;
        };
        if r.revoked {
            return Lookup::Unknown;
        }
        if self.limits.remaining_ms(&r.session, now).is_none() {
            return Lookup::Expired;
        }
        match self.kind {
            LeakKind::Unbounded => {
                r.revoked = true;
                Lookup::Found(r.session.clone())
            }
            _ => {
                let r = map.remove(key).expect("present");
                self.retained_bytes
                    .fetch_sub(r.session.weight(), Ordering::Relaxed);
                self.retained_len.fetch_sub(1, Ordering::Relaxed);
                Lookup::Found(r.session)
            }
        }
    }

    /// `handle-accumulation`: every authenticated request opens a backend
    /// handle with a buffer and forgets to close it.
    pub(crate) fn on_request(&self) {
        if self.kind == LeakKind::HandleAccumulation {
            let mut handles = self.handles.lock();
            let id = handles.len() as u64;
            handles.push(BackendHandle {
                id,
                buffer: vec![0x5a; HANDLE_BUFFER],
            });
            self.leaked_bytes.fetch_add(
                (HANDLE_BUFFER + std::mem::size_of::<BackendHandle>()) as u64,
                Ordering::Relaxed,
            );
        }
    }

    /// The cleanup task: the retaining kinds' bug is that it does nothing.
    pub(crate) fn cleanup(&self, now: u64) -> usize {
        match &self.sessions {
            Sessions::Bounded(c) => c.cleanup(now),
            Sessions::Retaining(_) => 0,
        }
    }

    /// Heap-budget eviction only reaches the bounded cache; what the leak
    /// holds is out of its reach, which is the point.
    pub(crate) fn evict_bytes(&self, bytes: u64) -> u64 {
        match &self.sessions {
            Sessions::Bounded(c) => c.evict_bytes(bytes, EvictionCause::Heap),
            Sessions::Retaining(_) => 0,
        }
    }

    /// Whether [`evict_bytes`](Self::evict_bytes) can remove anything.
    pub(crate) fn evicts(&self) -> bool {
        matches!(self.sessions, Sessions::Bounded(_))
    }

    /// (sessions, session bytes, leaked bytes beside the cache).
    pub(crate) fn totals(&self) -> (usize, u64, u64) {
        let leaked = self.leaked_bytes.load(Ordering::Relaxed);
        match &self.sessions {
            Sessions::Bounded(c) => {
                let (n, b) = c.totals();
                (n, b, leaked)
            }
            Sessions::Retaining(_) => (
                self.retained_len.load(Ordering::Relaxed),
                self.retained_bytes.load(Ordering::Relaxed),
                leaked,
            ),
        }
    }
}
