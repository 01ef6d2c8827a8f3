//! The byte stream under a [`crate::load::http::Conn`]: plain TCP, or TLS
//! over it for `https://` targets. An enum rather than a boxed trait
//! object, so the plain path stays as direct as before.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::tls::TlsDial;

/// Why a connection could not be opened (the caller counts it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenError {
    /// TCP connect failed.
    Connect,
    /// The TLS handshake failed.
    Tls,
}

pub(crate) enum Stream {
    Plain(TcpStream),
    /// Boxed: rustls' connection state is a few hundred bytes.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Connects to `addr`, then runs the TLS handshake when `tls` is set:
    /// both within the caller's request timeout, so the handshake is part
    /// of the latency of the request that opened the connection. Returns
    /// how long the handshake took, for its own figure.
    pub(crate) async fn open(
        addr: SocketAddr,
        tls: Option<&TlsDial>,
    ) -> Result<(Stream, Option<std::time::Duration>), OpenError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|_| OpenError::Connect)?;
        // Requests are written whole; Nagle would only add delay.
        let _ = tcp.set_nodelay(true);
        let started = std::time::Instant::now();
        match tls {
            None => Ok((Stream::Plain(tcp), None)),
            Some(dial) => match dial.connect(tcp).await {
                Ok(stream) => Ok((Stream::Tls(Box::new(stream)), Some(started.elapsed()))),
                Err(e) => {
                    tracing::debug!("TLS handshake with {addr} failed: {e}");
                    Err(OpenError::Tls)
                }
            },
        }
    }

    pub(crate) async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }

    /// Writes all of `buf` and flushes: rustls may hold encrypted records
    /// back until flushed.
    pub(crate) async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(buf).await,
            Stream::Tls(s) => {
                s.write_all(buf).await?;
                s.flush().await
            }
        }
    }
}
