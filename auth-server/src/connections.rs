//! Admission under `service.max_connections`, NGINX- and Envoy-style: when
//! the limit is reached, the longest-idle keep-alive connection is closed
//! to admit the new one, so idle (or deliberately silent) clients cannot
//! lock everybody else out. A connection with a request in progress is
//! never chosen; only when every connection is busy does a new one wait.
//!
//! The hot path is two atomic stores per request (busy, then idle with a
//! sequence number); the registry lock is taken once per connection, and
//! the oldest-idle scan (O(open connections)) runs only at the limit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::{IntCounter, IntGauge};
use tokio::sync::Notify;

/// One open connection's state, shared by its task and the registry.
pub(crate) struct Slot {
    /// Requests being handled (HTTP/1.1: 0 or 1).
    in_flight: AtomicU32,
    /// Registry sequence number when it last became idle: smaller is older.
    idle_since: AtomicU64,
    /// Chosen for eviction or shutdown; it will close once idle.
    closing: AtomicBool,
    close: Notify,
}

/// The registered connections, and how many of them are closing (so the
/// open count needs no scan).
#[derive(Default)]
struct Slots {
    by_id: HashMap<u64, Arc<Slot>>,
    closing: usize,
}

impl Slots {
    /// Marks `slot` closing and wakes its task; false if it already was.
    fn close(&mut self, slot: &Slot) -> bool {
        if slot.closing.swap(true, Ordering::Relaxed) {
            return false;
        }
        self.closing += 1;
        slot.close.notify_one();
        true
    }
}

/// The open connections and the limit.
pub(crate) struct Connections {
    max: usize,
    slots: Mutex<Slots>,
    next_id: AtomicU64,
    /// Orders idle times without reading a clock on every request.
    seq: Arc<AtomicU64>,
    freed: Notify,
    open: IntGauge,
    evicted: IntCounter,
}

impl Connections {
    /// A registry for `max` connections reporting into the two metrics.
    pub(crate) fn new(max: usize, open: IntGauge, evicted: IntCounter) -> Arc<Connections> {
        Arc::new(Connections {
            max: max.max(1),
            slots: Mutex::new(Slots::default()),
            next_id: AtomicU64::new(0),
            seq: Arc::new(AtomicU64::new(0)),
            freed: Notify::new(),
            open,
            evicted,
        })
    }

    /// Admits a new connection, closing the longest-idle one if the limit
    /// is reached; waits only while every open connection is busy.
    pub(crate) async fn admit(self: &Arc<Self>) -> Admitted {
        loop {
            if let Some(a) = self.try_admit() {
                return a;
            }
            // Woken when a connection ends; the timer catches one turning
            // idle (not signalled: that would cost every request a wake-up).
            tokio::select! {
                _ = self.freed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    fn try_admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut slots = self.slots.lock();
        if slots.by_id.len() - slots.closing >= self.max {
            let victim = slots
                .by_id
                .values()
                .filter(|s| {
                    !s.closing.load(Ordering::Relaxed) && s.in_flight.load(Ordering::Acquire) == 0
                })
                .min_by_key(|s| s.idle_since.load(Ordering::Relaxed))?
                .clone();
            slots.close(&victim);
            self.evicted.inc();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot {
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(self.seq.fetch_add(1, Ordering::Relaxed)),
            closing: AtomicBool::new(false),
            close: Notify::new(),
        });
        slots.by_id.insert(id, slot.clone());
        self.open.inc();
        Some(Admitted {
            id,
            slot,
            registry: self.clone(),
        })
    }

    /// Asks every connection to close once its current request is answered.
    pub(crate) fn close_all(&self) {
        let mut slots = self.slots.lock();
        let all: Vec<Arc<Slot>> = slots.by_id.values().cloned().collect();
        for slot in &all {
            slots.close(slot);
        }
    }

    /// Resolves once no connection is open.
    pub(crate) async fn closed(&self) {
        while !self.slots.lock().by_id.is_empty() {
            tokio::select! {
                _ = self.freed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
        }
    }
}

/// An admitted connection; dropping it frees the slot.
pub(crate) struct Admitted {
    id: u64,
    slot: Arc<Slot>,
    registry: Arc<Connections>,
}

impl Admitted {
    /// A handle for the request path, which marks requests busy (the
    /// service closure must be `'static`).
    pub(crate) fn tracker(&self) -> Tracker {
        Tracker {
            slot: self.slot.clone(),
            seq: self.registry.seq.clone(),
        }
    }

    /// Resolves when the registry wants this connection closed.
    pub(crate) async fn close_requested(&self) {
        self.slot.close.notified().await
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut slots = self.registry.slots.lock();
        if let Some(slot) = slots.by_id.remove(&self.id) {
            if slot.closing.load(Ordering::Relaxed) {
                slots.closing -= 1;
            }
        }
        drop(slots);
        self.registry.open.dec();
        self.registry.freed.notify_waiters();
    }
}

/// Cloneable per-connection handle that marks requests busy.
#[derive(Clone)]
pub(crate) struct Tracker {
    slot: Arc<Slot>,
    seq: Arc<AtomicU64>,
}

impl Tracker {
    /// Marks a request in progress until the guard drops.
    pub(crate) fn busy(&self) -> Busy {
        Busy::new(self.slot.clone(), self.seq.clone())
    }
}

/// A request in progress; on drop the connection is idle as of now.
pub(crate) struct Busy {
    slot: Arc<Slot>,
    seq: Arc<AtomicU64>,
}

impl Busy {
    fn new(slot: Arc<Slot>, seq: Arc<AtomicU64>) -> Busy {
        slot.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy { slot, seq }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.seq.fetch_add(1, Ordering::Relaxed);
        self.slot.idle_since.store(now, Ordering::Relaxed);
        self.slot.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(max: usize) -> Arc<Connections> {
        let open = IntGauge::new("open", "h").unwrap();
        let evicted = IntCounter::new("evicted", "h").unwrap();
        Connections::new(max, open, evicted)
    }

    #[tokio::test]
    async fn the_longest_idle_is_evicted_and_busy_ones_never() {
        let r = registry(3);
        let a = r.admit().await;
        let b = r.admit().await;
        let c = r.admit().await;
        // a turns busy, b used more recently than c: c is now the oldest idle.
        let _a_busy = a.tracker().busy();
        drop(b.tracker().busy());
        let _d = r.admit().await;
        assert!(c.slot.closing.load(Ordering::Relaxed));
        assert!(!a.slot.closing.load(Ordering::Relaxed));
        assert!(!b.slot.closing.load(Ordering::Relaxed));
        assert_eq!(r.evicted.get(), 1);
        // c's notification is waiting for it.
        tokio::time::timeout(Duration::from_secs(1), c.close_requested())
            .await
            .unwrap();
        drop(c);
        assert_eq!(r.open.get(), 3);
        assert_eq!(
            r.slots.lock().closing,
            0,
            "the closed one is no longer counted"
        );
        // 3 open again: the next admit evicts again (b is now the oldest idle).
        let _e = r.admit().await;
        assert!(b.slot.closing.load(Ordering::Relaxed));
        assert_eq!(r.evicted.get(), 2);
    }

    #[tokio::test]
    async fn all_busy_means_wait() {
        let r = registry(1);
        let a = r.admit().await;
        let busy = a.tracker().busy();
        assert!(r.try_admit().is_none());
        drop(busy);
        assert!(r.try_admit().is_some(), "idle again: evictable");
    }
}
