//! Load that changes over time (`[[load.stages]]`), end to end against the
//! real clw-auth on 127.0.0.1:0: the running users per interval follow the
//! stages up, through a hold and down; the open model's arrivals follow a
//! ramping rate; summary.json has the stages from the start and their
//! figures at the end. Plus the messages for flags that contradict a
//! scenario's load. Every load is at most 10 s.

use std::path::Path;

use crate::common::{opts, read_summary, start_auth, summary, LoadTest};

/// Up to 2 users in 1 s, hold 2 s, up to 6 in 1 s, hold 2 s, down to 0 in
/// 4 s: 10 s in all.
const STAGED: &str = r#"
name = "staged"
[[load.stages]]
duration = "1s"
target = 2
[[load.stages]]
duration = "2s"
target = 2
[[load.stages]]
duration = "1s"
target = 6
[[load.stages]]
duration = "2s"
target = 6
[[load.stages]]
duration = "4s"
target = 0
[[steps]]
method = "GET"
path = "/ready"
think_time = "20ms"
"#;

/// The planned users at `t` seconds, worked out by hand from `STAGED`:
/// the level rounded up, as k6 counts virtual users.
fn planned_users(t: f64) -> f64 {
    let level = match t {
        t if t < 1.0 => 2.0 * t,
        t if t < 3.0 => 2.0,
        t if t < 4.0 => 2.0 + 4.0 * (t - 3.0),
        t if t < 6.0 => 6.0,
        t => (6.0 - 1.5 * (t - 6.0)).max(0.0),
    };
    level.ceil()
}

