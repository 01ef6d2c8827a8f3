//! Synthetic run folders in the run-folder format, for tests, demos and the
//! browser check (`make report-check`): they let the report be built and
//! judged without a server or a load generator.
//!
//! The numbers are deterministic and shaped like the real thing: a leak that
//! climbs into an OOM kill, a bounded sawtooth, a run cut mid-write, and a
//! run against a service with no memory figures.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde_json::{json, Value};

const MIB: f64 = 1024.0 * 1024.0;
const SAMPLES_HEADER: &str =
    "t_s,rss_bytes,hwm_bytes,cgroup_bytes,allocated_bytes,active_bytes,resident_bytes,sessions,evictions,rps,errors,logins,source";
const LATENCY_HEADER: &str =
    "t_s,step,count,p50_ms,p90_ms,p99_ms,max_ms,cp50_ms,cp90_ms,cp99_ms,cmax_ms";

/// Deterministic noise in [0, 1).
fn noise(i: usize) -> f64 {
    ((i as f64 * 12.9898).sin() * 43758.5453).fract().abs()
}

fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0}")).unwrap_or_default()
}

/// One samples.csv row; `None` writes a blank (unknown) cell.
struct Sample {
    t: f64,
    rss: Option<f64>,
    allocated: Option<f64>,
    sessions: Option<f64>,
    evictions: Option<f64>,
    rps: f64,
    errors: f64,
}

fn samples_csv(rows: &[Sample]) -> String {
    let mut out = format!("{SAMPLES_HEADER}\n");
    let mut logins = 0.0;
    for r in rows {
        logins += r.rps * 0.5;
        let m = |f: f64| r.rss.map(|v| v * f);
        let _ = writeln!(
            out,
            "{:.3},{},{},{},{},{},{},{},{},{:.1},{:.0},{:.0},{}",
            r.t,
            cell(r.rss),
            cell(r.rss),
            cell(m(1.03)),
            cell(r.allocated),
            cell(r.allocated.map(|a| a * 1.05)),
            cell(m(0.93)),
            cell(r.sessions),
            cell(r.evictions),
            r.rps,
            r.errors,
            logins,
            if r.rss.is_some() { "proc" } else { "" }
        );
    }
    out
}

/// latency.csv rows for steps login, validate and all; `p50_at(t)` is the
/// median in ms at second `t`, the other percentiles scale from it.
fn latency_csv(seconds: usize, corrected: bool, p50_at: impl Fn(f64) -> f64) -> String {
    let mut out = format!("{LATENCY_HEADER}\n");
    for s in 1..=seconds {
        let t = s as f64;
        let base = p50_at(t);
        for (step, factor, count) in [
            ("login", 1.6, 400.0),
            ("validate", 0.5, 800.0),
            ("all", 1.0, 1200.0),
        ] {
            let p50 = base * factor;
            let jitter = 1.0 + 0.3 * noise(s * 7 + count as usize);
            let (p90, p99, max) = (p50 * 2.1, p50 * 4.0 * jitter, p50 * 7.5 * jitter);
            let c = |v: f64| {
                if corrected {
                    format!("{:.3}", v * 1.25)
                } else {
                    String::new()
                }
            };
            let _ = writeln!(
                out,
                "{t:.3},{step},{count:.0},{p50:.3},{p90:.3},{p99:.3},{max:.3},{},{},{},{}",
                c(p50),
                c(p90),
                c(p99),
                c(max)
            );
        }
    }
    out
}

fn write(dir: &Path, samples: &str, latency: &str, summary: &Value) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("samples.csv"), samples)?;
    std::fs::write(dir.join("latency.csv"), latency)?;
    std::fs::write(
        dir.join("summary.json"),
        serde_json::to_string_pretty(summary)? + "\n",
    )
}

