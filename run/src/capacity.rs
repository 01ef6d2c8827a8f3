//! `make capacity`'s reading of a stepped load (scenarios/capacity-steps.toml:
//! holds of 25, 50, 100 and 200 users): per hold its throughput, p99, peak
//! RSS and memory growth, and the first hold at which memory still climbs.
//! A rule over summary.json's stages, here where it is tested; `clw-cli
//! capacity RUN_DIR` prints [`lines`].

use crate::verify::{number, tenths, MIB};
use crate::{RunSummary, StageSummary};

/// Memory "still climbs" over a hold when it grows by more than this...
const CLIMB_MIN_BYTES: f64 = MIB;
/// ...and by more than this share of the hold's peak.
const CLIMB_MIN_SHARE: f64 = 0.05;

/// One hold of the stepped load: a stage whose target equals where it
/// starts, with time in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub users: f64,
    /// Requests were measured in it (the run had not ended first).
    pub reached: bool,
    /// The seconds the figures cover: requests over throughput (a run that
    /// died mid-hold covers less than the hold), else the hold's length.
    pub covered_s: f64,
    /// Bytes the memory grew over `covered_s` (slope times time).
    pub grown_bytes: f64,
    /// The hold's peak: allocated bytes where the service reports them,
    /// else RSS.
    pub peak_bytes: f64,
    /// Memory still climbs over the hold (see [`CLIMB_MIN_BYTES`]).
    pub climbs: bool,
}

impl Hold {
    fn of(stage: &StageSummary) -> Hold {
        let reached = stage.requests.unwrap_or(0) > 0;
        let covered_s = match (reached, stage.throughput_rps) {
            (true, Some(rps)) if rps > 0.0 => stage.requests.unwrap_or(0) as f64 / rps,
            _ => stage.end_s - stage.start_s,
        };
        let grown_bytes = stage.memory_slope_bytes_per_s.unwrap_or(0.0) * covered_s;
        let peak_bytes = stage
            .peak_allocated_bytes
            .or(stage.peak_rss_bytes)
            .unwrap_or(0) as f64;
        Hold {
            users: stage.target,
            reached,
            covered_s,
            grown_bytes,
            peak_bytes,
            climbs: reached
                && grown_bytes > CLIMB_MIN_BYTES
                && grown_bytes > CLIMB_MIN_SHARE * peak_bytes,
        }
    }
}

/// The holds of a stepped run, in order.
pub fn holds(s: &RunSummary) -> Vec<Hold> {
    hold_stages(s).map(Hold::of).collect()
}

fn hold_stages(s: &RunSummary) -> impl Iterator<Item = &StageSummary> {
    s.stages
        .iter()
        .flatten()
        .filter(|st| st.from == st.target && st.end_s > st.start_s)
}

/// A line per hold, an OOM kill if any, then the conclusion: "stops
/// levelling off at N users", or "levelled off at every hold reached, up to
/// N users", or "no hold was reached".
pub fn lines(s: &RunSummary) -> Vec<String> {
    let mut out = Vec::new();
    let mut holds = Vec::new();
    for stage in hold_stages(s) {
        let hold = Hold::of(stage);
        out.push(match hold.reached {
            true => format!(
                "{} users: {} req/s, p99 {} ms, peak RSS {} MiB, {} {} MiB over {} s: {}",
                number(Some(hold.users)),
                number(stage.throughput_rps.map(f64::round)),
                number(stage.p99_ms),
                mib(stage.peak_rss_bytes.unwrap_or(0) as f64),
                if stage.peak_allocated_bytes.is_some() {
                    "allocated"
                } else {
                    "RSS"
                },
                signed_mib(hold.grown_bytes),
                number(Some(hold.covered_s.round())),
                if hold.climbs {
                    "still climbing"
                } else {
                    "levelled off"
                }
            ),
            false => format!(
                "{} users: not reached (the run ended first)",
                number(Some(hold.users))
            ),
        });
        holds.push(hold);
    }
    if let Some(exit) = s.server.exit.as_ref().filter(|e| e.oom_killed) {
        out.push(format!(
            "the server was OOM-killed at {} s",
            number(Some(exit.at_s.unwrap_or(0.0).round()))
        ));
    }
    out.push(match holds.iter().find(|h| h.climbs) {
        Some(h) => format!("stops levelling off at {} users", number(Some(h.users))),
        None => match holds.iter().rev().find(|h| h.reached) {
            None => "no hold was reached".into(),
            Some(last) => format!(
                "levelled off at every hold reached, up to {} users",
                number(Some(last.users))
            ),
        },
    });
    out
}

