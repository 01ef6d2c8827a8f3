//! The run's metric families, built at scrape time from what the run
//! already keeps: the collector's per-step totals (merged once per second
//! from the workers' thread-local histograms), the engine's counters and
//! the sampler's latest sample and live verdict.
//!
//! Why a scrape-time collector and not counters bumped per request: the
//! engine records each request into its worker thread's own `RefCell`
//! statistics without a lock or an atomic (load/engine.rs); shared
//! Prometheus counters and histograms would add several atomic updates on
//! contended cache lines to every request, and cost throughput the
//! benchmark measures against wrk. Reading the totals at scrape time costs
//! one lock per scrape and nothing per request; the price is that request
//! figures move once per second (the collector's interval).

use std::sync::{Arc, Mutex};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};

use super::labels::{code_label, kind_label};
use crate::load::counters::LoadCounters;
use crate::load::stats::{IntervalStats, StepStats};
use crate::memory::MemoryNow;
use clw_run::Verdict;

/// Upper bounds of the latency histogram, in seconds: from 100 µs (a
/// `/ready` on loopback) through a login's password hash (tens of ms) to
/// the default 5 s `--timeout`, where timed-out requests are recorded.
pub(crate) const BUCKETS_S: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Every family clw-cli exports: name, type, help. The dashboard test
/// checks the Grafana dashboard's queries against these names.
pub(crate) const FAMILIES: [(&str, MetricType, &str); 11] = [
    (
        "clw_loadtest_requests_total",
        MetricType::COUNTER,
        "Requests completed, by scenario step and response status (`none`: no response, see clw_loadtest_errors_total; `other`: an unregistered status).",
    ),
    (
        "clw_loadtest_errors_total",
        MetricType::COUNTER,
        "Requests that failed, by scenario step and error kind (a transport error, capture-failed, a clw-auth error code, http-<status>, or other).",
    ),
    (
        "clw_loadtest_request_duration_seconds",
        MetricType::HISTOGRAM,
        "Request latency by scenario step, from the first byte written (connect included on a new connection) to the last byte read.",
    ),
    (
        "clw_loadtest_dropped_iterations_total",
        MetricType::COUNTER,
        "Iterations of the open model dropped for starting more than --timeout late.",
    ),
    (
        "clw_loadtest_virtual_users",
        MetricType::GAUGE,
        "Virtual users running now (past their ramp-up start, not finished).",
    ),
    (
        "clw_loadtest_virtual_users_max",
        MetricType::GAUGE,
        "Virtual users the run was given (--concurrent-users).",
    ),
    (
        "clw_loadtest_server_rss_bytes",
        MetricType::GAUGE,
        "The server's resident memory as last sampled, by source (proc, metrics).",
    ),
    (
        "clw_loadtest_server_cgroup_bytes",
        MetricType::GAUGE,
        "Memory usage of the spawned server's cgroup as last sampled, by how the limit is kept.",
    ),
    (
        "clw_loadtest_server_allocated_bytes",
        MetricType::GAUGE,
        "Bytes the server's allocator has allocated as last sampled (from its metrics).",
    ),
    (
        "clw_loadtest_server_memory_limit_bytes",
        MetricType::GAUGE,
        "The memory limit the run is judged against, by source (--memory-limit, or metrics: the one the service advertises).",
    ),
    (
        "clw_loadtest_verdict",
        MetricType::GAUGE,
        "The live memory verdict: 1 on the current one (leak, bounded, inconclusive), 0 on the others; all 0 before the first sample.",
    ),
];

/// What one run exposes, read at each scrape.
pub(crate) struct RunSources {
    pub(crate) step_names: Vec<String>,
    /// The collector's totals (complete intervals).
    pub(crate) totals: Arc<Mutex<IntervalStats>>,
    pub(crate) counters: Arc<LoadCounters>,
    pub(crate) users: u32,
    pub(crate) memory: Box<dyn Fn() -> MemoryNow + Send + Sync>,
}

/// The prometheus-crate collector over one run's [`RunSources`].
pub(crate) struct RunCollector {
    sources: RunSources,
    descs: Vec<Desc>,
}

impl RunCollector {
    pub(crate) fn new(sources: RunSources) -> RunCollector {
        let descs = FAMILIES
            .iter()
            .map(|(name, _, help)| {
                Desc::new(
                    name.to_string(),
                    help.to_string(),
                    Vec::new(),
                    Default::default(),
                )
                .expect("valid metric name")
            })
            .collect();
        RunCollector { sources, descs }
    }
}

