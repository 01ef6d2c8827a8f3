//! /metrics: the Prometheus exposition, built with the `prometheus` crate.
//!
//! Request counters and latency histograms are updated per request. Cache
//! and allocator figures live where they are true (the cache's own
//! counters, jemalloc's stats) and are copied into gauges and counters at
//! scrape time, so the hot path pays nothing for them.

use std::time::Duration;

use http::{Method, StatusCode};
use parking_lot::Mutex;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::cache::{CacheStats, EvictionCause};
use crate::memory::AllocStats;
use crate::throttle::Scope;

/// The routes requests are counted under (anything else is `other`), so a
/// scan of random paths cannot grow the label set.
pub const ROUTES: [&str; 9] = [
    "/auth/login",
    "/auth/validate",
    "/auth/refresh",
    "/auth/logout",
    "/health",
    "/ready",
    "/metrics",
    "/debug/pprof/heap",
    "other",
];

/// The `method` label: the methods RFC 9110 and RFC 5789 define, and
/// `other` for any extension method (a client may invent millions).
pub(crate) fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// The `status` label: a registered status code (one of the few dozen with
/// a canonical reason phrase), else `other`. The routes answer only a
/// handful of these; folding guards the label against any future path
/// that would pass a client-chosen number through.
pub(crate) fn status_label(status: &StatusCode) -> &str {
    match status.canonical_reason() {
        Some(_) => status.as_str(),
        None => "other",
    }
}

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    /// Successful logins (the load generator's sessions-created figure).
    pub(crate) logins: IntCounter,
    /// Failed logins (bad credentials).
    pub(crate) login_failures: IntCounter,
    /// Login attempts refused by the throttle, by `scope` (user, address).
    login_throttled: IntCounterVec,
    /// Connections open now (kept by the connection registry).
    pub(crate) connections_open: IntGauge,
    /// Idle connections closed to admit new ones at `max_connections`.
    pub(crate) connections_evicted: IntCounter,
    /// TLS handshakes by `outcome` (ok, failed, timeout); none without TLS.
    tls_handshakes: IntCounterVec,
    cache_size: IntGauge,
    cache_max_size: IntGauge,
    session_bytes: IntGauge,
    leaked_bytes: IntGauge,
    evictions: IntCounterVec,
    jemalloc: [IntGauge; 5],
    limit: IntGauge,
    pressure: IntGauge,
    heap_outside_cache: IntGauge,
    scrape: Mutex<()>,
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

/// A counter with one label whose every value exists from the start (so
/// the series are present at 0 and no other value is ever created).
fn labelled_counter<const N: usize>(
    registry: &Registry,
    name: &str,
    help: &str,
    label: &str,
    values: [&'static str; N],
) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), &[label]).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    for v in values {
        c.with_label_values(&[v]);
    }
    c
}

