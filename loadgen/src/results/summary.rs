//! Filling summary.json (`clw_run::RunSummary`, docs/run-folder.md) from
//! the load's stats, and the thresholds that decide the exit code. Unknown
//! numbers are null, never 0.

use std::path::Path;

use clw_run::{AfterDeath, Requests, RunSummary, ServerExit, StageSummary, StepSummary};

use crate::load::stages::Stages;
use crate::load::stats::{percentiles, IntervalStats};
use clw_run::threshold::Threshold;

/// Fill the request and latency figures from the run's merged stats. When
/// the server died during the load (`death_s`: the load's death clock, in
/// seconds since load start; else `server.exit`, set by then), the figures
/// are the server's life's: the requests sent after its death are in
/// `after_death` only, and the throughput is over the life, not the load's
/// whole span.
pub(crate) fn set_load(
    summary: &mut RunSummary,
    stats: &IntervalStats,
    step_names: &[String],
    (elapsed_s, death_s): (f64, Option<f64>),
    open: bool,
) {
    let total = stats.requests();
    let failed = stats.errors();
    summary.requests = Requests {
        total,
        ok: total - failed,
        failed,
        by_status: stats
            .by_status()
            .iter()
            .map(|(s, n)| (s.to_string(), *n))
            .collect(),
        by_error: stats.by_error.clone(),
        capture_failed: stats.capture_failures(),
    };
    summary.dropped_iterations = stats.dropped_iterations;
    summary.elapsed_s = Some(elapsed_s);
    let exit_s = summary
        .server
        .exit
        .as_ref()
        .map(|e| e.at_s.unwrap_or(elapsed_s));
    summary.after_death = death_s.or(exit_s).map(|from_s| AfterDeath {
        from_s,
        requests: stats.after_death.requests,
        failed: stats.after_death.failed,
        by_error: stats.after_death.by_error.clone(),
    });
    let life_s = summary.life_s().unwrap_or(elapsed_s);
    summary.throughput_rps = (life_s > 0.0).then(|| total as f64 / life_s);
    let all = stats.all_steps();
    let corrected = |h| if open { percentiles(h) } else { None };
    summary.latency_ms = percentiles(&all.latency);
    summary.latency_corrected_ms = corrected(&all.corrected);
    summary.steps = step_names
        .iter()
        .zip(&stats.steps)
        .map(|(name, s)| {
            let step = StepSummary {
                requests: s.requests,
                errors: s.errors,
                latency_ms: percentiles(&s.latency),
                latency_corrected_ms: corrected(&s.corrected),
            };
            (name.clone(), step)
        })
        .collect();
}

/// summary.json's `stages[]` as planned: times and targets, figures null.
/// Written when the load starts, so a killed run can still draw them.
pub(crate) fn planned_stages(stages: &Stages) -> Vec<StageSummary> {
    stages
        .spans()
        .iter()
        .map(|s| StageSummary::planned(s.start_s, s.end_s, s.from, s.target))
        .collect()
}

/// Fill each stage's figures from the run folder's latency.hlog and
/// samples.csv (the same function clw-report runs on a killed run's
/// folder); a file that cannot be read leaves the figures null and a note.
pub(crate) fn set_stage_figures(summary: &mut RunSummary, out: &Path) {
    let Some(stages) = summary.stages.as_mut() else {
        return;
    };
    let intervals = clw_run::read_hlog(&out.join(clw_run::files::HLOG)).map(|(i, _)| i);
    let samples = clw_run::read_samples(&out.join(clw_run::files::SAMPLES)).map(|s| s.rows);
    match (intervals, samples) {
        (Ok(intervals), Ok(samples)) => clw_run::fill_stage_figures(stages, &intervals, &samples),
        (Err(e), _) | (_, Err(e)) => summary
            .notes
            .push(format!("per-stage figures are missing: {e}")),
    }
}

/// Judge every threshold, and the run: it passes when every threshold
/// passes and nothing failed the run itself (`failures`). A percentage of
/// the memory limit when no limit is known does not apply (skipped,
/// `passed: null`); any other unknown figure fails its threshold, since a
/// gate that passes on missing data would pass a broken run. The limit is
/// read from the summary's memory block (or `server.limit_bytes`).
pub(crate) fn evaluate(summary: &mut RunSummary, thresholds: &[Threshold]) {
    summary.thresholds = thresholds.iter().map(|t| t.judge(summary).into()).collect();
    summary.failures = run_failures(summary);
    summary.passed = Some(
        summary.failures.is_empty() && summary.thresholds.iter().all(|t| t.passed != Some(false)),
    );
}

/// What fails a run whatever its thresholds: a run whose server died, that
/// got no successful answer at all, or that was interrupted measured
/// nothing worth a pass.
fn run_failures(summary: &RunSummary) -> Vec<String> {
    let mut failures = Vec::new();
    if let Some(exit) = &summary.server.exit {
        failures.push(describe_exit(exit, summary.server.pid));
    }
    let r = &summary.requests;
    if r.total == 0 {
        failures.push("no request was completed".into());
    } else if r.ok == 0 {
        let mut errors: Vec<(&String, &u64)> = r.by_error.iter().collect();
        errors.sort_by(|a, b| b.1.cmp(a.1));
        let errors: Vec<String> = errors.iter().map(|(k, n)| format!("{k} {n}")).collect();
        failures.push(format!(
            "no request succeeded: 0 of {} ok ({})",
            r.total,
            errors.join(", ")
        ));
    }
    if let Some(signal) = &summary.interrupted_by {
        failures.push(format!("interrupted by {signal} before the full duration"));
    }
    if let Some(why) = &summary.aborted {
        failures.push(format!("aborted by --abort-on-fail: {why}"));
    }
    failures
}

