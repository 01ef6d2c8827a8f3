//! The listener, the per-connection driver and graceful shutdown.
//!
//! One task per connection (hyper's HTTP/1.1 with keep-alive), admitted by
//! [`crate::connections`] under `max_connections` (the longest-idle
//! connection makes room for a new one), a header-read timeout and a
//! per-request deadline.
//! On shutdown /ready turns 503 first, the listener closes, and in-flight
//! requests get `shutdown_grace` to finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{Config, Invalid};
use crate::connections::{Admitted, Connections};
use crate::error::{error_response, ErrorCode};
use crate::memory::detect_limit;
use crate::routes::ClientAddr;
use crate::state::{Phase, State};
use crate::tls::Handshake;
use crate::units::format_size;
use crate::users::{UserStore, UsersError};

/// Why the server could not start.
#[derive(Debug, Error)]
pub enum ServerError {
    /// The user store could not be built.
    #[error(transparent)]
    Users(#[from] UsersError),
    /// The configuration cannot work (see [`Config::validate_for`]).
    #[error("configuration error: {0}")]
    Config(#[from] Invalid),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// host:port as configured.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A bound, not yet serving, server.
pub struct Server {
    listener: TcpListener,
    state: Arc<State>,
    /// Set when `service.tls` names a certificate and key.
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Builds the user store and cache and binds the listener. /ready stays
    /// 503 until [`run_until`](Self::run_until) starts serving.
    pub async fn bind(config: Config) -> Result<Server, ServerError> {
        let limit = detect_limit(config.memory.limit);
        // The same checks as `--check-config`, for embedders who build the
        // Config by hand: nothing below may panic on a value they refuse.
        config.validate_for(&limit)?;
        let users_cfg = config.users.clone();
        let users = tokio::task::spawn_blocking(move || UserStore::from_config(&users_cfg))
            .await
            .expect("user store task does not panic")?;
        if users.is_empty() {
            tracing::warn!(
                "no users configured (authentication.users.count or .file): every login will fail"
            );
        }
        let addr = format!("{}:{}", config.service.host, config.service.port);
        let listener = TcpListener::bind((config.service.host.as_str(), config.service.port))
            .await
            .map_err(|source| ServerError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let cache = &config.session.cache;
        tracing::info!(
            mode = ?cache.mode,
            leak = cache.leak.as_str(),
            max_size = cache.max_size,
            max_bytes = cache.max_bytes,
            limit_bytes = limit.bytes,
            limit_source = ?limit.source,
            users = users.len(),
            "clw-auth ready to serve: {} cache, memory limit {} ({:?})",
            if cache.mode == crate::config::CacheMode::Leaky { format!("leaky ({})", cache.leak.as_str()) } else { "fixed".into() },
            format_size(limit.bytes),
            limit.source
        );
        if !cache.enabled {
            tracing::warn!("session cache disabled: sessions cannot be stored, every login answers clw-auth-503");
        }
        // Validated above; built again here to keep it (cheap: two files).
        let tls = crate::tls::acceptor(&config.service.tls)?;
        if let Some(cert) = &config.service.tls.cert {
            tracing::info!("TLS on: serving HTTPS only, certificate {}", cert.display());
        }
        let heap_profiling = crate::profiling::configure(&config.memory.heap_profile);
        let mut state = State::new(config, users, limit);
        state.heap_profiling = heap_profiling;
        let state = Arc::new(state);
        Ok(Server {
            listener,
            state,
            tls,
        })
    }

    /// The bound address (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The shared state (for tests and embedding).
    pub fn state(&self) -> Arc<State> {
        self.state.clone()
    }

    /// Serves until `shutdown` completes, then drains.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        let Server {
            listener,
            state,
            tls,
        } = self;
        let svc_cfg = state.config.service.clone();
        tracing::info!("listening on {}", listener.local_addr().expect("bound"));
        let connections = Connections::new(
            svc_cfg.max_connections,
            state.metrics.connections_open.clone(),
            state.metrics.connections_evicted.clone(),
        );
        let background = crate::tasks::start(&state);
        crate::tasks::check_memory(&state);
        state.set_phase(Phase::Serving);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // At the limit this closes the longest-idle connection; it
            // waits only while every connection has a request in progress.
            let admitted = tokio::select! {
                _ = &mut shutdown => break,
                admitted = connections.admit() => admitted,
            };
            let _ = stream.set_nodelay(true);
            match &tls {
                None => tokio::spawn(serve_connection(stream, peer, admitted, state.clone())),
                Some(acceptor) => tokio::spawn(serve_tls(
                    acceptor.clone(),
                    stream,
                    peer,
                    admitted,
                    state.clone(),
                )),
            };
        }
        state.set_phase(Phase::Draining);
        drop(listener);
        tracing::info!(
            "shutting down: draining in-flight requests (grace {:?})",
            svc_cfg.shutdown_grace
        );
        connections.close_all();
        tokio::select! {
            _ = connections.closed() => tracing::info!("all connections closed"),
            _ = tokio::time::sleep(svc_cfg.shutdown_grace) => {
                tracing::warn!("shutdown grace period over; closing remaining connections");
            }
        }
        // Awaited, not just aborted: once this returns no server task
        // holds the state, so its memory is free (the leak tests measure).
        background.stop().await;
        Ok(())
    }

    /// Runs the server on the current runtime until the handle says stop.
    pub fn spawn(self) -> ServerHandle {
        let addr = self.local_addr();
        let state = self.state();
        // The socket is bound and the kernel queues connections until the
        // accept loop takes them, so the server is ready as of now: callers
        // may send requests as soon as this returns.
        state.set_phase(Phase::Serving);
        let (tx, rx) = oneshot::channel::<()>();
        let join = tokio::spawn(self.run_until(async move {
            let _ = rx.await;
        }));
        ServerHandle {
            addr,
            state,
            stop: Some(tx),
            join,
        }
    }
}

/// Drives one HTTP/1.1 keep-alive connection until the client leaves or
/// the registry asks it to close (eviction or shutdown): then hyper
/// finishes the request in progress, if any, and closes.
async fn serve_connection<I>(stream: I, peer: SocketAddr, admitted: Admitted, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc_cfg = &state.config.service;
    let deadline = svc_cfg.request_timeout;
    let tracker = admitted.tracker();
    let st = state.clone();
    let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        let st = st.clone();
        let busy = tracker.busy();
        req.extensions_mut().insert(ClientAddr(peer.ip()));
        async move {
            let resp = match tokio::time::timeout(deadline, crate::routes::handle(req, st)).await {
                Ok(resp) => resp,
                Err(_) => error_response(
                    ErrorCode::Timeout,
                    "request exceeded authentication.service.request_timeout",
                ),
            };
            drop(busy);
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(svc_cfg.header_read_timeout)
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    {
        tokio::pin!(conn);
        // Per-connection errors end that connection only.
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = admitted.close_requested() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }
    // The state goes before the slot: once the registry sees no connection,
    // no connection task holds the state either.
    drop(state);
    drop(admitted);
}

/// The TLS handshake, then [`serve_connection`] over the encrypted stream.
/// The connection holds its slot (idle, so evictable) from accept on; the
/// handshake must finish within `header_read_timeout`, and a close request
/// (eviction, shutdown) ends it too.
async fn serve_tls(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    state: Arc<State>,
) {
    let timeout = state.config.service.header_read_timeout;
    let outcome = tokio::select! {
        outcome = crate::tls::handshake(&acceptor, stream, timeout) => Some(outcome),
        _ = admitted.close_requested() => None,
    };
    match outcome {
        Some(Ok(tls)) => {
            state.metrics.handshake(Handshake::Ok);
            return serve_connection(tls, peer, admitted, state).await;
        }
        Some(Err(failed)) => state.metrics.handshake(failed),
        None => {}
    }
    // As in serve_connection: the state goes before the slot.
    drop(state);
    drop(admitted);
}

/// Serves one connection over any byte stream as if accepted from `peer`:
/// the driver the listener runs for each socket (hyper's HTTP/1.1, the
/// header-read timeout, the request deadline, the routes), admitted by a
/// registry of its own. For the fuzz targets (fuzz/), which feed it an
/// in-memory stream, so they reach exactly what a TCP client reaches.
pub async fn serve_io<I>(io: I, peer: SocketAddr, state: Arc<State>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connections = Connections::new(
        1,
        state.metrics.connections_open.clone(),
        state.metrics.connections_evicted.clone(),
    );
    let admitted = connections.admit().await;
    serve_connection(io, peer, admitted, state).await;
}

/// A server running in the background (see [`Server::spawn`]).
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
    join: JoinHandle<Result<(), ServerError>>,
}

impl ServerHandle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server's state.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Starts a graceful shutdown and waits for it to finish.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        (&mut self.join).await.expect("server task does not panic")
    }
}
