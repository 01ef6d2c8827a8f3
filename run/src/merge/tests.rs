use std::time::Duration;

use hdrhistogram::Histogram;
use proptest::prelude::*;

use super::*;
use crate::merge::latency::step_histograms;
use crate::{StepSummary, ThresholdResult};

fn hist(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::new(3).unwrap();
    for v in values {
        h.record(*v).unwrap();
    }
    h
}

fn interval(start_s: u64, tag: &str, values: &[u64]) -> HlogInterval {
    HlogInterval {
        tag: Some(tag.into()),
        start: Duration::from_secs(start_s),
        length: Duration::from_secs(1),
        histogram: hist(values),
    }
}

fn shard(index: u32, count: u32, samples_memory: bool) -> ShardRun {
    let mut summary = RunSummary {
        scenario: "login-storm".into(),
        concurrent_users: 10,
        duration_s: 5.0,
        model: crate::Model::Closed,
        complete: true,
        elapsed_s: Some(5.0),
        ..RunSummary::default()
    };
    summary.requests.total = 10;
    summary.requests.ok = 9;
    summary.requests.failed = 1;
    summary.requests.by_status.insert("200".into(), 9);
    summary.requests.by_error.insert("connect".into(), 1);
    summary.steps.insert(
        "log in".into(),
        StepSummary {
            requests: 10,
            errors: 1,
            ..StepSummary::default()
        },
    );
    let info = ShardInfo {
        index,
        count,
        first_user: 0,
        users: 5,
        samples_memory,
        start_at: None,
    };
    summary.shard = Some(info.clone());
    ShardRun {
        dir: PathBuf::from(format!("runs/shard-{index}")),
        summary,
        shard: info,
        start: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
    }
}

#[test]
fn refuses_what_is_not_one_run_naming_the_folder() {
    let err = |shards: &[ShardRun], partial| check(shards, partial).unwrap_err().to_string();

    let mut other = shard(2, 2, false);
    other.summary.scenario = "expiry".into();
    let e = err(&[shard(1, 2, true), other], false);
    assert!(e.contains("runs/shard-2") && e.contains("expiry"), "{e}");

    let e = err(&[shard(1, 2, true), shard(1, 2, false)], false);
    assert!(e.contains("both shard 1/2"), "{e}");

    let e = err(&[shard(1, 2, true), shard(2, 3, false)], false);
    assert!(e.contains("shard 2/3") && e.contains("runs/shard-2"), "{e}");

    let mut bigger = shard(2, 2, false);
    bigger.summary.concurrent_users = 20;
    let e = err(&[shard(1, 2, true), bigger], false);
    assert!(e.contains("--concurrent-users"), "{e}");

    let e = err(&[shard(1, 2, true), shard(2, 2, true)], false);
    assert!(e.contains("both sampled"), "{e}");

    let e = err(&[shard(1, 3, true)], false);
    assert!(
        e.contains("shards 2, 3 of 3 missing") && e.contains("--allow-partial"),
        "{e}"
    );

    let info = check(&[shard(3, 3, false), shard(1, 3, true)], true).unwrap();
    assert_eq!(
        (info.shards, info.missing, info.partial, info.memory_from),
        (vec![1, 3], vec![2], true, Some(1))
    );
    assert!(matches!(check(&[], false), Err(MergeError::Empty)));
}

#[test]
fn counts_are_summed_memory_comes_from_the_sampling_shard() {
    let mut one = shard(1, 2, false);
    let mut two = shard(2, 2, true);
    two.summary.memory = Some(crate::MemoryReport {
        peak_rss_bytes: Some(42),
        ..crate::MemoryReport::default()
    });
    two.summary.thresholds = vec![ThresholdResult {
        expr: "verdict != leak".into(),
        ..ThresholdResult::default()
    }];
    one.summary.thresholds = vec![ThresholdResult {
        expr: "p99_ms < 50".into(),
        ..ThresholdResult::default()
    }];
    for (s, handshakes) in [(&mut one, 3), (&mut two, 4)] {
        s.summary.tls = Some(crate::TlsSummary {
            handshakes,
            handshake_ms: Some(crate::Percentiles {
                p50: 1.0,
                p90: 1.0,
                p99: 1.0,
                p999: 1.0,
                max: 1.0,
            }),
            verified: true,
            ..crate::TlsSummary::default()
        });
    }
    one.summary.elapsed_s = Some(5.5);
    one.summary.interrupted = true;
    one.summary.interrupted_by = Some("SIGTERM".into());
    one.summary.notes = vec!["x".into()];
    let shards = [one, two];
    let info = check(&shards, false).unwrap();
    let one = [
        interval(0, "log_in", &[1000, 2000]),
        interval(1, "log_in", &[3000]),
    ];
    let intervals = merge_intervals(&[&one, &one]);
    let m = merge_summary(&shards, &info, &intervals);
    assert_eq!(
        (m.requests.total, m.requests.ok, m.requests.failed),
        (20, 18, 2)
    );
    assert_eq!(m.requests.by_status["200"], 18);
    assert_eq!(m.requests.by_error["connect"], 2);
    assert_eq!(m.steps["log in"].requests, 20);
    assert_eq!(m.steps["log in"].errors, 2);
    assert_eq!(m.elapsed_s, Some(5.5));
    assert_eq!(m.throughput_rps, Some(20.0 / 5.5));
    assert_eq!(m.memory.unwrap().peak_rss_bytes, Some(42));
    let tls = m.tls.unwrap();
    assert_eq!(tls.handshakes, 7);
    assert_eq!(
        tls.handshake_ms, None,
        "one shard's percentiles are not the run's"
    );
    assert!(m.interrupted);
    assert_eq!(m.notes, ["shard 1/2: x"]);
    assert_eq!(m.shard, None);
    assert_eq!(m.merged.unwrap().memory_from, Some(2));
    // Six values per shard pair (2 + 1 each, twice): 1, 1, 2, 2, 3, 3 ms.
    let p = m.latency_ms.unwrap();
    assert_eq!(p.max, hist(&[3000]).max() as f64 / 1000.0);
    assert_eq!(m.steps["log in"].latency_ms, Some(p));
    let rules: Vec<String> = thresholds(&shards)
        .iter()
        .map(|t| t.source.clone())
        .collect();
    assert_eq!(rules, ["verdict != leak", "p99_ms < 50"]);
}

