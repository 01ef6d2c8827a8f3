//! Unit tests of the cache's rules; memory is measured in tests/leaks.rs.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::advance;

use super::*;
use crate::config::{CacheConfig, CacheMode, EvictionPolicy, LeakKind};
use crate::token::issue;

fn cfg(max_size: usize) -> CacheConfig {
    CacheConfig {
        max_size,
        shards: 1,
        ttl_seconds: Duration::from_secs(30),
        ..CacheConfig::default()
    }
}

fn login(cache: &SessionCache, claims: &str) -> TokenDigest {
    let (_, d) = issue();
    cache.insert(d, Arc::from("alice"), claims.into()).unwrap();
    d
}

fn user_of(cache: &SessionCache, d: &TokenDigest) -> Lookup<String> {
    cache.with_session(d, |s| s.user.to_string())
}

#[tokio::test]
async fn lru_evicts_the_least_recently_used_at_capacity() {
    let cache = SessionCache::with_clock(&cfg(3), Duration::from_secs(3600), Clock::tokio());
    let a = login(&cache, "");
    let b = login(&cache, "");
    let c = login(&cache, "");
    assert!(matches!(user_of(&cache, &a), Lookup::Found(_))); // a is now most recent
    let d = login(&cache, "");
    assert_eq!(
        user_of(&cache, &b),
        Lookup::Evicted,
        "b was least recently used"
    );
    for k in [a, c, d] {
        assert!(matches!(user_of(&cache, &k), Lookup::Found(_)));
    }
    let stats = cache.stats();
    assert_eq!(stats.entries, 3);
    assert_eq!(stats.evictions[EvictionCause::Capacity as usize], 1);
}

#[tokio::test]
async fn bytes_bound_sessions_whatever_their_count() {
    let mut c = cfg(1000);
    c.max_bytes = 8 * 1024;
    let cache = SessionCache::with_clock(&c, Duration::from_secs(3600), Clock::tokio());
    let big = format!("{{\"blob\":\"{}\"}}", "x".repeat(1000));
    for _ in 0..50 {
        login(&cache, &big);
    }
    let stats = cache.stats();
    assert!(stats.bytes <= 8 * 1024, "bytes {} over budget", stats.bytes);
    assert!(
        stats.entries < 10,
        "{} sessions of 1 KiB in 8 KiB",
        stats.entries
    );
    assert!(stats.evictions[EvictionCause::Bytes as usize] > 0);
}

#[tokio::test]
async fn reject_policy_refuses_when_full() {
    let mut c = cfg(2);
    c.eviction_policy = EvictionPolicy::Reject;
    let cache = SessionCache::with_clock(&c, Duration::from_secs(3600), Clock::tokio());
    let a = login(&cache, "");
    login(&cache, "");
    let (_, d) = issue();
    assert_eq!(
        cache.insert(d, Arc::from("bob"), "".into()),
        Err(InsertError::Overflow)
    );
    assert!(cache.remove(&a));
    assert!(
        cache.insert(d, Arc::from("bob"), "".into()).is_ok(),
        "room after logout"
    );
}

#[tokio::test(start_paused = true)]
async fn idle_ttl_expires_on_read_and_use_extends_it() {
    let cache = SessionCache::with_clock(&cfg(10), Duration::from_secs(3600), Clock::tokio());
    let a = login(&cache, "");
    let b = login(&cache, "");
    advance(Duration::from_secs(20)).await;
    assert!(
        matches!(user_of(&cache, &a), Lookup::Found(_)),
        "use refreshes the idle TTL"
    );
    advance(Duration::from_secs(15)).await;
    assert!(matches!(user_of(&cache, &a), Lookup::Found(_)));
    assert_eq!(user_of(&cache, &b), Lookup::Expired, "35 s idle > 30 s TTL");
    assert_eq!(
        user_of(&cache, &b),
        Lookup::Expired,
        "still told expired after removal"
    );
    assert_eq!(cache.stats().entries, 1);
}

#[tokio::test(start_paused = true)]
async fn max_age_is_absolute() {
    let cache = SessionCache::with_clock(&cfg(10), Duration::from_secs(60), Clock::tokio());
    let a = login(&cache, "");
    for _ in 0..7 {
        advance(Duration::from_secs(10)).await;
        let _ = user_of(&cache, &a);
    }
    assert_eq!(
        user_of(&cache, &a),
        Lookup::Expired,
        "70 s > max_age 60 s despite use"
    );
}

