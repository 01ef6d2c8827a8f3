//! Synthetic run folders, for tests, demos and the browser check (`make
//! report-check`): they let the report be built and judged without a server
//! or a load generator. Only with the `fixtures` feature, which clw-report's
//! and clw-cli's dev-dependencies turn on: test data, not the library's API.
//!
//! Every file is written by clw-run's own writers ([`SamplesWriter`],
//! [`LatencyWriter`], [`RunSummary::write_atomic`]), so a fixture has the
//! headers and fields clw-cli writes today and cannot drift from them.
//!
//! The numbers are deterministic and shaped like the real thing: a leak that
//! climbs into an OOM kill, a bounded sawtooth, a run cut mid-write, and a
//! run against a service with no memory figures.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use clw_run::{
    Enforcement, Host, LatencyRow, LatencyWriter, LimitEnforcement, MemoryReport, MemorySource,
    MemorySources, Model, Percentiles, Requests, RunFileError, RunSummary, SampleRow,
    SamplesWriter, ServerExit, ServerInfo, StepSummary, ThresholdResult, Verdict,
};

const MIB: f64 = 1024.0 * 1024.0;
const LIMIT: u64 = 268_435_456;

/// Deterministic noise in [0, 1).
fn noise(i: usize) -> f64 {
    ((i as f64 * 12.9898).sin() * 43758.5453).fract().abs()
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

fn write_samples(path: &Path, rows: &[Sample]) -> Result<(), RunFileError> {
    let mut out = SamplesWriter::create(path)?;
    let mut logins = 0.0;
    for r in rows {
        logins += r.rps * 0.5;
        let bytes = |v: Option<f64>| v.map(|v| v.round() as u64);
        let of_rss = |f: f64| bytes(r.rss.map(|v| v * f));
        out.write(&SampleRow {
            t_s: r.t,
            rss_bytes: bytes(r.rss),
            hwm_bytes: bytes(r.rss),
            cgroup_bytes: of_rss(1.03),
            allocated_bytes: bytes(r.allocated),
            active_bytes: bytes(r.allocated.map(|a| a * 1.05)),
            resident_bytes: of_rss(0.93),
            sessions: bytes(r.sessions),
            evictions: bytes(r.evictions),
            rps: Some(r.rps),
            errors: bytes(Some(r.errors)),
            logins: bytes(Some(logins)),
            source: r.rss.map(|_| MemorySource::Proc),
            ..SampleRow::default()
        })?;
    }
    Ok(())
}

/// latency.csv rows for steps login, validate and all; `p50_at(t)` is the
/// median in ms at second `t`, the other percentiles scale from it.
fn write_latency(
    path: &Path,
    seconds: usize,
    corrected: bool,
    p50_at: impl Fn(f64) -> f64,
) -> Result<(), RunFileError> {
    let mut out = LatencyWriter::create(path)?;
    for s in 1..=seconds {
        let t = s as f64;
        let base = p50_at(t);
        for (step, factor, count) in [
            ("login", 1.6, 400),
            ("validate", 0.5, 800),
            ("all", 1.0, 1200),
        ] {
            let p50 = base * factor;
            let jitter = 1.0 + 0.3 * noise(s * 7 + count as usize);
            let plain = Percentiles {
                p50,
                p90: p50 * 2.1,
                p99: p50 * 4.0 * jitter,
                max: p50 * 7.5 * jitter,
                ..Percentiles::default()
            };
            let scaled = Percentiles {
                p50: plain.p50 * 1.25,
                p90: plain.p90 * 1.25,
                p99: plain.p99 * 1.25,
                max: plain.max * 1.25,
                ..Percentiles::default()
            };
            let row = LatencyRow::new(t, step, count, Some(plain), corrected.then_some(scaled));
            out.write(&row)?;
        }
    }
    out.flush()
}

/// The three files of a run folder.
fn write(
    dir: &Path,
    samples: &[Sample],
    latency: impl FnOnce(&Path) -> Result<(), RunFileError>,
    summary: &RunSummary,
) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_samples(&dir.join(clw_run::files::SAMPLES), samples).map_err(io::Error::other)?;
    latency(&dir.join(clw_run::files::LATENCY)).map_err(io::Error::other)?;
    summary
        .write_atomic(&dir.join(clw_run::files::SUMMARY))
        .map_err(io::Error::other)
}

