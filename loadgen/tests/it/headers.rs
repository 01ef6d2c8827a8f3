//! `--header`: what reaches the server, read off the wire by a small
//! HTTP/1.1 server that keeps every request head it is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::common::{summary, LoadTest};
use clap::Parser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers every request `200 ok` on keep-alive connections and records
/// each request head (up to the blank line).
async fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let heads = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        heads.lock().unwrap().push(head);
                        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                        if sock.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    (addr, heads)
}

const TWO_STEPS: &str = r#"
name = "two-steps"
[[steps]]
name = "own"
method = "GET"
path = "/own"
headers = { X-Api-Key = "from-the-step" }
[[steps]]
name = "plain"
method = "GET"
path = "/plain"
"#;

/// The values of header `name` in `head`, compared without case.
fn values<'a>(head: &'a str, name: &str) -> Vec<&'a str> {
    head.lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_carries_the_header_unless_its_step_sets_its_own() {
    let (addr, heads) = recording_server().await;
    let test = LoadTest::with_scenario_text(format!("http://{addr}"), TWO_STEPS);
    let flags = "--concurrent-users 2 --duration 1s --no-memory \
                 -H X-Api-Key:s3cret-from-the-flag --header X-Tenant:blue -H Host:auth.example";
    let outcome = clw_cli::run(test.opts(flags))
        .await
        .expect("the run completes");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    let heads = heads.lock().unwrap().clone();
    let load: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("GET /own ") || h.starts_with("GET /plain "))
        .collect();
    assert_eq!(
        load.len() as u64,
        s["requests"]["total"].as_u64().unwrap(),
        "every request the summary counts reached the server"
    );
    for head in &load {
        assert_eq!(values(head, "Host"), ["auth.example"], "{head}");
        assert_eq!(values(head, "X-Tenant"), ["blue"], "{head}");
        let key = if head.starts_with("GET /own ") {
            "from-the-step"
        } else {
            "s3cret-from-the-flag"
        };
        assert_eq!(values(head, "X-Api-Key"), [key], "{head}");
    }
    // Named in the notes, the value nowhere in the run folder.
    let notes = s["notes"].to_string();
    assert!(notes.contains("X-Api-Key, X-Tenant, Host"), "{notes}");
    for entry in std::fs::read_dir(&test.out).unwrap() {
        let path = entry.unwrap().path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            assert!(
                !text.contains("s3cret"),
                "{} holds the value",
                path.display()
            );
        }
    }
}

#[test]
fn a_header_that_would_break_the_request_is_a_usage_error() {
    for (header, why) in [
        ("Content-Length:9", "set by clw-cli itself"),
        ("No-Colon", "is not `Name: value`"),
        ("Authorization=Bearer s3cr3t-value", "is not `Name: value`"),
    ] {
        let err = clw_cli::Opts::try_parse_from([
            "clw-cli",
            "auth",
            "load-test",
            "--target",
            "http://127.0.0.1:1",
            "-H",
            header,
        ])
        .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        let text = err.to_string();
        assert!(text.contains("--header") && text.contains(why), "{text}");
        // The value may be a credential: never echoed.
        assert!(
            !text.contains("s3cr3t") && !text.contains("No-Colon"),
            "{text}"
        );
    }
}
