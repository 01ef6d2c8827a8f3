//! What a finished run must show for the make targets that reproduce and
//! verify the field guide's failure (`make leak-repro`, `make fix-verify`,
//! `make soak`): rules over summary.json, here where they are tested, not
//! in jq inside a Makefile. `clw-cli verify RUN_DIR --expect ...` prints
//! [`Verification::lines`] and exits 0 when [`Verification::met`].

use crate::{RunSummary, Verdict};

/// What the run is expected to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    /// The leak reproduced (`make leak-repro`): the kernel (or the
    /// watchdog) OOM-killed the server, or the verdict is `leak`.
    Leak,
    /// The fix holds (`make fix-verify`): not killed, peak RSS under 80% of
    /// the limit, verdict `bounded`.
    Bounded,
    /// A long, wide run (`make soak`): as [`Expectation::Bounded`], and the
    /// run complete, some requests served, no 5xx, its thresholds passed.
    Soak,
}

/// The guide's rule: peak memory under 80% of the limit.
const PEAK_CEILING_PERCENT: f64 = 80.0;

/// The outcome of checking a run against an [`Expectation`].
#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    pub met: bool,
    /// What to print: the figures the rule read, then whether it held.
    pub lines: Vec<String>,
}

/// Check `s` (the summary of the run folder `dir`, named in failures)
/// against `expect`.
pub fn verify(s: &RunSummary, dir: &str, expect: Expectation) -> Verification {
    let verdict = s.memory.as_ref().and_then(|m| m.verdict);
    let percent = s.memory.as_ref().and_then(|m| m.peak_rss_percent);
    let killed = s.server.exit.is_some();
    let under_ceiling = percent.unwrap_or(100.0) < PEAK_CEILING_PERCENT;
    let bounded = !killed && under_ceiling && verdict == Some(Verdict::Bounded);
    let mut lines = Vec::new();
    let met = match expect {
        Expectation::Leak => {
            let oom = s.server.exit.as_ref().is_some_and(|e| e.oom_killed);
            let met = oom || verdict == Some(Verdict::Leak);
            lines.push(match met {
                true => leak_line(s),
                false => format!("leak NOT reproduced: see {dir}/summary.json"),
            });
            met
        }
        Expectation::Bounded => {
            let pct = number(percent);
            lines.push(match bounded {
                true => format!(
                    "fix verified: peak RSS {pct}% of the limit, verdict bounded, not killed"
                ),
                false => format!(
                    "fix NOT verified: peak RSS {pct}% (need < 80), verdict {} (need bounded), server exit {}",
                    verdict.map_or("null", Verdict::as_str),
                    exit_json(s)
                ),
            });
            bounded
        }
        Expectation::Soak => {
            lines.extend(soak_figures(s));
            let server_errors: u64 = s
                .requests
                .by_status
                .iter()
                .filter(|(status, _)| status.starts_with('5'))
                .map(|(_, n)| n)
                .sum();
            let met = bounded
                && s.complete
                && s.requests.ok > 0
                && server_errors == 0
                && s.passed == Some(true);
            lines.push(match met {
                true => "soak passed: no 5xx, not killed, peak under 80% of the limit, verdict bounded".into(),
                false => format!("soak FAILED: need a complete run, no 5xx, server not killed, peak < 80%, verdict bounded, thresholds passed (see {dir}/summary.json)"),
            });
            met
        }
    };
    lines.extend(growth_lines(s));
    Verification { met, lines }
}

/// Where heap growth must show, checked beside an [`Expectation`]: that a
/// leak's top growth site is the leaking code, that a fix grows no site
/// past what it may hold (issue 11's acceptance, loadgen/scripts/leak-sites.sh).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteRules {
    /// The top growth site's file or function contains one of these.
    pub top_site_in: Vec<String>,
    /// Heap profiles were compared, and no site grew by more than this
    /// many bytes (none growing at all passes).
    pub sites_within: Option<u64>,
}

/// What `rules` finds wrong with `s`'s growth sites, one line each (none:
/// they hold).
pub fn check_sites(s: &RunSummary, rules: &SiteRules) -> Vec<String> {
    let compared = growth_sites(s);
    let sites = compared.unwrap_or_default();
    let mut failed = Vec::new();
    if !rules.top_site_in.is_empty() {
        let top = sites.first();
        let inside = top.is_some_and(|site| {
            rules.top_site_in.iter().any(|p| {
                site.function.contains(p.as_str())
                    || site.file.as_deref().is_some_and(|f| f.contains(p.as_str()))
            })
        });
        if !inside {
            failed.push(format!(
                "FAIL: the top growth site ({}) is not in {}",
                top.map_or("none".into(), |t| format!(
                    "{} {}",
                    t.function,
                    t.location()
                )),
                rules.top_site_in.join(", ")
            ));
        }
    }
    if let Some(bound) = rules.sites_within {
        let largest = compared.map(|sites| sites.iter().map(|site| site.bytes_grown).max());
        match largest {
            None => failed.push(
                "FAIL: no heap profiles were compared, so no growth sites (see the heap notes)"
                    .into(),
            ),
            Some(Some(grown)) if grown > bound => failed.push(format!(
                "FAIL: a site grew by {} MiB, more than the {} MiB allowed",
                tenths(grown as f64 / MIB),
                tenths(bound as f64 / MIB)
            )),
            Some(_) => {}
        }
    }
    failed
}

