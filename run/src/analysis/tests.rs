//! The verdict on synthetic series shaped like what servers really do.

use super::*;

pub(super) const MIB: f64 = 1024.0 * 1024.0;
pub(super) const LIMIT: u64 = 256 << 20;

/// Deterministic Gaussian noise (xorshift + Box-Muller), so tests repeat.
pub(super) struct Noise(pub(super) u64);

impl Noise {
    pub(super) fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(super) fn gaussian(&mut self, sigma: f64) -> f64 {
        let (u1, u2) = (self.uniform().max(1e-12), self.uniform());
        sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// `n` samples one second apart; rss from `f(t)`, logins at 100/s.
fn series(n: usize, f: impl FnMut(f64) -> f64) -> Series {
    series_every(1.0, n, f)
}

/// As [`series`], `step_s` seconds apart.
fn series_every(step_s: f64, n: usize, mut f: impl FnMut(f64) -> f64) -> Series {
    let mut s = Series::default();
    for i in 0..n {
        let t = i as f64 * step_s;
        s.t_s.push(t);
        let rss = f(t);
        s.rss.push(Some(rss));
        s.hwm.push(Some(rss));
        s.cgroup.push(None);
        s.allocated.push(None);
        s.sessions.push(None);
        s.evictions.push(None);
        s.logins.push(Some(100.0 * t));
    }
    s
}

fn input() -> AnalysisInput {
    AnalysisInput {
        limit_bytes: Some(LIMIT),
        ..AnalysisInput::default()
    }
}

pub(super) fn explain(report: &MemoryReport) -> String {
    format!(
        "{:?} plateau {:?}: {:#?}",
        report.verdict, report.plateau, report.evidence
    )
}

/// `analyze`, checked for self-consistency.
#[track_caller]
fn judge(series: &Series, input: &AnalysisInput) -> MemoryReport {
    let report = analyze(series, input);
    assert_agrees(&report);
    report
}

/// The verdict never contradicts itself: the `plateau` field, the evidence
/// lines and the verdict say the same thing (a killed climb is no plateau).
#[track_caller]
pub(super) fn assert_agrees(report: &MemoryReport) {
    let says = |prefix: &str| report.evidence.iter().any(|e| e.starts_with(prefix));
    let why = explain(report);
    match report.verdict {
        Some(Verdict::Leak) => {
            assert_ne!(report.plateau, Some(true), "a leak with a plateau: {why}");
            assert!(
                !says("memory levelled off"),
                "a leak that levelled off: {why}"
            );
        }
        Some(Verdict::Bounded) => {
            assert!(
                says("memory levelled off"),
                "bounded without saying why: {why}"
            );
            assert_eq!(
                report.plateau == Some(true),
                says("memory levelled off"),
                "plateau field and evidence disagree: {why}"
            );
        }
        Some(Verdict::Inconclusive) => {
            assert_ne!(report.plateau, Some(true), "a plateau is a verdict: {why}");
            assert!(!says("memory levelled off"), "{why}");
        }
        None => panic!("analyze always decides: {why}"),
    }
}

#[test]
fn linear_growth_is_a_leak_with_projection_and_retained_bytes() {
    let mut noise = Noise(7);
    let mut s = series(120, |t| 50.0 * MIB + MIB * t);
    for (i, v) in s.rss.iter_mut().enumerate() {
        *v = Some(v.unwrap() + noise.gaussian(0.2 * MIB));
        s.allocated[i] = Some(20.0 * MIB + 0.9 * MIB * i as f64);
    }
    let report = judge(&s, &input());
    assert_eq!(report.verdict, Some(Verdict::Leak), "{}", explain(&report));
    assert_eq!(report.plateau, Some(false));
    let slope = report.slope_bytes_per_s.unwrap();
    assert!((slope / MIB - 1.0).abs() < 0.05, "slope {slope}");
    assert!(report.r_squared.unwrap() > 0.95);
    // Last value ~169 MiB, 1 MiB/s to 256 MiB: ~87 s.
    let eta = report.projected_time_to_limit_s.unwrap();
    assert!((75.0..100.0).contains(&eta), "eta {eta}");
    // 0.9 MiB/s of allocations over 100 logins/s.
    let retained = report.retained_bytes_per_session.unwrap();
    assert!(
        (retained - 0.9 * MIB / 100.0).abs() < 100.0,
        "retained {retained}"
    );
    assert_eq!(report.sources.rss.as_deref(), Some("proc"));
}

#[test]
fn plateau_is_bounded() {
    let mut noise = Noise(11);
    let s = series(180, |t| {
        50.0 * MIB + 100.0 * MIB * (1.0 - (-t / 15.0).exp()) + noise.gaussian(0.3 * MIB)
    });
    let report = judge(&s, &input());
    assert_eq!(
        report.verdict,
        Some(Verdict::Bounded),
        "{}",
        explain(&report)
    );
    assert_eq!(report.plateau, Some(true));
    assert_eq!(report.projected_time_to_limit_s, None);
}

#[test]
fn fixed_cache_sawtooth_is_bounded() {
    for period in [10.0, 20.0, 45.0] {
        let mut s = series(180, |t| 60.0 * MIB + 2.0 * MIB * (t % period));
        for (i, t) in s.t_s.clone().into_iter().enumerate() {
            s.allocated[i] = Some(30.0 * MIB + 1.5 * MIB * (t % period));
            s.sessions[i] = Some(1000.0 * (t % period));
            s.evictions[i] = Some(1000.0 * period * (t / period).floor());
        }
        let report = judge(&s, &input());
        assert_eq!(
            report.verdict,
            Some(Verdict::Bounded),
            "period {period}: {}",
            explain(&report)
        );
        assert!(
            report.evidence.iter().any(|e| e.contains("cache evicted")),
            "{}",
            explain(&report)
        );
    }
}

#[test]
fn step_then_flat_is_bounded() {
    for step_at in [15.0, 70.0] {
        let mut noise = Noise(3);
        let s = series(
            180,
            |t| if t < step_at { 50.0 } else { 120.0 } * MIB + noise.gaussian(0.2 * MIB),
        );
        let report = judge(&s, &input());
        assert_eq!(
            report.verdict,
            Some(Verdict::Bounded),
            "step at {step_at}: {}",
            explain(&report)
        );
    }
}

#[test]
fn noise_is_not_a_leak() {
    for seed in 1..20 {
        let mut noise = Noise(seed * 7919);
        let s = series(120, |_| 80.0 * MIB + noise.gaussian(3.0 * MIB));
        let report = judge(&s, &input());
        assert_eq!(
            report.verdict,
            Some(Verdict::Bounded),
            "seed {seed}: {}",
            explain(&report)
        );
        assert!(report.r_squared.unwrap() < 0.2);
    }
}

#[test]
fn short_series_is_inconclusive() {
    let s = series(5, |t| 50.0 * MIB + 10.0 * MIB * t);
    let report = judge(&s, &input());
    assert_eq!(report.verdict, Some(Verdict::Inconclusive));
    assert!(
        report.evidence.iter().any(|e| e.contains("only 5")),
        "{}",
        explain(&report)
    );
    assert_eq!(
        report.slope_bytes_per_s, None,
        "unknown stays null, never 0"
    );
    assert_eq!(report.peak_rss_bytes, Some((90.0 * MIB) as u64));
}

#[test]
fn oom_killed_climb_is_a_leak_at_the_limit() {
    // jemalloc maps memory in chunks: RSS climbs in 4 MiB steps to the limit.
    let s = series(70, |t| ((40.0 + 3.1 * t) / 4.0).floor() * 4.0 * MIB);
    let input = AnalysisInput {
        oom_killed: true,
        ..input()
    };
    let report = judge(&s, &input);
    assert_eq!(report.verdict, Some(Verdict::Leak), "{}", explain(&report));
    assert!(report.peak_rss_percent.unwrap() > 90.0);
    assert!(report.projected_time_to_limit_s.unwrap() < 10.0);
    assert!(report.evidence.iter().any(|e| e.contains("OOM-killed")));
}

#[test]
fn a_staircase_into_the_kill_is_a_leak() {
    // An unbounded hash table doubles: RSS jumps and then sits flat until the
    // next doubling, which the limit cannot hold (seen in make leak-repro).
    let s = series(60, |t| match t as u32 {
        0..=9 => 12.0 * MIB,
        10..=24 => 50.0 * MIB,
        25..=34 => 100.0 * MIB,
        _ => 190.0 * MIB,
    });
    let killed = AnalysisInput {
        oom_killed: true,
        ..input()
    };
    let report = judge(&s, &killed);
    assert_eq!(report.verdict, Some(Verdict::Leak), "{}", explain(&report));
    // The last third sat flat at 190 MiB: flat, but not a plateau, since
    // the next doubling is what the limit killed.
    assert_eq!(report.plateau, Some(false), "{}", explain(&report));
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.contains("never levelled off")),
        "{}",
        explain(&report)
    );
}

