use prometheus::{Encoder, Registry, TextEncoder};

use super::*;
use crate::load::stats::{new_histogram, RequestOutcome};

/// The text exposition of one run's collector.
fn render(sources: RunSources) -> String {
    let registry = Registry::new();
    registry
        .register(Box::new(RunCollector::new(sources)))
        .unwrap();
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

fn sources(totals: IntervalStats, memory: MemoryNow) -> RunSources {
    RunSources {
        step_names: vec!["login".into(), "validate".into()],
        totals: Arc::new(Mutex::new(totals)),
        counters: Arc::new(LoadCounters::default()),
        users: 8,
        memory: Box::new(move || memory.clone()),
    }
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "no line `{line}` in\n{text}"
    );
}

#[test]
fn histogram_buckets_follow_the_recorded_latencies() {
    let mut h = new_histogram();
    // 50 µs, 300 µs twice, 4 ms, 7 s and 20 s (past the last bound).
    for us in [50, 300, 300, 4_000, 7_000_000, 20_000_000] {
        h.record(us).unwrap();
    }
    let p = histogram(&h);
    let cumulative: Vec<(f64, u64)> = p
        .get_bucket()
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect();
    let at = |bound: f64| cumulative.iter().find(|(b, _)| *b == bound).unwrap().1;
    assert_eq!(at(0.0001), 1);
    assert_eq!(at(0.00025), 1);
    assert_eq!(at(0.0005), 3);
    assert_eq!(at(0.0025), 3);
    assert_eq!(at(0.005), 4);
    assert_eq!(at(5.0), 4);
    assert_eq!(at(10.0), 5);
    assert_eq!(p.get_sample_count(), 6, "the 20 s request is in +Inf only");
    let sum = 0.000_05 + 0.000_6 + 0.004 + 7.0 + 20.0;
    assert!(
        (p.get_sample_sum() - sum).abs() / sum < 0.001,
        "{} vs {sum}",
        p.get_sample_sum()
    );
    // Never counted faster than it was: a value just above a bound is above it.
    let mut edge = new_histogram();
    edge.record(1_001).unwrap();
    assert_eq!(histogram(&edge).get_bucket()[3].cumulative_count(), 0);
}

#[test]
fn exposition_has_every_step_code_kind_and_memory_figure() {
    let mut totals = IntervalStats::new(2);
    for _ in 0..3 {
        totals.record(0, 800, None, RequestOutcome::Ok { status: 200 });
    }
    let bad = |status, kind| RequestOutcome::BadStatus { status, kind };
    totals.record(1, 500, None, bad(401, "clw-session-evicted"));
    totals.record(1, 500, None, bad(299, "http-299"));
    totals.record(1, 500, None, bad(500, "invented-code"));
    totals.record(1, 500, None, bad(502, "http-502"));
    totals.record(
        1,
        5_000_000,
        None,
        RequestOutcome::Transport {
            kind: "clw-auth-timeout",
        },
    );
    let memory = MemoryNow {
        rss: Some((100 << 20, "proc")),
        cgroup: Some((90 << 20, "cgroup-v2")),
        allocated: Some(50 << 20),
        limit: Some((256 << 20, "--memory-limit")),
        verdict: Some(Verdict::Leak),
    };
    let s = sources(totals, memory);
    let counters = s.counters.clone();
    let _running = [counters.user_running(), counters.user_running()];
    let text = render(s);
    for line in [
        "clw_loadtest_requests_total{code=\"200\",step=\"login\"} 3",
        "clw_loadtest_requests_total{code=\"401\",step=\"validate\"} 1",
        "clw_loadtest_requests_total{code=\"other\",step=\"validate\"} 1",
        "clw_loadtest_requests_total{code=\"none\",step=\"validate\"} 1",
        "clw_loadtest_errors_total{kind=\"clw-session-evicted\",step=\"validate\"} 1",
        "clw_loadtest_errors_total{kind=\"clw-auth-timeout\",step=\"validate\"} 1",
        "clw_loadtest_errors_total{kind=\"http-502\",step=\"validate\"} 1",
        // http-299 (unregistered) and the invented code fold together.
        "clw_loadtest_errors_total{kind=\"other\",step=\"validate\"} 2",
        "clw_loadtest_request_duration_seconds_count{step=\"login\"} 3",
        "clw_loadtest_request_duration_seconds_bucket{step=\"login\",le=\"0.001\"} 3",
        "clw_loadtest_request_duration_seconds_bucket{step=\"validate\",le=\"+Inf\"} 5",
        "clw_loadtest_virtual_users 2",
        "clw_loadtest_virtual_users_max 8",
        "clw_loadtest_server_rss_bytes{source=\"proc\"} 104857600",
        "clw_loadtest_server_cgroup_bytes{source=\"cgroup-v2\"} 94371840",
        "clw_loadtest_server_allocated_bytes{source=\"metrics\"} 52428800",
        "clw_loadtest_server_memory_limit_bytes{source=\"--memory-limit\"} 268435456",
        "clw_loadtest_verdict{verdict=\"leak\"} 1",
        "clw_loadtest_verdict{verdict=\"bounded\"} 0",
        "clw_loadtest_verdict{verdict=\"inconclusive\"} 0",
        "clw_loadtest_dropped_iterations_total 0",
    ] {
        has(&text, line);
    }
    assert!(
        !text.contains("invented-code") && !text.contains("299"),
        "{text}"
    );
    // Every family is one of FAMILIES, with its HELP and TYPE.
    for (name, _, _) in FAMILIES {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing");
    }
}

#[test]
fn before_any_sample_memory_is_absent_and_no_verdict_is_set() {
    let text = render(sources(IntervalStats::new(2), MemoryNow::default()));
    assert!(!text.contains("clw_loadtest_server_"), "{text}");
    assert!(!text.contains("clw_loadtest_requests_total"), "{text}");
    for v in ["leak", "bounded", "inconclusive"] {
        has(&text, &format!("clw_loadtest_verdict{{verdict=\"{v}\"}} 0"));
    }
    has(&text, "clw_loadtest_virtual_users 0");
}

#[test]
fn counters_follow_the_shared_totals_at_each_scrape() {
    let s = sources(IntervalStats::new(2), MemoryNow::default());
    let totals = s.totals.clone();
    let collector = RunCollector::new(s);
    let requests = |c: &RunCollector| -> f64 {
        c.collect()
            .iter()
            .find(|f| f.name() == "clw_loadtest_requests_total")
            .map(|f| {
                f.get_metric()
                    .iter()
                    .map(|m| m.get_counter().get_value())
                    .sum()
            })
            .unwrap_or(0.0)
    };
    assert_eq!(requests(&collector), 0.0);
    let mut second = IntervalStats::new(2);
    second.record(0, 10, None, RequestOutcome::Ok { status: 200 });
    second.record(1, 10, None, RequestOutcome::Ok { status: 204 });
    totals.lock().unwrap().add(&second);
    assert_eq!(requests(&collector), 2.0);
    totals.lock().unwrap().add(&second);
    assert_eq!(requests(&collector), 4.0);
}
