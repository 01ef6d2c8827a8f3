//! The live verdict on synthetic runs sampled as clw-cli samples them
//! (every 250 ms), re-decided after every sample: when `leak` is first said,
//! and that it is never said where it should not be.

use super::tests::{assert_agrees, explain, Noise, LIMIT, MIB};
use super::*;
use crate::samples::SampleRow;

const DT: f64 = 0.25;

/// Feeds `seconds` of samples from `row(t)` and returns the tracker and
/// every verdict in order.
fn run(seconds: f64, mut row: impl FnMut(f64) -> SampleRow) -> (LiveVerdict, Vec<(f64, Verdict)>) {
    let mut live = LiveVerdict::new(AnalysisInput {
        limit_bytes: Some(LIMIT),
        ..AnalysisInput::default()
    });
    let mut verdicts = Vec::new();
    let n = (seconds / DT) as usize;
    for i in 1..=n {
        let t = i as f64 * DT;
        let mut r = row(t);
        r.t_s = t;
        let v = live.push(&r);
        assert_agrees(live.report());
        verdicts.push((t, v));
    }
    (live, verdicts)
}

fn first(verdicts: &[(f64, Verdict)], v: Verdict) -> Option<f64> {
    verdicts.iter().find(|(_, x)| *x == v).map(|(t, _)| *t)
}

/// What clw-auth exports: RSS, allocated, sessions, logins, capacity.
fn sample(rss: f64, allocated: f64, sessions: f64, logins: f64, capacity: u64) -> SampleRow {
    SampleRow {
        rss_bytes: Some(rss.max(0.0) as u64),
        hwm_bytes: Some(rss.max(0.0) as u64),
        allocated_bytes: Some(allocated.max(0.0) as u64),
        sessions: Some(sessions as u64),
        logins: Some(logins as u64),
        capacity: Some(capacity),
        ..SampleRow::default()
    }
}

#[test]
fn a_linear_leak_is_called_within_seconds_and_stays_called() {
    let mut noise = Noise(5);
    // 30k logins/s retaining 120 B each: 3.4 MiB/s, as leak-repro climbs.
    let (live, verdicts) = run(40.0, |t| {
        let logins = 30_000.0 * t;
        sample(
            12.0 * MIB + 130.0 * logins + noise.gaussian(0.3 * MIB),
            4.0 * MIB + 120.0 * logins + noise.gaussian(0.1 * MIB),
            logins,
            logins,
            10_000,
        )
    });
    let at = first(&verdicts, Verdict::Leak).expect("called leak");
    assert!(at <= 12.0, "leak first called at {at} s");
    assert!(
        verdicts.iter().all(|(t, v)| *t < at || *v == Verdict::Leak),
        "once called, the leak stays called"
    );
    assert!(
        verdicts
            .iter()
            .all(|(t, v)| *t >= 7.0 || *v != Verdict::Leak),
        "never before the trend test has 8 blocks of 1 s"
    );
    assert_eq!(live.leak_detected_at_s(), Some(at));
    let report = live.report();
    assert_eq!(report.leak_detected_at_s, Some(at));
    let trend = report.trend.as_ref().unwrap();
    assert_eq!(trend.series, "allocated");
    assert!(trend.rising && trend.p_value < 1e-3, "{trend:?}");
    let retained = report.retained_bytes_per_session.unwrap();
    assert!((retained - 120.0).abs() < 10.0, "retained {retained}");
}

#[test]
fn a_leak_whose_rss_climbs_in_steps_is_called_from_allocated_bytes() {
    // A session map that doubles: RSS flat for long stretches, jumping at
    // each doubling; the allocator's live bytes climb steadily.
    let (_, verdicts) = run(30.0, |t| {
        let logins = 30_000.0 * t;
        let table = 2f64.powf((logins / 200_000.0).log2().ceil().max(0.0)) * 200_000.0;
        sample(
            12.0 * MIB + 48.0 * table,
            4.0 * MIB + 110.0 * logins,
            logins,
            logins,
            10_000,
        )
    });
    let at = first(&verdicts, Verdict::Leak).expect("called leak");
    assert!(at <= 12.0, "leak first called at {at} s");
}

#[test]
fn a_full_cache_that_saws_is_never_called_a_leak() {
    for period in [2.0, 7.0, 20.0] {
        let mut noise = Noise(period as u64 * 31);
        let (live, verdicts) = run(60.0, |t| {
            let fill = (t % period) / period;
            sample(
                40.0 * MIB + 4.0 * MIB * fill + noise.gaussian(0.2 * MIB),
                20.0 * MIB + 3.0 * MIB * fill + noise.gaussian(0.05 * MIB),
                9_000.0 + 1_000.0 * fill,
                30_000.0 * t,
                10_000,
            )
        });
        assert_eq!(
            first(&verdicts, Verdict::Leak),
            None,
            "period {period}: {}",
            explain(live.report())
        );
        assert_eq!(
            live.report().verdict,
            Some(Verdict::Bounded),
            "period {period}: {}",
            explain(live.report())
        );
    }
}

