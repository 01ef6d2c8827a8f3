//! Prometheus's own linter, `promtool check metrics`, over a /metrics page.
//! Shared by clw-auth's tests and clw-cli's (loadgen/tests/it/common
//! includes this file): both expositions must pass the linter a real
//! Prometheus server's operators run.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// Whether promtool runs here. Without it: `false` after printing
/// `SKIP test: promtool not installed (hint)`, or a panic when
/// `CLW_REQUIRE_PROMTOOL` is set (`make metrics-check`, `make test`).
pub fn available(test: &str, hint: &str) -> bool {
    let Ok(version) = Command::new("promtool").arg("--version").output() else {
        assert!(
            std::env::var_os("CLW_REQUIRE_PROMTOOL").is_none(),
            "promtool is required (CLW_REQUIRE_PROMTOOL set) but not installed"
        );
        println!("SKIP {test}: promtool not installed ({hint})");
        return false;
    };
    assert!(version.status.success());
    true
}

/// What `promtool check metrics` said of an exposition.
pub struct Check {
    /// It exited 0: the text parses as the Prometheus text format.
    pub passed: bool,
    /// Its stdout and stderr: the lint findings, empty for a clean page.
    pub findings: String,
}

/// Pipes `text` through `promtool check metrics`.
pub fn check_metrics(text: &str) -> Check {
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
    Check {
        passed: out.status.success(),
        findings: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