fn summary(scenario: &str, memory: Value, server: Value, passed: bool) -> Value {
    json!({
        "complete": true, "clw_version": "0.1.0",
        "scenario": scenario, "scenario_file": format!("scenarios/{scenario}.toml"),
        "target": "http://127.0.0.1:8443", "metrics_url": "http://127.0.0.1:8443/metrics",
        "concurrent_users": 100, "duration_s": 60.0, "ramp_up_s": 5.0,
        "model": "open", "arrival_rate": 1200.0,
        "started_at": "2026-11-24T06:00:00Z", "elapsed_s": 60.0,
        "host": {"hostname": "ci-runner", "cpus": 2, "os": "linux"},
        "requests": {"total": 70_000, "ok": 69_650, "failed": 350,
                     "by_status": {"200": 69_650, "503": 150},
                     "by_error": {"connect": 120, "timeout": 0, "reset": 80, "clw-session-expired": 0}},
        "dropped_iterations": 0, "throughput_rps": 1166.0,
        "latency_ms": {"p50": 3.1, "p90": 6.5, "p99": 14.2, "p999": 31.0, "max": 58.3},
        "latency_corrected_ms": {"p50": 3.9, "p90": 8.1, "p99": 17.8, "p999": 40.2, "max": 72.9},
        "steps": {
            "login": {"requests": 23_000, "errors": 300, "latency_ms": {"p50": 5.0, "p90": 10.4, "p99": 22.7, "p999": 40.1, "max": 58.3}},
            "validate": {"requests": 47_000, "errors": 50, "latency_ms": {"p50": 1.6, "p90": 3.3, "p99": 7.1, "p999": 15.5, "max": 29.0}}
        },
        "memory": memory,
        "server": server,
        "thresholds": [
            {"name": "peak_rss_percent", "limit": 80.0,
             "actual": null, "passed": passed},
            {"name": "error_rate_percent", "limit": 1.0, "actual": 0.5, "passed": true}
        ],
        "passed": passed
    })
}

/// A leaky cache under a 256 MiB limit: RSS climbs ~5 MiB/s from 40 MiB
/// until the kernel OOM-kills the server at 41.5 s; errors follow.
pub fn leak_oom(dir: &Path) -> io::Result<()> {
    let (rows, _) = leak_rows();
    write(
        dir,
        &samples_csv(&rows),
        &latency_csv(42, true, |t| 2.0 + t * 0.12),
        &leak_summary(),
    )
}

fn leak_rows() -> (Vec<Sample>, f64) {
    let kill_at = 41.5;
    let mut rows = Vec::new();
    for i in 0..=90 {
        let t = i as f64 * 0.5;
        let alive = t <= kill_at;
        let rss = alive.then(|| (40.0 + 5.2 * t + 2.0 * noise(i)) * MIB);
        let ramp = (t / 5.0).min(1.0);
        rows.push(Sample {
            t,
            rss,
            allocated: rss.map(|r| r * 0.82 - 8.0 * MIB),
            sessions: alive.then_some((1150.0 * t).round()),
            evictions: alive.then_some(0.0),
            rps: if alive {
                1200.0 * ramp * (0.95 + 0.1 * noise(i + 100))
            } else {
                0.0
            },
            errors: if alive { 0.0 } else { 600.0 },
        });
    }
    (rows, kill_at)
}

/// summary.json of a login-storm run against clw-auth spawned with
/// `profiles/{profile}` under a 256 MiB cgroup-v2 limit, every memory source
/// present. `memory` holds the figures that differ from run to run; its peak
/// RSS % is also the actual value of the 80% rule.
fn spawned_summary(profile: &str, pid: u32, mut memory: Value, exit: Value, passed: bool) -> Value {
    memory["limit_bytes"] = json!(268_435_456u64);
    memory["sources"] = json!({"rss": "proc", "allocator": "metrics", "cgroup": "cgroup-v2"});
    memory["projected_time_to_limit_s"] = Value::Null;
    let peak_percent = memory["peak_rss_percent"].clone();
    let server = json!({
        "pid": pid,
        "command": format!("target/release/clw-auth --config profiles/{profile} --port 0"),
        "config": format!("profiles/{profile}"),
        "limit_enforcement": "cgroup-v2",
        "exit": exit,
    });
    let mut s = summary("login-storm", memory, server, passed);
    s["thresholds"][0]["actual"] = peak_percent;
    s
}

fn leak_summary() -> Value {
    spawned_summary(
        "leaky.json",
        4242,
        json!({
            "samples": 84,
            "peak_rss_bytes": 259_000_000u64, "peak_rss_percent": 96.5,
            "peak_allocated_bytes": 210_000_000u64, "peak_allocated_percent": 78.2,
            "slope_bytes_per_s": 5_452_595.0, "r_squared": 0.998, "plateau": false,
            "retained_bytes_per_session": 4741.0,
            "verdict": "leak",
            "evidence": ["RSS grew 5.2 MiB/s for 41 s with R\u{b2} 0.998",
                          "no plateau in the last 30% of the run",
                          "server OOM-killed (signal 9) at 41.5 s"]
        }),
        json!({"code": null, "signal": 9, "at_s": 41.5, "oom_killed": true, "emulated": false}),
        false,
    )
}