impl Metrics {
    /// Registers everything, including the standard `process_*` metrics
    /// (`process_resident_memory_bytes` is what clw-cli samples on any service).
    // Long by design: one registration per metric, read top to bottom as the
    // /metrics catalogue; helpers would only hide the list.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process collector");
        let requests = IntCounterVec::new(
            Opts::new(
                "clw_http_requests_total",
                "HTTP requests by route, method and status.",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(requests.clone()))
            .expect("unique metric");
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "clw_http_request_duration_seconds",
                "Time to produce a response, by route.",
            )
            .buckets(vec![
                0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(durations.clone()))
            .expect("unique metric");
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let logins = counter("clw_logins_total", "Successful logins (sessions created).");
        let login_failures = counter(
            "clw_login_failures_total",
            "Logins refused for bad credentials.",
        );
        let login_throttled = labelled_counter(
            &registry,
            "clw_login_throttled_total",
            "Login attempts refused with 429 clw-auth-throttled, by the budget that was spent.",
            "scope",
            Scope::ALL.map(Scope::as_str),
        );
        let connections_evicted = counter(
            "clw_connections_evicted_total",
            "Idle connections closed to admit new ones at service.max_connections.",
        );
        let connections_open = gauge(
            &registry,
            "clw_connections_open",
            "Client connections open now.",
        );
        let tls_handshakes = labelled_counter(
            &registry,
            "clw_tls_handshakes_total",
            "TLS handshakes on accepted connections, by outcome (timeout: not complete within service.header_read_timeout).",
            "outcome",
            crate::tls::Handshake::ALL.map(crate::tls::Handshake::as_str),
        );
        let evictions = labelled_counter(
            &registry,
            "clw_session_cache_evictions_total",
            "Sessions the cache removed other than by logout, by cause.",
            "cause",
            EvictionCause::ALL.map(EvictionCause::as_str),
        );
        let jemalloc = [
            (
                "clw_jemalloc_allocated_bytes",
                "Bytes allocated by the application (jemalloc stats.allocated).",
            ),
            (
                "clw_jemalloc_active_bytes",
                "Bytes in active pages (jemalloc stats.active).",
            ),
            (
                "clw_jemalloc_resident_bytes",
                "Bytes resident in allocator-mapped pages (jemalloc stats.resident).",
            ),
            (
                "clw_jemalloc_mapped_bytes",
                "Bytes in chunks mapped by jemalloc (stats.mapped).",
            ),
            (
                "clw_jemalloc_retained_bytes",
                "Virtual bytes retained by jemalloc for reuse (stats.retained).",
            ),
        ]
        .map(|(n, h)| gauge(&registry, n, h));
        Metrics {
            cache_size: gauge(
                &registry,
                "clw_session_cache_size",
                "Sessions in the cache.",
            ),
            cache_max_size: gauge(
                &registry,
                "clw_session_cache_max_size",
                "Configured max_size of the cache.",
            ),
            session_bytes: gauge(
                &registry,
                "clw_session_memory_bytes",
                "Bytes the cached sessions take, claims included.",
            ),
            leaked_bytes: gauge(
                &registry,
                "clw_session_leaked_bytes",
                "Estimated bytes a leaky mode keeps beside the cache (0 in fixed mode).",
            ),
            limit: gauge(
                &registry,
                "clw_memory_limit_bytes",
                "The memory limit the service runs under.",
            ),
            pressure: gauge(
                &registry,
                "clw_memory_pressure",
                "1 while RSS is above the pressure threshold.",
            ),
            heap_outside_cache: gauge(
                &registry,
                "clw_memory_heap_outside_cache",
                "1 while the heap is over memory.max_heap_size in memory the session cache does not hold (no session is evicted for it).",
            ),
            registry,
            requests,
            durations,
            logins,
            login_failures,
            login_throttled,
            connections_open,
            connections_evicted,
            tls_handshakes,
            evictions,
            jemalloc,
            scrape: Mutex::new(()),
        }
    }

    /// Counts a throttled login attempt (labels from [`Scope::ALL`] only).
    pub(crate) fn throttled(&self, scope: Scope) {
        self.login_throttled
            .with_label_values(&[scope.as_str()])
            .inc();
    }

    /// Connections open now (for benches and embedders).
    pub fn connections_open_now(&self) -> i64 {
        self.connections_open.get()
    }

    /// Idle connections closed so far to admit new ones.
    pub fn connections_evicted_total(&self) -> u64 {
        self.connections_evicted.get()
    }

