//! Input the service must refuse rather than interpret: the JSON array
//! form of a login, lone UTF-16 surrogates in claims, and two
//! `Authorization` headers.

use crate::common;
use crate::common::{start, Client};
use clw_auth::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn post_login(c: &mut Client, body: &str) -> common::Reply {
    c.send("POST", "/auth/login", None, Some(body.into())).await
}

#[tokio::test]
async fn login_body_must_be_an_object() {
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    // serde's sequence form of the struct: accepted before the fix.
    let r = post_login(&mut c, r#"["user-1","clw-load-test"]"#).await;
    assert_eq!((r.status, r.code()), (400, "clw-bad-request"), "{}", r.text);
    assert!(r.text.contains("JSON object"), "{}", r.text);
    let r = post_login(&mut c, r#"  ["user-1","clw-load-test",null]"#).await;
    assert_eq!((r.status, r.code()), (400, "clw-bad-request"), "{}", r.text);
    // The object form still works.
    let r = post_login(
        &mut c,
        r#" {"username":"user-1","password":"clw-load-test"}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn lone_surrogates_are_refused_and_pairs_kept() {
    let server = start(Config::for_tests()).await;
    let mut c = Client::connect(server.addr()).await;
    for claims in [
        r#"{"x":"\ud800"}"#,
        r#"{"x":"\uDC00"}"#,
        r#"{"x":"\ud800\u0041"}"#,
        r#"{"x":"a\ud800"}"#,
        r#"{"\udbff":1}"#,
        r#"{"x":["\\", "\ud800"]}"#,
    ] {
        let body =
            format!(r#"{{"username":"user-1","password":"clw-load-test","claims":{claims}}}"#);
        let r = post_login(&mut c, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "clw-bad-request"),
            "{claims}: {}",
            r.text
        );
        assert!(r.text.contains("surrogate"), "{claims}: {}", r.text);
    }
    for name in [r#""\ud800""#, r#""\udfff""#] {
        let body = format!(r#"{{"username":{name},"password":"clw-load-test"}}"#);
        let r = post_login(&mut c, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "clw-bad-request"),
            "{name}: {}",
            r.text
        );
    }
    // A proper pair (U+1F600) and an escaped backslash before `u` are fine.
    let body = r#"{"username":"user-1","password":"clw-load-test","claims":{"e":"\ud83d\ude00","p":"C:\\ud800"}}"#;
    let r = post_login(&mut c, body).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    let r = c.send("GET", "/auth/validate", Some(&token), None).await;
    assert_eq!(r.body["claims"]["e"], "\u{1F600}");
    assert_eq!(r.body["claims"]["p"], "C:\\ud800");
    server.shutdown().await.unwrap();
}

async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn two_authorization_headers_are_refused() {
    let server = start(Config::for_tests()).await;
    let token = Client::connect(server.addr()).await.token("user-2").await;
    for (method, path) in [
        ("GET", "/auth/validate"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
    ] {
        let reply = raw(
            server.addr(),
            &format!(
                "{method} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\nauthorization: Bearer other\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(
            reply.starts_with("HTTP/1.1 400"),
            "{method} {path}: {reply}"
        );
        assert!(reply.contains("clw-bad-request"), "{reply}");
        assert!(reply.contains("Authorization"), "{reply}");
    }
    // The session is untouched: one header still works.
    let mut c = Client::connect(server.addr()).await;
    let r = c.send("GET", "/auth/validate", Some(&token), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    server.shutdown().await.unwrap();
}