/// A server death in words, for `failures`.
fn describe_exit(exit: &ServerExit, pid: Option<u32>) -> String {
    let pid = pid.map(|p| format!(" (pid {p})")).unwrap_or_default();
    let at = exit
        .at_s
        .map(|t| format!(" at {t:.1}s"))
        .unwrap_or_default();
    let code = exit
        .shell_code
        .map(|c| format!(", exit code {c}"))
        .unwrap_or_default();
    if exit.vanished {
        format!("the watched server{pid} vanished{at} (its exit status is unknown)")
    } else if exit.oom_killed {
        let how = if exit.emulated { " (emulated)" } else { "" };
        format!("the server{pid} was OOM-killed{how}{at}{code}")
    } else {
        format!("the server{pid} died{at}{code}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary of a run in which every request succeeded.
    fn healthy() -> RunSummary {
        let mut s = RunSummary::default();
        s.requests.total = 10;
        s.requests.ok = 10;
        s
    }

    #[test]
    fn a_run_without_thresholds_fails_when_nothing_succeeded_or_the_server_died() {
        let mut s = healthy();
        evaluate(&mut s, &[]);
        assert_eq!((s.passed, s.failures.len()), (Some(true), 0));

        let mut timeouts = healthy();
        timeouts.requests.ok = 0;
        timeouts.requests.failed = 10;
        timeouts
            .requests
            .by_error
            .insert("clw-auth-timeout".into(), 10);
        evaluate(&mut timeouts, &[]);
        assert_eq!(timeouts.passed, Some(false));
        assert!(
            timeouts.failures[0].contains("0 of 10 ok (clw-auth-timeout 10)"),
            "{:?}",
            timeouts.failures
        );

        let mut nothing = RunSummary::default();
        evaluate(&mut nothing, &[]);
        assert_eq!(nothing.passed, Some(false));

        let mut died = healthy();
        died.server.pid = Some(42);
        died.server.exit = Some(ServerExit {
            signal: Some(9),
            shell_code: Some(137),
            at_s: Some(1.5),
            ..ServerExit::default()
        });
        evaluate(&mut died, &[]);
        assert_eq!(died.passed, Some(false));
        assert_eq!(
            died.failures,
            ["the server (pid 42) died at 1.5s, exit code 137"]
        );

        let mut interrupted = healthy();
        interrupted.interrupted = true;
        interrupted.interrupted_by = Some("SIGINT".into());
        evaluate(&mut interrupted, &[]);
        assert_eq!(interrupted.passed, Some(false));
        assert!(interrupted.failures[0].contains("SIGINT"));
    }

    #[test]
    fn after_a_death_the_figures_are_the_servers_life() {
        use crate::load::stats::RequestOutcome;
        let mut stats = IntervalStats::new(1);
        for _ in 0..100 {
            stats.record(0, 20_000, None, RequestOutcome::Ok { status: 200 });
        }
        stats.after_death.requests = 900;
        stats.after_death.failed = 900;
        stats.after_death.by_error.insert("connect".into(), 900);
        let names = ["login".to_string()];
        let mut alive = RunSummary::default();
        set_load(&mut alive, &stats, &names, (20.0, None), false);
        assert_eq!(alive.throughput_rps, Some(5.0));
        assert_eq!(alive.after_death, None, "no death, nothing apart");

        let mut died = RunSummary::default();
        died.server.exit = Some(ServerExit {
            at_s: Some(10.0),
            ..ServerExit::default()
        });
        set_load(&mut died, &stats, &names, (20.0, None), false);
        assert_eq!(died.requests.total, 100);
        assert_eq!(
            died.throughput_rps,
            Some(10.0),
            "100 requests in a 10 s life"
        );
        let apart = died.after_death.as_ref().unwrap();
        assert_eq!(
            (apart.from_s, apart.requests, apart.failed),
            (10.0, 900, 900)
        );
        let p50 = died.latency_ms.unwrap().p50;
        assert!(
            (p50 - 20.0).abs() < 0.05,
            "the server's 20 ms, not a refusal's: {p50}"
        );
        // The death clock (a refusal seen before the exit was reported)
        // dates the death when it has it.
        set_load(&mut died, &stats, &names, (20.0, Some(9.5)), false);
        assert_eq!(died.after_death.as_ref().unwrap().from_s, 9.5);
    }

    #[test]
    fn percent_of_an_unknown_limit_is_skipped_other_unknowns_fail() {
        let rule = |text: &str| clw_run::threshold::parse(text).unwrap();
        let mut s = healthy();
        evaluate(&mut s, &[rule("peak_rss_percent < 80")]);
        assert_eq!(
            (s.thresholds[0].passed, s.thresholds[0].why.as_deref()),
            (Some(false), Some("no memory samples")),
            "memory never measured: not skipped, failed"
        );
        s.memory = Some(clw_run::MemoryReport {
            peak_rss_bytes: Some(100 << 20),
            ..Default::default()
        });
        evaluate(&mut s, &[rule("peak_rss_percent < 80")]);
        assert_eq!(s.thresholds[0].passed, None);
        assert_eq!(s.thresholds[0].expr, "peak_rss_percent < 80");
        assert_eq!(s.passed, Some(true));
        s.server.limit_bytes = Some(256 << 20);
        evaluate(&mut s, &[rule("peak_rss_percent < 80")]);
        assert_eq!(
            s.passed,
            Some(false),
            "a known limit without samples must not pass"
        );
        evaluate(&mut s, &[rule("p99_ms < 10")]);
        assert_eq!(
            s.passed,
            Some(false),
            "no latency at all fails a latency threshold"
        );
    }
}