#[test]
fn latency_rows_per_second_with_an_all_row() {
    let intervals = merge_intervals(&[
        &[
            interval(0, "log_in", &[1000]),
            interval(0, "check", &[5000]),
        ],
        &[
            interval(0, "log_in", &[2000]),
            interval(1, "log_in", &[3000]),
        ],
    ]);
    let rows = latency_rows(&intervals, &["log in".into(), "check".into()], false);
    let got: Vec<(f64, &str, u64)> = rows
        .iter()
        .map(|r| (r.t_s, r.step.as_str(), r.count))
        .collect();
    assert_eq!(
        got,
        [
            (1.0, "log in", 2),
            (1.0, "check", 1),
            (1.0, "all", 3),
            (2.0, "log in", 1),
            (2.0, "all", 1)
        ]
    );
    assert_eq!(rows[2].max_ms, Some(hist(&[5000]).max() as f64 / 1000.0));
    assert_eq!(rows[0].cp50_ms, None);
}

/// A shard's intervals: (second, step, values) from a random layout.
fn layout() -> impl Strategy<Value = Vec<(u64, u8, Vec<u64>)>> {
    prop::collection::vec(
        (
            0u64..6,
            0u8..3,
            prop::collection::vec(1u64..60_000_000, 0..40),
        ),
        0..12,
    )
}

proptest! {
    /// Merging is exact: the merged intervals hold, for every (second,
    /// step), exactly the values the shards recorded there; and the whole
    /// run's count and percentiles equal those of one histogram fed every
    /// value of every shard.
    #[test]
    fn merging_is_exact(shards in prop::collection::vec(layout(), 1..5)) {
        let tags = ["login", "validate", "login.corrected"];
        let built: Vec<Vec<HlogInterval>> = shards
            .iter()
            .map(|s| s.iter().map(|(t, step, v)| interval(*t, tags[*step as usize], v)).collect())
            .collect();
        let views: Vec<&[HlogInterval]> = built.iter().map(|s| &s[..]).collect();
        let merged = merge_intervals(&views);

        for m in &merged {
            let mut expected = hist(&[]);
            for s in &shards {
                for (t, step, v) in s {
                    if Duration::from_secs(*t) == m.start && Some(tags[*step as usize]) == m.tag.as_deref() {
                        for x in v {
                            expected.record(*x).unwrap();
                        }
                    }
                }
            }
            let got: Vec<(u64, u64)> = m.histogram.iter_recorded().map(|x| (x.value_iterated_to(), x.count_at_value())).collect();
            let want: Vec<(u64, u64)> = expected.iter_recorded().map(|x| (x.value_iterated_to(), x.count_at_value())).collect();
            prop_assert_eq!(got, want);
        }
        let mut one = hist(&[]);
        for s in &shards {
            for (_, step, v) in s {
                if *step != 2 {
                    for x in v {
                        one.record(*x).unwrap();
                    }
                }
            }
        }
        let (all, _) = step_histograms(&merged);
        prop_assert_eq!(all.plain.len(), one.len());
        prop_assert_eq!(crate::Percentiles::of(&all.plain), crate::Percentiles::of(&one));
    }
}

/// A shard claiming u64::MAX requests would wrap the merged total below
/// its own `ok`: impossible counts are refused, naming the folder, and so
/// is a latency log whose interval claims 2^62 recordings.
#[test]
fn impossible_counts_are_refused_not_wrapped() {
    let mut huge = shard(2, 2, false);
    huge.summary.requests.total = u64::MAX;
    huge.summary.requests.ok = u64::MAX - 1;
    let e = check(&[shard(1, 2, true), huge], false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("runs/shard-2") && e.contains("impossible request counts"),
        "{e}"
    );
    let mut unbalanced = shard(2, 2, false);
    unbalanced.summary.requests.ok = 20;
    let e = check(&[shard(1, 2, true), unbalanced], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("ok 20 + failed 1 is not total 10"), "{e}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("latency.hlog");
    let mut log = crate::HdrLog::create(&path, SystemTime::UNIX_EPOCH).unwrap();
    let mut h = hist(&[100]);
    h.record_n(200, 1 << 62).unwrap();
    log.write(Duration::ZERO, Duration::from_secs(1), "log in", &h)
        .unwrap();
    log.flush().unwrap();
    let e = crate::read_hlog(&path).unwrap_err().to_string();
    assert!(
        e.contains("impossible") && e.contains("latency.hlog"),
        "{e}"
    );
}
