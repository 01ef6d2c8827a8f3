//! Connection-level protections: the header-read timeout, which keeps slow
//! clients from pinning memory. (The connection limit, where idle
//! connections make room and busy ones make new ones wait, is in
//! tests/connections.rs.)

use std::time::Duration;

use clw_auth::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::common;

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
