//! The gate on run folders written from fixtures: a run passes against its
//! own baseline, a leaky run fails it, the exit codes, JUnit that parses,
//! the Markdown table.

use std::path::{Path, PathBuf};

use clap::Parser;
use clw_run::{MemoryReport, Percentiles, RunSummary, Verdict};

use crate::opts::{Command, Opts};

fn summary(peak_rss: u64, allocated: u64, verdict: Verdict) -> RunSummary {
    let mut s = RunSummary {
        complete: true,
        scenario: "login-storm".into(),
        concurrent_users: 100,
        duration_s: 60.0,
        model: clw_run::Model::Closed,
        throughput_rps: Some(60_000.0),
        elapsed_s: Some(60.0),
        latency_ms: Some(Percentiles {
            p50: 1.0,
            p90: 2.0,
            p99: 5.0,
            p999: 8.0,
            max: 20.0,
        }),
        memory: Some(MemoryReport {
            limit_bytes: Some(256 << 20),
            peak_rss_bytes: Some(peak_rss),
            peak_rss_percent: Some(peak_rss as f64 * 100.0 / (256u64 << 20) as f64),
            peak_allocated_bytes: Some(allocated),
            retained_bytes_per_session: Some(0.0),
            verdict: Some(verdict),
            ..MemoryReport::default()
        }),
        passed: Some(verdict != Verdict::Leak),
        ..RunSummary::default()
    };
    s.requests.total = 3_600_000;
    s.requests.ok = 3_600_000;
    s.thresholds = vec![clw_run::threshold::parse("verdict != leak")
        .unwrap()
        .judge(&s)
        .into()];
    s
}

fn write_run(root: &Path, name: &str, s: &RunSummary) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    s.write_atomic(&dir.join("summary.json")).unwrap();
    dir
}

fn gate(args: &[&str]) -> i32 {
    let mut argv = vec!["clw-cli", "gate"];
    argv.extend_from_slice(args);
    let opts = Opts::try_parse_from(argv).unwrap();
    assert!(matches!(opts.command, Command::Gate(_)));
    match crate::gate::gate(match opts.command {
        Command::Gate(g) => g,
        _ => unreachable!(),
    }) {
        Ok(o) => o.exit_code,
        Err(e) => e.exit_code(),
    }
}

/// A bounded run `root/base` and the baseline `root/b.json` written from
/// it by `gate --update-baseline`: (run folder, baseline file).
fn bounded_baseline(root: &Path) -> (PathBuf, PathBuf) {
    let base = write_run(
        root,
        "base",
        &summary(100 << 20, 50 << 20, Verdict::Bounded),
    );
    let baseline = root.join("b.json");
    let b = baseline.to_str().unwrap();
    assert_eq!(
        gate(&[base.to_str().unwrap(), "--baseline", b, "--update-baseline"]),
        0
    );
    (base, baseline)
}

/// The gate on `run` with JUnit and Markdown outputs; its exit code and
/// the JUnit it wrote, read back with quick-junit's own parser.
fn gate_with_outputs(
    run: &Path,
    baseline: &Path,
    junit: &Path,
    md: &Path,
) -> (i32, quick_junit::Report) {
    let code = gate(&[
        run.to_str().unwrap(),
        "--baseline",
        baseline.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--summary-md",
        md.to_str().unwrap(),
    ]);
    let xml = std::fs::read_to_string(junit).unwrap();
    (
        code,
        quick_junit::Report::deserialize_from_str(&xml).expect("JUnit parses"),
    )
}

#[test]
fn a_run_passes_its_own_baseline_and_a_leaky_run_fails_it() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write_run(
        tmp.path(),
        "good",
        &summary(14 << 20, 9 << 20, Verdict::Bounded),
    );
    let baseline = tmp.path().join("baselines/ci.json");
    let (good_s, baseline_s) = (good.to_str().unwrap(), baseline.to_str().unwrap());
    assert_eq!(
        gate(&[good_s, "--baseline", baseline_s, "--update-baseline"]),
        0
    );
    let written = clw_run::baseline::Baseline::read(&baseline).unwrap();
    assert_eq!(written.measured_on.scenario, "login-storm");
    assert_eq!(written.measured_on.runs, 1);
    assert!(written.measured_on.memory_bytes.is_some());
    assert_eq!(
        written.metrics["peak_rss_bytes"].value,
        (14u64 << 20) as f64
    );

    let junit = tmp.path().join("junit.xml");
    let md = tmp.path().join("gate.md");
    let (code, report) = gate_with_outputs(&good, &baseline, &junit, &md);
    assert_eq!(code, 0);
    let suite = &report.test_suites[0];
    assert_eq!(
        suite.test_cases.len(),
        1 + 6,
        "one per threshold and per baseline metric"
    );
    assert_eq!(suite.failures, 0);

    let leaky = write_run(
        tmp.path(),
        "leaky",
        &summary(240 << 20, 200 << 20, Verdict::Leak),
    );
    let (code, report) = gate_with_outputs(&leaky, &baseline, &junit, &md);
    assert_eq!(code, 1);
    let failed: Vec<String> = report.test_suites[0]
        .test_cases
        .iter()
        .filter(|c| !matches!(c.status, quick_junit::TestCaseStatus::Success { .. }))
        .map(|c| c.name.to_string())
        .collect();
    assert!(
        failed.contains(&"baseline peak_rss_bytes".to_string()),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"baseline peak_allocated_bytes".to_string()),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|n| n.starts_with("threshold verdict")),
        "{failed:?}"
    );
    let table = std::fs::read_to_string(&md).unwrap();
    assert!(table.contains("### clw memory gate: FAILED"), "{table}");
    assert!(
        table.contains("| `peak_rss_bytes` | 14.0 MiB | 240.0 MiB | +1614.3% |"),
        "{table}"
    );
}