    /// Counts one TLS handshake.
    pub(crate) fn handshake(&self, outcome: crate::tls::Handshake) {
        self.tls_handshakes
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    /// TLS handshakes completed so far (for tests and embedders: a load
    /// generator's count of new TLS connections should equal it).
    pub fn tls_handshakes_total(&self) -> u64 {
        self.tls_handshakes.with_label_values(&["ok"]).get()
    }

    /// Counts one request. Every label comes from a fixed set (see
    /// [`method_label`], [`status_label`], [`ROUTES`]), so no request can
    /// add a series: a label set grown from client input is memory (and
    /// scrape time) any unauthenticated client could make the server hold.
    pub(crate) fn observe(
        &self,
        route: &'static str,
        method: &Method,
        status: StatusCode,
        elapsed: Duration,
    ) {
        debug_assert!(ROUTES.contains(&route), "route labels come from ROUTES");
        self.requests
            .with_label_values(&[route, method_label(method), status_label(&status)])
            .inc();
        self.durations
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }

    /// Renders the exposition with the current cache and allocator figures
    /// and the two pressure causes (RSS threshold, heap outside the cache).
    pub(crate) fn render(
        &self,
        cache: &CacheStats,
        alloc: &AllocStats,
        limit: u64,
        (pressure, heap_outside_cache): (bool, bool),
    ) -> Vec<u8> {
        let _one_scrape_at_a_time = self.scrape.lock();
        self.cache_size.set(cache.entries as i64);
        self.cache_max_size.set(cache.max_capacity as i64);
        self.session_bytes.set(cache.bytes as i64);
        self.leaked_bytes.set(cache.leaked_bytes as i64);
        for (cause, total) in EvictionCause::ALL.iter().zip(cache.evictions) {
            let c = self.evictions.with_label_values(&[cause.as_str()]);
            c.inc_by(total.saturating_sub(c.get()));
        }
        let values = [
            alloc.allocated,
            alloc.active,
            alloc.resident,
            alloc.mapped,
            alloc.retained,
        ];
        for (g, v) in self.jemalloc.iter().zip(values) {
            g.set(v as i64);
        }
        self.limit.set(limit.min(i64::MAX as u64) as i64);
        self.pressure.set(pressure as i64);
        self.heap_outside_cache.set(heap_outside_cache as i64);
        let mut out = Vec::with_capacity(8 * 1024);
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into a Vec cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use prometheus::core::Collector;

    use super::*;

    #[test]
    fn exposition_has_the_guides_names() {
        let m = Metrics::new();
        m.observe(
            "/auth/login",
            &Method::POST,
            StatusCode::OK,
            Duration::from_millis(1),
        );
        m.logins.inc();
        let stats = CacheStats {
            entries: 3421,
            bytes: 67_108_864,
            max_capacity: 10_000,
            evictions: [1, 2, 3, 4],
            ..Default::default()
        };
        let text =
            String::from_utf8(m.render(&stats, &AllocStats::default(), 1 << 30, (false, true)))
                .unwrap();
        for line in [
            "clw_memory_pressure 0",
            "clw_memory_heap_outside_cache 1",
            "clw_session_cache_size 3421",
            "clw_session_memory_bytes 67108864",
            "clw_session_cache_evictions_total{cause=\"heap\"} 4",
            "clw_logins_total 1",
            "clw_http_requests_total{method=\"POST\",route=\"/auth/login\",status=\"200\"} 1",
            "clw_jemalloc_allocated_bytes",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(line), "missing {line}\n{text}");
        }
        // Counters follow the cache's totals, not the number of scrapes.
        let text =
            String::from_utf8(m.render(&stats, &AllocStats::default(), 1 << 30, (false, false)))
                .unwrap();
        assert!(text.contains("clw_session_cache_evictions_total{cause=\"heap\"} 4"));
    }

    #[test]
    fn labels_fold_into_a_fixed_set() {
        let m = Metrics::new();
        let tick = Duration::from_micros(10);
        for code in 100..=999u16 {
            let status = StatusCode::from_u16(code).unwrap();
            m.observe("other", &Method::GET, status, tick);
        }
        for i in 0..5000 {
            let method = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
            m.observe("other", &method, StatusCode::NOT_FOUND, tick);
        }
        let registered = (100..=999u16)
            .filter(|c| {
                StatusCode::from_u16(*c)
                    .unwrap()
                    .canonical_reason()
                    .is_some()
            })
            .count() as u64;
        assert!(registered < 100, "{registered} registered statuses");
        let series = m.requests.collect()[0].get_metric().len() as u64;
        // GET with each registered status and `other`, plus other/404.
        assert_eq!(series, registered + 2);
        assert_eq!(
            m.requests
                .with_label_values(&["other", "GET", "other"])
                .get(),
            900 - registered,
            "unregistered statuses fold into `other`"
        );
        assert_eq!(
            m.requests
                .with_label_values(&["other", "other", "404"])
                .get(),
            5000
        );
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        assert_eq!(status_label(&StatusCode::TOO_MANY_REQUESTS), "429");
    }
}
