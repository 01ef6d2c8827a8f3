//! `service.max_connections`: idle keep-alive connections make room for
//! new ones instead of locking users out.

use std::time::Duration;

use crate::common::{metric, start, Client};
use clw_auth::Config;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Whether the server closed `s` (EOF or reset) within `wait`.
async fn closed_within(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 64];
    match timeout(wait, s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(n)) => panic!("unexpected {n} bytes on an idle connection"),
        Err(_) => false,
    }
}

#[tokio::test]
async fn idle_connections_make_room_for_new_ones() {
    let mut cfg = Config::for_tests();
    cfg.service.max_connections = 8;
    // Long enough that no timeout frees a slot during the test.
    cfg.service.header_read_timeout = Duration::from_secs(120);
    let server = start(cfg).await;
    let addr = server.addr();

    // 12 connections that never send a byte, one after another so their
    // age order is known: 4 more than the limit.
    let mut idle = Vec::new();
    for _ in 0..12 {
        idle.push(TcpStream::connect(addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut c = timeout(Duration::from_secs(10), async {
        let mut c = Client::connect(addr).await;
        let r = c.login("user-1", None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        c
    })
    .await
    .expect("a login must be answered while idle connections fill max_connections");

    // The oldest idle connection was closed to make room; the newest lives.
    assert!(
        closed_within(&mut idle[0], Duration::from_secs(5)).await,
        "the longest-idle connection must be closed"
    );
    assert!(
        !closed_within(&mut idle[11], Duration::from_millis(300)).await,
        "the most recent idle connection must stay open"
    );

    // 4 over the limit, then the login's own connection: 5 evictions, and
    // never more open than the limit.
    let text = c.send("GET", "/metrics", None, None).await.text;
    assert_eq!(
        metric(&text, "clw_connections_evicted_total"),
        Some(5.0),
        "{text}"
    );
    assert_eq!(metric(&text, "clw_connections_open"), Some(8.0), "{text}");
    drop(idle);
    server.shutdown().await.unwrap();
}

/// A connection with a request in progress is never the one closed: when
/// every connection is busy, a new one waits for a free slot.
#[tokio::test]
async fn busy_connections_are_not_evicted() {
    let mut cfg = Config::for_tests();
    cfg.service.max_connections = 2;
    cfg.service.header_read_timeout = Duration::from_secs(120);
    let server = start(cfg).await;
    let addr = server.addr();
    // Two connections in the middle of a request (headers sent, body not).
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        use tokio::io::AsyncWriteExt;
        s.write_all(b"POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{")
            .await
            .unwrap();
        busy.push(s);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = tokio::spawn(async move {
        let mut c = Client::connect(addr).await;
        c.send("GET", "/ready", None, None).await.status
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "no slot is free while both are busy"
    );
    for s in &mut busy {
        assert!(!closed_within(s, Duration::from_millis(50)).await);
    }
    drop(busy);
    let status = timeout(Duration::from_secs(5), waiting)
        .await
        .expect("admitted once a busy connection ends")
        .unwrap();
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();
}
