//! Failed-login throttling per user and per client address: 429
//! `clw-auth-throttled` with Retry-After, counted in /metrics, and never a
//! valid login slowed by it.

use crate::common::{start, Client, Reply};
use clw_auth::Config;

async fn attempt(c: &mut Client, user: &str, password: &str) -> Reply {
    let body = serde_json::json!({ "username": user, "password": password }).to_string();
    c.send("POST", "/auth/login", None, Some(body)).await
}

fn throttled_count(metrics: &str, scope: &str) -> f64 {
    let prefix = format!("clw_login_throttled_total{{scope=\"{scope}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{metrics}"))
}

/// Defaults: 10 failures per user name, 100 per address, per minute.
#[tokio::test]
async fn guessing_one_users_password_is_throttled() {
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    for i in 0..10 {
        let r = attempt(&mut c, "user-1", &format!("guess-{i}")).await;
        assert_eq!((r.status, r.code()), (401, "clw-auth-invalid-credentials"));
    }
    // Budget spent: refused before the password is checked, even the right one.
    for password in ["guess-10", "clw-load-test"] {
        let r = attempt(&mut c, "user-1", password).await;
        assert_eq!(
            (r.status, r.code()),
            (429, "clw-auth-throttled"),
            "{}",
            r.text
        );
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    // Unknown users are throttled alike (no user enumeration).
    for i in 0..10 {
        assert_eq!(attempt(&mut c, "ghost", &format!("g{i}")).await.status, 401);
    }
    assert_eq!(attempt(&mut c, "ghost", "x").await.status, 429);
    // Other users from the same address are not affected.
    assert_eq!(c.login("user-2", None).await.status, 200);
    let metrics = c.send("GET", "/metrics", None, None).await.text;
    assert_eq!(throttled_count(&metrics, "user"), 3.0);
    assert_eq!(throttled_count(&metrics, "address"), 0.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_address_guessing_across_users_is_throttled() {
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    for i in 0..100 {
        let r = attempt(&mut c, &format!("made-up-{i}"), "guess").await;
        assert_eq!(r.status, 401, "{}", r.text);
    }
    let r = c.login("user-3", None).await;
    assert_eq!(
        (r.status, r.code()),
        (429, "clw-auth-throttled"),
        "{}",
        r.text
    );
    assert!(r.headers.contains_key("retry-after"));
    let metrics = c.send("GET", "/metrics", None, None).await.text;
    assert_eq!(throttled_count(&metrics, "address"), 1.0);
    server.shutdown().await.unwrap();
}

/// The load tests log in tens of thousands of times a second from one
/// address with the right password: with the tightest budgets, none of it
/// is ever throttled, because only failures are charged.
#[tokio::test]
async fn valid_logins_are_never_throttled() {
    let mut cfg = Config::for_tests();
    cfg.login_throttle.user_failures = 1;
    cfg.login_throttle.address_failures = 1;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    for i in 0..3000 {
        let r = c.login(&format!("user-{}", i % 16), None).await;
        assert_eq!(r.status, 200, "login {i}: {}", r.text);
    }
    server.shutdown().await.unwrap();
}
