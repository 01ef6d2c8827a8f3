//! The memory regression test at unit level, counted exactly by dhat: a
//! burst of logins into the session cache, then their logout or expiry
//! and a cleanup sweep. The fixed cache gives the heap back but for a
//! small bounded rest; the leaky cache's `unbounded` mode keeps every
//! session.
//!
//! dhat's testing mode allows one profiler per process, so this file has
//! one test, which measures both caches in turn.

use std::sync::Arc;
use std::time::Duration;

use clw_auth::cache::SessionCache;
use clw_auth::config::CacheConfig;
use clw_auth::token::TokenDigest;
use clw_auth::{CacheMode, LeakKind};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Logins in the burst, each with a claims string of `CLAIMS` bytes.
const LOGINS: usize = 4000;
const CLAIMS: usize = 512;
/// What the fixed cache may keep once every session is gone: the
/// tombstones that let a late request tell `evicted` from `unknown`
/// (bounded by the cache's own capacity), and hash-table growth.
/// A leak of one claims string per login would be 4000 * 512 = 2 MB.
const FIXED_BOUND: u64 = 128 << 10;

/// Heap bytes still live after the burst, compared with just before it
/// (the cache's slab, reserved up front, is in the baseline).
fn retained(mode: CacheMode) -> u64 {
    let cfg = CacheConfig {
        mode,
        leak: LeakKind::Unbounded,
        max_size: 1000,
        ttl_seconds: Duration::from_millis(30),
        shards: 4,
        ..CacheConfig::default()
    };
    let cache = SessionCache::new(&cfg, Duration::from_secs(3600));
    let user: Arc<str> = Arc::from("user-1");
    let claims = format!("{{\"pad\":\"{}\"}}", "x".repeat(CLAIMS - 10));
    let baseline = dhat::HeapStats::get().curr_bytes;

    let keys: Vec<TokenDigest> = (0..LOGINS)
        .map(|i| TokenDigest::of(&format!("token-{i}")))
        .collect();
    for key in &keys {
        cache
            .insert(*key, user.clone(), claims.as_str().into())
            .expect("the cache takes the session");
    }
    // Half log out; the other half expire and are swept.
    for key in keys.iter().step_by(2) {
        cache.remove(key);
    }
    std::thread::sleep(Duration::from_millis(100));
    cache.cleanup();
    drop(keys);

    let after = dhat::HeapStats::get().curr_bytes;
    drop(cache);
    after.saturating_sub(baseline) as u64
}

#[test]
fn fixed_cache_gives_back_a_login_burst_and_the_unbounded_leak_does_not() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let fixed = retained(CacheMode::Fixed);
    let leaky = retained(CacheMode::Leaky);
    println!("live bytes after the burst: fixed {fixed}, leaky (unbounded) {leaky}");
    assert!(
        fixed <= FIXED_BOUND,
        "the fixed cache kept {fixed} bytes after every session was logged out or expired (bound {FIXED_BOUND})"
    );
    let leaked_claims = (LOGINS * CLAIMS) as u64;
    assert!(
        leaky >= leaked_claims,
        "the unbounded leak kept only {leaky} bytes; it should keep every session's claims ({leaked_claims})"
    );
}
