use super::*;
use crate::{GrowthSite, MemoryReport, ServerExit};

fn run(verdict: Verdict, percent: f64) -> RunSummary {
    let mut s = RunSummary {
        complete: true,
        duration_s: 300.0,
        memory: Some(MemoryReport {
            verdict: Some(verdict),
            peak_rss_percent: Some(percent),
            peak_rss_bytes: Some(100 << 20),
            limit_bytes: Some(256 << 20),
            ..MemoryReport::default()
        }),
        passed: Some(true),
        ..RunSummary::default()
    };
    s.server.limit_enforcement = crate::Enforcement::CgroupV1.into();
    s.requests.ok = 10;
    s.requests.total = 10;
    s
}

fn oom(at_s: f64, emulated: bool) -> ServerExit {
    ServerExit {
        signal: Some(9),
        at_s: Some(at_s),
        oom_killed: true,
        emulated,
        ..ServerExit::default()
    }
}

#[test]
fn a_leak_is_reproduced_by_an_oom_kill_or_a_leak_verdict() {
    let mut killed = run(Verdict::Inconclusive, 99.0);
    killed.server.exit = Some(oom(12.34, false));
    let v = verify(&killed, "reports/leak-repro", Expectation::Leak);
    assert!(v.met);
    assert_eq!(
        v.lines[0],
        "leak reproduced: verdict inconclusive, limit by cgroup-v1, OOM-killed at 12.3 s (exit 137)"
    );
    killed.server.exit = Some(oom(7.0, true));
    assert!(verify(&killed, "d", Expectation::Leak).lines[0]
        .ends_with("OOM-killed at 7 s (exit 137, emulated by the watchdog)"));

    let leak = verify(&run(Verdict::Leak, 50.0), "d", Expectation::Leak);
    assert!(leak.met);
    assert!(
        leak.lines[0].ends_with("not killed within 300 s"),
        "{leak:?}"
    );

    let none = verify(&run(Verdict::Bounded, 30.0), "reports/x", Expectation::Leak);
    assert!(!none.met);
    assert_eq!(
        none.lines[0],
        "leak NOT reproduced: see reports/x/summary.json"
    );
}

#[test]
fn the_fix_holds_only_bounded_under_80_percent_and_alive() {
    let ok = verify(&run(Verdict::Bounded, 4.1), "d", Expectation::Bounded);
    assert!(ok.met);
    assert_eq!(
        ok.lines[0],
        "fix verified: peak RSS 4.1% of the limit, verdict bounded, not killed"
    );
    let high = verify(&run(Verdict::Bounded, 85.0), "d", Expectation::Bounded);
    assert!(!high.met);
    assert_eq!(
        high.lines[0],
        "fix NOT verified: peak RSS 85% (need < 80), verdict bounded (need bounded), server exit null"
    );
    assert!(!verify(&run(Verdict::Leak, 10.0), "d", Expectation::Bounded).met);
    let mut killed = run(Verdict::Bounded, 10.0);
    killed.server.exit = Some(oom(3.0, false));
    assert!(!verify(&killed, "d", Expectation::Bounded).met);
    let mut unmeasured = run(Verdict::Bounded, 0.0);
    unmeasured.memory.as_mut().unwrap().peak_rss_percent = None;
    assert!(
        !verify(&unmeasured, "d", Expectation::Bounded).met,
        "no percentage is no pass"
    );
}

#[test]
fn a_soak_fails_on_one_5xx_or_a_failed_threshold() {
    let ok = verify(&run(Verdict::Bounded, 40.0), "d", Expectation::Soak);
    assert!(ok.met, "{ok:?}");
    assert_eq!(ok.lines.len(), 5, "three figures, the verdict, the sites");
    assert_eq!(
        ok.lines[2],
        "soak: peak RSS 100 MiB = 40% of 256 MiB (limit by cgroup-v1), verdict bounded, server exit null, passed true"
    );
    let mut five = run(Verdict::Bounded, 40.0);
    five.requests.by_status.insert("503".into(), 1);
    let failed = verify(&five, "reports/soak", Expectation::Soak);
    assert!(!failed.met);
    assert!(
        failed.lines[1].contains(r#"by status {"503":1}"#),
        "{failed:?}"
    );
    assert!(failed.lines[3].starts_with("soak FAILED:"));
    let mut thresholds = run(Verdict::Bounded, 40.0);
    thresholds.passed = Some(false);
    assert!(!verify(&thresholds, "d", Expectation::Soak).met);
}

#[test]
fn growth_sites_are_the_top_three_or_why_none() {
    let mut s = run(Verdict::Leak, 90.0);
    s.notes.push("heap profiles off: 404".into());
    s.notes.push("something else".into());
    assert_eq!(
        growth_lines(&s),
        ["growth sites: none (heap profiles off: 404)"]
    );
    s.memory.as_mut().unwrap().growth_sites = Some(Vec::new());
    assert_eq!(
        growth_lines(&s),
        ["growth sites: none (no allocation site grew between the first and last heap profile)"]
    );
    let site = |n: u64| GrowthSite {
        function: format!("f{n}"),
        file: Some("src/cache.rs".into()),
        line: Some(146),
        bytes_grown: n << 20,
        share_percent: 33.33,
    };
    s.memory.as_mut().unwrap().growth_sites = Some((1..=5).map(site).collect());
    let lines = growth_lines(&s);
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[1], "  1 MiB  33%  f1  src/cache.rs:146");
}

#[test]
fn site_rules_name_the_top_site_and_the_largest_growth() {
    let site = |function: &str, file: &str, mib: u64| GrowthSite {
        function: function.into(),
        file: Some(file.into()),
        line: Some(1),
        bytes_grown: mib << 20,
        share_percent: 50.0,
    };
    let mut s = run(Verdict::Leak, 90.0);
    let in_cache = SiteRules {
        top_site_in: vec!["auth-server/src/cache/".into(), "clw_auth::routes::".into()],
        sites_within: None,
    };
    assert_eq!(
        check_sites(&s, &in_cache).len(),
        1,
        "no sites: not in the cache"
    );
    s.memory.as_mut().unwrap().growth_sites = Some(vec![
        site(
            "clw_auth::cache::leaky::insert",
            "auth-server/src/cache/leaky.rs",
            90,
        ),
        site("alloc::vec::grow", "library/alloc/src/vec.rs", 5),
    ]);
    assert!(check_sites(&s, &in_cache).is_empty());
    s.memory
        .as_mut()
        .unwrap()
        .growth_sites
        .as_mut()
        .unwrap()
        .swap(0, 1);
    let failed = check_sites(&s, &in_cache);
    assert!(
        failed[0].starts_with("FAIL: the top growth site (alloc::vec::grow "),
        "{failed:?}"
    );
    let within = SiteRules {
        top_site_in: Vec::new(),
        sites_within: Some(64 << 20),
    };
    assert_eq!(
        check_sites(&s, &within),
        ["FAIL: a site grew by 90 MiB, more than the 64 MiB allowed"]
    );
    s.memory.as_mut().unwrap().growth_sites = Some(vec![site("f", "a.rs", 10)]);
    assert!(check_sites(&s, &within).is_empty());
    // Profiles compared and nothing grew: the fix holds.
    s.memory.as_mut().unwrap().growth_sites = Some(Vec::new());
    assert!(check_sites(&s, &within).is_empty());
    // No profiles compared: nothing shows the fix holds.
    s.memory.as_mut().unwrap().growth_sites = None;
    assert_eq!(
        check_sites(&s, &within),
        ["FAIL: no heap profiles were compared, so no growth sites (see the heap notes)"]
    );
}
