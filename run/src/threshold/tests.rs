//! Threshold parsing, judging and defaults, against the issue's examples
//! and every bad form.

use super::*;

fn n(t: &Threshold) -> f64 {
    match t.value {
        Value::Number(n) => n,
        _ => panic!("not a number"),
    }
}

#[test]
fn the_issues_examples_parse_to_their_units() {
    let t = parse("peak_rss_percent < 80").unwrap();
    assert_eq!(
        (t.metric, t.op, n(&t)),
        (Metric::PeakRssPercent, Op::Lt, 80.0)
    );
    assert_eq!(
        n(&parse("peak_allocated_bytes < 200Mi").unwrap()),
        200.0 * 1048576.0
    );
    assert_eq!(n(&parse("p99_ms < 50").unwrap()), 50.0);
    let step = parse("login.p99_ms < 80").unwrap();
    assert_eq!(step.step.as_deref(), Some("login"));
    assert_eq!(step.name(), "login.p99_ms");
    assert_eq!(n(&parse("error_rate < 1%").unwrap()), 0.01);
    let v = parse("verdict != leak").unwrap();
    assert_eq!((v.op, v.value), (Op::Ne, Value::Verdict("leak".into())));
    assert_eq!(n(&parse("retained_bytes_per_login < 64").unwrap()), 64.0);
    assert_eq!(n(&parse("p99_ms<0.05s").unwrap()), 50.0);
}

#[test]
fn the_old_name_equals_limit_form_keeps_its_meaning() {
    let t = parse("p99_ms=250").unwrap();
    assert_eq!((t.op, n(&t)), (Op::Le, 250.0));
    let floor = parse("min_throughput_rps=1000").unwrap();
    assert_eq!((floor.metric, floor.op), (Metric::ThroughputRps, Op::Ge));
    assert_eq!(parse("error_rate=0.01").unwrap().op, Op::Le);
}

#[test]
fn every_bad_form_points_at_its_column() {
    let cases = [
        ("", 1, "metric name"),
        ("  < 80", 3, "metric name"),
        ("p99 < 5", 1, "unknown metric `p99`"),
        ("login.verdict != leak", 1, "whole-run figure"),
        (".p99_ms < 5", 1, "step name is missing"),
        ("p99_ms 50", 8, "expected a comparison"),
        ("p99_ms => 50", 8, "`=>` is not a comparison"),
        ("p99_ms < ", 10, "expected a number"),
        ("p99_ms < fast", 10, "expected a number"),
        ("p99_ms < 50 ms extra", 13, "unexpected text"),
        ("p99_ms < 50kg", 12, "not a time unit"),
        ("error_rate < 1Mi", 15, "fraction"),
        ("peak_rss_percent < 80Mi", 22, "percentage"),
        ("peak_allocated_bytes < 200Xi", 27, "not a size unit"),
        ("verdict < leak", 9, "compared with == or !="),
        ("verdict != leaky", 12, "expected a verdict"),
        ("verdict = leak", 9, "`=` is not a comparison"),
        ("p99_ms < inf", 10, "expected a number"),
    ];
    for (text, column, needle) in cases {
        let e = parse(text).expect_err(text);
        assert_eq!(e.column, column, "{text}: {e}");
        assert!(e.message.contains(needle), "{text}: {e}");
    }
}

#[test]
fn evaluation_compares_in_the_metrics_unit() {
    let t = parse("peak_rss_percent < 80").unwrap();
    assert_eq!(t.passes(&Actual::Number(79.9)), Some(true));
    assert_eq!(t.passes(&Actual::Number(80.0)), Some(false));
    let v = parse("verdict != leak").unwrap();
    assert_eq!(v.passes(&Actual::Verdict("bounded".into())), Some(true));
    assert_eq!(v.passes(&Actual::Verdict("leak".into())), Some(false));
    assert_eq!(v.passes(&Actual::Number(1.0)), None);
    assert_eq!(
        parse("throughput_rps >= 100")
            .unwrap()
            .passes(&Actual::Number(100.0)),
        Some(true)
    );
}