/// MiB to a tenth, as the table prints it.
fn mib(bytes: f64) -> String {
    tenths(bytes / MIB)
}

/// A growth in MiB to a tenth, with its sign: `+3.2`, `0`, `-1.5`.
fn signed_mib(bytes: f64) -> String {
    let text = mib(bytes);
    match (bytes / MIB * 10.0).round() > 0.0 {
        true => format!("+{text}"),
        false => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(users: f64, requests: u64, rps: f64, slope: f64, peak: u64) -> StageSummary {
        StageSummary {
            requests: Some(requests),
            throughput_rps: Some(rps),
            p99_ms: Some(1.5),
            peak_rss_bytes: Some(peak),
            peak_allocated_bytes: None,
            memory_slope_bytes_per_s: Some(slope),
            ..StageSummary::planned(0.0, 50.0, users, users)
        }
    }

    fn run(stages: Vec<StageSummary>) -> RunSummary {
        RunSummary {
            stages: Some(stages),
            ..RunSummary::default()
        }
    }

    #[test]
    fn the_first_hold_still_climbing_is_the_capacity() {
        let mib = 1_048_576.0;
        // 25 users: flat. 50: +0.5 MiB (under 1 MiB): levelled off. 100:
        // +10 MiB on a 100 MiB peak (10%): climbing. 200: not reached.
        let ramp = StageSummary::planned(0.0, 5.0, 0.0, 25.0);
        let s = run(vec![
            ramp,
            hold(25.0, 5000, 100.0, 0.0, 50 << 20),
            hold(50.0, 10000, 200.0, 0.01 * mib, 60 << 20),
            hold(100.0, 20000, 400.0, 0.2 * mib, 100 << 20),
            StageSummary::planned(0.0, 50.0, 200.0, 200.0),
        ]);
        let held = holds(&s);
        assert_eq!(held.len(), 4, "the ramp is no hold");
        assert_eq!(
            held.iter().map(|h| h.climbs).collect::<Vec<_>>(),
            [false, false, true, false]
        );
        assert!(!held[3].reached);
        let text = lines(&s);
        assert_eq!(
            text[2],
            "100 users: 400 req/s, p99 1.5 ms, peak RSS 100 MiB, RSS +10 MiB over 50 s: still climbing"
        );
        assert_eq!(text[3], "200 users: not reached (the run ended first)");
        assert_eq!(text.last().unwrap(), "stops levelling off at 100 users");
    }

    #[test]
    fn growth_small_against_the_peak_levels_off() {
        // +2 MiB over the hold, but on a 100 MiB peak (2%): not climbing.
        let s = run(vec![hold(25.0, 5000, 100.0, 41_943.04, 100 << 20)]);
        assert!(!holds(&s)[0].climbs);
        assert_eq!(
            lines(&s).last().unwrap(),
            "levelled off at every hold reached, up to 25 users"
        );
        assert_eq!(lines(&run(vec![])), ["no hold was reached"]);
    }

    #[test]
    fn a_death_mid_hold_covers_only_what_was_measured() {
        // 1000 requests at 100 req/s: 10 s of the 50 s hold.
        let s = run(vec![hold(50.0, 1000, 100.0, 1_048_576.0, 10 << 20)]);
        let h = &holds(&s)[0];
        assert_eq!(h.covered_s, 10.0);
        assert_eq!(h.grown_bytes, 10.0 * 1_048_576.0);
        assert!(h.climbs);
    }
}
