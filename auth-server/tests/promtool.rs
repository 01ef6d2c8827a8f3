//! /metrics passes `promtool check metrics` (Prometheus's own linter).
//! Needs promtool (Debian's `prometheus` package; `make metrics-check`
//! installs it). Without it the test says why it skips, unless
//! CLW_REQUIRE_PROMTOOL=1 makes a missing promtool a failure.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use clw_auth::Config;
use common::{start, Client};

#[tokio::test]
async fn metrics_pass_promtool() {
    let Ok(status) = Command::new("promtool").arg("--version").output() else {
        assert!(
            std::env::var("CLW_REQUIRE_PROMTOOL").is_err(),
            "promtool is required (CLW_REQUIRE_PROMTOOL set) but not installed"
        );
        println!("SKIP metrics_pass_promtool: promtool not installed (run `make metrics-check`)");
        return;
    };
    assert!(status.status.success());
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    let token = c.token("user-1").await;
    c.send("GET", "/auth/validate", Some(&token), None).await;
    c.send("GET", "/nope", None, None).await;
    let text = c.send("GET", "/metrics", None, None).await.text;
    server.shutdown().await.unwrap();

    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{report}\n---\n{text}"
    );
    assert!(
        report.trim().is_empty(),
        "promtool lint findings:\n{report}"
    );
}