fn run() -> RunSummary {
    let mut run: RunSummary = serde_json::from_value(serde_json::json!({
        "requests": {"total": 200, "ok": 198, "failed": 2},
        "throughput_rps": 100.0, "elapsed_s": 2.0,
        "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 40.0, "p999": 60.0, "max": 90.0},
        "steps": {"login": {"requests": 100, "errors": 2,
                            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 85.0, "p999": 90.0, "max": 90.0}}},
        "memory": {"limit_bytes": 268435456, "peak_rss_percent": 45.5, "peak_allocated_bytes": 1000,
                   "retained_bytes_per_session": 12.5, "verdict": "leak"}
    }))
    .unwrap();
    run.complete = true;
    run
}

#[test]
fn judged_against_a_run_each_with_its_actual_value() {
    let run = run();
    let judge = |text: &str| parse(text).unwrap().judge(&run);
    let j = judge("peak_rss_percent < 80");
    assert_eq!(
        (j.actual, j.passed),
        (Some(Actual::Number(45.5)), Some(true))
    );
    assert_eq!(judge("p99_ms < 50").passed, Some(true));
    let step = judge("login.p99_ms < 80");
    assert_eq!(
        (step.actual, step.passed),
        (Some(Actual::Number(85.0)), Some(false))
    );
    assert_eq!(judge("error_rate < 1%").actual, Some(Actual::Number(0.01)));
    assert_eq!(
        judge("error_rate < 1%").passed,
        Some(false),
        "1% is not under 1%"
    );
    assert_eq!(judge("login.error_rate < 5%").passed, Some(true));
    assert_eq!(judge("login.throughput_rps >= 50").passed, Some(true));
    let v = judge("verdict != leak");
    assert_eq!(
        (v.actual, v.passed),
        (Some(Actual::Verdict("leak".into())), Some(false))
    );
    assert_eq!(judge("retained_bytes_per_login < 64").passed, Some(true));
    assert_eq!(judge("peak_allocated_bytes < 1Ki").passed, Some(true));
    let missing = judge("nostep.p99_ms < 80");
    assert_eq!(
        (missing.actual, missing.passed),
        (None, Some(false)),
        "a figure the run lacks fails"
    );
}

#[test]
fn only_failures_no_later_sample_can_undo_are_for_good() {
    let mut run = run();
    let for_good = |text: &str, run: &RunSummary| parse(text).unwrap().fails_for_good(run);
    assert_eq!(
        for_good("verdict != leak", &run),
        Some(Actual::Verdict("leak".into()))
    );
    assert_eq!(
        for_good("peak_rss_percent < 40", &run),
        Some(Actual::Number(45.5))
    );
    assert_eq!(for_good("peak_rss_percent < 80", &run), None, "passing");
    assert_eq!(
        for_good("peak_rss_percent > 80", &run),
        None,
        "a floor on a peak may still be reached"
    );
    assert_eq!(for_good("p99_ms < 10", &run), None, "latency may recover");
    run.memory.as_mut().unwrap().verdict = Some(crate::Verdict::Inconclusive);
    assert_eq!(
        for_good("verdict == bounded", &run),
        None,
        "inconclusive may still settle"
    );
    assert_eq!(for_good("verdict != leak", &run), None);
}

#[test]
fn a_percentage_of_an_unknown_limit_does_not_apply() {
    let mut run = run();
    run.memory.as_mut().unwrap().limit_bytes = None;
    assert_eq!(
        parse("peak_rss_percent < 80").unwrap().judge(&run).passed,
        None
    );
    run.memory = None;
    assert_eq!(
        parse("verdict != leak").unwrap().judge(&run).passed,
        Some(false),
        "no verdict at all fails"
    );
}

