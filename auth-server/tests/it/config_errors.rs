//! Config values that cannot work: refused by `--check-config` and at
//! start-up by the same checks, exit 2, the message naming the key, and
//! never a panic (exit 101).

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clw-auth");

/// Each bad value (as a `CLAW_*` variable or a config file) and the key
/// the error must name.
const CASES: &[(&str, &str, &str)] = &[
    (
        "CLAW_SESSION_MAX_AGE",
        "1e30",
        "authentication.session.max_age",
    ),
    (
        "CLAW_SESSION_MAX_AGE",
        "1e19",
        "authentication.session.max_age",
    ),
    (
        "CLAW_SESSION_CACHE_TTL_SECONDS",
        "99999999999999s",
        "authentication.session.cache.ttl_seconds",
    ),
    (
        "CLAW_AUTH_REQUEST_TIMEOUT",
        "inf",
        "authentication.service.request_timeout",
    ),
    (
        "CLAW_SESSION_CACHE_MAX_SIZE",
        "100000000000",
        "authentication.session.cache.max_size",
    ),
    (
        "CLAW_SESSION_CACHE_MAX_SIZE",
        "50000000000",
        "authentication.session.cache.max_size",
    ),
    (
        "CLAW_MEMORY_MAX_HEAP_SIZE",
        "0",
        "authentication.memory.max_heap_size",
    ),
    ("CLAW_MEMORY_LIMIT", "0", "authentication.memory.limit"),
    ("CLAW_MEMORY_LIMIT", "1", "authentication.memory.limit"),
    (
        "CLAW_AUTH_HOST",
        "not..a..host",
        "authentication.service.host",
    ),
    ("CLAW_AUTH_HOST", "300.1.2.3", "authentication.service.host"),
    (
        "CLAW_USERS_FILE",
        "/nonexistent/clw-users.txt",
        "authentication.users.file",
    ),
    ("CLAW_LOG_LEVEL", "verbose", "authentication.log.level"),
    (
        "CLAW_USERS_COUNT",
        "100000000000",
        "authentication.users.count",
    ),
    (
        "CLAW_LOGIN_THROTTLE_USER_FAILURES",
        "0",
        "authentication.login_throttle.user_failures",
    ),
    (
        "CLAW_LOGIN_THROTTLE_WINDOW",
        "1e30",
        "authentication.login_throttle.window",
    ),
    (
        "CLAW_LOGIN_THROTTLE_MAX_KEYS",
        "0",
        "authentication.login_throttle.max_keys",
    ),
];

fn base_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("CLAW_USERS_COUNT", "1")
        .env("CLAW_USERS_PASSWORD", "pw")
        .env("CLAW_USERS_ARGON2_MEMORY_KIB", "8")
        .env("CLAW_USERS_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs to completion, or kills the child after 20 s (a server that
/// started serving on a bad value would otherwise run forever).
fn run(mut cmd: Command) -> Output {
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn assert_refused(out: &Output, what: &str, key: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{what}: stderr {err}\nstdout {log}"
    );
    assert!(
        err.contains(key),
        "{what}: the error must name {key}: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: {err}");
}

#[test]
fn bad_values_are_refused_by_check_config_and_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.json");
    std::fs::write(&file, r#"{"authentication":{}}"#).unwrap();
    for (var, value, key) in CASES {
        let mut check = base_command();
        check.arg("--check-config").arg(&file).env(var, value);
        assert_refused(&run(check), &format!("--check-config {var}={value}"), key);

        let mut start = base_command();
        start
            .args(["--port", "0"])
            .env("CLAW_AUTH_HOST", "127.0.0.1")
            .env(var, value);
        assert_refused(&run(start), &format!("start-up {var}={value}"), key);
    }
}

#[test]
fn numbers_in_a_file_that_overflow_a_duration_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, r#"{"authentication":{"session":{"max_age":1e30}}}"#).unwrap();
    let mut check = base_command();
    check.arg("--check-config").arg(&file);
    assert_refused(
        &run(check),
        "max_age 1e30 in a file",
        "authentication.session.max_age",
    );
}

#[test]
fn a_bad_tls_certificate_or_key_is_refused_naming_the_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let other_key = dir.path().join("other-key.pem");
    std::fs::write(&cert, a.cert.pem()).unwrap();
    std::fs::write(&other_key, b.key_pair.serialize_pem()).unwrap();
    let missing = dir.path().join("missing-cert.pem");
    let file = dir.path().join("empty.json");
    std::fs::write(&file, r#"{"authentication":{}}"#).unwrap();
    let cases = [
        (
            missing.as_path(),
            other_key.as_path(),
            "authentication.service.tls.cert",
            "missing-cert.pem: cannot read it",
        ),
        (
            cert.as_path(),
            other_key.as_path(),
            "authentication.service.tls.key",
            "other-key.pem does not go with the certificate",
        ),
    ];
    for (cert, key, config_key, why) in cases {
        for check in [true, false] {
            let mut cmd = base_command();
            cmd.env("CLAW_AUTH_TLS_CERT", cert)
                .env("CLAW_AUTH_TLS_KEY", key);
            if check {
                cmd.arg("--check-config").arg(&file);
            } else {
                cmd.args(["--port", "0"]).env("CLAW_AUTH_HOST", "127.0.0.1");
            }
            let out = run(cmd);
            assert_refused(&out, why, config_key);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(why), "{err}");
        }
    }
}
