//! The heap budget does not punish users for memory the cache does not
//! hold: with the heap over `max_heap_size` because of everything but the
//! sessions, the memory monitor evicts nothing, /health says why
//! (`pressure`) and /ready fails.
//!
//! This binary uses jemalloc as its global allocator, as the server binary
//! does, so `stats.allocated` is the heap of the server under test.

mod common;

use std::time::Duration;

use clw_auth::memory::alloc_stats;
use clw_auth::Config;
use common::{start, Client};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::test]
async fn a_heap_over_budget_outside_the_cache_evicts_no_session() {
    // The runtime, hyper and the test harness alone take more than 64 KiB
    // of heap; the sessions (no claims) give none of it back if evicted.
    let budget = 64 * 1024;
    assert!(alloc_stats().allocated > budget, "the heap is over budget");
    let mut cfg = Config::for_tests();
    cfg.memory.max_heap_size = Some(budget);
    cfg.memory.monitor_interval = Duration::from_millis(10);
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let mut tokens = Vec::new();
    for i in 0..20 {
        tokens.push(c.token(&format!("user-{}", i % 16)).await);
    }
    // Many monitor checks later...
    tokio::time::sleep(Duration::from_millis(300)).await;
    for t in &tokens {
        let r = c.send("GET", "/auth/validate", Some(t), None).await;
        assert_eq!(
            r.status, 200,
            "session evicted for heap it does not hold: {}",
            r.text
        );
    }
    let health = c.send("GET", "/health", None, None).await.body;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(
        health["pressure"]["causes"][0]["cause"], "heap-outside-cache",
        "{health}"
    );
    assert_eq!(health["session_cache"]["evictions"]["heap"], 0, "{health}");
    let metrics = c.send("GET", "/metrics", None, None).await.text;
    assert_eq!(
        common::metric(&metrics, "clw_memory_heap_outside_cache"),
        Some(1.0)
    );
    let ready = c.send("GET", "/ready", None, None).await;
    assert_eq!((ready.status, ready.code()), (503, "clw-memory-pressure"));
    assert!(ready.text.contains("heap-outside-cache"), "{}", ready.text);
    // Users are not punished: logins still work.
    c.token("user-1").await;
    server.shutdown().await.unwrap();
}