/// A fixed cache under the same limit: the cache fills, the cleanup task
/// evicts, RSS saw-tooths between ~80 and ~125 MiB; verdict bounded.
pub fn bounded_sawtooth(dir: &Path) -> io::Result<()> {
    let mut rows = Vec::new();
    let mut evictions = 0.0;
    for i in 0..=120 {
        let t = i as f64 * 0.5;
        let phase = (t % 10.0) / 10.0;
        if i > 0 && phase == 0.0 {
            evictions += 9000.0;
        }
        let rss = (80.0 + 42.0 * phase + 2.0 * noise(i)) * MIB;
        rows.push(Sample {
            t,
            rss: Some(rss),
            allocated: Some(rss * 0.7),
            sessions: Some((10_000.0 * phase).round()),
            evictions: Some(evictions),
            rps: 1200.0 * (t / 5.0).min(1.0) * (0.95 + 0.1 * noise(i + 100)),
            errors: 0.0,
        });
    }
    let mut s = spawned_summary(
        "fixed.json",
        4343,
        json!({
            "samples": 121,
            "peak_rss_bytes": 130_023_424u64, "peak_rss_percent": 48.4,
            "peak_allocated_bytes": 91_000_000u64, "peak_allocated_percent": 33.9,
            "slope_bytes_per_s": 1200.0, "r_squared": 0.01, "plateau": true,
            "retained_bytes_per_session": 0.0,
            "verdict": "bounded",
            "evidence": ["RSS oscillates between 80 and 124 MiB: cleanup every 10 s",
                          "slope 0.07 MiB/min with R\u{b2} 0.01: no trend"]
        }),
        // Stopped by clw-cli after the run: not a death, so no `server.exit`
        // (a server that died during the run fails it, docs/loadgen.md).
        Value::Null,
        true,
    );
    s["requests"]["failed"] = json!(0);
    s["requests"]["by_error"] = json!({"connect": 0, "timeout": 0, "reset": 0});
    write(
        dir,
        &samples_csv(&rows),
        &latency_csv(60, true, |_| 2.0),
        &s,
    )
}

/// The leak run as left by a kill in the middle of writing: samples.csv
/// ends half-way through a row (no newline) and summary.json is the
/// partial one written at the start of the load phase.
pub fn partial_samples(dir: &Path) -> io::Result<()> {
    let (rows, _) = leak_rows();
    let full = samples_csv(&rows[..60]);
    // Cut the last row in the middle of its second cell.
    let last_start = full[..full.len() - 1].rfind('\n').unwrap_or(0) + 1;
    let cut = &full[..last_start + 12];
    let partial = json!({
        "complete": false, "clw_version": "0.1.0", "scenario": "login-storm",
        "target": "http://127.0.0.1:8443", "concurrent_users": 100, "duration_s": 60.0,
        "ramp_up_s": 5.0, "model": "open", "started_at": "2026-11-24T06:00:00Z",
        "memory": {"limit_bytes": 268_435_456u64, "verdict": null},
        "server": {"config": "profiles/leaky.json", "limit_enforcement": "cgroup-v2", "exit": null}
    });
    write(
        dir,
        cut,
        &latency_csv(29, true, |t| 2.0 + t * 0.12),
        &partial,
    )
}

/// A run against a service with no /metrics memory figures and no spawned
/// server: every memory cell blank, memory figures null, server null.
pub fn no_server(dir: &Path) -> io::Result<()> {
    let rows: Vec<Sample> = (0..=60)
        .map(|i| Sample {
            t: i as f64 * 0.5,
            rss: None,
            allocated: None,
            sessions: None,
            evictions: None,
            rps: 300.0 * (0.9 + 0.2 * noise(i)),
            errors: 0.0,
        })
        .collect();
    let mut s = summary(
        "steady",
        json!({
            "samples": 61, "limit_bytes": null, "sources": {"rss": null, "allocator": null, "cgroup": null},
            "peak_rss_bytes": null, "peak_rss_percent": null, "peak_allocated_bytes": null,
            "peak_allocated_percent": null, "slope_bytes_per_s": null, "r_squared": null,
            "plateau": null, "retained_bytes_per_session": null, "verdict": "inconclusive",
            "evidence": ["no memory source: the target exports no process_resident_memory_bytes"],
            "projected_time_to_limit_s": null
        }),
        Value::Null,
        true,
    );
    s["target"] = json!("http://127.0.0.1:9000");
    s["metrics_url"] = Value::Null;
    s["thresholds"] = json!([]);
    write(
        dir,
        &samples_csv(&rows),
        &latency_csv(30, false, |_| 4.0),
        &s,
    )
}