#[test]
fn killed_at_its_starting_level_is_not_called_a_leak() {
    // Bounded, but the limit is below what it needs: the guide's other cause.
    let mut noise = Noise(11);
    let s = series(60, |_| 240.0 * MIB + noise.gaussian(0.3 * MIB));
    let killed = AnalysisInput {
        oom_killed: true,
        server_died: true,
        ..input()
    };
    let report = judge(&s, &killed);
    assert_eq!(
        report.verdict,
        Some(Verdict::Bounded),
        "{}",
        explain(&report)
    );
    assert_eq!(report.plateau, Some(true));
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.contains("limit is too low")),
        "{}",
        explain(&report)
    );
}

#[test]
fn memory_that_falls_is_bounded_and_says_it_fell() {
    // A cache warmed up, then a cleanup freed most of it and it stayed low.
    let mut noise = Noise(9);
    let s = series(90, |t| {
        let level = if t < 55.0 { 150.0 } else { 70.0 };
        level * MIB + noise.gaussian(0.2 * MIB)
    });
    let report = judge(&s, &input());
    assert_says(&report, Verdict::Bounded, true, "fell by");
}

/// The verdict, the plateau field, and an evidence line containing `needle`.
#[track_caller]
fn assert_says(report: &MemoryReport, verdict: Verdict, plateau: bool, needle: &str) {
    let why = explain(report);
    assert_eq!(report.verdict, Some(verdict), "{why}");
    assert_eq!(report.plateau, Some(plateau), "{why}");
    assert!(report.evidence.iter().any(|e| e.contains(needle)), "{why}");
}

