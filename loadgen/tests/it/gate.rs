//! The gate end to end: `--abort-on-fail` stops a leaking run as soon as
//! the live verdict says leak, and `--repeat` runs feed `clw-cli gate`.

use std::time::{Duration, Instant};

use crate::common::{clw_auth_command, read_summary, LoadTest};
use clap::Parser;

/// A leaking server under a generous limit: without --abort-on-fail the run
/// would go on for its full 60 s; with it the live verdict stops the load
/// within seconds of `leak`, every output is written and the exit is 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_a_leaking_run_at_the_live_verdict() {
    let (port, command) = clw_auth_command("leaky.json");
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/large-claims.toml",
    );
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 8 --ramp-up 0s --duration 60s --sample-interval 250ms \
         --memory-limit 1G --abort-on-fail",
    );
    let started = Instant::now();
    let outcome = clw_cli::run(opts).await.expect("the run completes");
    let elapsed = started.elapsed();
    let s = read_summary(&test.out).unwrap();
    assert_eq!(outcome.exit_code, 1, "{s}");
    let aborted = s["aborted"]
        .as_str()
        .unwrap_or_else(|| panic!("no aborted: {s}"));
    assert!(aborted.contains("verdict != leak"), "{aborted}");
    assert!(
        elapsed < Duration::from_secs(45),
        "stopped at the verdict, not at the end of the 60 s: {elapsed:?}"
    );
    assert_eq!(s["memory"]["verdict"], "leak", "{}", s["memory"]);
    let at = s["memory"]["leak_detected_at_s"]
        .as_f64()
        .expect("detection time");
    assert!((7.0..45.0).contains(&at), "detected at {at} s");
    assert!(
        s["server"]["exit"].is_null(),
        "stopped by us, not killed: {s}"
    );
    assert!(
        s["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains("--abort-on-fail")),
        "{s}"
    );
    let verdict_rule = s["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["expr"] == "verdict != leak")
        .expect("the default verdict rule");
    assert_eq!(verdict_rule["passed"], false);
    assert_eq!(verdict_rule["actual_verdict"], "leak");
    for file in ["samples.csv", "latency.csv", "latency.hlog"] {
        assert!(test.out.join(file).exists(), "{file} written");
    }

    // `make leak-repro`'s rule, as clw-cli's own: this run reproduced the
    // leak (exit 0, the verdict line), and is no verified fix (exit 1).
    let verify = |expect: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_clw-cli"))
            .arg("verify")
            .arg(&test.out)
            .args(["--expect", expect])
            .output()
            .unwrap()
    };
    let leak = verify("leak");
    let stdout = String::from_utf8_lossy(&leak.stdout);
    assert_eq!(leak.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("leak reproduced: verdict leak, limit by ")
            && stdout.contains("not killed within 60 s"),
        "{stdout}"
    );
    // A leak elsewhere than where it must be is no reproduction of it.
    let elsewhere = std::process::Command::new(env!("CARGO_BIN_EXE_clw-cli"))
        .arg("verify")
        .arg(&test.out)
        .args(["--expect", "leak", "--top-site-in", "no/such/file.rs"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&elsewhere.stdout);
    assert_eq!(elsewhere.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL: the top growth site (")
            && stdout.contains("is not in no/such/file.rs"),
        "{stdout}"
    );
    let fixed = verify("bounded");
    let stdout = String::from_utf8_lossy(&fixed.stdout);
    assert_eq!(fixed.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("fix NOT verified: "), "{stdout}");
    let missing = std::process::Command::new(env!("CARGO_BIN_EXE_clw-cli"))
        .args(["verify", "/nonexistent/run", "--expect", "leak"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2), "no run folder is bad input");
}

/// `--repeat 2` writes two ordinary run folders; the gate reads the folder
/// holding them as both runs, writes a baseline from their median, and the
/// same runs pass against it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_runs_are_gated_on_their_median() {
    let (port, command) = clw_auth_command("fixed.json");
    let test = LoadTest::new(
        format!("http://127.0.0.1:{port}"),
        "scenarios/login-storm.toml",
    );
    let opts = test.spawn_opts(
        &command,
        "--concurrent-users 4 --ramp-up 0s --duration 3s --memory-limit 256M --repeat 2",
    );
    let outcome = clw_cli::run(opts).await.expect("the runs complete");
    for run in ["run-1", "run-2"] {
        let s = read_summary(&test.out.join(run)).unwrap_or_else(|| panic!("{run} written"));
        assert_eq!(s["complete"], true);
    }
    assert_eq!(outcome.out_dir.as_deref(), Some(test.out.as_path()));
    let baseline = test.dir.path().join("baseline.json");
    let gate = |extra: &[&str]| {
        let mut argv = vec![
            "clw-cli",
            "gate",
            test.out.to_str().unwrap(),
            "--baseline",
            baseline.to_str().unwrap(),
        ];
        argv.extend_from_slice(extra);
        clw_cli::Opts::try_parse_from(argv).unwrap()
    };
    let written = clw_cli::run(gate(&["--update-baseline"])).await.unwrap();
    assert_eq!(written.exit_code, 0);
    let b: serde_json::Value = serde_json::from_slice(&std::fs::read(&baseline).unwrap()).unwrap();
    assert_eq!(b["measured_on"]["runs"], 2, "{b}");
    assert_eq!(b["measured_on"]["users"], 4, "{b}");
    let gated = clw_cli::run(gate(&[])).await.unwrap();
    assert_eq!(
        gated.exit_code,
        outcome.exit_code.min(1),
        "passes exactly when the runs themselves did"
    );
}
