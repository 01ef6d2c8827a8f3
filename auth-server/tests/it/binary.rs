//! The clw-auth binary: --check-config, exit codes, SIGTERM, and the field
//! guide's FATAL line on a failed allocation.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::common::pprof::{self, ProfileExt};

const BIN: &str = env!("CARGO_BIN_EXE_clw-auth");

fn write_config(dir: &tempfile::TempDir, json: &str) -> std::path::PathBuf {
    let path = dir.path().join("config.json");
    std::fs::write(&path, json).unwrap();
    path
}

#[test]
fn check_config_prints_the_effective_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        r#"{"authentication":{"service":{"port":9001},"memory":{"max_heap_size":"1536M"}}}"#,
    );
    let out = Command::new(BIN)
        .arg("--check-config")
        .arg(&path)
        .env("CLAW_SESSION_CACHE_MAX_SIZE", "777")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["authentication"]["service"]["port"], 9001);
    assert_eq!(v["authentication"]["session"]["cache"]["max_size"], 777);
    assert_eq!(
        v["authentication"]["memory"]["max_heap_size"],
        1536u64 << 20
    );
}

#[test]
fn bad_config_exits_2_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        r#"{"authentication":{"session":{"cache":{"eviction_policy":"fifo"}}}}"#,
    );
    let out = Command::new(BIN)
        .arg("--check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("authentication.session.cache.eviction_policy"),
        "{err}"
    );
    assert!(err.contains("unknown eviction policy `fifo`"), "{err}");

    let out = Command::new(BIN)
        .args(["--config", "/nonexistent.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read config file /nonexistent.json")
    );
}

/// Starts the binary on port 0 and returns it with the address it logged
/// and a reader thread that collects the rest of its log.
fn spawn_server(
    extra_env: &[(&str, &str)],
) -> (std::process::Child, String, JoinHandle<Vec<String>>) {
    let mut cmd = Command::new(BIN);
    cmd.args(["--host", "127.0.0.1", "--port", "0"])
        .env("CLAW_USERS_COUNT", "4")
        .env("CLAW_USERS_PASSWORD", "clw-load-test")
        .env("CLAW_USERS_ARGON2_MEMORY_KIB", "8")
        .env("CLAW_USERS_ARGON2_ITERATIONS", "1")
        .env("CLAW_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let addr = loop {
        assert!(Instant::now() < deadline, "no `listening on` line");
        let line = lines.next().expect("server exited early").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim_end_matches(['"', '}', ' ']).to_string();
        }
    };
    // The rest of the log, complete once the server has exited (its stdout
    // closes then): join the handle after waiting for the child.
    let logs = std::thread::spawn(move || lines.map_while(Result::ok).collect());
    (child, addr, logs)
}

fn http_raw(addr: &str, request: &str) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn sigterm_drains_and_exits_0() {
    let (child, addr, _logs) = spawn_server(&[]);
    let ready = http(
        &addr,
        "GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    // SAFETY: signalling the child we started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
}

/// With the address space capped, the leak ends in a failed allocation:
/// the guide's FATAL line must be printed, then the process aborts.
#[test]
fn failed_allocation_prints_the_fatal_line() {
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--cache-mode",
        "leaky",
    ])
    .env("CLAW_USERS_COUNT", "1")
    .env("CLAW_USERS_PASSWORD", "pw")
    .env("CLAW_USERS_ARGON2_MEMORY_KIB", "8")
    .env("CLAW_USERS_ARGON2_ITERATIONS", "1")
    .env("CLAW_AUTH_BODY_LIMIT", "2M")
    .env("CLAW_SESSION_MAX_CLAIMS_SIZE", "1M")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("server exited early").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let claims = format!("{{\"pad\":\"{}\"}}", "x".repeat(1_000_000));
    let body = format!("{{\"username\":\"user-0\",\"password\":\"pw\",\"claims\":{claims}}}");
    let request = format!(
        "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    // 1 GiB of address space holds fewer than 1000 sessions of 1 MB.
    for _ in 0..3000 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        let Ok(mut s) = TcpStream::connect(&addr) else {
            break;
        };
        if s.write_all(request.as_bytes()).is_err() {
            break;
        }
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "the leak must kill the process");
    assert!(
        stderr.contains("FATAL: clw-auth-oom: memory allocation failed"),
        "stderr: {stderr}"
    );
    assert!(
        stderr.contains("CRITICAL: service cannot allocate"),
        "stderr: {stderr}"
    );
}