#[test]
fn a_steady_climb_is_a_leak_and_says_no_plateau() {
    let s = series(60, |t| 40.0 * MIB + 2.0 * MIB * t);
    let report = judge(&s, &input());
    assert_eq!(report.verdict, Some(Verdict::Leak), "{}", explain(&report));
    assert_eq!(report.plateau, Some(false));
    assert!(report.evidence.iter().any(|e| e.starts_with("no plateau")));
}

#[test]
fn a_server_that_died_is_never_called_bounded() {
    // Flat until a SIGKILL that was not an OOM kill (`--server-pid` killed).
    let mut noise = Noise(12);
    let s = series(60, |_| 40.0 * MIB + noise.gaussian(0.3 * MIB));
    assert_eq!(judge(&s, &input()).verdict, Some(Verdict::Bounded));
    let died = AnalysisInput {
        server_died: true,
        ..input()
    };
    assert_says(&judge(&s, &died), Verdict::Inconclusive, false, "died");
}

#[test]
fn ramp_up_is_excluded_from_the_fit() {
    let mut noise = Noise(5);
    let s = series(120, |t| {
        (20.0 + 8.0 * t.min(20.0)) * MIB + noise.gaussian(0.2 * MIB)
    });
    let report = judge(
        &s,
        &AnalysisInput {
            ramp_up_s: 20.0,
            ..input()
        },
    );
    assert_eq!(
        report.verdict,
        Some(Verdict::Bounded),
        "{}",
        explain(&report)
    );
    assert!(report.slope_bytes_per_s.unwrap().abs() < 0.05 * MIB);
}

#[test]
fn slow_noisy_rise_without_trend_is_inconclusive_not_leak() {
    // A small rise buried in heavy noise: neither steady nor flat.
    let mut noise = Noise(42);
    let s = series(30, |t| {
        80.0 * MIB + if t > 22.0 { 12.0 * MIB } else { 0.0 } + noise.gaussian(4.0 * MIB)
    });
    let report = judge(&s, &input());
    assert_ne!(report.verdict, Some(Verdict::Leak), "{}", explain(&report));
}

