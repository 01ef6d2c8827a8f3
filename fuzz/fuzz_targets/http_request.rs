//! clw-auth's request handling, end to end: the input is the raw bytes a
//! client sends on one keep-alive connection, served by the real
//! connection driver (`clw_auth::server::serve_io`: hyper's HTTP/1.1,
//! the header-read timeout, the router, login JSON, `Authorization`
//! parsing) over an in-memory stream. Any input must be answered or the
//! connection closed; never a panic, never a 500.
//!
//! Every occurrence of `@TOKEN@` in the input is replaced by a live session
//! token (from a real login made first), so the fuzzer reaches the
//! validate/refresh/logout paths behind a valid bearer token.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use clw_auth::memory::{LimitSource, MemoryLimit};
use clw_auth::state::State;
use clw_auth::users::UserStore;
use clw_auth::Config;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LOGIN_BODY: &str = r#"{"username":"user-0","password":"clw-load-test"}"#;

fuzz_target!(|data: &[u8]| {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(one_input(data));
});

/// A fresh server state per input (two users, cheapest argon2 cost), so a
/// crash reproduces from its input alone.
fn state() -> Arc<State> {
    let mut cfg = Config::for_tests();
    cfg.users.count = 2;
    cfg.memory.limit = Some(256 << 20);
    let users = UserStore::from_config(&cfg.users).expect("users");
    let limit = MemoryLimit {
        bytes: 256 << 20,
        source: LimitSource::Config,
    };
    Arc::new(State::new(cfg, users, limit))
}

/// Sends `input` on one connection, waits, closes, and returns everything
/// the server wrote back.
async fn exchange(state: &Arc<State>, input: &[u8]) -> Vec<u8> {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let conn = tokio::spawn(clw_auth::server::serve_io(server, peer, state.clone()));
    let (mut rd, mut wr) = tokio::io::split(&mut client);
    let write = async {
        let _ = wr.write_all(input).await;
        // hyper closes a connection whose client half-closes mid-request
        // (half_close is off), so the client waits until the server has
        // answered all it can (no real time passes on the paused clock),
        // then closes its side.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let _ = wr.shutdown().await;
    };
    let mut out = Vec::new();
    let read = rd.read_to_end(&mut out);
    // The paused clock jumps ahead whenever nothing can run, so this bound
    // costs no real time; it only ends an exchange the server never closes.
    let _ = tokio::time::timeout(Duration::from_secs(3600), async {
        tokio::join!(write, read)
    })
    .await;
    drop(client);
    conn.await.expect("connection task does not panic");
    out
}

async fn one_input(data: &[u8]) {
    let state = state();
    let login = format!(
        "POST /auth/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{LOGIN_BODY}",
        LOGIN_BODY.len()
    );
    let login = exchange(&state, login.as_bytes()).await;
    let token = token_of(&login).unwrap_or_else(|| {
        panic!(
            "the fixed login did not succeed: {:?}",
            String::from_utf8_lossy(&login)
        )
    });
    let input = replace(data, b"@TOKEN@", token.as_bytes());
    let out = exchange(&state, &input).await;
    for status in statuses(&out) {
        assert!(
            status != 500,
            "500 answered to {:?}\nresponse: {:?}",
            String::from_utf8_lossy(&input),
            String::from_utf8_lossy(&out)
        );
    }
}

fn token_of(resp: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(resp).ok()?;
    let at = text.find("\"token\":\"")? + "\"token\":\"".len();
    let len = text[at..].find('"')?;
    Some(text[at..at + len].to_string())
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// The status codes of the responses in `out`, read response by response
/// (status line, headers, `content-length` body), so a claim echoed in a
/// body is never mistaken for a status line.
fn statuses(mut out: &[u8]) -> Vec<u16> {
    let mut codes = Vec::new();
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = resp.parse(out) else {
            return codes;
        };
        codes.extend(resp.code);
        let body = resp
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse::<usize>().ok())
            .unwrap_or(0);
        match out.get(head + body..) {
            Some(rest) if !rest.is_empty() => out = rest,
            _ => return codes,
        }
    }
}
