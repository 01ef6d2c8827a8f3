//! A lean HTTP/1.1 client connection: one per virtual user.
//!
//! Why not hyper: measured on this project's 2-core machine, a tokio
//! `TcpStream` + `httparse` loop spends about a third of hyper's user CPU per
//! request, which is the difference between keeping up with wrk and not. The
//! generator only needs a narrow slice of HTTP/1.1: requests it renders
//! itself, keep-alive, `Content-Length` and chunked response bodies, and a
//! reconnect when the server closes. Buffers are reused across requests, so a
//! connection allocates nothing per request once warm.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::stream::{OpenError, Stream};
use crate::tls::TlsDial;

/// Largest response (head + body) accepted; a bigger one is a protocol error,
/// so a misbehaving server cannot make the generator's memory grow.
const MAX_RESPONSE_BYTES: usize = 16 << 20;
const MAX_HEADERS: usize = 48;

/// Why a request got no HTTP response. The names are the `by_error` keys of
/// summary.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TransportError {
    /// TCP connect failed (refused, unreachable).
    #[error("connect")]
    Connect,
    /// No complete response within `--timeout`: the field guide's
    /// `clw-auth-timeout`.
    #[error("clw-auth-timeout")]
    Timeout,
    /// The connection was reset or closed before the response was complete.
    #[error("reset")]
    Reset,
    /// The TLS handshake failed (certificate not trusted, name mismatch,
    /// not a TLS server).
    #[error("tls")]
    Tls,
    /// The bytes received were not a valid HTTP/1.1 response.
    #[error("protocol")]
    Protocol,
}

impl TransportError {
    /// The key this error is counted under.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TransportError::Connect => "connect",
            TransportError::Timeout => "clw-auth-timeout",
            TransportError::Reset => "reset",
            TransportError::Tls => "tls",
            TransportError::Protocol => "protocol",
        }
    }
}

/// A response, its buffers reused from one request to the next.
#[derive(Debug, Default)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Raw head (status line and headers), for [`Response::header`].
    head: Vec<u8>,
    /// The body, de-chunked.
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The value of the first header named `name` (case-insensitive).
    /// Parses the head again: only captures, the jar and redirects ask,
    /// so plain requests pay nothing.
    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        parsed.parse(&self.head).ok()?;
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Call `f` with the value of every header named `name`
    /// (case-insensitive), in order (`Set-Cookie` comes several times).
    pub(crate) fn for_each_header(&self, name: &str, mut f: impl FnMut(&[u8])) {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        if parsed.parse(&self.head).is_err() {
            return;
        }
        for h in parsed.headers.iter() {
            if h.name.eq_ignore_ascii_case(name) {
                f(h.value);
            }
        }
    }

    /// A response with this head and no body, for tests of what reads
    /// headers.
    #[cfg(test)]
    pub(crate) fn from_head(head: &[u8]) -> Response {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut headers);
        let status = match parsed.parse(head) {
            Ok(_) => parsed.code.unwrap_or(0),
            Err(_) => 0,
        };
        Response {
            status,
            head: head.to_vec(),
            body: Vec::new(),
        }
    }
}

/// How the body of a response is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// One keep-alive connection to `addr`, opened on first use and reopened
/// after the server closes it or after an error; over TLS when built
/// [`with_tls`](Conn::with_tls).
pub(crate) struct Conn {
    addr: SocketAddr,
    tls: Option<TlsDial>,
    stream: Option<Stream>,
    buf: Vec<u8>,
    /// Unconsumed bytes are `buf[pos..len]`.
    pos: usize,
    len: usize,
    /// Connections opened so far (the first one included); over TLS, each
    /// is a completed handshake.
    pub(crate) connects: u64,
    /// The last connection's TLS handshake (µs), until taken.
    handshake_us: Option<u64>,
}

