//! /metrics passes `promtool check metrics` (Prometheus's own linter).
//! Needs promtool (Debian's `prometheus` package; `make metrics-check`
//! installs it). Without it the test says why it skips, unless
//! CLW_REQUIRE_PROMTOOL=1 makes a missing promtool a failure.

use clw_auth::Config;

use crate::common::promtool;
use crate::common::{start, Client};

#[tokio::test]
async fn metrics_pass_promtool() {
    if !promtool::available("metrics_pass_promtool", "run `make metrics-check`") {
        return;
    }
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    let token = c.token("user-1").await;
    c.send("GET", "/auth/validate", Some(&token), None).await;
    c.send("GET", "/nope", None, None).await;
    let text = c.send("GET", "/metrics", None, None).await.text;
    server.shutdown().await.unwrap();

    let check = promtool::check_metrics(&text);
    let report = check.findings;
    assert!(
        check.passed,
        "promtool check metrics failed:\n{report}\n---\n{text}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
}