#[test]
fn defaults_apply_unless_the_user_states_the_metric() {
    let names = |v: Vec<Threshold>| v.iter().map(|t| t.to_string()).collect::<Vec<_>>();
    assert_eq!(
        names(with_defaults(&[], &[])),
        ["peak_rss_percent < 80", "verdict != leak"]
    );
    let scenario = [
        parse("p99_ms < 100").unwrap(),
        parse("peak_rss_percent < 70").unwrap(),
    ];
    let flags = [
        parse("p99_ms <= 50").unwrap(),
        parse("throughput_rps > 10").unwrap(),
    ];
    assert_eq!(
        names(with_defaults(&scenario, &flags)),
        [
            "p99_ms <= 50",
            "peak_rss_percent < 70",
            "throughput_rps > 10",
            "verdict != leak"
        ]
    );
    let floor_and_ceiling = [parse("p99_ms > 0.001").unwrap()];
    assert_eq!(
        with_defaults(&scenario, &floor_and_ceiling).len(),
        4,
        "a floor does not replace a ceiling"
    );
}

#[test]
fn display_round_trips() {
    for text in ["login.p99_ms < 80", "verdict != leak", "error_rate <= 0.01"] {
        let t = parse(text).unwrap();
        assert_eq!(parse(&t.to_string()).unwrap().value, t.value);
        assert_eq!(t.to_string(), text);
    }
}

/// A run whose memory could not be measured at all (a mistyped
/// `--metrics-url`, a page that never answered) never passes a memory
/// rule, not even one it would skip for want of a limit; `--no-memory`
/// skips them all, saying why; latency rules are judged as ever.
#[test]
fn memory_rules_fail_without_samples_unless_memory_is_opted_out() {
    let mut unmeasured = run();
    unmeasured.memory = Some(crate::MemoryReport {
        verdict: Some(crate::Verdict::Inconclusive),
        ..crate::MemoryReport::default()
    });
    unmeasured.server.limit_bytes = None;
    let judge = |text: &str, run: &RunSummary| parse(text).unwrap().judge(run);
    for rule in [
        "peak_rss_percent < 80",
        "verdict != leak",
        "peak_rss_bytes < 1Gi",
    ] {
        let j = judge(rule, &unmeasured);
        assert_eq!(
            (j.passed, j.why),
            (Some(false), Some(NO_MEMORY_SAMPLES)),
            "{rule}"
        );
    }
    unmeasured.memory = None;
    assert_eq!(judge("verdict != leak", &unmeasured).passed, Some(false));
    assert_eq!(judge("p99_ms < 50", &unmeasured).passed, Some(true));

    unmeasured.no_memory = true;
    for rule in ["peak_rss_percent < 80", "verdict != leak"] {
        let j = judge(rule, &unmeasured);
        assert_eq!((j.passed, j.why), (None, Some(MEMORY_OPTED_OUT)), "{rule}");
    }
    assert_eq!(judge("p99_ms < 50", &unmeasured).passed, Some(true));

    // Measured, but no limit known: the percentage alone is skipped.
    let mut no_limit = run();
    no_limit.memory.as_mut().unwrap().limit_bytes = None;
    no_limit.server.limit_bytes = None;
    let j = judge("peak_rss_percent < 80", &no_limit);
    assert_eq!((j.passed, j.why), (None, Some(NO_LIMIT)));
    assert_eq!(judge("peak_rss_bytes < 1Gi", &no_limit).why, None);
}

#[test]
fn a_rule_is_one_line() {
    for text in [
        "p99_ms < 5\n| injected | row |",
        "p99_ms < 5\r",
        "p99_ms\u{1b}[2J < 5",
    ] {
        let err = parse(text).unwrap_err();
        assert!(err.to_string().contains("a rule is one line"), "{err}");
    }
    assert!(parse("  p99_ms  <  5  ").is_ok(), "spaces are fine");
}