fn percentiles(p50: f64, p90: f64, p99: f64, p999: f64, max: f64) -> Option<Percentiles> {
    Some(Percentiles {
        p50,
        p90,
        p99,
        p999,
        max,
    })
}

fn step(requests: u64, errors: u64, latency_ms: Option<Percentiles>) -> StepSummary {
    StepSummary {
        requests,
        errors,
        latency_ms,
        latency_corrected_ms: None,
    }
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

fn threshold(name: &str, limit: f64, actual: Option<f64>, passed: bool) -> ThresholdResult {
    ThresholdResult {
        name: name.into(),
        limit: Some(limit),
        actual,
        passed: Some(passed),
        ..ThresholdResult::default()
    }
}

/// A finished run of `scenario` against a server on 127.0.0.1:8443: 100
/// users, open model at 1200/s for 60 s.
fn summary(scenario: &str, memory: MemoryReport, server: ServerInfo, passed: bool) -> RunSummary {
    RunSummary {
        complete: true,
        clw_version: "0.1.0".into(),
        scenario: scenario.into(),
        scenario_file: format!("scenarios/{scenario}.toml"),
        target: "http://127.0.0.1:8443".into(),
        metrics_url: Some("http://127.0.0.1:8443/metrics".into()),
        concurrent_users: 100,
        duration_s: 60.0,
        ramp_up_s: 5.0,
        model: Model::Open,
        arrival_rate: Some(1200.0),
        started_at: "2026-11-24T06:00:00Z".into(),
        elapsed_s: Some(60.0),
        host: Host {
            hostname: "ci-runner".into(),
            cpus: 2,
            os: "linux".into(),
        },
        requests: Requests {
            total: 70_000,
            ok: 69_650,
            failed: 350,
            by_status: counts(&[("200", 69_650), ("503", 150)]),
            by_error: counts(&[
                ("connect", 120),
                ("timeout", 0),
                ("reset", 80),
                ("clw-session-expired", 0),
            ]),
            ..Requests::default()
        },
        throughput_rps: Some(1166.0),
        latency_ms: percentiles(3.1, 6.5, 14.2, 31.0, 58.3),
        latency_corrected_ms: percentiles(3.9, 8.1, 17.8, 40.2, 72.9),
        steps: BTreeMap::from([
            (
                "login".into(),
                step(23_000, 300, percentiles(5.0, 10.4, 22.7, 40.1, 58.3)),
            ),
            (
                "validate".into(),
                step(47_000, 50, percentiles(1.6, 3.3, 7.1, 15.5, 29.0)),
            ),
        ]),
        thresholds: vec![
            threshold("peak_rss_percent", 80.0, memory.peak_rss_percent, passed),
            threshold("error_rate_percent", 1.0, Some(0.5), true),
        ],
        memory: Some(memory),
        server,
        passed: Some(passed),
        ..RunSummary::default()
    }
}

/// A leaky cache under a 256 MiB limit: RSS climbs ~5 MiB/s from 40 MiB
/// until the kernel OOM-kills the server at 41.5 s; errors follow.
pub fn leak_oom(dir: &Path) -> io::Result<()> {
    write(
        dir,
        &leak_rows(),
        |path| write_latency(path, 42, true, |t| 2.0 + t * 0.12),
        &leak_summary(),
    )
}

fn leak_rows() -> Vec<Sample> {
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
    rows
}

/// The memory figures of a login-storm run under the 256 MiB limit with
/// every memory source present; `figures` holds those that differ from run
/// to run.
fn spawned_memory(figures: MemoryReport) -> MemoryReport {
    MemoryReport {
        limit_bytes: Some(LIMIT),
        sources: MemorySources {
            rss: Some("proc".into()),
            allocator: Some("metrics".into()),
            cgroup: Some(Enforcement::CgroupV2.as_str().into()),
            ..MemorySources::default()
        },
        projected_time_to_limit_s: None,
        ..figures
    }
}

/// clw-auth spawned with `profiles/{profile}` under a 256 MiB cgroup-v2
/// limit.
fn spawned_server(profile: &str, pid: u32, exit: Option<ServerExit>) -> ServerInfo {
    ServerInfo {
        pid: Some(pid),
        command: Some(format!(
            "target/release/clw-auth --config profiles/{profile} --port 0"
        )),
        config: Some(format!("profiles/{profile}")),
        limit_enforcement: LimitEnforcement::By(Enforcement::CgroupV2),
        exit,
        ..ServerInfo::default()
    }
}

fn evidence(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| l.to_string()).collect()
}