#[test]
fn a_cache_filling_toward_its_advertised_capacity_is_inconclusive_until_full() {
    // 2,000 sessions/s into a 100,000-session cache, 1 KiB each: 50 s to
    // fill, then flat.
    let mut noise = Noise(17);
    let (live, verdicts) = run(120.0, |t| {
        let sessions = (2_000.0 * t).min(100_000.0);
        sample(
            20.0 * MIB + 1100.0 * sessions + noise.gaussian(0.2 * MIB),
            8.0 * MIB + 1024.0 * sessions + noise.gaussian(0.05 * MIB),
            sessions,
            2_000.0 * t,
            100_000,
        )
    });
    if let Some(at) = first(&verdicts, Verdict::Leak) {
        panic!("leak at {at} s: {verdicts:?}");
    }
    let filling: Vec<_> = verdicts
        .iter()
        .filter(|(t, _)| (10.0..45.0).contains(t))
        .collect();
    assert!(
        filling.iter().all(|(_, v)| *v == Verdict::Inconclusive),
        "{filling:?}"
    );
    assert_eq!(
        live.report().verdict,
        Some(Verdict::Bounded),
        "{}",
        explain(live.report())
    );
}

#[test]
fn the_same_fill_with_no_capacity_advertised_is_a_leak_while_it_climbs() {
    // Without the capacity the service cannot be told apart from a leak
    // while it climbs: that is why the capacity is sampled.
    let (_, verdicts) = run(40.0, |t| {
        let sessions = (2_000.0 * t).min(100_000.0);
        let mut r = sample(
            20.0 * MIB + 1100.0 * sessions,
            8.0 * MIB + 1024.0 * sessions,
            sessions,
            2_000.0 * t,
            0,
        );
        r.capacity = None;
        r
    });
    assert!(first(&verdicts, Verdict::Leak).is_some());
}

#[test]
fn noise_is_never_called_a_leak_at_any_moment() {
    for seed in 1..=20 {
        let mut noise = Noise(seed * 104_729);
        let (live, verdicts) = run(120.0, |t| {
            sample(
                60.0 * MIB + noise.gaussian(2.0 * MIB),
                30.0 * MIB + noise.gaussian(0.5 * MIB),
                10_000.0,
                30_000.0 * t,
                10_000,
            )
        });
        assert_eq!(
            first(&verdicts, Verdict::Leak),
            None,
            "seed {seed}: {}",
            explain(live.report())
        );
    }
}

#[test]
fn a_slow_leak_under_noise_is_found() {
    // 64 KiB/s under 0.5 MiB of noise: invisible second to second.
    let mut noise = Noise(99);
    let (live, verdicts) = run(180.0, |t| {
        sample(
            60.0 * MIB + 70_000.0 * t + noise.gaussian(1.0 * MIB),
            30.0 * MIB + 65_536.0 * t + noise.gaussian(0.5 * MIB),
            10_000.0,
            1_000.0 * t,
            10_000,
        )
    });
    let at =
        first(&verdicts, Verdict::Leak).unwrap_or_else(|| panic!("{}", explain(live.report())));
    assert!(at > 10.0, "not from the noise of the first seconds: {at}");
    let retained = live.report().retained_bytes_per_session.unwrap();
    assert!((retained - 65.5).abs() < 15.0, "retained {retained}");
}

#[test]
fn a_leak_that_fills_the_limit_in_seconds_is_called_before_the_kill() {
    // 2 KiB per request at 30k requests/s: past 80% of 256 MiB in ~3.5 s,
    // before the growth test has its 8 blocks of 1 s.
    let (live, verdicts) = run(4.0, |t| {
        let logins = 30_000.0 * t;
        sample(
            12.0 * MIB + 2048.0 * logins,
            6.0 * MIB + 2000.0 * logins,
            10_000.0,
            logins,
            10_000,
        )
    });
    let at =
        first(&verdicts, Verdict::Leak).unwrap_or_else(|| panic!("{}", explain(live.report())));
    assert!(at <= 4.0, "{at}");
    assert!(
        live.report()
            .evidence
            .iter()
            .any(|e| e.contains("past 80% of the limit")),
        "{}",
        explain(live.report())
    );
}

#[test]
fn a_cache_filled_to_near_the_limit_and_flat_is_not_a_leak() {
    // A bounded cache sized too close to the limit: it fills to 85% and
    // stays there. The 80% rule fails it; the verdict must not say leak.
    let mut noise = Noise(23);
    let (live, verdicts) = run(60.0, |t| {
        let fill = (t / 10.0).min(1.0);
        sample(
            20.0 * MIB + 200.0 * MIB * fill + noise.gaussian(0.2 * MIB),
            10.0 * MIB + 190.0 * MIB * fill + noise.gaussian(0.05 * MIB),
            100_000.0 * fill,
            30_000.0 * t,
            100_000,
        )
    });
    assert_eq!(
        first(&verdicts, Verdict::Leak),
        None,
        "{}",
        explain(live.report())
    );
    assert_eq!(
        live.report().verdict,
        Some(Verdict::Bounded),
        "{}",
        explain(live.report())
    );
}

#[test]
fn a_leak_called_live_stays_called_when_the_final_samples_are_inconclusive() {
    let inconclusive = MemoryReport {
        verdict: Some(Verdict::Inconclusive),
        plateau: Some(false),
        ..MemoryReport::default()
    };
    let settled = settle(inconclusive.clone(), Some(14.5));
    assert_eq!(settled.verdict, Some(Verdict::Leak));
    assert_eq!(settled.leak_detected_at_s, Some(14.5));
    assert!(settled
        .evidence
        .last()
        .unwrap()
        .contains("called leak at 14.5 s"));
    assert_agrees(&settled);
    assert_eq!(
        settle(inconclusive, None).verdict,
        Some(Verdict::Inconclusive)
    );
    let bounded = MemoryReport {
        verdict: Some(Verdict::Bounded),
        plateau: Some(true),
        evidence: vec!["memory levelled off: ...".into()],
        ..MemoryReport::default()
    };
    assert_eq!(
        settle(bounded, Some(3.0)).verdict,
        Some(Verdict::Bounded),
        "a levelled-off end stands"
    );
}