#[test]
fn shipped_profiles_are_valid() {
    for (name, mode) in [("fixed", "fixed"), ("leaky", "leaky")] {
        let path = format!("{}/../profiles/{name}.json", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new(BIN)
            .args(["--check-config", &path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let auth = &v["authentication"];
        assert_eq!(auth["session"]["cache"]["mode"], mode);
        assert_eq!(auth["users"]["count"], 10_000);
        assert_eq!(auth["users"]["password"], "clw-load-test");
    }
}

/// The guide's codes appear in the log where the events happen.
#[test]
fn overflow_and_pressure_are_logged_with_the_guides_codes() {
    let (child, addr, logs) = spawn_server(&[
        ("CLAW_SESSION_CACHE_MAX_SIZE", "2"),
        ("CLAW_SESSION_CACHE_SHARDS", "1"),
        ("CLAW_MEMORY_PRESSURE_THRESHOLD", "0.001"),
        ("CLAW_MEMORY_SHED_ON_PRESSURE", "false"),
    ]);
    let body = r#"{"username":"user-1","password":"clw-load-test"}"#;
    for _ in 0..3 {
        let reply = http(
            &addr,
            &format!(
                "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    // SAFETY: signalling the child we started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(child.wait_with_output().unwrap().status.code(), Some(0));
    let logs = logs.join().unwrap().join("\n");
    assert!(
        logs.contains("clw-session-overflow: session cache reached its configured capacity"),
        "{logs}"
    );
    assert!(logs.contains("\"code\":\"clw-memory-pressure\""), "{logs}");
}

/// The admin token: `--check-config` prints `<redacted>`, and neither the
/// log nor stderr ever holds it, whether a request presents it or not.
#[test]
fn admin_token_is_redacted_and_never_logged() {
    const TOKEN: &str = "tok-3f9a1c77e0b24d58a6c1";
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, r#"{"authentication":{}}"#);
    let out = Command::new(BIN)
        .arg("--check-config")
        .arg(&path)
        .env("CLAW_AUTH_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(!printed.contains(TOKEN), "{printed}");
    let v: serde_json::Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(v["authentication"]["service"]["admin_token"], "<redacted>");

    let (child, addr, logs) = spawn_server(&[
        ("CLAW_AUTH_ADMIN_TOKEN", TOKEN),
        ("CLAW_LOG_LEVEL", "trace"),
        ("CLAW_MEMORY_HEAP_PROFILE_SAMPLE_BYTES", "4K"),
    ]);
    // Sampling starts with a `prof.reset` at start-up, so a server that has
    // done nothing since may hold no sampled live allocation yet (the
    // profile was empty about 1 run in 10). 50 sessions (of the 4 users)
    // with 2 KB of claims each, ~100 KiB live, ~25 samples expected at
    // 4 KiB, give it some.
    let claims = format!("{{\"pad\":\"{}\"}}", "x".repeat(2000));
    for i in 0..50 {
        let body = format!(
            "{{\"username\":\"user-{}\",\"password\":\"clw-load-test\",\"claims\":{claims}}}",
            i % 4
        );
        let reply = http(
            &addr,
            &format!(
                "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        );
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    for auth in [TOKEN, "not-the-token-but-long-enough"] {
        let reply = http_raw(
            &addr,
            &format!("GET /debug/pprof/heap HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {auth}\r\nconnection: close\r\n\r\n"),
        );
        // Loopback is allowed whatever the header says, and main.rs's
        // jemalloc set-up yields a profile of the binary, unsymbolized,
        // that its debug info names.
        let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&reply[..head_end]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let profile = pprof::decode(&reply[head_end + 4..]);
        assert!(!profile.sample.is_empty());
        assert!(profile.is_unsymbolized_for(std::path::Path::new(BIN)));
        assert!(profile.names_clw_auth(), "{:?}", profile.frames());
    }
    // SAFETY: signalling the child we started, by its PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let logs = logs.join().unwrap().join("\n");
    assert!(logs.contains("SIGTERM received"), "{logs}");
    assert!(!logs.contains(TOKEN), "token in the log: {logs}");
    assert!(!String::from_utf8_lossy(&out.stderr).contains(TOKEN));
}