#[test]
fn missing_or_unreadable_inputs_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let good = write_run(
        tmp.path(),
        "good",
        &summary(14 << 20, 9 << 20, Verdict::Bounded),
    );
    let good_s = good.to_str().unwrap();
    let missing = tmp.path().join("nope.json");
    assert_eq!(gate(&[good_s, "--baseline", missing.to_str().unwrap()]), 2);
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"schema_version\": 1,").unwrap();
    assert_eq!(gate(&[good_s, "--baseline", broken.to_str().unwrap()]), 2);
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let baseline = tmp.path().join("b.json");
    assert_eq!(
        gate(&[
            good_s,
            "--baseline",
            baseline.to_str().unwrap(),
            "--update-baseline"
        ]),
        0
    );
    assert_eq!(
        gate(&[
            empty.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap()
        ]),
        2
    );
    assert!(Opts::try_parse_from([
        "clw-cli",
        "gate",
        good_s,
        "--baseline",
        "b",
        "--max-regression",
        "ten"
    ])
    .is_err());
}

#[test]
fn repeats_are_gated_on_their_median_and_an_unfinished_run_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let (base, baseline) = bounded_baseline(tmp.path());
    let b = baseline.to_str().unwrap();
    let repeats = tmp.path().join("repeats");
    write_run(
        &repeats,
        "run-1",
        &summary(101 << 20, 50 << 20, Verdict::Bounded),
    );
    write_run(
        &repeats,
        "run-2",
        &summary(300 << 20, 50 << 20, Verdict::Bounded),
    );
    write_run(
        &repeats,
        "run-3",
        &summary(99 << 20, 50 << 20, Verdict::Bounded),
    );
    assert_eq!(
        gate(&[repeats.to_str().unwrap(), "--baseline", b]),
        0,
        "one outlier of three does not fail"
    );
    let mut killed = summary(100 << 20, 50 << 20, Verdict::Bounded);
    killed.complete = false;
    let killed = write_run(tmp.path(), "killed", &killed);
    assert_eq!(gate(&[killed.to_str().unwrap(), "--baseline", b]), 1);
    let mut dead = summary(100 << 20, 50 << 20, Verdict::Bounded);
    dead.passed = Some(false);
    dead.notes.push("the server died during the run".into());
    let dead = write_run(tmp.path(), "dead", &dead);
    assert_eq!(
        gate(&[dead.to_str().unwrap(), "--baseline", b]),
        1,
        "a run that failed itself fails the gate"
    );
    assert_eq!(
        gate(&[
            base.to_str().unwrap(),
            "--baseline",
            b,
            "--max-regression",
            "0%"
        ]),
        0
    );
}

/// The reason shown for a run that failed itself is its `failures[]`, on
/// the console's lines, in JUnit and in the Markdown table, not the last
/// note (which says what was degraded, not why it failed).
#[test]
fn a_failed_runs_reason_is_its_failure_not_its_last_note() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, baseline) = bounded_baseline(tmp.path());
    let mut dead = summary(100 << 20, 50 << 20, Verdict::Bounded);
    dead.passed = Some(false);
    dead.failures = vec!["server died at 2.7 s, exit code 7".into()];
    dead.notes = vec!["1 samples could not read /proc".into()];
    let dead = write_run(tmp.path(), "dead", &dead);
    let failure =
        crate::gate::run_failure(&clw_run::RunSummary::read(&dead.join("summary.json")).unwrap());
    assert_eq!(
        failure.as_deref(),
        Some("server died at 2.7 s, exit code 7")
    );
    let (junit, md) = (tmp.path().join("j.xml"), tmp.path().join("s.md"));
    let (code, report) = gate_with_outputs(&dead, &baseline, &junit, &md);
    assert_eq!(code, 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let table = std::fs::read_to_string(&md).unwrap();
    for (what, text) in [("JUnit", &xml), ("Markdown", &table)] {
        assert!(
            text.contains("server died at 2.7 s, exit code 7"),
            "{what}: {text}"
        );
        assert!(!text.contains("could not read /proc"), "{what}: {text}");
    }
    assert!(report.tests > 0);
}

/// Text from a run folder (its name, its failure) cannot break the
/// Markdown table or inject HTML into a CI job's summary page.
#[test]
fn hostile_run_text_stays_inside_its_cell() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, baseline) = bounded_baseline(tmp.path());
    let mut dead = summary(100 << 20, 50 << 20, Verdict::Bounded);
    dead.passed = Some(false);
    dead.failures = vec!["died <img src=x onerror=alert(1)>\n| fake | row | `x`".into()];
    let dead = write_run(tmp.path(), "run|`name`", &dead);
    let (junit, md) = (tmp.path().join("j.xml"), tmp.path().join("s.md"));
    let (code, _) = gate_with_outputs(&dead, &baseline, &junit, &md);
    assert_eq!(code, 1);
    let table = std::fs::read_to_string(&md).unwrap();
    assert!(!table.contains("<img"), "{table}");
    assert!(!table.contains("\n| fake"), "{table}");
    assert!(table.contains("run\\|\\`name\\`"), "{table}");
    assert!(table.contains("&lt;img"), "{table}");
}
