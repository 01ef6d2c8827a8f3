//! The console summary printed at the end of a load test.

use std::fmt::Write as _;
use std::path::Path;

use clw_run::{LimitEnforcement, Model, Percentiles, RunSummary, Verdict};

fn pct(p: &Option<Percentiles>) -> String {
    match p {
        Some(p) => format!(
            "p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2} ms",
            p.p50, p.p90, p.p99, p.p999, p.max
        ),
        None => "no responses".into(),
    }
}

fn mib(v: Option<u64>) -> String {
    v.map(|b| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into())
}

/// The top 5 heap growth sites, under the verdict (docs/loadgen.md, "Heap
/// profiles"); nothing when no profiles were diffed.
fn growth_sites(o: &mut String, sites: Option<&[clw_run::GrowthSite]>) {
    match sites {
        None => {}
        Some([]) => {
            let _ = writeln!(
                o,
                "  heap      no allocation site grew between the first and last profile"
            );
        }
        Some(sites) => {
            let _ = writeln!(
                o,
                "  heap growth by allocation site (last profile vs first, heap/):"
            );
            for site in sites.iter().take(5) {
                let _ = writeln!(
                    o,
                    "    {:>10} {:>5.1}%  {}  {}",
                    mib(Some(site.bytes_grown)),
                    site.share_percent,
                    site.function,
                    site.location()
                );
            }
        }
    }
}

/// One line per stage of a load with `[[load.stages]]`: its time, load,
/// throughput, p99, peak RSS and memory growth (docs/loadgen.md, "Stages").
fn stages(o: &mut String, s: &RunSummary) {
    let Some(stages) = s.stages.as_deref().filter(|st| !st.is_empty()) else {
        return;
    };
    let unit = if s.model == Model::Open {
        "/s"
    } else {
        " users"
    };
    let _ = writeln!(
        o,
        "  stages    {:<16}{:<22}{:>10}{:>11}{:>11}{:>14}",
        "time", "load", "req/s", "p99", "peak RSS", "memory/s"
    );
    for (i, st) in stages.iter().enumerate() {
        let load = if st.start_s == st.end_s {
            format!("jump to {}{unit}", st.target)
        } else if st.from == st.target {
            format!("hold {}{unit}", st.target)
        } else {
            format!("{} -> {}{unit}", st.from, st.target)
        };
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let _ = writeln!(
            o,
            "    S{:<6}{:<16}{load:<22}{:>10}{:>11}{:>11}{:>14}",
            i + 1,
            format!("{:.0}-{:.0}s", st.start_s, st.end_s),
            or_dash(st.throughput_rps.map(|r| format!("{r:.1}"))),
            or_dash(st.p99_ms.map(|p| format!("{p:.2} ms"))),
            or_dash(st.peak_rss_bytes.map(|b| mib(Some(b)))),
            or_dash(
                st.memory_slope_bytes_per_s
                    .map(|b| format!("{:+.1} KiB", b / 1024.0))
            ),
        );
    }
}

/// "peak RSS 13.7 MiB (5.3% of limit)", or under a memory cgroup "peak
/// cgroup working set 243.1 MiB (95.0% of limit), RSS 287.0 MiB": the share
/// is of what the kernel charges (docs/memory.md). A server that lived
/// through a limit its figure passed is not shown above 100%.
fn memory_peak(o: &mut String, s: &RunSummary, m: &clw_run::MemoryReport) {
    let what = m.peak_percent_of.as_deref().unwrap_or("RSS");
    let charged = m.peak_charged_bytes.filter(|_| what.starts_with("cgroup"));
    let _ = write!(
        o,
        "  memory    peak {} {}",
        if charged.is_some() { what } else { "RSS" },
        mib(charged.or(m.peak_rss_bytes))
    );
    let killed = s.server.exit.as_ref().is_some_and(|e| e.oom_killed);
    match m.peak_rss_percent {
        Some(p) if p > 100.0 && !killed => {
            let _ = write!(
                o,
                " (above the limit, which the server survived: not enforced on {what})"
            );
        }
        Some(p) => {
            let _ = write!(o, " ({p:.1}% of limit)");
        }
        None => {}
    }
    if charged.is_some() {
        let _ = write!(o, ", RSS {}", mib(m.peak_rss_bytes));
    }
}

