//! /metrics stays bounded whatever clients send: every label of every
//! metric takes its value from a fixed set, so thousands of distinct
//! methods, paths, queries, tokens, bodies and headers add no series and
//! (but for counter digits) no bytes to the exposition.

use std::collections::BTreeSet;

use crate::common::{start, Client};
use clw_auth::metrics::ROUTES;
use clw_auth::Config;
use serde_json::json;

/// The series of an exposition: every sample line's name and labels.
fn series(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(k, _)| k).to_string())
        .collect()
}

/// One round of hostile traffic: `n` distinct values of every request
/// field, tagged with `round` so no two rounds repeat a value.
async fn flood(c: &mut Client, round: &str, n: usize) {
    let routes = &ROUTES[..ROUTES.len() - 1]; // all but `other`
    for i in 0..n {
        // A made-up method on a made-up path, a known route, and (every
        // 50th) a long one, as in the probe (16 KiB there, 2 KiB here).
        let method = if i % 50 == 0 {
            format!("X{round}{i}{}", "M".repeat(2048))
        } else {
            format!("X{round}{i}")
        };
        c.send(&method, &format!("/scan/{round}/{i}"), None, None)
            .await;
        c.send(&method, routes[i % routes.len()], None, None).await;
        // Distinct paths and queries with real methods.
        c.send("GET", &format!("/{round}{i}"), None, None).await;
        c.send("GET", &format!("/health?{round}={i}"), None, None)
            .await;
        // Distinct tokens, users, bodies: every error code the routes have.
        let token = format!("{round}-{i}");
        c.send("GET", "/auth/validate", Some(&token), None).await;
        c.send("POST", "/auth/logout", Some(&token), None).await;
        c.send("POST", "/auth/refresh", Some(&token), None).await;
        let body = json!({"username": format!("u{round}{i}"), "password": token});
        c.send("POST", "/auth/login", None, Some(body.to_string()))
            .await;
        c.send("POST", "/auth/login", None, Some(format!("{{{round}{i}")))
            .await;
        let claims =
            json!({"username": "user-1", "password": "clw-load-test", "claims": format!("{i}")});
        c.send("POST", "/auth/login", None, Some(claims.to_string()))
            .await;
    }
}

#[tokio::test]
async fn thousands_of_distinct_inputs_add_no_series() {
    let mut cfg = Config::for_tests();
    cfg.session.cache.max_size = 64;
    // The flood's thousands of failed logins from one address would spend
    // its login budget (429 `clw-auth-throttled`, a status from the same
    // fixed set) and stop them reaching the credential check this test
    // floods; tests/throttle.rs covers the throttle.
    cfg.login_throttle.enabled = false;
    let server = start(cfg).await;
    let mut c = Client::connect(server.addr()).await;
    // Warm-up: every kind of request a few times, so each folded series
    // (`other`, each error status) exists before the measurement; one
    // round per route, so each route's method=other series exists too.
    let warm = ROUTES.len();
    flood(&mut c, "warm", warm).await;
    c.send("GET", "/metrics", None, None).await;
    let before = c.send("GET", "/metrics", None, None).await.text;

    flood(&mut c, "flood", 1000).await;
    let after = c.send("GET", "/metrics", None, None).await.text;
    server.shutdown().await.unwrap();

    let (b, a) = (series(&before), series(&after));
    let new: Vec<_> = a.difference(&b).take(10).collect();
    assert!(
        new.is_empty(),
        "{} new series after 10,000 distinct requests, e.g. {new:#?}",
        a.len() - b.len()
    );
    // Only counter values may have grown (a few more digits per line).
    assert!(
        after.len() <= before.len() + 4 * a.len(),
        "/metrics grew from {} to {} bytes",
        before.len(),
        after.len()
    );
    assert!(
        after.contains(&format!(
            "clw_http_requests_total{{method=\"other\",route=\"other\",status=\"404\"}} {}",
            1000 + warm
        )),
        "unknown methods on unknown paths fold into method=\"other\", route=\"other\":\n{after}"
    );
}
