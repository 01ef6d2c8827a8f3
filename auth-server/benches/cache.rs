//! `make bench-cache`: the fixed session cache's single-thread speed and
//! memory per session, with jemalloc as in the server.
//!
//! Figures: insert+get pairs per second (each pair stores a session and
//! reads it back, as a login followed by a validate), and RSS bytes per
//! session for N sessions of 232 bytes of claims, measured as the growth
//! of the process RSS while the cache fills.
//! `CLW_BENCH_SESSIONS` sets N (default 1,000,000).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clw_auth::cache::{Lookup, SessionCache};
use clw_auth::config::CacheConfig;
use clw_auth::memory::{alloc_stats, purge, rss_bytes};
use clw_auth::token::TokenDigest;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const CLAIMS_BYTES: usize = 232;

/// Fast deterministic key material (splitmix64): the cache is measured,
/// not SHA-256.
fn make_keys(n: usize) -> Vec<TokenDigest> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| {
            let mut d = [0u8; 32];
            for chunk in d.chunks_mut(8) {
                chunk.copy_from_slice(&next().to_le_bytes());
            }
            TokenDigest(d)
        })
        .collect()
}

/// CPU time of this thread: the rate per CPU-second is what the cache
/// costs, whatever else the (2-core, shared) machine is doing.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn cache(n: usize) -> SessionCache {
    let cfg = CacheConfig {
        max_size: n,
        max_bytes: 1 << 40,
        ..CacheConfig::default()
    };
    SessionCache::new(&cfg, Duration::from_secs(3600))
}

fn main() {
    let n: usize = std::env::var("CLW_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let user: Arc<str> = Arc::from("user-42");
    let claims = format!("{{\"pad\":\"{}\"}}", "x".repeat(CLAIMS_BYTES - 10));
    assert_eq!(claims.len(), CLAIMS_BYTES);
    let keys = make_keys(n);

    // Memory: RSS growth while N sessions go in (keys already allocated).
    purge();
    let rss0 = rss_bytes().unwrap_or(0);
    let alloc0 = alloc_stats().allocated;
    let c = cache(n);
    let t0 = Instant::now();
    let cpu0 = thread_cpu();
    let mut found = 0usize;
    for k in &keys {
        c.insert(*k, user.clone(), claims.as_str().into())
            .expect("room");
        if let Lookup::Found(len) = c.with_session(k, |s| s.claims.len()) {
            found += len;
        }
    }
    let elapsed = t0.elapsed();
    let cpu = thread_cpu() - cpu0;
    assert_eq!(found, n * CLAIMS_BYTES, "every session read back");
    let rss1 = rss_bytes().unwrap_or(0);
    let alloc1 = alloc_stats().allocated;
    let stats = c.stats();
    // max_size bounds the whole cache, not each shard: all n fit.
    assert_eq!(stats.entries, n, "{} of {n} kept", stats.entries);

    let pairs_per_s = n as f64 / elapsed.as_secs_f64();
    let rss_per = (rss1.saturating_sub(rss0)) as f64 / n as f64;
    let alloc_per = (alloc1.saturating_sub(alloc0)) as f64 / n as f64;
    println!("bench-cache: fixed cache, {n} sessions, {CLAIMS_BYTES} B claims, single thread");
    println!(
        "  insert+get pairs/s     {:>12.0}   (target >= 2,500,000; wall clock)",
        pairs_per_s
    );
    println!(
        "  insert+get pairs/cpu-s {:>12.0}   (per second of this thread's CPU time)",
        n as f64 / cpu.as_secs_f64()
    );
    println!(
        "  RSS bytes/session      {:>12.1}   (target <= 420)",
        rss_per
    );
    println!("  allocated bytes/session{:>12.1}", alloc_per);
    println!(
        "  charged bytes/session  {:>12.1}   (what max_bytes counts)",
        stats.bytes as f64 / n as f64
    );

    drop(c);
    purge();

    // Baseline, side by side in the same run: a plain Mutex<lru::LruCache>
    // with the same keys and payload (the design's reference point).
    let base = parking_lot::Mutex::new(lru::LruCache::<[u8; 32], (Arc<str>, Box<str>)>::new(
        std::num::NonZeroUsize::new(n).expect("n > 0"),
    ));
    let rss_b0 = rss_bytes().unwrap_or(0);
    let tb = Instant::now();
    let cpub = thread_cpu();
    let mut found_b = 0usize;
    for k in &keys {
        base.lock().put(k.0, (user.clone(), claims.as_str().into()));
        if let Some(v) = base.lock().get(&k.0) {
            found_b += v.1.len();
        }
    }
    let base_rate = n as f64 / tb.elapsed().as_secs_f64();
    let base_cpu = n as f64 / (thread_cpu() - cpub).as_secs_f64();
    let base_rss = rss_bytes().unwrap_or(0).saturating_sub(rss_b0) as f64 / n as f64;
    assert_eq!(found_b, n * CLAIMS_BYTES);
    println!(
        "  baseline Mutex<lru::LruCache>: {base_rate:.0} pairs/s ({base_cpu:.0} per cpu-s), {base_rss:.1} RSS B/session"
    );
    println!(
        "  fixed cache / baseline: {:.2}x pairs/s, {:.2}x per cpu-s",
        pairs_per_s / base_rate,
        (n as f64 / cpu.as_secs_f64()) / base_cpu
    );
    drop(base);
    let c = cache(n);
    for k in &keys {
        c.insert(*k, user.clone(), claims.as_str().into())
            .expect("room");
    }

    // Steady state: a full cache where every insert evicts (LRU churn).
    let t1 = Instant::now();
    let cpu1 = thread_cpu();
    let churn = make_keys(n / 2);
    for k in churn.iter() {
        let mut k2 = *k;
        k2.0[31] ^= 0xff;
        c.insert(k2, user.clone(), claims.as_str().into())
            .expect("lru evicts");
        let _ = c.with_session(&k2, |s| s.expires_in);
    }
    let churn_rate = churn.len() as f64 / t1.elapsed().as_secs_f64();
    let churn_cpu = churn.len() as f64 / (thread_cpu() - cpu1).as_secs_f64();
    println!(
        "  full-cache churn pairs/s {:>10.0}   ({churn_cpu:.0} per cpu-s; every insert evicts)",
        churn_rate
    );
}