fn leak_summary() -> RunSummary {
    let memory = spawned_memory(MemoryReport {
        samples: 84,
        peak_rss_bytes: Some(259_000_000),
        peak_rss_percent: Some(96.5),
        peak_allocated_bytes: Some(210_000_000),
        peak_allocated_percent: Some(78.2),
        slope_bytes_per_s: Some(5_452_595.0),
        r_squared: Some(0.998),
        plateau: Some(false),
        retained_bytes_per_session: Some(4741.0),
        verdict: Some(Verdict::Leak),
        evidence: evidence(&[
            "RSS grew 5.2 MiB/s for 41 s with R\u{b2} 0.998",
            "no plateau in the last 30% of the run",
            "server OOM-killed (signal 9) at 41.5 s",
        ]),
        ..MemoryReport::default()
    });
    let exit = ServerExit {
        signal: Some(9),
        at_s: Some(41.5),
        oom_killed: true,
        ..ServerExit::default()
    };
    let server = spawned_server("leaky.json", 4242, Some(exit));
    summary("login-storm", memory, server, false)
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
    let memory = spawned_memory(MemoryReport {
        samples: 121,
        peak_rss_bytes: Some(130_023_424),
        peak_rss_percent: Some(48.4),
        peak_allocated_bytes: Some(91_000_000),
        peak_allocated_percent: Some(33.9),
        slope_bytes_per_s: Some(1200.0),
        r_squared: Some(0.01),
        plateau: Some(true),
        retained_bytes_per_session: Some(0.0),
        verdict: Some(Verdict::Bounded),
        evidence: evidence(&[
            "RSS oscillates between 80 and 124 MiB: cleanup every 10 s",
            "slope 0.07 MiB/min with R\u{b2} 0.01: no trend",
        ]),
        ..MemoryReport::default()
    });
    // Stopped by clw-cli after the run: not a death, so no `server.exit`
    // (a server that died during the run fails it, docs/loadgen.md).
    let server = spawned_server("fixed.json", 4343, None);
    let mut s = summary("login-storm", memory, server, true);
    s.requests.failed = 0;
    s.requests.by_error = counts(&[("connect", 0), ("timeout", 0), ("reset", 0)]);
    write(
        dir,
        &rows,
        |path| write_latency(path, 60, true, |_| 2.0),
        &s,
    )
}

/// The leak run as left by a kill in the middle of writing: samples.csv
/// ends half-way through a row (no newline) and summary.json is the
/// partial one written at the start of the load phase.
pub fn partial_samples(dir: &Path) -> io::Result<()> {
    let partial = RunSummary {
        complete: false,
        clw_version: "0.1.0".into(),
        scenario: "login-storm".into(),
        target: "http://127.0.0.1:8443".into(),
        concurrent_users: 100,
        duration_s: 60.0,
        ramp_up_s: 5.0,
        model: Model::Open,
        started_at: "2026-11-24T06:00:00Z".into(),
        memory: Some(MemoryReport {
            limit_bytes: Some(LIMIT),
            ..MemoryReport::default()
        }),
        server: ServerInfo {
            config: Some("profiles/leaky.json".into()),
            limit_enforcement: LimitEnforcement::By(Enforcement::CgroupV2),
            ..ServerInfo::default()
        },
        ..RunSummary::default()
    };
    write(
        dir,
        &leak_rows()[..60],
        |path| write_latency(path, 29, true, |t| 2.0 + t * 0.12),
        &partial,
    )?;
    // Cut the last row in the middle of its second cell.
    let path = dir.join(clw_run::files::SAMPLES);
    let full = std::fs::read(&path)?;
    let body = &full[..full.len() - 1];
    let last_start = body.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    std::fs::write(&path, &full[..last_start + 12])
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
    let memory = MemoryReport {
        samples: 61,
        verdict: Some(Verdict::Inconclusive),
        evidence: evidence(&[
            "no memory source: the target exports no process_resident_memory_bytes",
        ]),
        ..MemoryReport::default()
    };
    let mut s = summary("steady", memory, ServerInfo::default(), true);
    s.target = "http://127.0.0.1:9000".into();
    s.metrics_url = None;
    s.thresholds = Vec::new();
    write(
        dir,
        &rows,
        |path| write_latency(path, 30, false, |_| 4.0),
        &s,
    )
}