impl Collector for RunCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = &self.sources;
        // Copy out under the lock; building the families happens after.
        let (steps, dropped) = {
            let totals = s.totals.lock().unwrap_or_else(|e| e.into_inner());
            (totals.steps.clone(), totals.dropped_iterations)
        };
        let memory = (s.memory)();
        let mut families: Vec<Vec<Metric>> = vec![Vec::new(); FAMILIES.len()];
        for (name, step) in s.step_names.iter().zip(&steps) {
            step_metrics(name, step, &mut families);
        }
        families[3].push(counter(&[], dropped as f64));
        families[4].push(gauge(&[], s.counters.active_users() as f64));
        families[5].push(gauge(&[], f64::from(s.users)));
        let sourced = [
            memory.rss,
            memory.cgroup,
            memory.allocated.map(|b| (b, "metrics")),
            memory.limit,
        ];
        for (slot, figure) in (6..10).zip(sourced) {
            if let Some((bytes, source)) = figure {
                families[slot].push(gauge(&[("source", source)], bytes as f64));
            }
        }
        for verdict in [Verdict::Leak, Verdict::Bounded, Verdict::Inconclusive] {
            let on = memory.verdict == Some(verdict);
            families[10].push(gauge(
                &[("verdict", verdict.as_str())],
                f64::from(u8::from(on)),
            ));
        }
        FAMILIES
            .iter()
            .zip(families)
            .map(|((name, kind, help), metrics)| {
                let mut f = MetricFamily::default();
                f.set_name(name.to_string());
                f.set_help(help.to_string());
                f.set_field_type(*kind);
                f.set_metric(metrics);
                f
            })
            .collect()
    }
}

/// One step's requests, errors and latency into families 0, 1 and 2.
fn step_metrics(step: &str, stats: &StepStats, families: &mut [Vec<Metric>]) {
    // Statuses folded into one label value (`other`) add up.
    let mut by_code: Vec<(&str, u64)> = Vec::new();
    for (status, n) in &stats.by_status {
        add(&mut by_code, code_label(*status), *n);
    }
    for (code, n) in by_code {
        families[0].push(counter(&[("code", code), ("step", step)], n as f64));
    }
    let mut by_kind: Vec<(&str, u64)> = Vec::new();
    for (kind, n) in &stats.by_kind {
        add(&mut by_kind, kind_label(*kind), *n);
    }
    for (kind, n) in by_kind {
        families[1].push(counter(&[("kind", kind), ("step", step)], n as f64));
    }
    if stats.requests > 0 {
        let mut m = metric(&[("step", step)]);
        m.set_histogram(histogram(&stats.latency));
        families[2].push(m);
    }
}

fn add<'a>(into: &mut Vec<(&'a str, u64)>, label: &'a str, n: u64) {
    match into.iter_mut().find(|(l, _)| *l == label) {
        Some((_, total)) => *total += n,
        None => into.push((label, n)),
    }
}

/// A Prometheus histogram from an HDR histogram of microseconds. A value
/// counts under a bound when the top of its HDR bucket (0.1% wide) is at or
/// below it, so a request is never counted faster than it was; the sum
/// adds each bucket's middle value.
pub(crate) fn histogram(us: &hdrhistogram::Histogram<u64>) -> Histogram {
    let mut counts = [0u64; BUCKETS_S.len()];
    let mut sum_us = 0.0;
    for v in us.iter_recorded() {
        let n = v.count_at_value();
        let top_s = v.value_iterated_to() as f64 / 1e6;
        sum_us += us.median_equivalent(v.value_iterated_to()) as f64 * n as f64;
        if let Some(i) = BUCKETS_S.iter().position(|b| top_s <= *b) {
            counts[i] += n;
        }
    }
    let mut cumulative = 0;
    let buckets = BUCKETS_S
        .iter()
        .zip(counts)
        .map(|(bound, n)| {
            cumulative += n;
            let mut b = Bucket::default();
            b.set_upper_bound(*bound);
            b.set_cumulative_count(cumulative);
            b
        })
        .collect();
    let mut h = Histogram::default();
    h.set_bucket(buckets);
    h.set_sample_count(us.len());
    h.set_sample_sum(sum_us / 1e6);
    h
}

/// A metric with these labels, given in label-name order.
fn metric(labels: &[(&str, &str)]) -> Metric {
    let mut m = Metric::default();
    m.set_label(
        labels
            .iter()
            .map(|(name, value)| {
                let mut l = LabelPair::default();
                l.set_name(name.to_string());
                l.set_value(value.to_string());
                l
            })
            .collect(),
    );
    m
}

fn counter(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut m = metric(labels);
    let mut c = Counter::default();
    c.set_value(value);
    m.set_counter(c);
    m
}

fn gauge(labels: &[(&str, &str)], value: f64) -> Metric {
    let mut m = metric(labels);
    let mut g = Gauge::default();
    g.set_value(value);
    m.set_gauge(g);
    m
}

#[cfg(test)]
mod tests;