/// `(t_s, users, count)` of latency.csv's `all` rows.
fn all_rows(out: &Path) -> Vec<(f64, u64, u64)> {
    let (rows, _) = clw_run::read_latency(&out.join("latency.csv")).unwrap();
    rows.into_iter()
        .filter(|r| r.step == "all")
        .map(|r| (r.t_s, r.users.expect("every row has users"), r.count))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_stages_ramp_the_running_users_up_hold_and_down() {
    let handle = start_auth().await;
    let test = LoadTest::with_scenario_text(format!("http://{}", handle.addr()), STAGED);
    let out = test.out.clone();
    let run = tokio::spawn(clw_cli::run(test.opts("--threads 2")));

    // While the load runs, summary.json already holds the stages (so a
    // killed run can draw them), figures not yet.
    let early = loop {
        if let Some(s) = read_summary(&out) {
            break s;
        }
        assert!(
            !run.is_finished(),
            "the run ended before writing summary.json"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(early["complete"], false);
    let planned: Vec<(f64, f64, f64, f64)> = early["stages"]
        .as_array()
        .expect("stages in the first summary.json")
        .iter()
        .map(|s| {
            assert!(s["requests"].is_null() && s["p99_ms"].is_null(), "{s}");
            let f = |k: &str| s[k].as_f64().unwrap();
            (f("start_s"), f("end_s"), f("from"), f("target"))
        })
        .collect();
    assert_eq!(
        planned,
        [
            (0.0, 1.0, 0.0, 2.0),
            (1.0, 3.0, 2.0, 2.0),
            (3.0, 4.0, 2.0, 6.0),
            (4.0, 6.0, 6.0, 6.0),
            (6.0, 10.0, 6.0, 0.0)
        ]
    );

    let outcome = run.await.unwrap().expect("run succeeds");
    let s = summary(&out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(s["concurrent_users"], 6, "the peak");
    assert_eq!(s["duration_s"], 10.0, "the stages' sum");
    assert_eq!(s["ramp_up_s"], 4.0, "memory is judged from the peak on");

    // The running users at each interval's end follow the stages: exactly
    // in the holds, within one user on the ramps (a user stops only when
    // its iteration ends, and an interval's end is read within a tick). One
    // interval may miss, as a worker thread of this shared 2-core machine
    // can be descheduled across a second's end.
    let rows = all_rows(&out);
    assert!(rows.len() >= 10, "{rows:?}");
    let missed: Vec<_> = rows
        .iter()
        .filter(|r| r.0 < 9.9)
        .filter(|&&(t, users, _)| {
            let hold = (1.25..=2.75).contains(&t) || (4.25..=5.75).contains(&t);
            let slack = if hold { 0.0 } else { 1.0 };
            (users as f64 - planned_users(t)).abs() > slack
        })
        .collect();
    assert!(
        missed.len() <= 1,
        "running users off the plan at {missed:?}; all rows (t_s, users, requests): {rows:?}"
    );
    let users: Vec<u64> = rows.iter().map(|r| r.1).collect();
    assert_eq!(users.iter().max(), Some(&6), "{rows:?}");
    let peak_at = users.iter().position(|u| *u == 6).unwrap();
    assert!(
        users[peak_at..].windows(2).all(|w| w[1] <= w[0]),
        "after the peak the users only go down: {rows:?}"
    );

    // Each stage's figures, filled at the end.
    let stages = s["stages"].as_array().unwrap();
    for (i, stage) in stages.iter().enumerate() {
        let requests = stage["requests"].as_u64().unwrap();
        assert!(requests > 0, "stage {} sent nothing: {stage}", i + 1);
        assert!(stage["throughput_rps"].as_f64().unwrap() > 0.0, "{stage}");
        assert!(stage["p99_ms"].as_f64().unwrap() > 0.0, "{stage}");
    }
    let per_stage: u64 = stages.iter().map(|s| s["requests"].as_u64().unwrap()).sum();
    assert_eq!(
        per_stage,
        s["requests"]["total"].as_u64().unwrap(),
        "every request counts in one stage"
    );
    handle.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_stages_start_iterations_at_the_ramping_rate() {
    let handle = start_auth().await;
    // 0 -> 40 iterations/s over 2 s, then 40/s for 2 s: 10, 30, 40 and 40
    // iterations in the four seconds.
    let test = LoadTest::with_scenario_text(
        format!("http://{}", handle.addr()),
        r#"
name = "open-staged"
[load]
model = "open"
users = 8
stages = [{ duration = "2s", target = 40 }, { duration = "2s", target = 40 }]
[[steps]]
method = "GET"
path = "/ready"
"#,
    );
    let outcome = clw_cli::run(test.opts("--threads 2"))
        .await
        .expect("run succeeds");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(
        (s["model"].as_str(), s["arrival_rate"].as_f64()),
        (Some("open"), Some(40.0))
    );
    assert_eq!(s["dropped_iterations"], 0, "{s}");
    let rows = all_rows(&test.out);
    let count = |second: f64| {
        rows.iter()
            .find(|r| (r.0 - second).abs() < 0.1)
            .map_or(0, |r| r.2)
    };
    let counts: Vec<u64> = [1.0, 2.0, 3.0, 4.0].map(count).to_vec();
    for (got, want) in counts.iter().zip([10u64, 30, 40, 40]) {
        assert!(
            got.abs_diff(want) <= 5,
            "per second {counts:?}, planned [10, 30, 40, 40]; {rows:?}"
        );
    }
    let in_rows: u64 = rows.iter().map(|r| r.2).sum();
    assert_eq!(s["requests"]["total"].as_u64(), Some(in_rows));
    handle.shutdown().await.unwrap();
}

/// `load-test --duration 2` with a scenario that ramps up over 10 s used to
/// blame a `--ramp-up` the user never typed; the error now names the file
/// and the flags that fix it. Checked before any connection is made.
#[tokio::test]
async fn a_ramp_up_longer_than_duration_names_the_scenario_and_the_fixing_flag() {
    let err = clw_cli::run(opts(&["--target", "http://127.0.0.1:9", "--duration", "2"]))
        .await
        .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert_eq!(
        err.to_string(),
        "scenarios/steady-sessions.toml ramps up over 10s ([load] ramp_up), longer than --duration 2s: give a --duration of at least 10s, or --ramp-up 2s or shorter"
    );
}

#[tokio::test]
async fn flags_that_contradict_a_staged_scenario_exit_2_naming_file_and_flag() {
    let test = LoadTest::with_scenario_text("http://127.0.0.1:9".into(), STAGED);
    for (flags, needle) in [
        ("--concurrent-users 3", "drop --concurrent-users"),
        ("--ramp-up 1s", "drop --ramp-up"),
        ("--arrival-rate 5", "drop --arrival-rate"),
    ] {
        let err = clw_cli::run(test.opts(flags)).await.unwrap_err();
        assert_eq!(err.exit_code(), 2, "{flags}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with(test.scenario.to_str().unwrap()) && message.contains(needle),
            "{flags}: {message}"
        );
    }
}

/// k6's `--stage DURATION:TARGET` on the command line replaces the
/// scenario's load; malformed or combined with --duration it is refused by
/// the parser (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_flags_replace_the_scenarios_load() {
    let handle = start_auth().await;
    let test = LoadTest::new(
        format!("http://{}", handle.addr()),
        "scenarios/ready-only.toml",
    );
    let outcome = clw_cli::run(test.opts("--stage 1s:3 --stage 1s:3 --threads 2 --no-memory"))
        .await
        .expect("run succeeds");
    let s = summary(&test.out);
    assert_eq!(outcome.exit_code, 0, "{s}");
    assert_eq!(
        (s["concurrent_users"].as_u64(), s["duration_s"].as_f64()),
        (Some(3), Some(2.0))
    );
    let targets: Vec<f64> = s["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["target"].as_f64().unwrap())
        .collect();
    assert_eq!(targets, [3.0, 3.0]);
    handle.shutdown().await.unwrap();

    let parse = |extra: &[&str]| {
        let mut args = vec![
            "clw-cli",
            "auth",
            "load-test",
            "--target",
            "http://127.0.0.1:9",
        ];
        args.extend_from_slice(extra);
        <clw_cli::Opts as clap::Parser>::try_parse_from(args)
    };
    let err = parse(&["--stage", "30s"]).unwrap_err().to_string();
    assert!(err.contains("is not DURATION:TARGET"), "{err}");
    let err = parse(&["--stage", "30s:lots"]).unwrap_err().to_string();
    assert!(err.contains("the target `lots`"), "{err}");
    let err = parse(&["--stage", "30s:5", "--duration", "10s"]).unwrap_err();
    assert_eq!(
        err.kind(),
        clap::error::ErrorKind::ArgumentConflict,
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
}