#[test]
fn report_serializes_as_the_summary_memory_block() {
    let s = series(3, |_| 10.0 * MIB);
    let value = serde_json::to_value(analyze(&s, &AnalysisInput::default())).unwrap();
    let keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "samples",
        "limit_bytes",
        "sources",
        "peak_rss_bytes",
        "peak_rss_percent",
        "peak_allocated_bytes",
        "peak_allocated_percent",
        "slope_bytes_per_s",
        "r_squared",
        "plateau",
        "retained_bytes_per_session",
        "verdict",
        "evidence",
        "projected_time_to_limit_s",
        "trend",
        "leak_detected_at_s",
    ];
    let mut got = keys.clone();
    got.sort_unstable();
    expected.sort_unstable();
    assert_eq!(got, expected);
    assert_eq!(value["verdict"], "inconclusive");
    assert!(value["limit_bytes"].is_null() && value["peak_rss_percent"].is_null());
    assert_eq!(value["sources"]["rss"], "proc");
    assert!(value["sources"]["cgroup"].is_null());
}

#[test]
fn recomputes_from_a_killed_runs_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("samples.csv");
    let mut text = String::from(
        "t_s,rss_bytes,hwm_bytes,cgroup_bytes,allocated_bytes,active_bytes,resident_bytes,sessions,evictions,rps,errors,logins\n",
    );
    for i in 0..40 {
        let rss = 30 * (1 << 20) + i * 5 * (1 << 20);
        // Every 7th scrape failed: allocator figures blank.
        let alloc = if i % 7 == 3 {
            String::new()
        } else {
            (rss / 2).to_string()
        };
        text.push_str(&format!(
            "{}.000,{rss},{rss},{rss},{alloc},,,{},0,500.0,0,{}\n",
            i,
            i * 50,
            i * 50
        ));
    }
    text.push_str("40.000,2345"); // killed mid-write
    std::fs::write(&path, text).unwrap();
    let series = Series::read(&path).unwrap();
    assert!(series.truncated_tail);
    let report = judge(&series, &input());
    assert_eq!(report.samples, 40);
    assert_eq!(report.verdict, Some(Verdict::Leak), "{}", explain(&report));
    assert!(report.evidence[0].contains("cut off"));
    assert_eq!(report.sources.cgroup.as_deref(), Some("cgroup"));
}

#[test]
fn recomputed_sources_follow_the_source_column_else_the_columns() {
    let default_input = AnalysisInput::default();
    let old = series(10, |_| 1e6);
    assert_eq!(
        analyze(&old, &default_input).sources.rss.as_deref(),
        Some("proc"),
        "an older file: told by its hwm column"
    );
    let mut read = Series::default();
    for i in 0..10 {
        read.push(&crate::SampleRow {
            t_s: i as f64,
            rss_bytes: Some(1 << 20),
            source: Some(crate::MemorySource::Prometheus),
            ..crate::SampleRow::default()
        });
    }
    assert_eq!(
        analyze(&read, &default_input).sources.rss.as_deref(),
        Some("prometheus")
    );
}

#[test]
fn memory_from_another_source_is_not_called_rss() {
    let climb = |source| {
        let mut s = Series::default();
        for i in 0..120 {
            s.push(&crate::SampleRow {
                t_s: i as f64,
                rss_bytes: Some((50.0 * MIB + MIB * i as f64) as u64),
                source: Some(source),
                ..crate::SampleRow::default()
            });
        }
        judge(&s, &input())
    };
    let cgroup = climb(crate::MemorySource::Cgroup);
    let said = cgroup.evidence.join("\n");
    // Its working set is what the cgroup charges: the share of the limit
    // says so.
    assert!(said.contains("peak cgroup working set "), "{said}");
    assert!(
        !said.contains("RSS"),
        "a cgroup's working set called RSS: {said}"
    );
    let proc = climb(crate::MemorySource::Proc).evidence.join("\n");
    assert!(proc.contains("peak RSS "), "{proc}");
}

