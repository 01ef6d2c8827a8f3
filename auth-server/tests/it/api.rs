//! Every route and every error code, over HTTP against 127.0.0.1:0.

use std::time::Duration;

use crate::common::{metric, start, Client};
use clw_auth::{Config, EvictionPolicy};
use serde_json::json;

#[tokio::test]
async fn login_validate_refresh_logout() {
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;

    let r = c
        .login("user-3", Some(json!({"role": "admin", "tenant": 7})))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 43, "256-bit base64url token");
    assert_eq!(r.body["expires_in"], 1800, "min(ttl 1800, max_age 3600)");

    let r = c.send("GET", "/auth/validate", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"], "user-3");
    assert_eq!(r.body["claims"], json!({"role": "admin", "tenant": 7}));
    assert!(r.body["expires_in"].as_u64().unwrap() > 1790);

    let r = c.send("POST", "/auth/refresh", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let fresh = r.body["token"].as_str().unwrap().to_string();
    assert_ne!(fresh, token);
    let r = c.send("GET", "/auth/validate", Some(&token), None).await;
    assert_eq!(
        (r.status, r.code()),
        (401, "clw-session-unknown"),
        "old token stops working"
    );
    let r = c.send("GET", "/auth/validate", Some(&fresh), None).await;
    assert_eq!(
        r.body["claims"]["role"], "admin",
        "claims survive the rotation"
    );

    let r = c.send("POST", "/auth/logout", Some(&fresh), None).await;
    assert_eq!(r.status, 204);
    let r = c.send("GET", "/auth/validate", Some(&fresh), None).await;
    assert_eq!((r.status, r.code()), (401, "clw-session-unknown"));
    let r = c.send("POST", "/auth/logout", Some(&fresh), None).await;
    assert_eq!((r.status, r.code()), (401, "clw-session-unknown"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_have_stable_codes() {
    let mut cfg = Config::for_tests();
    cfg.service.body_limit = 4096;
    cfg.session.max_claims_size = 1024;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;

    let r = c
        .send(
            "POST",
            "/auth/login",
            None,
            Some(r#"{"username":"user-1","password":"nope"}"#.into()),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "clw-auth-invalid-credentials"));
    let r = c
        .send(
            "POST",
            "/auth/login",
            None,
            Some(r#"{"username":"ghost","password":"clw-load-test"}"#.into()),
        )
        .await;
    assert_eq!((r.status, r.code()), (401, "clw-auth-invalid-credentials"));
    let r = c
        .send("POST", "/auth/login", None, Some("{not json".into()))
        .await;
    assert_eq!((r.status, r.code()), (400, "clw-bad-request"));
    assert!(r.body["message"].as_str().unwrap().contains("expected"));
    let r = c.login("user-1", Some(json!([1, 2]))).await;
    assert_eq!(
        (r.status, r.code()),
        (400, "clw-bad-request"),
        "claims must be an object"
    );
    let r = c
        .login("user-1", Some(json!({"blob": "x".repeat(2000)})))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (413, "clw-payload-too-large"),
        "claims over max_claims_size"
    );
    let r = c
        .send("POST", "/auth/login", None, Some("x".repeat(5000)))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (413, "clw-payload-too-large"),
        "body over body_limit"
    );

    let r = c.send("GET", "/auth/validate", None, None).await;
    assert_eq!((r.status, r.code()), (401, "clw-session-unknown"));
    let r = c
        .send("GET", "/auth/validate", Some("made-up-token"), None)
        .await;
    assert_eq!((r.status, r.code()), (401, "clw-session-unknown"));
    let r = c.send("GET", "/nope", None, None).await;
    assert_eq!((r.status, r.code()), (404, "clw-not-found"));
    let r = c.send("DELETE", "/auth/login", None, None).await;
    assert_eq!((r.status, r.code()), (405, "clw-method-not-allowed"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn expired_and_evicted_sessions_say_so() {
    let mut cfg = Config::for_tests();
    cfg.session.cache.ttl_seconds = Duration::from_millis(300);
    cfg.session.cache.max_size = 2;
    cfg.session.cache.shards = 1;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;

    let a = c.token("user-1").await;
    let b = c.token("user-2").await;
    let _c3 = c.token("user-3").await; // evicts a, the least recently used
    let r = c.send("GET", "/auth/validate", Some(&a), None).await;
    assert_eq!((r.status, r.code()), (401, "clw-session-evicted"));

    tokio::time::sleep(Duration::from_millis(450)).await;
    let r = c.send("GET", "/auth/validate", Some(&b), None).await;
    assert_eq!((r.status, r.code()), (401, "clw-session-expired"));
    let r = c.send("POST", "/auth/refresh", Some(&b), None).await;
    assert_eq!((r.status, r.code()), (401, "clw-session-expired"));

    let metrics = c.send("GET", "/metrics", None, None).await.text;
    assert!(
        metrics.contains("clw_session_cache_evictions_total{cause=\"capacity\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("clw_session_cache_evictions_total{cause=\"ttl\"} 1"),
        "{metrics}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reject_policy_overflows_with_503() {
    let mut cfg = Config::for_tests();
    cfg.session.cache.max_size = 1;
    cfg.session.cache.shards = 1;
    cfg.session.cache.eviction_policy = EvictionPolicy::Reject;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let a = c.token("user-1").await;
    let r = c.login("user-2", None).await;
    assert_eq!((r.status, r.code()), (503, "clw-session-overflow"));
    c.send("POST", "/auth/logout", Some(&a), None).await;
    assert_eq!(c.login("user-2", None).await.status, 200);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn memory_pressure_sheds_logins_and_fails_readiness() {
    let mut cfg = Config::for_tests();
    // Any process is above 0.001% of its limit: pressure from the first check.
    cfg.memory.pressure_threshold = 0.001;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.send("GET", "/ready", None, None).await;
    assert_eq!((r.status, r.code()), (503, "clw-memory-pressure"));
    let r = c.login("user-1", None).await;
    assert_eq!((r.status, r.code()), (503, "clw-memory-pressure"));
    let r = c.send("GET", "/health", None, None).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (200, Some("degraded"))
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn disabled_cache_refuses_sessions() {
    let mut cfg = Config::for_tests();
    cfg.session.cache.enabled = false;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let r = c.login("user-1", None).await;
    assert_eq!((r.status, r.code()), (503, "clw-auth-503"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn health_ready_and_metrics() {
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    for i in 0..3 {
        c.token(&format!("user-{i}")).await;
    }
    c.login("user-1", Some(json!({"x": 1}))).await;

    let r = c.send("GET", "/ready", None, None).await;
    assert_eq!(r.status, 200);
    let h = c.send("GET", "/health", None, None).await;
    assert_eq!(h.status, 200);
    assert_eq!(h.body["status"], "healthy");
    assert_eq!(h.body["session_cache"]["active_sessions"], 4);
    assert_eq!(h.body["session_cache"]["max_capacity"], 10_000);
    assert_eq!(h.body["mode"], "fixed");
    let used = h.body["memory_usage"]["used_mb"].as_u64().unwrap();
    let limit = h.body["memory_usage"]["limit_mb"].as_u64().unwrap();
    assert!(used > 0 && limit > used, "{}", h.text);
    assert!(h.body["memory_usage"]["percent"].as_f64().unwrap() > 0.0);
    assert!(h.body["allocator"]["allocated"].is_u64());

    let m = c.send("GET", "/metrics", None, None).await.text;
    assert_eq!(metric(&m, "clw_session_cache_size"), Some(4.0));
    assert_eq!(metric(&m, "clw_logins_total"), Some(4.0));
    assert!(metric(&m, "clw_session_memory_bytes").unwrap() > 0.0);
    assert!(metric(&m, "process_resident_memory_bytes").unwrap() > 1e6);
    for name in ["allocated", "active", "resident", "mapped", "retained"] {
        assert!(
            m.contains(&format!("clw_jemalloc_{name}_bytes ")),
            "missing {name}"
        );
    }
    assert!(
        m.contains(r#"clw_http_requests_total{method="POST",route="/auth/login",status="200"} 4"#),
        "{m}"
    );
    assert!(m.contains(r#"clw_http_request_duration_seconds_bucket{route="/auth/login""#));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_session_larger_than_the_whole_cache_is_refused_with_413() {
    let mut cfg = Config::for_tests();
    cfg.session.cache.max_bytes = 4096;
    cfg.session.max_claims_size = 16 * 1024;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    let kept = c.token("user-1").await;
    let r = c
        .login("user-2", Some(json!({ "blob": "x".repeat(8 * 1024) })))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (413, "clw-session-too-large"),
        "{}",
        r.text
    );
    assert!(r.body["message"].as_str().unwrap().contains("max_bytes"));
    let r = c.send("GET", "/auth/validate", Some(&kept), None).await;
    assert_eq!(r.status, 200, "nothing was evicted for the refused session");
    server.shutdown().await.unwrap();
}
