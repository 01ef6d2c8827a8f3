//! Connection-level protections: the connection limit and the header-read
//! timeout, which keep slow or idle clients from pinning memory.

mod common;

use std::time::Duration;

use clw_auth::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const READY: &[u8] = b"GET /ready HTTP/1.1\r\nhost: x\r\n\r\n";

async fn read_some(s: &mut TcpStream, within: Duration) -> Option<usize> {
    let mut buf = [0u8; 1024];
    timeout(within, s.read(&mut buf))
        .await
        .ok()
        .map(|r| r.unwrap_or(0))
}

#[tokio::test]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let mut cfg = Config::for_tests();
    cfg.service.max_connections = 1;
    let server = common::start(cfg).await;
    let mut first = TcpStream::connect(server.addr()).await.unwrap();
    first.write_all(READY).await.unwrap();
    assert!(read_some(&mut first, Duration::from_secs(5)).await.unwrap() > 0);

    let mut second = TcpStream::connect(server.addr()).await.unwrap();
    second.write_all(READY).await.unwrap();
    assert_eq!(
        read_some(&mut second, Duration::from_millis(300)).await,
        None,
        "no slot yet"
    );
    drop(first);
    let n = read_some(&mut second, Duration::from_secs(5)).await;
    assert!(
        n.unwrap_or(0) > 0,
        "served once the first connection closed"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_dropped() {
    let mut cfg = Config::for_tests();
    cfg.service.header_read_timeout = Duration::from_millis(200);
    let server = common::start(cfg).await;
    let mut s = TcpStream::connect(server.addr()).await.unwrap();
    s.write_all(b"GET /ready HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    // hyper answers 408 or just closes; either way the read ends soon.
    let mut buf = Vec::new();
    let done = timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(
        done.is_ok(),
        "the connection was not closed by the header-read timeout"
    );
    server.shutdown().await.unwrap();
}