/// A server in a memory cgroup that maps a big file: RSS counts the file's
/// pages, the cgroup does not charge them. The share of the limit, the 80%
/// rule and the projection are of the cgroup's working set, with RSS
/// beside it; without one, the raw usage; a live process is never said to
/// be above 100% of its limit.
#[test]
fn the_limit_share_is_of_what_the_cgroup_charges() {
    // RSS: 100 MiB of mapped file plus a climb from 20 to 139 MiB of heap,
    // up to 239 MiB against a 256 MiB limit (93%); the cgroup charges the
    // heap only (at most 54%). Neither rule of "past 80%" applies.
    let rows = |working_set: bool| {
        let mut s = Series::default();
        for i in 0..120 {
            let heap = 20.0 * MIB + MIB * i as f64;
            s.push(&crate::SampleRow {
                t_s: i as f64,
                rss_bytes: Some((100.0 * MIB + heap) as u64),
                hwm_bytes: Some((100.0 * MIB + heap) as u64),
                cgroup_bytes: Some((heap + 2.0 * MIB) as u64),
                cgroup_working_set_bytes: working_set.then_some(heap as u64),
                source: Some(crate::MemorySource::Proc),
                ..crate::SampleRow::default()
            });
        }
        s
    };
    let report = judge(&rows(true), &input());
    assert_eq!(
        report.peak_percent_of.as_deref(),
        Some("cgroup working set")
    );
    assert_eq!(report.peak_charged_bytes, Some((139.0 * MIB) as u64));
    assert_eq!(report.peak_rss_bytes, Some((239.0 * MIB) as u64));
    let expected = round2(139.0 * MIB * 100.0 / LIMIT as f64);
    assert_eq!(report.peak_rss_percent, Some(expected));
    let said = explain(&report);
    assert!(
        report.evidence[0].starts_with(&format!(
            "peak cgroup working set 139.0 MiB = {expected:.1}% of the 256.0 MiB limit (RSS 239.0 MiB, which also counts file pages"
        )),
        "{said}"
    );
    assert!(!said.contains("past 80%"), "{said}");
    // The projection is from the charged 139 MiB at 1 MiB/s: 117 s.
    let left = report.projected_time_to_limit_s.unwrap();
    assert!((left - 117.0).abs() < 2.0, "{left}: {said}");

    // Without memory.stat (or an older file): the raw usage, named so.
    let report = judge(&rows(false), &input());
    assert_eq!(report.peak_percent_of.as_deref(), Some("cgroup usage"));
    assert_eq!(report.peak_charged_bytes, Some((141.0 * MIB) as u64));

    // No cgroup, RSS past a limit the server lived through: no "> 100%".
    let mut s = Series::default();
    for i in 0..20 {
        s.push(&crate::SampleRow {
            t_s: i as f64,
            rss_bytes: Some((287.0 * MIB) as u64),
            source: Some(crate::MemorySource::Proc),
            ..crate::SampleRow::default()
        });
    }
    let report = judge(&s, &input());
    assert_eq!(report.peak_percent_of.as_deref(), Some("RSS"));
    assert_eq!(report.peak_charged_bytes, None);
    assert!(
        report.evidence[0].starts_with(
            "peak RSS 287.0 MiB is above the 256.0 MiB limit, yet the server was not killed at it"
        ) && !report.evidence[0].contains('%'),
        "{}",
        explain(&report)
    );
}

/// Node's RSS under a MemoryStore login storm (CI, real services): a GC
/// sawtooth of ~20 MiB sigma on a steady 8 MiB/s climb, sampled every
/// 250 ms. The thirds' peaks differ by less than four noise sigmas, yet
/// every second's peak is above the last: a leak, and no plateau.
#[test]
fn a_climb_hidden_in_gc_noise_is_no_plateau() {
    let saw = [0.0, -30.0, -10.0, -25.0];
    let s = series_every(0.25, 60, |t| {
        let phase = ((t / 0.25).round() as usize) % 4;
        63.0 * MIB + 8.0 * MIB * t + saw[phase] * MIB
    });
    let report = judge(&s, &input());
    assert_says(&report, Verdict::Leak, false, "no plateau");
    assert!(
        report
            .evidence
            .iter()
            .any(|e| e.contains("differ by no more than the noise")),
        "the thirds alone saw a plateau: {:#?}",
        report.evidence
    );
}

/// A noiseless fill that levels off ranks tau 1.0 (each block a hair above
/// the one before), but its last third barely rises: still a plateau, not
/// overruled by the growth test (the climb above goes on at its pace).
#[test]
fn a_noiseless_fill_stays_a_plateau() {
    let s = series_every(1.0, 180, |t| {
        50.0 * MIB + 100.0 * MIB * (1.0 - (-t / 15.0).exp())
    });
    let report = judge(&s, &input());
    assert_says(&report, Verdict::Bounded, true, "levelled off");
}