#[tokio::test(start_paused = true)]
async fn cleanup_sweeps_expired_sessions() {
    let cache = SessionCache::with_clock(&cfg(100), Duration::from_secs(3600), Clock::tokio());
    for _ in 0..40 {
        login(&cache, "{}");
    }
    advance(Duration::from_secs(10)).await;
    let fresh = login(&cache, "");
    advance(Duration::from_secs(25)).await;
    assert_eq!(cache.cleanup(), 40);
    let stats = cache.stats();
    assert_eq!(stats.entries, 1);
    assert_eq!(stats.bytes, ENTRY_OVERHEAD);
    assert_eq!(stats.evictions[EvictionCause::Ttl as usize], 40);
    assert!(matches!(user_of(&cache, &fresh), Lookup::Found(_)));
}

#[tokio::test]
async fn rotate_moves_the_session_and_kills_the_old_token() {
    let cache = SessionCache::with_clock(&cfg(10), Duration::from_secs(3600), Clock::tokio());
    let a = login(&cache, r#"{"role":"admin"}"#);
    let (_, b) = issue();
    assert!(matches!(cache.rotate(&a, b), Lookup::Found(_)));
    assert_eq!(user_of(&cache, &a), Lookup::Unknown);
    assert_eq!(
        cache.with_session(&b, |s| s.claims.to_string()),
        Lookup::Found(r#"{"role":"admin"}"#.into())
    );
    assert!(cache.remove(&b));
    assert!(!cache.remove(&b));
    assert_eq!(cache.stats().entries, 0);
}

#[tokio::test]
async fn heap_eviction_frees_the_claims_it_is_asked_for() {
    let mut c = cfg(1000);
    c.shards = 4;
    let cache = SessionCache::with_clock(&c, Duration::from_secs(3600), Clock::tokio());
    let claims = claims_of(100);
    for _ in 0..100 {
        login(&cache, &claims);
    }
    assert_eq!(cache.stats().evictable_bytes, 100 * 100);
    // Claims are what eviction gives back to the heap, so they are counted.
    let freed = cache.evict_for_heap(1000);
    assert_eq!(freed, 1000);
    assert_eq!(cache.stats().entries, 90);
    assert_eq!(cache.stats().evictions[EvictionCause::Heap as usize], 10);
}

#[tokio::test]
async fn disabled_cache_refuses_sessions() {
    let mut c = cfg(10);
    c.enabled = false;
    let cache = SessionCache::with_clock(&c, Duration::from_secs(3600), Clock::tokio());
    let (_, d) = issue();
    assert_eq!(
        cache.insert(d, Arc::from("a"), "".into()),
        Err(InsertError::Disabled)
    );
}

fn leaky(kind: LeakKind, max_size: usize) -> SessionCache {
    let mut c = cfg(max_size);
    c.mode = CacheMode::Leaky;
    c.leak = kind;
    SessionCache::with_clock(&c, Duration::from_secs(3600), Clock::tokio())
}

#[tokio::test]
async fn unbounded_keeps_sessions_past_max_size_and_after_logout() {
    let cache = leaky(LeakKind::Unbounded, 5);
    let keys: Vec<_> = (0..20).map(|_| login(&cache, "")).collect();
    for k in &keys {
        assert!(cache.remove(k), "logout answers as if it worked");
        assert_eq!(user_of(&cache, k), Lookup::Unknown);
    }
    assert_eq!(cache.stats().entries, 20, "nothing was removed");
    assert_eq!(cache.cleanup(), 0);
}

#[tokio::test(start_paused = true)]
async fn expired_retained_rejects_but_keeps() {
    let cache = leaky(LeakKind::ExpiredRetained, 100);
    let a = login(&cache, "");
    let b = login(&cache, "");
    assert!(cache.remove(&b), "logout of a live session works");
    advance(Duration::from_secs(31)).await;
    assert_eq!(user_of(&cache, &a), Lookup::Expired);
    assert_eq!(cache.cleanup(), 0);
    assert_eq!(cache.stats().entries, 1, "expired session kept");
}

#[tokio::test]
async fn side_leaks_keep_a_bounded_cache_but_grow_beside_it() {
    for kind in [
        LeakKind::PayloadDuplication,
        LeakKind::ArcCycle,
        LeakKind::HandleAccumulation,
    ] {
        let cache = leaky(kind, 5);
        for _ in 0..20 {
            let k = login(&cache, r#"{"a":1}"#);
            cache.on_request();
            cache.remove(&k);
        }
        let stats = cache.stats();
        assert_eq!(stats.entries, 0, "{kind:?}: the cache itself is bounded");
        assert!(stats.leaked_bytes > 0, "{kind:?}: the leak is accounted");
    }
}

/// `shards` shards, `max_size` and `max_bytes` as given, LRU.
fn sharded(max_size: usize, max_bytes: u64, shards: usize) -> SessionCache {
    let c = CacheConfig {
        max_size,
        max_bytes,
        shards,
        ttl_seconds: Duration::from_secs(30),
        ..CacheConfig::default()
    };
    SessionCache::with_clock(&c, Duration::from_secs(3600), Clock::tokio())
}

fn claims_of(len: usize) -> String {
    format!("{{\"p\":\"{}\"}}", "x".repeat(len - 8))
}

#[tokio::test]
async fn max_size_holds_for_the_whole_cache_not_per_shard() {
    // 50 over 16 shards used to be 4 per shard, 64 in all.
    let cache = sharded(50, 1 << 30, 16);
    for i in 0..500 {
        login(&cache, "");
        let n = cache.stats().entries;
        assert!(n <= 50, "{n} sessions after {} logins, max_size 50", i + 1);
    }
    assert_eq!(cache.stats().entries, 50, "a full cache holds max_size");
}

#[tokio::test]
async fn max_bytes_holds_for_the_whole_cache_whatever_the_session_size() {
    // 16 shards of 4 KiB each used to store one 10 KiB session apiece.
    let max = 64 * 1024;
    let cache = sharded(10_000, max, 16);
    for len in [100, 1000, 10_000, 30_000, 60_000, 500] {
        for _ in 0..64 {
            login(&cache, &claims_of(len));
            let b = cache.stats().bytes;
            assert!(
                b <= max,
                "{b} bytes held with {len} B sessions, max_bytes {max}"
            );
        }
    }
    // And a full cache of equal sessions holds as many as fit, not fewer
    // (per-shard budgets of 4 KiB held 3 of these each: 48).
    let cache = sharded(10_000, max, 16);
    for _ in 0..200 {
        login(&cache, &claims_of(1000));
    }
    assert_eq!(cache.stats().entries as u64, max / (1000 + ENTRY_OVERHEAD));
}

#[tokio::test]
async fn a_session_larger_than_the_cache_is_refused() {
    let cache = sharded(100, 8 * 1024, 4);
    let kept = login(&cache, "");
    let (_, d) = issue();
    let res = cache.insert(d, Arc::from("alice"), claims_of(8 * 1024).into());
    assert_eq!(
        res,
        Err(InsertError::TooLarge {
            weight: 8 * 1024 + ENTRY_OVERHEAD,
            max_bytes: 8 * 1024
        }),
        "a session over max_bytes is refused"
    );
    assert_eq!(cache.stats().entries, 1, "nothing was evicted for it");
    assert!(matches!(user_of(&cache, &kept), Lookup::Found(_)));
    // The largest session that fits is stored, evicting what it must.
    let (_, d) = issue();
    let fits = claims_of((8 * 1024 - ENTRY_OVERHEAD) as usize);
    assert!(cache.insert(d, Arc::from("alice"), fits.into()).is_ok());
    assert_eq!(cache.stats().bytes, 8 * 1024);
}

#[test]
fn bounds_hold_under_concurrent_logins() {
    let cache = Arc::new(sharded(100, 40 * 1024, 8));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (cache, stop) = (cache.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut worst = (0, 0);
            while !stop.load(Ordering::Relaxed) {
                let s = cache.stats();
                worst = (worst.0.max(s.entries), worst.1.max(s.bytes));
            }
            worst
        })
    };
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                for i in 0..5000 {
                    let len = [16, 300, 2000, 9000][(i + t) % 4];
                    login(&cache, &claims_of(len));
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (entries, bytes) = watcher.join().unwrap();
    assert!(entries <= 100, "{entries} sessions seen, max_size 100");
    assert!(bytes <= 40 * 1024, "{bytes} bytes seen, max_bytes 40 KiB");
}
