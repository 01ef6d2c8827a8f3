//! Figures that stay true after the server's death: a spawned clw-auth is
//! SIGKILLed mid-run and the load goes on for a few seconds against the
//! closed port. The refused connections must not inflate the throughput
//! nor sit in the latency histograms; they are counted apart, and every
//! headline figure equals what its chart's source integrates to.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{clw_auth_command, load_test_command, read_summary, write_scenario};
use clw_run::RunSummary;

const READY: &str = r#"
name = "ready-only"
[[steps]]
name = "ready"
method = "GET"
path = "/ready"
"#;

/// The spawned server's PID, from the summary.json written before the load.
fn wait_for_pid(out: &Path) -> i32 {
    let started = Instant::now();
    loop {
        if let Some(pid) = read_summary(out).and_then(|s| s["server"]["pid"].as_u64()) {
            return pid as i32;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no summary.json with a server pid"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// latency.csv's `all` rows: (interval end, count).
fn latency_all(out: &Path) -> Vec<(f64, u64)> {
    let (rows, truncated) = clw_run::read_latency(&out.join("latency.csv")).unwrap();
    assert!(!truncated);
    rows.into_iter()
        .filter(|r| r.step == "all")
        .map(|r| (r.t_s, r.count))
        .collect()
}

/// errors.csv summed per kind: (errors while alive, after death).
fn errors_by_kind(out: &Path) -> BTreeMap<String, (u64, u64)> {
    let (rows, truncated) = clw_run::read_errors(&out.join("errors.csv")).unwrap();
    assert!(!truncated);
    let mut sums: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for r in rows {
        let e = sums.entry(r.kind).or_default();
        e.0 += r.errors;
        e.1 += r.after_death;
    }
    sums
}

#[test]
fn a_killed_servers_figures_are_its_lifes_and_the_refusals_are_apart() {
    let (port, command) = clw_auth_command("fixed.json");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let scenario = write_scenario(dir.path(), READY);
    let mut cli = load_test_command(&format!("http://127.0.0.1:{port}"), &scenario, &out)
        .args(["--spawn-server", &command])
        .args(["--concurrent-users", "4", "--duration", "40s"])
        .args(["--memory-limit", "512M", "--sample-interval", "200ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clw-cli");
    let pid = wait_for_pid(&out);
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: plain kill(2) of the server this run spawned.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let killed = Instant::now();
    let mut console = String::new();
    cli.stdout
        .take()
        .unwrap()
        .read_to_string(&mut console)
        .unwrap();
    let status = cli.wait().unwrap();
    assert!(
        killed.elapsed() < Duration::from_secs(30),
        "the load stops a few seconds after the death"
    );
    assert_eq!(status.code(), Some(1), "{console}");

    let s = RunSummary::read(&out.join("summary.json")).unwrap();
    assert!(s.complete);
    let at_s = s
        .server
        .exit
        .as_ref()
        .and_then(|e| e.at_s)
        .expect("death time");
    let dead = s.after_death.as_ref().expect("after_death in summary.json");
    // Dated by the first refusal from the dead process, at most the
    // milliseconds it took the exit to be reported before server.exit.
    assert!(
        dead.from_s <= at_s && at_s - dead.from_s < 0.1,
        "{dead:?} {at_s}"
    );
    let elapsed = s.elapsed_s.unwrap();
    assert!(
        elapsed > at_s + 2.0,
        "the load went on after the death: {s:?}"
    );
    // Against a closed port every request is refused at once: many of them.
    assert!(dead.requests > 100, "{dead:?}");
    assert_eq!(dead.failed, dead.requests, "{dead:?}");
    assert_eq!(dead.by_error.values().sum::<u64>(), dead.failed);
    assert!(
        dead.by_error.get("connect").copied().unwrap_or(0) > 100,
        "{dead:?}"
    );
    // The first refusal from the dead process dates the death, so the
    // refusals before the supervisor heard of the exit (about 100 in the 2
    // ms it takes, at this rate) are not the server's failures.
    let refused_in_life = s.requests.by_error.get("connect").copied().unwrap_or(0);
    assert!(
        refused_in_life < 25,
        "{refused_in_life} refusals counted in the server's life"
    );
    let life = s.life_s().unwrap();
    assert_eq!(life, dead.from_s);

    // Throughput: the headline is the life's requests over the life, and
    // latency.csv's per-second counts (the throughput chart's source, which
    // draws each as count / interval length) add up to exactly those
    // requests.
    let r = &s.requests;
    assert!(r.ok > 100, "the server answered while it lived: {r:?}");
    let headline = s.throughput_rps.unwrap();
    assert!(
        (headline - r.total as f64 / life).abs() < 1e-6,
        "{headline}"
    );
    let rows = latency_all(&out);
    let integral: u64 = rows.iter().map(|(_, count)| count).sum();
    assert_eq!(integral, r.total, "{rows:?}");
    assert!((integral as f64 / life - headline).abs() < 1e-6);
    // The intervals wholly after the death count nothing (beyond requests
    // that were in flight at it and ended later).
    let after: u64 = rows
        .iter()
        .filter(|(t, _)| *t - 1.0 > at_s + 0.5)
        .map(|(_, c)| c)
        .sum();
    assert_eq!(after, 0, "{rows:?}");

    // Errors: errors.csv (the errors chart's source) adds up to the key
    // figures, by kind, with the after-death failures apart.
    let errors = errors_by_kind(&out);
    let all = errors.get("all").copied().unwrap_or_default();
    assert_eq!(all, (r.failed, dead.failed), "{errors:?}");
    for (kind, (alive, after)) in errors.iter().filter(|(k, _)| *k != "all") {
        assert_eq!(*alive, r.by_error.get(kind).copied().unwrap_or(0), "{kind}");
        assert_eq!(
            *after,
            dead.by_error.get(kind).copied().unwrap_or(0),
            "{kind}"
        );
    }

    // Latency: the histograms hold the life's requests only; the step's
    // p50 is theirs.
    let (intervals, _) = clw_run::read_hlog(&out.join("latency.hlog")).unwrap();
    let mut ready = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for i in intervals
        .iter()
        .filter(|i| i.tag.as_deref() == Some("ready"))
    {
        ready.add(&i.histogram).unwrap();
    }
    assert_eq!(ready.len(), s.steps["ready"].requests);
    assert_eq!(ready.len(), r.total, "no refusal in the histograms");
    let p50 = clw_run::Percentiles::of(&ready).unwrap().p50;
    assert_eq!(s.steps["ready"].latency_ms.unwrap().p50, p50);

    // The console says the same, and says what it left out.
    assert!(
        console.contains(&format!(
            "{} total, {} ok, {} failed, {headline:.1} req/s over the server's {life:.1}s life",
            r.total, r.ok, r.failed
        )),
        "{console}"
    );
    assert!(
        console.contains(&format!("  after death {}\n", dead.describe())),
        "{console}"
    );

    // The report's key figures and errors chart: the same numbers.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let count = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    for expected in [
        format!("<div class=\"v\">{}</div>", count(r.total)),
        format!("{} failed (", count(r.failed)),
        format!(
            "after death: {} more sent, {} failed, not counted",
            count(dead.requests),
            count(dead.failed)
        ),
        format!("<div class=\"v\">{headline:.0} req/s</div>"),
        format!(
            "after death: {} requests failed, not counted",
            count(dead.failed)
        ),
    ] {
        assert!(html.contains(&expected), "{expected} not in the report");
    }
}
