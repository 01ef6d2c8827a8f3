//! `--metrics-listen ADDR`: clw-cli's own Prometheus metrics while it runs
//! (requests and errors by step, latency histograms, virtual users, the
//! server memory it samples, the live verdict), so a team can watch a long
//! soak in Grafana next to the service's own dashboards.
//!
//! The listener is bound before anything else happens (a bad address is
//! bad usage, exit 2) and binds exactly the address given: nothing is
//! exposed beyond what the user asked for. It serves `GET /metrics` in the
//! text format through the `prometheus` crate (as clw-auth does), with the
//! figures built at scrape time ([`families`]). It lives for the whole
//! command (all `--repeat` runs, each replacing the last one's figures)
//! and stops when the command ends, after at most `--metrics-linger`
//! waiting for one scrape of the final figures.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use prometheus::{Encoder, Registry, TextEncoder};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use crate::outcome::{usage, Error};

#[cfg(test)]
mod dashboard_tests;
pub(crate) mod families;
mod labels;

pub(crate) use families::RunSources;

/// How long open scrape connections get to finish when the endpoint stops.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// `--metrics-listen`: bind it (a failure is bad usage, exit 2, before
/// any load) and say where it serves; None without the flag.
pub(crate) async fn listen(addr: Option<SocketAddr>) -> Result<Option<MetricsEndpoint>, Error> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let endpoint = MetricsEndpoint::bind(addr)
        .await
        .map_err(|e| usage(format!("--metrics-listen {addr}: cannot listen there: {e}")))?;
    eprintln!("metrics: serving http://{}/metrics", endpoint.addr());
    Ok(Some(endpoint))
}

/// The endpoint while the command runs.
pub(crate) struct MetricsEndpoint {
    addr: SocketAddr,
    state: Arc<State>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
    /// SIGINT and SIGTERM, caught from the start so one that comes between
    /// the run's end and the linger is not lost; None where they cannot be.
    signals: Mutex<Option<(Signal, Signal)>>,
}

/// What the connection tasks share.
#[derive(Default)]
struct State {
    /// The current run's registry; none before the first run's load.
    registry: Mutex<Option<Registry>>,
    /// Set when the run's final figures are in place: a scrape that starts
    /// after it reads them.
    finished: AtomicBool,
    /// Notified by the first scrape that read the final figures.
    final_scraped: Notify,
}

impl MetricsEndpoint {
    /// Bind `addr` (port 0: any free port) and start serving.
    pub(crate) async fn bind(addr: SocketAddr) -> std::io::Result<MetricsEndpoint> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State::default());
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(serve(listener, state.clone(), stop_rx));
        let signals = signal(SignalKind::interrupt())
            .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
            .ok();
        Ok(MetricsEndpoint {
            addr,
            state,
            stop,
            task,
            signals: Mutex::new(signals),
        })
    }

    /// The address bound (the actual port when 0 was given).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serve this run's figures from now on (in place of the last run's).
    pub(crate) fn attach(&self, sources: RunSources) {
        let registry = Registry::new();
        registry
            .register(Box::new(families::RunCollector::new(sources)))
            .expect("a fresh registry takes the run's families");
        *self
            .state
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(registry);
    }

    /// Stop serving, once a scrape has read the final figures or `linger`
    /// has passed, whichever is first (at once for a zero `linger`). The
    /// run is over by then and its outputs written: a SIGINT or SIGTERM
    /// received at any time during the command ends the wait at once (the
    /// run's own handler is gone by now, and would ignore them).
    pub(crate) async fn finish(self, linger: Duration) {
        self.state.finished.store(true, Ordering::SeqCst);
        let signals = self.signals.into_inner().unwrap_or_else(|e| e.into_inner());
        if !linger.is_zero() {
            tokio::select! {
                _ = tokio::time::timeout(linger, self.state.final_scraped.notified()) => {}
                _ = interrupted(signals) => {
                    eprintln!("--metrics-linger: interrupted; not waiting for the final scrape");
                }
            }
        }
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The first SIGINT or SIGTERM caught; never without them.
async fn interrupted(signals: Option<(Signal, Signal)>) {
    match signals {
        Some((mut int, mut term)) => {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        }
        None => std::future::pending().await,
    }
}

/// Accept until told to stop, then close the open connections gracefully
/// (an answer being written is finished) within [`CLOSE_GRACE`].
async fn serve(listener: TcpListener, state: Arc<State>, mut stop: oneshot::Receiver<()>) {
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, not spin.
                    tracing::warn!("--metrics-listen: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let state = state.clone();
        let service = service_fn(move |req: Request<hyper::body::Incoming>| {
            let response = state.respond(&req);
            async move { Ok::<_, Infallible>(response) }
        });
        let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A scraper's broken connection ends that connection only.
            let _ = conn.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(CLOSE_GRACE, graceful.shutdown()).await;
}

impl State {
    fn respond(&self, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if req.uri().path() != "/metrics" {
            return plain(StatusCode::NOT_FOUND, "clw-cli serves /metrics only\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "GET /metrics\n");
        }
        let final_figures = self.finished.load(Ordering::SeqCst);
        let registry = self
            .registry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let families = registry.map(|r| r.gather()).unwrap_or_default();
        let encoder = TextEncoder::new();
        let mut body = Vec::with_capacity(16 * 1024);
        encoder
            .encode(&families, &mut body)
            .expect("text encoding into a Vec cannot fail");
        if final_figures {
            self.final_scraped.notify_one();
        }
        Response::builder()
            .header(hyper::header::CONTENT_TYPE, encoder.format_type())
            .body(Full::new(Bytes::from(body)))
            .expect("static headers are valid")
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(text.as_bytes())))
        .expect("static headers are valid")
}
