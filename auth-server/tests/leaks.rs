//! Each leak kind leaks under `leaky` and stays bounded under `fixed`, with
//! the same workload, measured from jemalloc's own statistics.
//!
//! The test binary uses jemalloc as its global allocator, as the server
//! binary does, so `stats.allocated` is the heap of the server under test.
//! The tests run one at a time (a lock) because they share that heap.

mod common;

use std::time::Duration;

use clw_auth::memory::{alloc_stats, purge};
use clw_auth::{CacheMode, Config, LeakKind};
use common::{start, Client};
use serde_json::json;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const SESSIONS: usize = 1500;
const CLAIMS: usize = 1024;

/// Runs the leak's trigger workload against a server in `mode` and returns
/// how many bytes stayed allocated once the sessions were logged out or
/// expired and cleaned up.
async fn retained_after_workload(mode: CacheMode, leak: LeakKind) -> i64 {
    let mut cfg = Config::for_tests();
    cfg.session.cache.mode = mode;
    cfg.session.cache.leak = leak;
    cfg.session.cache.max_size = 500;
    cfg.session.cache.cleanup_interval = Duration::from_millis(50);
    let expires = leak == LeakKind::ExpiredRetained;
    if expires {
        // Long enough that a login and the validate right after it fall
        // within it on a loaded machine (200 ms did not, under load 14).
        cfg.session.cache.ttl_seconds = Duration::from_millis(1000);
    }
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    // Warm up: metric label sets, connection buffers, first allocations.
    for _ in 0..50 {
        let t = c.token("user-1").await;
        c.send("POST", "/auth/logout", Some(&t), None).await;
    }
    purge();
    let before = alloc_stats().allocated as i64;

    let claims = json!({ "pad": "x".repeat(CLAIMS) });
    for i in 0..SESSIONS {
        let r = c
            .login(&format!("user-{}", i % 16), Some(claims.clone()))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let token = r.body["token"].as_str().unwrap().to_string();
        let v = c.send("GET", "/auth/validate", Some(&token), None).await;
        assert_eq!(v.status, 200);
        if !expires {
            let out = c.send("POST", "/auth/logout", Some(&token), None).await;
            assert_eq!(out.status, 204);
        }
    }
    if expires {
        // Let every session expire and the cleanup task run a few times.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    purge();
    let after = alloc_stats().allocated as i64;
    drop(c);
    server.shutdown().await.unwrap();
    after - before
}

async fn leaks_and_fix_holds(leak: LeakKind) {
    let _guard = ONE_AT_A_TIME.lock().await;
    let leaky = retained_after_workload(CacheMode::Leaky, leak).await;
    let fixed = retained_after_workload(CacheMode::Fixed, leak).await;
    let per_session = leaky as f64 / SESSIONS as f64;
    println!(
        "{}: leaky retained {leaky} B ({per_session:.0} B/session), fixed retained {fixed} B",
        leak.as_str()
    );
    // Every session's claims (1 KiB + overhead) or a 2 KiB handle per request stay behind.
    assert!(
        per_session > 800.0,
        "{}: leaky mode kept only {per_session:.0} B per session",
        leak.as_str()
    );
    // The fixed cache gives it all back (small slack for allocator noise).
    assert!(
        fixed < 256 * 1024,
        "{}: fixed mode kept {fixed} B",
        leak.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_leaks_and_fixed_does_not() {
    leaks_and_fix_holds(LeakKind::Unbounded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_retained_leaks_and_fixed_does_not() {
    leaks_and_fix_holds(LeakKind::ExpiredRetained).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_duplication_leaks_and_fixed_does_not() {
    leaks_and_fix_holds(LeakKind::PayloadDuplication).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arc_cycle_leaks_and_fixed_does_not() {
    leaks_and_fix_holds(LeakKind::ArcCycle).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handle_accumulation_leaks_and_fixed_does_not() {
    leaks_and_fix_holds(LeakKind::HandleAccumulation).await;
}

/// `memory.max_heap_size`: above the budget the fixed cache evicts least
/// recently used sessions until the heap is back under it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_budget_evicts_sessions() {
    let _guard = ONE_AT_A_TIME.lock().await;
    purge();
    let budget = alloc_stats().allocated + (4 << 20);
    let mut cfg = Config::for_tests();
    // Room for every login by count and bytes: only the heap budget binds.
    // (The cache's slab is reserved up front, 88 B per max_size entry.)
    cfg.session.cache.max_size = 4096;
    cfg.session.cache.max_bytes = 1 << 30;
    cfg.memory.max_heap_size = Some(budget);
    cfg.memory.monitor_interval = Duration::from_millis(10);
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let claims = json!({ "pad": "x".repeat(8 * 1024) });
    // 8 MiB of claims against a 4 MiB allowance.
    for _ in 0..1024 {
        assert_eq!(c.login("user-1", Some(claims.clone())).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let health = c.send("GET", "/health", None, None).await.body;
    let heap_evictions = health["session_cache"]["evictions"]["heap"]
        .as_u64()
        .unwrap();
    let sessions = health["session_cache"]["active_sessions"].as_u64().unwrap();
    assert!(heap_evictions > 0, "no heap-budget eviction: {health}");
    assert!(sessions < 1024, "{sessions} sessions kept");
    let allocated = alloc_stats().allocated;
    assert!(
        allocated < budget + (1 << 20),
        "allocated {allocated} over budget {budget}"
    );
    server.shutdown().await.unwrap();
}

/// `memory.gc_frequency` purges: RSS follows what is allocated.
#[test]
fn purge_returns_freed_pages() {
    let _guard = ONE_AT_A_TIME.blocking_lock();
    let blocks: Vec<Vec<u8>> = (0..4096).map(|i| vec![i as u8; 16 * 1024]).collect();
    let full = alloc_stats().resident;
    drop(blocks);
    purge();
    let after = alloc_stats().resident;
    assert!(
        after + (32 << 20) < full,
        "resident {full} -> {after}: 64 MiB freed should leave"
    );
}
