//! Shared helpers for the integration tests: a server on 127.0.0.1:0 and a
//! small keep-alive HTTP/1.1 client.

#![allow(dead_code)] // each test binary uses a different subset

pub mod pprof;
pub mod promtool;
pub mod tls;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

use clw_auth::{Config, Server, ServerHandle};

/// Starts a server with `cfg` on the current runtime.
pub async fn start(cfg: Config) -> ServerHandle {
    Server::bind(cfg).await.expect("server binds").spawn()
}

/// A response: status, and the body as JSON (or `Value::String` for text).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: Value,
    pub text: String,
    /// The body as sent (for binary responses such as pprof).
    pub raw: Bytes,
}

impl Reply {
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// One keep-alive connection.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Client::over(stream).await
    }

    /// HTTP/1.1 over TLS, trusting `ca` only (see [`tls`]).
    pub async fn connect_tls(
        addr: SocketAddr,
        ca: &rustls::pki_types::CertificateDer<'static>,
    ) -> Client {
        let stream = tls::connect(addr, ca).await.expect("TLS connect");
        Client::over(stream).await
    }

    async fn over<I>(io: I) -> Client
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = http1::handshake(TokioIo::new(io)).await.expect("handshake");
        tokio::spawn(conn);
        Client { sender }
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Reply {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let body = body.map(Bytes::from).unwrap_or_default();
        let req = req.body(Full::new(body)).expect("request");
        self.sender.ready().await.expect("connection ready");
        let resp = self.sender.send_request(req).await.expect("response");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Reply {
            status,
            headers,
            body,
            text,
            raw: bytes,
        }
    }

    pub async fn login(&mut self, user: &str, claims: Option<Value>) -> Reply {
        let mut body = serde_json::json!({ "username": user, "password": "clw-load-test" });
        if let Some(c) = claims {
            body["claims"] = c;
        }
        self.send("POST", "/auth/login", None, Some(body.to_string()))
            .await
    }

    /// Logs in and returns the token (panics on failure).
    pub async fn token(&mut self, user: &str) -> String {
        let r = self.login(user, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["token"].as_str().expect("token").to_string()
    }
}

/// The value of an unlabelled metric in an exposition.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
