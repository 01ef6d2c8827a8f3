//! One GET of a Prometheus /metrics endpoint, and the few figures the
//! sampler keeps from it.

use std::net::SocketAddr;
use std::time::Duration;

use crate::load::http::{begin_request, end_request_line, finish_request, Conn, Response};
use crate::memory::exposition;
use crate::memory::selector::{Gauges, NoMatch, Selector};
use crate::memory::MemoryAggregate;
use crate::target::Target;

/// The figures a sample takes from /metrics; None when not exported.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct MetricsFigures {
    pub(crate) process_resident: Option<f64>,
    pub(crate) allocated: Option<f64>,
    pub(crate) active: Option<f64>,
    pub(crate) resident: Option<f64>,
    pub(crate) sessions: Option<f64>,
    /// `clw_session_cache_max_size`: the capacity the cache advertises.
    pub(crate) capacity: Option<f64>,
    /// Sum over all label sets (causes) of the eviction counter.
    pub(crate) evictions: Option<f64>,
    pub(crate) logins: Option<f64>,
    /// `clw_memory_limit_bytes`: the limit the service says it runs under
    /// (clw-auth reads it from its own cgroup).
    pub(crate) limit: Option<f64>,
    /// The series `--memory-metric` selects, aggregated.
    pub(crate) selected: Option<f64>,
}

impl MetricsFigures {
    pub(crate) fn has_allocator(&self) -> bool {
        self.allocated.is_some() || self.active.is_some() || self.resident.is_some()
    }
}

/// Parse the text exposition format, keeping only the metrics we sample.
/// Lines that are not understood are skipped: a service may export anything.
pub(crate) fn parse_metrics(text: &str) -> MetricsFigures {
    let mut figures = MetricsFigures::default();
    for sample in exposition::samples(text) {
        let value = sample.value;
        let slot = match sample.name {
            "process_resident_memory_bytes" => &mut figures.process_resident,
            "clw_jemalloc_allocated_bytes" => &mut figures.allocated,
            "clw_jemalloc_active_bytes" => &mut figures.active,
            "clw_jemalloc_resident_bytes" => &mut figures.resident,
            "clw_session_cache_size" => &mut figures.sessions,
            "clw_session_cache_max_size" => &mut figures.capacity,
            "clw_logins_total" => &mut figures.logins,
            "clw_memory_limit_bytes" => &mut figures.limit,
            "clw_session_cache_evictions_total" => {
                *figures.evictions.get_or_insert(0.0) += value;
                continue;
            }
            _ => continue,
        };
        *slot = Some(value);
    }
    figures
}

/// `--memory-metric` / `--limit-metric`, applied to every scrape.
#[derive(Debug, Clone)]
pub(crate) struct Picks {
    pub(crate) memory: Option<Selector>,
    pub(crate) limit: Option<Selector>,
    pub(crate) how: MemoryAggregate,
}

impl Picks {
    /// The selected memory into `selected`, the selected limit in place of
    /// `clw_memory_limit_bytes`; a selector matching nothing fails the
    /// scrape, naming the selector and what the page had.
    fn apply(&self, text: &str, figures: &mut MetricsFigures) -> Result<(), ScrapeError> {
        let no_match = |e: NoMatch| ScrapeError::NoMatch(e.to_string());
        if let Some(memory) = &self.memory {
            figures.selected = Some(memory.pick(text, self.how).map_err(no_match)?);
        }
        if let Some(limit) = &self.limit {
            figures.limit = Some(limit.pick(text, self.how).map_err(no_match)?);
        }
        Ok(())
    }
}

/// Why a scrape failed; counted, and the last one reported.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum ScrapeError {
    #[error("cannot resolve the metrics host: {0}")]
    Resolve(String),
    #[error("{0}")]
    Transport(&'static str),
    #[error("HTTP status {0}")]
    Status(u16),
    /// A `--memory-metric` / `--limit-metric` selector matched nothing.
    #[error("{0}")]
    NoMatch(String),
}

/// A keep-alive connection to the metrics endpoint, resolved on first use
/// (and again after a failure, in case the service moved).
pub(crate) struct Scraper {
    target: Target,
    path: String,
    addr: Option<SocketAddr>,
    conn: Option<Conn>,
    request: Vec<u8>,
    response: Response,
    timeout: Duration,
    /// `Authorization: Bearer` for an endpoint that wants it (a heap
    /// profile off loopback); never logged.
    bearer: Option<String>,
    picks: Option<Picks>,
    /// `--heap-metric` / `--logins-metric`.
    gauges: Gauges,
}

impl Scraper {
    pub(crate) fn new(target: Target, timeout: Duration) -> Scraper {
        let path = if target.base_path.is_empty() {
            "/metrics".to_string()
        } else {
            target.base_path.clone()
        };
        Scraper::with_path(target, path, timeout)
    }

