//! The verdict banner: what a reader must get in one second (leak or
//! bounded, peak against the limit, OOM kill, time left to the limit).

use clw_run::Verdict;
use serde::Serialize;

use crate::format;
use crate::loaded::LoadedRun;

/// The banner at the top of a page and the verdict cell of the tables.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Banner {
    /// CSS class: `leak` (red), `bounded` (green) or `inconclusive` (grey).
    pub(crate) class: &'static str,
    /// One word or two: LEAK, OOM-KILLED, BOUNDED, INCONCLUSIVE.
    pub(crate) label: &'static str,
    /// The sentence next to the label.
    pub(crate) headline: String,
    /// Short supporting facts shown under the headline.
    pub(crate) details: Vec<String>,
}

impl Banner {
    // Long: the banner's headline and details built side by side from the same
    // facts, so the cases (leak, OOM kill, bounded, inconclusive) cannot
    // contradict each other.
    pub(crate) fn of(run: &LoadedRun) -> Banner {
        let memory = run.memory();
        let verdict = memory.and_then(|m| m.verdict);
        let oom = run.oom_kill();
        let (class, label) = match (verdict, oom.is_some()) {
            (Some(Verdict::Leak), _) => ("leak", "LEAK"),
            (_, true) => ("leak", "OOM-KILLED"),
            (Some(Verdict::Bounded), false) => ("bounded", "BOUNDED"),
            (Some(Verdict::Inconclusive) | None, false) => ("inconclusive", "INCONCLUSIVE"),
        };

        let mut headline = Vec::new();
        let rss_beside = run
            .rss_beside_charged()
            .map(|rss| format!(" (RSS {})", format::format_bytes(rss)))
            .unwrap_or_default();
        let killed = oom.is_some();
        match (run.peak_memory(), run.limit_bytes(), run.peak_percent()) {
            // A server that lived through a limit its figure passed: the
            // limit is not enforced on that figure; never "112%".
            (Some((peak, what)), Some(limit), Some(pct)) if pct > 100.0 && !killed => headline
                .push(format!(
                    "peak {what} {} is above the {} limit, which the server survived: not enforced on {what}{rss_beside}",
                    format::format_bytes(peak),
                    format::format_bytes(limit)
                )),
            (Some((peak, what)), Some(limit), Some(pct)) => headline.push(format!(
                "peak {what} {} = {} of the {} limit{rss_beside}",
                format::format_bytes(peak),
                format::percent(Some(pct)),
                format::format_bytes(limit)
            )),
            (Some((peak, what)), _, _) => headline.push(format!(
                "peak {what} {} (no memory limit known)",
                format::format_bytes(peak)
            )),
            (None, _, _) if run.summary.as_ref().is_some_and(|s| s.no_memory) => {
                headline.push(clw_run::threshold::MEMORY_OPTED_OUT.into())
            }
            (None, _, _) => headline.push("no memory figures recorded".into()),
        }
        if let Some(at) = oom {
            let emulated = run.oom_kill_emulated();
            let who = if emulated {
                "killed at the limit by the watchdog (emulated OOM kill)"
            } else {
                "OOM-killed by the kernel"
            };
            headline.push(match at {
                Some(at) => format!("{who} at {}", format::format_duration(at)),
                None => who.to_string(),
            });
        } else if let Some(t) = memory.and_then(|m| m.projected_time_to_limit_s) {
            headline.push(format!(
                "limit reached in ~{} at this rate",
                format::format_duration(t)
            ));
        }

        let mut details = Vec::new();
        if let Some(slope) = memory.and_then(|m| m.slope_bytes_per_s) {
            let r2 = memory
                .and_then(|m| m.r_squared)
                .map(|r| format!(" (R\u{b2} {r:.2})"))
                .unwrap_or_default();
            details.push(format!(
                "growth {}/min{r2}",
                format::format_bytes(slope * 60.0)
            ));
        }
        // A leak never "reached a plateau", whatever an older summary.json
        // says (clw-cli before the plateau fix wrote `plateau: true` for a
        // climb that the OOM killer ended).
        if memory.and_then(|m| m.plateau) == Some(true) && verdict != Some(Verdict::Leak) {
            details.push("memory reached a plateau".into());
        }
        if let Some(s) = run.summary.as_ref() {
            // `--insecure`: the certificate was never checked.
            if let Some(warning) = s.tls.as_ref().and_then(|t| t.warning.as_ref()) {
                details.push(warning.clone());
            }
            if s.interrupted {
                details.push("INTERRUPTED before the full duration".into());
            }
            for failure in &s.failures {
                details.push(format!("run FAILED: {failure}"));
            }
            if let Some(passed) = s.passed {
                details.push(if passed { "gate passed" } else { "gate FAILED" }.into());
            }
        }
        if let Some(why) = run.recomputed {
            details.push(format!("verdict recomputed from samples.csv ({why})"));
        } else if run.summary.is_none() {
            details.push("no summary.json: verdict unknown".into());
        } else if verdict.is_none() {
            details.push("summary.json has no verdict".into());
        }
        Banner {
            class,
            label,
            headline: headline.join(" \u{b7} "),
            details,
        }
    }
}
