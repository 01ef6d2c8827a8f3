//! GET /debug/pprof/heap in a process set up as main.rs sets up clw-auth:
//! jemalloc as the global allocator, heap profiling armed at start-up.
//! jemalloc's profiler is process-wide, so this file has one test that
//! runs its cases in order.

mod common;

use common::pprof::{self, ProfileExt};
use common::{start, Client};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

clw_auth::heap_profiling_malloc_conf!();

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heap_profile_is_served_to_loopback_and_refused_when_off() {
    // Sample every 4 KiB so a small test heap still yields samples.
    let mut cfg = clw_auth::Config::for_tests();
    cfg.memory.heap_profile.sample_bytes = 4 << 10;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    for i in 0..200 {
        let claims = serde_json::json!({ "pad": "x".repeat(2048), "i": i });
        let r = c.login(&format!("user-{}", i % 16), Some(claims)).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }

    let r = c.send("GET", "/debug/pprof/heap", None, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.headers["content-type"], "application/octet-stream",
        "as Go's net/http/pprof serves it"
    );
    let profile = pprof::decode(&r.raw);
    assert!(!profile.sample.is_empty(), "a profile with no samples");
    let types: Vec<&str> = profile
        .sample_type
        .iter()
        .map(|t| profile.string(t.r#type))
        .collect();
    assert_eq!(types, ["inuse_space"], "live heap bytes");
    let exe = std::env::current_exe().unwrap();
    assert!(
        profile.is_unsymbolized_for(&exe),
        "served with names (the server would hold its debug info) or without the binary's build ID: {} functions, mappings {:?}",
        profile.function.len(),
        profile.mapping.first().map(|m| profile.string(m.filename))
    );
    assert!(
        profile.names_clw_auth(),
        "no clw_auth function with file:line in the profile: {:?}",
        &profile.frames()[..profile.frames().len().min(40)]
    );

    // The route is counted under its own bounded label.
    let m = c.send("GET", "/metrics", None, None).await;
    assert!(
        m.text.lines().any(|l| l.starts_with(
            "clw_http_requests_total{method=\"GET\",route=\"/debug/pprof/heap\",status=\"200\"} 1"
        )),
        "{}",
        m.text
    );
    server.shutdown().await.unwrap();

    // Off by config: a clear 404, not an empty profile.
    let mut cfg = clw_auth::Config::for_tests();
    cfg.memory.heap_profile.enabled = false;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.send("GET", "/debug/pprof/heap", None, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert_eq!(r.code(), "clw-heap-profile-off");
    assert!(r.text.contains("heap_profile.enabled"), "{}", r.text);
    server.shutdown().await.unwrap();
}