    /// GETs of `path` (with its query string) on the target's host.
    pub(crate) fn with_path(target: Target, path: String, timeout: Duration) -> Scraper {
        Scraper {
            target,
            path,
            addr: None,
            conn: None,
            request: Vec::new(),
            response: Response::default(),
            timeout,
            bearer: None,
            picks: None,
            gauges: Gauges::default(),
        }
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub(crate) fn with_bearer(mut self, token: Option<String>) -> Scraper {
        self.bearer = token;
        self
    }

    /// Apply `--memory-metric` / `--limit-metric` to every scrape.
    pub(crate) fn with_picks(mut self, picks: Picks) -> Scraper {
        self.picks = Some(picks);
        self
    }

    /// Read `--heap-metric` / `--logins-metric` into the allocated bytes
    /// and logins of every scrape (in place of clw-auth's gauges).
    pub(crate) fn with_gauges(mut self, gauges: Gauges) -> Scraper {
        self.gauges = gauges;
        self
    }

    /// `--limit-metric` as written, when given.
    pub(crate) fn limit_selector(&self) -> Option<&str> {
        self.picks.as_ref()?.limit.as_ref().map(Selector::text)
    }

    /// The request path, query string included.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// GET the metrics and parse them, all within the timeout.
    pub(crate) async fn scrape(&mut self) -> Result<MetricsFigures, ScrapeError> {
        let body = self.get().await?.to_vec();
        let text = String::from_utf8_lossy(&body);
        let mut figures = parse_metrics(&text);
        if let Some(picks) = &self.picks {
            picks.apply(&text, &mut figures)?;
        }
        if !self.gauges.is_empty() {
            let (heap, logins) = self.gauges.pick(&text).map_err(ScrapeError::NoMatch)?;
            figures.allocated = heap.or(figures.allocated);
            figures.logins = logins.or(figures.logins);
        }
        Ok(figures)
    }

    /// GET the URL, all within the timeout: the body of a 200 response.
    /// Heap profiles (memory/heap_profiles.rs) come the same way.
    pub(crate) async fn get(&mut self) -> Result<&[u8], ScrapeError> {
        let result = tokio::time::timeout(self.timeout, self.fetch()).await;
        let result = result.unwrap_or(Err(ScrapeError::Transport("clw-auth-timeout")));
        if result.is_err() {
            self.conn = None;
            self.addr = None;
        }
        result.map(|()| &self.response.body[..])
    }

    async fn fetch(&mut self) -> Result<(), ScrapeError> {
        let addr = match self.addr {
            Some(addr) => addr,
            None => {
                let addr = self
                    .target
                    .resolve()
                    .await
                    .map_err(|e| ScrapeError::Resolve(e.to_string()))?;
                self.addr = Some(addr);
                addr
            }
        };
        let conn = self
            .conn
            .get_or_insert_with(|| Conn::new(addr).with_tls(self.target.dial()));
        self.request.clear();
        begin_request(&mut self.request, "GET");
        self.request.extend_from_slice(self.path.as_bytes());
        end_request_line(&mut self.request, &self.target.authority);
        if let Some(token) = &self.bearer {
            self.request.extend_from_slice(b"Authorization: Bearer ");
            self.request.extend_from_slice(token.as_bytes());
            self.request.extend_from_slice(b"\r\n");
        }
        finish_request(&mut self.request, "GET", None);
        conn.send(&self.request, &mut self.response, self.timeout)
            .await
            .map_err(|e| ScrapeError::Transport(e.as_str()))?;
        if self.response.status != 200 {
            return Err(ScrapeError::Status(self.response.status));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_figures_and_sums_eviction_causes() {
        let text = "\
# HELP clw_session_cache_size Sessions in the cache.
# TYPE clw_session_cache_size gauge
clw_session_cache_size 3421
clw_session_cache_max_size 10000
clw_session_cache_evictions_total{cause=\"capacity\"} 10
clw_session_cache_evictions_total{cause=\"ttl\"} 5
clw_session_cache_evictions_total{cause=\"a}b\"} 1
clw_logins_total 4000 1700000000000
clw_jemalloc_allocated_bytes 1.5e7
process_resident_memory_bytes 67108864
clw_http_requests_total{route=\"/auth/login\",method=\"POST\",status=\"200\"} 4000
garbage line
clw_jemalloc_active_bytes NaN
";
        let f = parse_metrics(text);
        assert_eq!(f.sessions, Some(3421.0));
        assert_eq!(f.capacity, Some(10000.0));
        assert_eq!(f.evictions, Some(16.0));
        assert_eq!(f.logins, Some(4000.0));
        assert_eq!(f.allocated, Some(1.5e7));
        assert_eq!(f.active, None, "NaN is unknown");
        assert_eq!(f.process_resident, Some(67108864.0));
        assert!(f.has_allocator());
        assert_eq!(parse_metrics(""), MetricsFigures::default());
    }
}