impl Conn {
    pub(crate) fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            tls: None,
            stream: None,
            buf: vec![0; 8 * 1024],
            pos: 0,
            len: 0,
            connects: 0,
            handshake_us: None,
        }
    }

    /// How long the TLS handshake of a connection opened since the last
    /// call took, in µs; `None` when none was opened (or it was plain).
    pub(crate) fn take_handshake(&mut self) -> Option<u64> {
        self.handshake_us.take()
    }

    /// Speak TLS (`https://` targets) when `tls` is set.
    pub(crate) fn with_tls(mut self, tls: Option<TlsDial>) -> Conn {
        self.tls = tls;
        self
    }

    /// Drop the connection; the next request opens a new one.
    pub(crate) fn close(&mut self) {
        self.stream = None;
        self.pos = 0;
        self.len = 0;
    }

    /// Send `request` (complete HTTP/1.1 bytes) and read the response into
    /// `resp`, all within `timeout`. A request on a reused connection that
    /// the server had already closed is retried once on a new connection, as
    /// browsers and hyper do; nothing of it had reached the application.
    pub(crate) async fn send(
        &mut self,
        request: &[u8],
        resp: &mut Response,
        timeout: Duration,
    ) -> Result<(), TransportError> {
        match tokio::time::timeout(timeout, self.send_inner(request, resp)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => {
                self.close();
                Err(err)
            }
            Err(_) => {
                self.close();
                Err(TransportError::Timeout)
            }
        }
    }

    async fn send_inner(
        &mut self,
        request: &[u8],
        resp: &mut Response,
    ) -> Result<(), TransportError> {
        let reused = self.stream.is_some();
        match self.exchange(request, resp).await {
            Err(Attempt::Stale) if reused => {
                self.close();
                self.exchange(request, resp)
                    .await
                    .map_err(Attempt::into_error)
            }
            other => other.map_err(Attempt::into_error),
        }
    }

    async fn connect(&mut self) -> Result<(), Attempt> {
        let (stream, handshake) =
            Stream::open(self.addr, self.tls.as_ref())
                .await
                .map_err(|e| {
                    Attempt::Failed(match e {
                        OpenError::Connect => TransportError::Connect,
                        OpenError::Tls => TransportError::Tls,
                    })
                })?;
        self.stream = Some(stream);
        self.pos = 0;
        self.len = 0;
        self.connects += 1;
        self.handshake_us = handshake.map(|d| d.as_micros() as u64);
        Ok(())
    }

    async fn exchange(&mut self, request: &[u8], resp: &mut Response) -> Result<(), Attempt> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        let stream = self.stream.as_mut().expect("connected above");
        stream
            .write_all(request)
            .await
            .map_err(|_| Attempt::Stale)?;
        let keep_alive = self.read_response(resp).await?;
        if !keep_alive {
            self.close();
        }
        Ok(())
    }

    /// Read more bytes into the buffer; `Ok(0)` is end of stream.
    async fn fill(&mut self) -> io::Result<usize> {
        if self.pos > 0 && self.pos == self.len {
            self.pos = 0;
            self.len = 0;
        }
        if self.len == self.buf.len() {
            if self.pos > 0 {
                self.buf.copy_within(self.pos..self.len, 0);
                self.len -= self.pos;
                self.pos = 0;
            } else {
                if self.buf.len() >= MAX_RESPONSE_BYTES {
                    return Err(io::Error::other("response too large"));
                }
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        let stream = self.stream.as_mut().expect("fill on an open connection");
        let n = stream.read(&mut self.buf[self.len..]).await?;
        self.len += n;
        Ok(n)
    }

    /// Fill until at least `n` unconsumed bytes are buffered.
    async fn fill_to(&mut self, n: usize) -> Result<(), Attempt> {
        while self.len - self.pos < n {
            match self.fill().await {
                Ok(0) | Err(_) => return Err(Attempt::Failed(TransportError::Reset)),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// Read one response; returns whether the connection may be reused.
    async fn read_response(&mut self, resp: &mut Response) -> Result<bool, Attempt> {
        let mut first_read = true;
        let (head_len, status, framing, keep_alive) = loop {
            if self.len > self.pos {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut parsed = httparse::Response::new(&mut headers);
                match parsed.parse(&self.buf[self.pos..self.len]) {
                    Ok(httparse::Status::Complete(head_len)) => {
                        let status = parsed.code.unwrap_or(0);
                        if (100..200).contains(&status) {
                            // Interim response (100 Continue): skip it.
                            self.pos += head_len;
                            continue;
                        }
                        let (framing, keep_alive) = framing_of(&parsed)?;
                        break (head_len, status, framing, keep_alive);
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(_) => return Err(Attempt::Failed(TransportError::Protocol)),
                }
            }
            match self.fill().await {
                // Nothing at all came back on a reused connection: the
                // server closed it while idle.
                Ok(0) | Err(_) if first_read && self.len == self.pos => return Err(Attempt::Stale),
                Ok(0) => return Err(Attempt::Failed(TransportError::Reset)),
                Err(e) if e.kind() == io::ErrorKind::Other => {
                    return Err(Attempt::Failed(TransportError::Protocol))
                }
                Err(_) => return Err(Attempt::Failed(TransportError::Reset)),
                Ok(_) => first_read = false,
            }
        };
        resp.status = status;
        resp.head.clear();
        resp.head
            .extend_from_slice(&self.buf[self.pos..self.pos + head_len]);
        self.pos += head_len;
        resp.body.clear();
        let no_body = status == 204 || status == 304;
        if no_body {
            return Ok(keep_alive);
        }
        match framing {
            Framing::Length(n) => {
                if n > MAX_RESPONSE_BYTES {
                    return Err(Attempt::Failed(TransportError::Protocol));
                }
                self.take_into(n, &mut resp.body).await?;
                Ok(keep_alive)
            }
            Framing::Chunked => {
                self.read_chunked(&mut resp.body).await?;
                Ok(keep_alive)
            }
            Framing::UntilClose => {
                loop {
                    resp.body.extend_from_slice(&self.buf[self.pos..self.len]);
                    self.pos = self.len;
                    if resp.body.len() > MAX_RESPONSE_BYTES {
                        return Err(Attempt::Failed(TransportError::Protocol));
                    }
                    match self.fill().await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(_) => return Err(Attempt::Failed(TransportError::Reset)),
                    }
                }
                Ok(false)
            }
        }
    }

    /// Move exactly `n` body bytes into `out`, reading as needed.
    async fn take_into(&mut self, mut n: usize, out: &mut Vec<u8>) -> Result<(), Attempt> {
        while n > 0 {
            if self.pos == self.len {
                self.fill_to(1).await?;
            }
            let take = n.min(self.len - self.pos);
            out.extend_from_slice(&self.buf[self.pos..self.pos + take]);
            self.pos += take;
            n -= take;
        }
        Ok(())
    }

    async fn read_chunked(&mut self, out: &mut Vec<u8>) -> Result<(), Attempt> {
        loop {
            let (consumed, size) = loop {
                match httparse::parse_chunk_size(&self.buf[self.pos..self.len]) {
                    Ok(httparse::Status::Complete((consumed, size))) => break (consumed, size),
                    Ok(httparse::Status::Partial) => {
                        let have = self.len - self.pos;
                        self.fill_to(have + 1).await?;
                    }
                    Err(_) => return Err(Attempt::Failed(TransportError::Protocol)),
                }
            };
            self.pos += consumed;
            if size == 0 {
                return self.skip_trailers().await;
            }
            let size = usize::try_from(size).unwrap_or(usize::MAX);
            if out.len().saturating_add(size) > MAX_RESPONSE_BYTES {
                return Err(Attempt::Failed(TransportError::Protocol));
            }
            self.take_into(size, out).await?;
            self.fill_to(2).await?;
            if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                return Err(Attempt::Failed(TransportError::Protocol));
            }
            self.pos += 2;
        }
    }

    /// After the last chunk: trailer lines, then an empty line.
    async fn skip_trailers(&mut self) -> Result<(), Attempt> {
        loop {
            let line_end = loop {
                if let Some(i) = self.buf[self.pos..self.len]
                    .windows(2)
                    .position(|w| w == b"\r\n")
                {
                    break i;
                }
                let have = self.len - self.pos;
                if have > 64 * 1024 {
                    return Err(Attempt::Failed(TransportError::Protocol));
                }
                self.fill_to(have + 1).await?;
            };
            self.pos += line_end + 2;
            if line_end == 0 {
                return Ok(());
            }
        }
    }
}

/// Outcome of one attempt; `Stale` means a reused connection was found
/// closed before any response byte, so the request can be retried.
enum Attempt {
    Stale,
    Failed(TransportError),
}

impl Attempt {
    fn into_error(self) -> TransportError {
        match self {
            Attempt::Stale => TransportError::Reset,
            Attempt::Failed(err) => err,
        }
    }
}

fn framing_of(parsed: &httparse::Response<'_, '_>) -> Result<(Framing, bool), Attempt> {
    let mut framing = Framing::UntilClose;
    let mut keep_alive = parsed.version == Some(1);
    for h in parsed.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(Attempt::Failed(TransportError::Protocol))?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if h.value
                .split(|&b| b == b',')
                .any(|v| v.trim_ascii().eq_ignore_ascii_case(b"chunked"))
            {
                framing = Framing::Chunked;
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    if matches!(framing, Framing::UntilClose) {
        keep_alive = false;
    }
    Ok((framing, keep_alive))
}

/// Start a request in `out`: `METHOD ` — the caller appends the path next.
pub(crate) fn begin_request(out: &mut Vec<u8>, method: &str) {
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
}

/// End the request line after the path and write the Host header; the
/// caller may then append `Name: value\r\n` header lines.
pub(crate) fn end_request_line(out: &mut Vec<u8>, host: &str) {
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Finish the head and append a JSON body (with its Content-Type) if any.
pub(crate) fn finish_request(out: &mut Vec<u8>, method: &str, body: Option<&[u8]>) {
    finish_request_as(out, method, body, Some(b"application/json"));
}

/// Finish the head and append the body, sent with `content_type` when
/// given (a scenario step whose own headers carry one passes `None`, so
/// the wire never has two). `Content-Length` is always sent for a body,
/// and for a bodiless POST/PUT/PATCH (servers may answer 411 otherwise).
pub(crate) fn finish_request_as(
    out: &mut Vec<u8>,
    method: &str,
    body: Option<&[u8]>,
    content_type: Option<&[u8]>,
) {
    match body {
        Some(body) => {
            if let Some(ct) = content_type {
                out.extend_from_slice(b"Content-Type: ");
                out.extend_from_slice(ct);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"Content-Length: ");
            out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body);
        }
        None if matches!(method, "POST" | "PUT" | "PATCH") => {
            out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
        }
        None => out.extend_from_slice(b"\r\n"),
    }
}

/// A whole request with a fixed path and optional JSON body.
pub(crate) fn write_request(
    out: &mut Vec<u8>,
    method: &str,
    host: &str,
    path: &[u8],
    body: Option<&[u8]>,
) {
    begin_request(out, method);
    out.extend_from_slice(path);
    end_request_line(out, host);
    finish_request(out, method, body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A one-connection server that answers each request with the next canned
    /// response, then closes.
    async fn canned(responses: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            for r in responses {
                let _ = sock.read(&mut buf).await.unwrap();
                // Split writes so the client must reassemble.
                let mid = r.len() / 2;
                sock.write_all(&r[..mid]).await.unwrap();
                sock.flush().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
                sock.write_all(&r[mid..]).await.unwrap();
            }
        });
        addr
    }

    fn get() -> Vec<u8> {
        let mut out = Vec::new();
        write_request(&mut out, "GET", "x", b"/ready", None);
        out
    }

    #[tokio::test]
    async fn reads_length_and_chunked_bodies_on_one_connection() {
        let addr = canned(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 401 Unauthorized\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n3\r\n{\"c\r\n4;ext=1\r\node\"\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        .await;
        let mut conn = Conn::new(addr);
        let mut resp = Response::default();
        let t = Duration::from_secs(2);
        conn.send(&get(), &mut resp, t).await.unwrap();
        assert_eq!((resp.status, &resp.body[..]), (200, &b"hello"[..]));
        conn.send(&get(), &mut resp, t).await.unwrap();
        assert_eq!((resp.status, &resp.body[..]), (401, &b"{\"code\"}"[..]));
        assert_eq!(resp.header("x-a"), Some(&b"b"[..]));
        conn.send(&get(), &mut resp, t).await.unwrap();
        assert_eq!((resp.status, resp.body.len()), (204, 0));
        assert_eq!(conn.connects, 1, "keep-alive must reuse the connection");
    }

    #[tokio::test]
    async fn reconnects_after_close_and_reports_timeouts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // First connection: answer once with Connection: close.
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await.unwrap();
            sock.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            drop(sock);
            // Second connection: read and never answer.
            let (mut sock, _) = listener.accept().await.unwrap();
            let _ = sock.read(&mut buf).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let mut conn = Conn::new(addr);
        let mut resp = Response::default();
        conn.send(&get(), &mut resp, Duration::from_secs(2))
            .await
            .unwrap();
        assert_eq!(resp.status, 200);
        let err = conn
            .send(&get(), &mut resp, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert_eq!(err, TransportError::Timeout);
        assert_eq!(conn.connects, 2);
    }

    #[tokio::test]
    async fn refused_connection_is_a_connect_error() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let mut conn = Conn::new(addr);
        let mut resp = Response::default();
        let err = conn
            .send(&get(), &mut resp, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err, TransportError::Connect);
    }

    #[test]
    fn request_bytes_carry_length_for_bodies() {
        let mut out = Vec::new();
        write_request(&mut out, "POST", "h:1", b"/auth/login", Some(b"{}"));
        assert_eq!(
            out,
            b"POST /auth/login HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        out.clear();
        write_request(&mut out, "POST", "h", b"/auth/logout", None);
        assert!(out.ends_with(b"Content-Length: 0\r\n\r\n"));
    }
}
