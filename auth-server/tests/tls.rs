//! `authentication.service.tls`: every route over HTTPS with a certificate
//! made at test time, plain HTTP to the TLS port refused cleanly, and a
//! client that never finishes its handshake losing its slot.

mod common;

use std::time::Duration;

use common::tls::TestCert;
use common::{metric, start, Client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

// As main.rs sets clw-auth up, so /debug/pprof/heap has a profile to serve.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

clw_auth::heap_profiling_malloc_conf!();

/// The value of one labelled series, e.g. `clw_tls_handshakes_total{outcome="ok"}`.
fn series(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
}

fn handshakes(text: &str, outcome: &str) -> f64 {
    series(
        text,
        &format!("clw_tls_handshakes_total{{outcome=\"{outcome}\"}}"),
    )
    .unwrap_or_else(|| panic!("no clw_tls_handshakes_total{{outcome={outcome}}} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_over_tls() {
    let cert = TestCert::new();
    let server = start(cert.config()).await;
    let mut c = Client::connect_tls(server.addr(), &cert.der).await;

    let health = c.send("GET", "/health", None, None).await;
    assert_eq!(health.status, 200, "{}", health.text);
    assert!(
        health.body["memory_usage"]["used_mb"].is_number(),
        "{}",
        health.text
    );
    let ready = c.send("GET", "/ready", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let token = c.token("user-1").await;
    let v = c.send("GET", "/auth/validate", Some(&token), None).await;
    assert_eq!(v.status, 200, "{}", v.text);
    let heap = c.send("GET", "/debug/pprof/heap", None, None).await;
    assert_eq!(heap.status, 200, "{}", heap.text);
    assert_eq!(heap.headers["content-type"], "application/octet-stream");
    let m = c.send("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    // One connection, kept alive for all six requests: one handshake.
    assert_eq!(handshakes(&m.text, "ok"), 1.0);
    assert_eq!(handshakes(&m.text, "failed"), 0.0);
    assert_eq!(server.state().metrics.tls_handshakes_total(), 1);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_closed_without_an_http_answer() {
    let cert = TestCert::new();
    let mut cfg = cert.config();
    cfg.memory.heap_profile.enabled = false;
    let server = start(cfg).await;
    let mut plain = TcpStream::connect(server.addr()).await.unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let read = timeout(Duration::from_secs(5), plain.read_to_end(&mut got))
        .await
        .expect("the server must close a plain-HTTP connection, not hold it");
    // EOF, or a reset after rustls' alert: either way no HTTP reply.
    let _ = read;
    assert!(
        !String::from_utf8_lossy(&got).contains("HTTP/1.1"),
        "plain HTTP must get no HTTP answer on the TLS port: {got:?}"
    );

    // The failure is counted, and the server still serves TLS clients.
    let mut c = Client::connect_tls(server.addr(), &cert.der).await;
    let m = c.send("GET", "/metrics", None, None).await;
    assert_eq!(handshakes(&m.text, "failed"), 1.0, "{}", m.text);
    assert_eq!(handshakes(&m.text, "ok"), 1.0);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_trusting_another_ca_is_refused() {
    let cert = TestCert::new();
    let other = TestCert::new();
    let mut cfg = cert.config();
    cfg.memory.heap_profile.enabled = false;
    let server = start(cfg).await;
    let err = common::tls::connect(server.addr(), &other.der)
        .await
        .expect_err("a certificate the client does not trust");
    assert!(
        err.to_string().contains("certificate"),
        "the client's error names the certificate: {err}"
    );
    server.shutdown().await.unwrap();
}

/// Whether the server closed `s` (EOF or reset) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match timeout(wait, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // An alert before the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn an_unfinished_handshake_times_out_and_frees_its_slot() {
    let cert = TestCert::new();
    let mut cfg = cert.config();
    cfg.memory.heap_profile.enabled = false;
    cfg.service.header_read_timeout = Duration::from_millis(300);
    // Two slots: the stalled clients must not keep them.
    cfg.service.max_connections = 2;
    let server = start(cfg).await;
    let state = server.state().clone();

    // One silent client, one that sends half a TLS record header.
    let mut silent = TcpStream::connect(server.addr()).await.unwrap();
    let mut trickle = TcpStream::connect(server.addr()).await.unwrap();
    trickle.write_all(&[0x16, 0x03]).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(10)).await,
        "a silent client must be closed after the handshake timeout"
    );
    assert!(
        closed_within(&mut trickle, Duration::from_secs(10)).await,
        "a client that never finishes its ClientHello must be closed"
    );
    // The slots are free again (the gauge drops once the tasks end).
    timeout(Duration::from_secs(5), async {
        while state.metrics.connections_open_now() != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both slots freed");
    let mut c = Client::connect_tls(server.addr(), &cert.der).await;
    let m = c.send("GET", "/metrics", None, None).await;
    assert_eq!(handshakes(&m.text, "timeout"), 2.0, "{}", m.text);
    assert_eq!(metric(&m.text, "clw_connections_evicted_total"), Some(0.0));
    server.shutdown().await.unwrap();
}