/// The requests, their errors, and those sent after the server's death
/// (which the figures above them leave out, and say so).
fn requests(o: &mut String, s: &RunSummary) {
    let r = &s.requests;
    let over = match (&s.after_death, s.life_s()) {
        (Some(_), Some(life)) => format!(" over the server's {life:.1}s life"),
        _ => String::new(),
    };
    let _ = writeln!(
        o,
        "  requests  {} total, {} ok, {} failed, {:.1} req/s{over}",
        r.total,
        r.ok,
        r.failed,
        s.throughput_rps.unwrap_or(0.0)
    );
    if !r.by_error.is_empty() {
        let errors: Vec<String> = r.by_error.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let _ = writeln!(o, "  errors    {}", errors.join(", "));
        for (why, n) in &r.capture_failed {
            let _ = writeln!(o, "            capture-failed {n}: {why}");
        }
    }
    if let Some(dead) = &s.after_death {
        let _ = writeln!(o, "  after death {}", dead.describe());
    }
}

/// The summary as a person reads it on a terminal.
// Long by design: the console summary top to bottom, one block per line a
// user reads; the code's order is the output's.
pub(crate) fn render(s: &RunSummary, out: &Path) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\nclw-cli {} -> {}", s.scenario, s.target);
    let _ = writeln!(
        o,
        "  {} users, {} model{}, {:.1}s",
        s.concurrent_users,
        s.model,
        s.arrival_rate
            .map(|r| format!(" at {r}/s"))
            .unwrap_or_default(),
        s.elapsed_s.unwrap_or(0.0)
    );
    requests(&mut o, s);
    if s.dropped_iterations > 0 {
        let _ = writeln!(
            o,
            "  dropped   {} iterations (open model: no user free in time)",
            s.dropped_iterations
        );
    }
    if let Some(tls) = &s.tls {
        let trust = match (&tls.cacert, tls.verified) {
            (_, false) => "certificate NOT verified".to_string(),
            (Some(ca), true) => format!("verified (system roots + {ca})"),
            (None, true) => "verified (system roots)".to_string(),
        };
        let client = match &tls.client_cert {
            Some(cert) => format!(", client certificate {cert}"),
            None => String::new(),
        };
        let took = match &tls.handshake_ms {
            Some(ms) => format!(" (p50 {:.3} ms, p99 {:.3} ms)", ms.p50, ms.p99),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "  tls       {} handshakes{took}, {trust}{client}",
            tls.handshakes
        );
        if let Some(warning) = &tls.warning {
            let _ = writeln!(o, "  {warning}");
        }
    }
    let _ = writeln!(o, "  latency   {}", pct(&s.latency_ms));
    if s.latency_corrected_ms.is_some() {
        let _ = writeln!(o, "  corrected {}", pct(&s.latency_corrected_ms));
    }
    for (name, step) in &s.steps {
        if step.requests > 0 {
            let _ = writeln!(
                o,
                "    {name:<12} {:>9} req  {}",
                step.requests,
                pct(&step.latency_ms)
            );
        }
    }
    stages(&mut o, s);
    let m = s.memory.clone().unwrap_or_default();
    let verdict = m.verdict.unwrap_or(Verdict::Inconclusive);
    memory_peak(&mut o, s, &m);
    match (&m.sources.rss, &m.sources.rss_scope) {
        (Some(src), Some(scope)) => {
            let _ = write!(o, " [from {src}: {scope}]");
        }
        (Some(src), None) => {
            let _ = write!(o, " [from {src}]");
        }
        _ => {}
    }
    let _ = writeln!(o, ", verdict {verdict}");
    for e in &m.evidence {
        let _ = writeln!(o, "    - {e}");
    }
    growth_sites(&mut o, m.growth_sites.as_deref());
    if s.server.limit_enforcement != LimitEnforcement::None {
        let _ = writeln!(
            o,
            "  server    limit enforced by {}",
            s.server.limit_enforcement
        );
    }
    if let Some(exit) = &s.server.exit {
        let _ = writeln!(
            o,
            "  server    {} at {:.1}s, exit code {}{}",
            if exit.vanished { "vanished" } else { "died" },
            exit.at_s.unwrap_or(0.0),
            exit.shell_code
                .map(|c| c.to_string())
                .unwrap_or_else(|| "unknown".into()),
            if exit.oom_killed {
                if exit.emulated {
                    " (OOM kill, emulated)"
                } else {
                    " (OOM killed)"
                }
            } else {
                ""
            }
        );
    }
    for note in &s.notes {
        let _ = writeln!(o, "  note      {note}");
    }
    for t in &s.thresholds {
        let actual = match t.passed {
            // The SKIP label says why.
            None => t.actual_text().unwrap_or_else(|| "unknown".into()),
            Some(_) => t.actual_shown("unknown"),
        };
        let skip;
        let _ = writeln!(
            o,
            "  {} {} (actual {actual})",
            match t.passed {
                Some(true) => "PASS",
                Some(false) => "FAIL",
                None => {
                    skip = format!(
                        "SKIP ({})",
                        t.why.as_deref().unwrap_or(clw_run::threshold::NO_LIMIT)
                    );
                    &skip
                }
            },
            t.expr
        );
    }
    for failure in &s.failures {
        let _ = writeln!(o, "  FAIL run: {failure}");
    }
    let _ = writeln!(
        o,
        "  result    {}",
        match (s.interrupted, s.passed) {
            (true, _) => "INTERRUPTED (failed)",
            (false, Some(true)) => "PASSED",
            (false, _) => "FAILED",
        }
    );
    let _ = writeln!(o, "  run folder {}", out.display());
    crate::escape::printable(&o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clw_run::{GrowthSite, MemoryReport};

    fn site(i: u64) -> GrowthSite {
        GrowthSite {
            function: format!("app::site{i}"),
            file: Some(format!("src/site{i}.rs")),
            line: Some(i as i64),
            bytes_grown: (8 - i) << 20,
            share_percent: 10.0,
        }
    }

    #[test]
    fn the_top_five_growth_sites_follow_the_verdict() {
        let mut s = RunSummary {
            memory: Some(MemoryReport {
                verdict: Some(Verdict::Leak),
                growth_sites: Some((1..=7).map(site).collect()),
                ..MemoryReport::default()
            }),
            ..RunSummary::default()
        };
        let text = render(&s, Path::new("run"));
        let verdict = text.find("verdict leak").expect("verdict line");
        let heading = text
            .find("heap growth by allocation site")
            .expect("heading");
        assert!(verdict < heading, "{text}");
        assert!(
            text.contains("7.0 MiB  10.0%  app::site1  src/site1.rs:1"),
            "{text}"
        );
        assert!(
            text.contains("app::site5") && !text.contains("app::site6"),
            "{text}"
        );

        s.memory.as_mut().unwrap().growth_sites = Some(Vec::new());
        assert!(render(&s, Path::new("run")).contains("no allocation site grew"));
        s.memory.as_mut().unwrap().growth_sites = None;
        assert!(!render(&s, Path::new("run")).contains("heap"));
    }

    #[test]
    fn the_memory_line_says_a_process_tree_was_measured() {
        let mut s = RunSummary {
            memory: Some(MemoryReport {
                peak_rss_bytes: Some(30 << 20),
                ..MemoryReport::default()
            }),
            ..RunSummary::default()
        };
        let sources = &mut s.memory.as_mut().unwrap().sources;
        sources.rss = Some("proc".into());
        let text = render(&s, Path::new("run"));
        assert!(text.contains("peak RSS 30.0 MiB [from proc], "), "{text}");
        s.memory.as_mut().unwrap().sources.rss_scope =
            Some("process tree of 42 (2 processes)".into());
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains("peak RSS 30.0 MiB [from proc: process tree of 42 (2 processes)], "),
            "{text}"
        );
    }

    #[test]
    fn tls_runs_show_handshakes_and_an_insecure_warning() {
        let mut s = RunSummary {
            tls: Some(clw_run::TlsSummary {
                handshakes: 5,
                handshake_ms: None,
                verified: true,
                cacert: Some("ca.pem".into()),
                client_cert: None,
                warning: None,
            }),
            ..RunSummary::default()
        };
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains("tls       5 handshakes, verified (system roots + ca.pem)\n"),
            "{text}"
        );
        s.tls.as_mut().unwrap().client_cert = Some("me.pem".into());
        s.tls.as_mut().unwrap().handshake_ms = Some(clw_run::Percentiles {
            p50: 1.25,
            p90: 2.0,
            p99: 3.5,
            p999: 4.0,
            max: 4.0,
        });
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains("5 handshakes (p50 1.250 ms, p99 3.500 ms), verified (system roots + ca.pem), client certificate me.pem"),
            "{text}"
        );
        assert!(!text.contains("WARNING"), "{text}");
        let insecure = crate::tls::ClientTls::new(None, true).unwrap();
        s.tls = Some(insecure.summary());
        let text = render(&s, Path::new("run"));
        assert!(text.contains("certificate NOT verified"), "{text}");
        assert!(text.contains(crate::tls::INSECURE_WARNING), "{text}");
        s.tls = None;
        assert!(!render(&s, Path::new("run")).contains("tls "));
    }

    #[test]
    fn requests_after_a_death_are_shown_apart() {
        let mut s = RunSummary {
            elapsed_s: Some(56.7),
            throughput_rps: Some(2000.0),
            ..RunSummary::default()
        };
        s.requests.total = 107_400;
        s.requests.ok = 107_394;
        s.requests.failed = 6;
        s.requests.by_error.insert("reset".into(), 6);
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains("6 failed, 2000.0 req/s\n"),
            "no death, no life: {text}"
        );
        assert!(!text.contains("after death"), "{text}");
        s.after_death = Some(clw_run::AfterDeath {
            from_s: 53.7,
            requests: 287_769,
            failed: 287_769,
            by_error: [("connect".to_string(), 287_769)].into(),
        });
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains("6 failed, 2000.0 req/s over the server's 53.7s life\n"),
            "{text}"
        );
        assert!(
            text.contains("  errors    reset 6\n  after death 287769 requests sent after the server died (connect 287769): not counted in throughput or latency\n"),
            "{text}"
        );
    }

    #[test]
    fn a_staged_run_prints_a_line_per_stage() {
        let mut s = RunSummary {
            model: Model::Closed,
            stages: Some(vec![
                clw_run::StageSummary {
                    throughput_rps: Some(1234.5),
                    p99_ms: Some(3.25),
                    peak_rss_bytes: Some(12 << 20),
                    memory_slope_bytes_per_s: Some(2048.0),
                    ..clw_run::StageSummary::planned(0.0, 10.0, 0.0, 25.0)
                },
                clw_run::StageSummary::planned(10.0, 60.0, 25.0, 25.0),
            ]),
            ..RunSummary::default()
        };
        let text = render(&s, Path::new("run"));
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.trim_start().starts_with('S'))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        for (line, words) in lines.iter().zip([
            [
                "S1",
                "0-10s",
                "0 -> 25 users",
                "1234.5",
                "3.25 ms",
                "12.0 MiB",
                "+2.0 KiB",
            ],
            ["S2", "10-60s", "hold 25 users", "-", "-", "-", "-"],
        ]) {
            let mut at = 0;
            for w in words {
                let found = line[at..]
                    .find(w)
                    .unwrap_or_else(|| panic!("{w} in {line}"));
                at += found + w.len();
            }
        }
        s.stages = None;
        assert!(!render(&s, Path::new("run")).contains("stages"));
    }

    #[test]
    fn under_a_cgroup_the_peak_is_what_it_charges_with_rss_beside() {
        let mut s = RunSummary {
            memory: Some(MemoryReport {
                peak_rss_bytes: Some(287 << 20),
                peak_charged_bytes: Some(243 << 20),
                peak_percent_of: Some("cgroup working set".into()),
                peak_rss_percent: Some(94.92),
                ..MemoryReport::default()
            }),
            ..RunSummary::default()
        };
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains(
                "memory    peak cgroup working set 243.0 MiB (94.9% of limit), RSS 287.0 MiB"
            ),
            "{text}"
        );
        // No cgroup, RSS past a limit the server lived through: no "112%".
        s.memory = Some(MemoryReport {
            peak_rss_bytes: Some(287 << 20),
            peak_percent_of: Some("RSS".into()),
            peak_rss_percent: Some(112.11),
            ..MemoryReport::default()
        });
        let text = render(&s, Path::new("run"));
        assert!(
            text.contains(
                "memory    peak RSS 287.0 MiB (above the limit, which the server survived"
            ) && !text.contains("112"),
            "{text}"
        );
    }
}
