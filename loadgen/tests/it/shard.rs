//! Sharded runs end to end, in-process: three shards (`--shard I/3`) load
//! one clw-auth on 127.0.0.1:0 from one `--start-at`, `clw-cli merge`
//! makes one run of them, and the merge is exact: its request counts are
//! the server's own counters, its histograms the shards' added value for
//! value. Every load is 2 s and a handful of users.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::common;
use crate::common::{scrape, server_count, summary, write_scenario, SESSIONS};
use clap::Parser;

fn parse(args: &[&str]) -> clw_cli::Opts {
    clw_cli::Opts::try_parse_from(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `clw-cli auth load-test --quiet --no-report` for one shard, into
/// `dir/shard-I`.
fn shard_opts(
    target: &str,
    scenario: &Path,
    dir: &Path,
    shard: &str,
    extra: &[&str],
) -> clw_cli::Opts {
    let out = dir.join(format!("shard-{}", shard.replace('/', "-of-")));
    let mut args = vec![
        "--target",
        target,
        "--scenario",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--shard",
        shard,
        "--threads",
        "1",
    ];
    args.extend_from_slice(extra);
    common::opts(&args)
}

fn merge_opts(runs: &[&PathBuf], out: &Path, extra: &[&str]) -> clw_cli::Opts {
    let mut args = vec![
        "clw-cli",
        "merge",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(runs.iter().map(|r| r.to_str().unwrap()));
    args.extend_from_slice(extra);
    parse(&args)
}

/// (interval start ms, tag) -> value -> count, summed over `logs`.
fn histogram_values(logs: &[&Path]) -> BTreeMap<(u128, String), BTreeMap<u64, u64>> {
    let mut out: BTreeMap<(u128, String), BTreeMap<u64, u64>> = BTreeMap::new();
    for log in logs {
        let (intervals, truncated) = clw_run::read_hlog(&log.join("latency.hlog")).unwrap();
        assert!(!truncated);
        for i in intervals {
            let values = out
                .entry((i.start.as_millis(), i.tag.unwrap_or_default()))
                .or_default();
            for v in i.histogram.iter_recorded() {
                *values.entry(v.value_iterated_to()).or_default() += v.count_at_value();
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_shards_merge_exactly_into_the_servers_counts() {
    let handle = common::start_auth().await;
    let addr = handle.addr();
    let target = format!("http://{addr}");
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), SESSIONS);
    let at =
        humantime::format_rfc3339_millis(SystemTime::now() + Duration::from_secs(2)).to_string();
    let flags = [
        "--concurrent-users",
        "7",
        "--duration",
        "2s",
        "--start-at",
        &at,
    ];
    let runs = [1, 2, 3].map(|i| {
        clw_cli::run(shard_opts(
            &target,
            &scenario,
            dir.path(),
            &format!("{i}/3"),
            &flags,
        ))
    });
    let [a, b, c] = runs;
    let (a, b, c) = tokio::join!(a, b, c);
    let dirs: Vec<PathBuf> = [a, b, c]
        .into_iter()
        .map(|r| {
            let outcome = r.expect("every shard runs");
            assert_eq!(outcome.exit_code, 0);
            outcome.out_dir.unwrap()
        })
        .collect();

    // Each shard ran its block of the 7 users, and only shard 1 sampled.
    let shards: Vec<serde_json::Value> = dirs.iter().map(|d| summary(d)).collect();
    let blocks: Vec<(u64, u64, bool)> = shards
        .iter()
        .map(|s| {
            let sh = &s["shard"];
            (
                sh["first_user"].as_u64().unwrap(),
                sh["users"].as_u64().unwrap(),
                sh["samples_memory"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(blocks, [(0, 3, true), (3, 2, false), (5, 2, false)]);
    assert_eq!(shards[1]["concurrent_users"], 7, "the whole run's users");
    assert_eq!(
        shards[1]["connections_opened"], 2,
        "one connection per own user"
    );
    assert!(dirs[0].join("samples.csv").exists());
    assert!(
        !dirs[1].join("samples.csv").exists(),
        "shard 2 does not sample memory"
    );
    assert!(shards[1]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["name"] != "verdict"));

    let merged = dir.path().join("merged");
    let views: Vec<&PathBuf> = dirs.iter().collect();
    let outcome = clw_cli::run(merge_opts(&views, &merged, &["--no-report"]))
        .await
        .expect("the merge succeeds");
    assert_eq!(outcome.exit_code, 0);
    let m = summary(&merged);
    let metrics = scrape(addr).await;
    let login = server_count(&metrics, "route=\"/auth/login\"");
    let validate = server_count(&metrics, "route=\"/auth/validate\"");
    let total = m["requests"]["total"].as_u64().unwrap();
    assert!(total > 20, "{m}");
    assert_eq!(total, login + validate, "{metrics}");
    assert_eq!(m["steps"]["login"]["requests"].as_u64().unwrap(), login);
    assert_eq!(
        m["steps"]["validate"]["requests"].as_u64().unwrap(),
        validate
    );
    let summed: u64 = shards
        .iter()
        .map(|s| s["requests"]["total"].as_u64().unwrap())
        .sum();
    assert_eq!(total, summed);
    assert_eq!(m["connections_opened"], 7);
    assert_eq!(m["merged"]["shards"], serde_json::json!([1, 2, 3]));
    assert_eq!(m["merged"]["memory_from"], 1);
    assert_eq!(m["merged"]["partial"], false);
    assert!(m["merged"]["start_spread_s"].as_f64().unwrap() < 0.5, "{m}");
    assert!(m.get("shard").is_none());
    assert!(merged.join("samples.csv").exists());
    assert!(
        m["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "verdict"),
        "the merged run is judged on the sampling shard's memory"
    );

    // The merged histograms are the shards' added value for value, and the
    // per-second counts add up to the total.
    let shard_logs: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
    assert_eq!(histogram_values(&[&merged]), histogram_values(&shard_logs));
    let csv = std::fs::read_to_string(merged.join("latency.csv")).unwrap();
    let per_second: u64 = csv
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("all"))
        .map(|l| l.split(',').nth(2).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(per_second, total);
    // errors.csv is the shards' summed: its `all` rows give the failures.
    let (rows, _) = clw_run::read_errors(&merged.join("errors.csv")).unwrap();
    let failed: u64 = rows
        .iter()
        .filter(|r| r.kind == "all")
        .map(|r| r.errors)
        .sum();
    assert_eq!(failed, m["requests"]["failed"].as_u64().unwrap());
    let seconds = rows.iter().filter(|r| r.kind == "all").count();
    let intervals = csv
        .lines()
        .filter(|l| l.split(',').nth(1) == Some("all"))
        .count();
    assert_eq!(
        seconds, intervals,
        "one errors.csv interval per latency.csv one"
    );

    // The merged samples.csv carries the whole run's throughput (every
    // shard's responses), not the sampling shard's share of it; its
    // per-sample errors, which only one shard recorded, are unknown.
    let served = |dir: &Path| {
        let rows = clw_run::read_samples(&dir.join("samples.csv"))
            .unwrap()
            .rows;
        let done: f64 = rows
            .windows(2)
            .map(|w| w[1].rps.unwrap_or(0.0) * (w[1].t_s - w[0].t_s))
            .sum();
        (done, rows.iter().all(|r| r.errors.is_none()))
    };
    let (merged_done, merged_errors_blank) = served(&merged);
    let (own_done, _) = served(&dirs[0]);
    assert!(merged_errors_blank);
    assert!(
        merged_done <= total as f64 + 0.5 && merged_done > 1.5 * own_done,
        "merged samples.csv served {merged_done:.0} of {total}; the sampling shard alone {own_done:.0}"
    );

    // Refused (exit 2, naming the problem): a missing shard, a shard twice,
    // a folder that is not a shard's. Partial on request, and failed.
    let some = [&dirs[0], &dirs[2]];
    let err = clw_cli::run(merge_opts(&some, &dir.path().join("p"), &["--no-report"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("shard 2 of 3 missing"), "{err}");
    let twice = [&dirs[0], &dirs[1], &dirs[1], &dirs[2]];
    let err = clw_cli::run(merge_opts(&twice, &dir.path().join("p"), &[]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("both shard 2/3"), "{err}");
    let err = clw_cli::run(merge_opts(&[&dirs[0], &merged], &dir.path().join("p"), &[]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("not a shard's run folder"),
        "{err}"
    );
    let partial = dir.path().join("partial");
    let outcome = clw_cli::run(merge_opts(
        &some,
        &partial,
        &["--allow-partial", "--no-report"],
    ))
    .await
    .unwrap();
    assert_eq!(outcome.exit_code, 1, "a partial run never passes");
    let p = summary(&partial);
    assert_eq!(p["merged"]["partial"], true);
    assert_eq!(p["merged"]["missing"], serde_json::json!([2]));
    assert!(p["failures"].to_string().contains("partial result"), "{p}");
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_shard_options_exit_2_before_any_load() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), SESSIONS);
    // Nothing listens here: a refusal must come before the target check.
    let target = format!("http://127.0.0.1:{}", common::free_port());
    let past =
        humantime::format_rfc3339_seconds(SystemTime::now() - Duration::from_secs(60)).to_string();
    let cases: [(&str, Vec<&str>, &str); 4] = [
        ("1/2", vec!["--start-at", &past], "passed"),
        ("2/3", vec!["--concurrent-users", "2"], "cannot be split"),
        (
            "2/2",
            vec!["--spawn-server", "clw-auth", "--memory-limit", "64Mi"],
            "--spawn-server on shard 2/2",
        ),
        (
            "1/2",
            vec!["--shard-samples-memory", "3"],
            "no shard 3 of 2",
        ),
    ];
    for (shard, extra, expected) in cases {
        let err = clw_cli::run(shard_opts(&target, &scenario, dir.path(), shard, &extra))
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 2, "{shard} {extra:?}: {err}");
        assert!(
            err.to_string().contains(expected),
            "{shard} {extra:?}: {err}"
        );
    }
    assert!(clw_cli::Opts::try_parse_from([
        "clw-cli",
        "auth",
        "load-test",
        "--target",
        "http://x",
        "--shard",
        "0/3"
    ])
    .is_err());
    assert!(
        clw_cli::Opts::try_parse_from([
            "clw-cli",
            "auth",
            "load-test",
            "--target",
            "http://x",
            "--shard-samples-memory",
            "2"
        ])
        .is_err(),
        "--shard-samples-memory needs --shard"
    );
}