/// "leak reproduced: verdict leak, limit by cgroup-v1, OOM-killed at 12.3 s
/// (exit 137)".
fn leak_line(s: &RunSummary) -> String {
    let verdict = s
        .memory
        .as_ref()
        .and_then(|m| m.verdict)
        .map_or("null", Verdict::as_str);
    let how = match s.server.exit.as_ref().filter(|e| e.oom_killed) {
        Some(exit) => format!(
            "OOM-killed at {} s (exit {}{})",
            tenths(exit.at_s.unwrap_or(0.0)),
            match exit.signal {
                Some(signal) => 128 + signal,
                None => exit.code.unwrap_or(0),
            },
            if exit.emulated {
                ", emulated by the watchdog"
            } else {
                ""
            }
        ),
        None => format!("not killed within {} s", number(Some(s.duration_s))),
    };
    format!(
        "leak reproduced: verdict {verdict}, limit by {}, {how}",
        s.server.limit_enforcement
    )
}

/// The soak's figures: requests and latency, errors, memory.
fn soak_figures(s: &RunSummary) -> Vec<String> {
    let latency = s.latency_ms.as_ref();
    let pick = |f: fn(&crate::Percentiles) -> f64| number(latency.map(f));
    let memory = s.memory.as_ref();
    vec![
        format!(
            "soak: {} requests, {} req/s, p50 {} ms, p99 {} ms, max {} ms",
            s.requests.total,
            number(s.throughput_rps.map(f64::round)),
            pick(|p| p.p50),
            pick(|p| p.p99),
            pick(|p| p.max),
        ),
        format!(
            "soak: errors {} (by status {}, by error {})",
            s.requests.failed,
            json(&s.requests.by_status),
            json(&s.requests.by_error)
        ),
        format!(
            "soak: peak RSS {} MiB = {}% of {} MiB (limit by {}), verdict {}, server exit {}, passed {}",
            tenths(mib(memory.and_then(|m| m.peak_rss_bytes))),
            number(memory.and_then(|m| m.peak_rss_percent)),
            mib(memory.and_then(|m| m.limit_bytes)).round(),
            s.server.limit_enforcement,
            memory
                .and_then(|m| m.verdict)
                .map_or("null", Verdict::as_str),
            exit_json(s),
            s.passed.map_or("null".into(), |p| p.to_string()),
        ),
    ]
}

/// The top three heap growth sites, or why there are none: "top growth
/// sites:" and "  12.3 MiB  98%  fn  file:line" lines.
pub fn growth_lines(s: &RunSummary) -> Vec<String> {
    let Some(sites) = growth_sites(s) else {
        let heap_notes: Vec<&str> = s
            .notes
            .iter()
            .filter(|n| n.starts_with("heap"))
            .map(String::as_str)
            .collect();
        return vec![format!("growth sites: none ({})", heap_notes.join("; "))];
    };
    if sites.is_empty() {
        return vec![
            "growth sites: none (no allocation site grew between the first and last heap profile)"
                .into(),
        ];
    }
    std::iter::once("top growth sites:".to_string())
        .chain(sites.iter().take(3).map(|site| {
            format!(
                "  {} MiB  {}%  {}  {}:{}",
                tenths(site.bytes_grown as f64 / MIB),
                site.share_percent.round(),
                site.function,
                site.file.as_deref().unwrap_or("?"),
                site.line.map_or("?".into(), |l| l.to_string())
            )
        }))
        .collect()
}

/// The heap growth sites, None when no two profiles were compared (a
/// summary without `memory.growth_sites`), empty when none grew.
fn growth_sites(s: &RunSummary) -> Option<&[crate::GrowthSite]> {
    s.memory.as_ref()?.growth_sites.as_deref()
}

/// Bytes in a MiB, as the lines print sizes.
pub(crate) const MIB: f64 = 1_048_576.0;

fn exit_json(s: &RunSummary) -> String {
    json(&s.server.exit)
}

fn mib(bytes: Option<u64>) -> f64 {
    bytes.unwrap_or(0) as f64 / MIB
}

/// Rounded to a tenth, printed as jq prints numbers (no trailing `.0`).
pub(crate) fn tenths(x: f64) -> String {
    number(Some((x * 10.0).round() / 10.0))
}

/// A figure as jq prints it: shortest form, `null` when absent.
pub(crate) fn number(x: Option<f64>) -> String {
    match x {
        None => "null".into(),
        // Adding +0 turns -0 (a rounded small negative) into 0.
        Some(x) => (x + 0.0).to_string(),
    }
}

/// JSON text of a figure (the error tallies), as jq's `tojson`.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

#[cfg(test)]
mod tests;
