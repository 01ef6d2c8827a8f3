//! Load that changes over time: the plan's [`Stages`], as pure functions of
//! the time since load start, so the engine, the console and the tests ask
//! the same questions of the same numbers.
//!
//! The level moves in a straight line over each stage, from the previous
//! stage's target (0 before the first) to its own (k6's `ramping-vus` and
//! `ramping-arrival-rate`):
//!
//! - closed model: virtual user `i` (from 0) runs while the level is above
//!   `i`, so [`Stages::users_at`] is the level rounded up. A user whose
//!   window closes finishes its current iteration and stops (its
//!   connection is closed); it starts again if a later stage needs it.
//! - open model: the level is the arrival rate; iteration `k` (from 0) is
//!   scheduled when the arrivals so far, the integral of the rate, reach
//!   `k` ([`Stages::arrival_s`]).

use crate::scenario::Stage;

/// Slack for comparing times and levels computed in floating point.
const EPS: f64 = 1e-9;

/// One stage on the run's clock.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Span {
    /// Seconds since load start.
    pub(crate) start_s: f64,
    pub(crate) end_s: f64,
    /// The level at the start (the previous stage's target) and at the end.
    pub(crate) from: f64,
    pub(crate) target: f64,
}

impl Span {
    fn length(&self) -> f64 {
        self.end_s - self.start_s
    }

    /// The level `t` seconds after load start, `t` within this stage.
    fn level(&self, t: f64) -> f64 {
        if self.length() <= EPS {
            return self.target;
        }
        let f = ((t - self.start_s) / self.length()).clamp(0.0, 1.0);
        self.from + (self.target - self.from) * f
    }

    /// Arrivals over the whole stage (open model).
    fn arrivals(&self) -> f64 {
        (self.from + self.target) / 2.0 * self.length()
    }
}

/// The stages of a run, laid out on its clock.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stages {
    spans: Vec<Span>,
}

impl Stages {
    pub(crate) fn new(stages: &[Stage]) -> Stages {
        let mut at = 0.0;
        let mut from = 0.0;
        let spans = stages
            .iter()
            .map(|s| {
                let span = Span {
                    start_s: at,
                    end_s: at + s.duration.as_secs_f64(),
                    from,
                    target: s.target,
                };
                at = span.end_s;
                from = s.target;
                span
            })
            .collect();
        Stages { spans }
    }

    pub(crate) fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The highest target: the virtual users a closed run needs.
    pub(crate) fn peak(&self) -> f64 {
        self.spans.iter().map(|s| s.target).fold(0.0, f64::max)
    }

    /// When the load first reaches its peak (seconds): the memory verdict
    /// judges the run from there (docs/loadgen.md, "Stages").
    pub(crate) fn peak_reached_s(&self) -> f64 {
        let peak = self.peak();
        self.spans
            .iter()
            .find(|s| s.target >= peak)
            .map_or(0.0, |s| s.end_s)
    }

    /// The stage running `t` seconds after load start (the last one from
    /// its end on; a zero-length stage is never current).
    pub(crate) fn index_at(&self, t: f64) -> usize {
        self.spans
            .iter()
            .position(|s| t < s.end_s && s.length() > EPS)
            .unwrap_or(self.spans.len().saturating_sub(1))
    }

    /// The level `t` seconds after load start: users (closed model) or
    /// iterations per second (open model).
    pub(crate) fn level_at(&self, t: f64) -> f64 {
        let i = self.index_at(t);
        self.spans.get(i).map_or(0.0, |s| s.level(t))
    }

    /// Virtual users running `t` seconds after load start (closed model):
    /// user `i` runs while the level is above `i`. The engine asks
    /// [`Stages::windows`] instead; this is their sum, for the tests.
    #[cfg(test)]
    pub(crate) fn users_at(&self, t: f64) -> u32 {
        (self.level_at(t) - EPS).ceil().max(0.0) as u32
    }

    /// When virtual user `vu` runs (closed model): `(start_s, end_s)`
    /// windows in order, the times the level is above `vu`.
    pub(crate) fn windows(&self, vu: u32) -> Vec<(f64, f64)> {
        let i = f64::from(vu);
        let mut out: Vec<(f64, f64)> = Vec::new();
        for s in self.spans.iter().filter(|s| s.length() > EPS) {
            let (a, b) = (s.from, s.target);
            let cross = |level: f64| s.start_s + (level - a) / (b - a) * s.length();
            let part = match (a > i, b > i) {
                (true, true) => (s.start_s, s.end_s),
                (false, false) => continue,
                (false, true) => (cross(i), s.end_s),
                (true, false) => (s.start_s, cross(i)),
            };
            match out.last_mut() {
                Some(last) if last.1 >= part.0 - EPS => last.1 = part.1,
                _ => out.push(part),
            }
        }
        out
    }

    /// When iteration `k` (from 0) is due, seconds after load start (open
    /// model): the time the arrivals so far reach `k`. `None` when the
    /// stages end first.
    pub(crate) fn arrival_s(&self, k: u64) -> Option<f64> {
        let mut left = k as f64;
        for s in self.spans.iter().filter(|s| s.length() > EPS) {
            let total = s.arrivals();
            if left > total + EPS {
                left -= total;
                continue;
            }
            // Arrivals `x` seconds into the stage: a·x + (b−a)·x²/(2d).
            // Solved for x in the form that stays exact when b = a.
            let (a, b, d) = (s.from, s.target, s.length());
            let x = if left <= EPS {
                // At the stage's start; a stage starting at rate 0 has its
                // first arrival at 0 too, as the integral is 0 there.
                0.0
            } else {
                let disc = (a * a + 2.0 * (b - a) * left / d).max(0.0);
                2.0 * left / (a + disc.sqrt())
            };
            if x.is_finite() && x <= d + EPS {
                return Some(s.start_s + x.min(d));
            }
            left -= total;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn stages(list: &[(u64, f64)]) -> Stages {
        let list: Vec<Stage> = list
            .iter()
            .map(|&(secs, target)| Stage {
                duration: Duration::from_secs(secs),
                target,
            })
            .collect();
        Stages::new(&list)
    }

    #[test]
    fn the_level_ramps_linearly_up_holds_and_down() {
        // 0 -> 10 over 10 s, hold 10 s, down to 4 over 3 s.
        let s = stages(&[(10, 10.0), (10, 10.0), (3, 4.0)]);
        let levels: Vec<f64> = [0.0, 2.5, 10.0, 15.0, 21.5, 23.0, 30.0]
            .iter()
            .map(|&t| s.level_at(t))
            .collect();
        assert_eq!(levels, [0.0, 2.5, 10.0, 10.0, 7.0, 4.0, 4.0]);
        let users: Vec<u32> = [0.0, 0.05, 2.5, 3.0, 9.99, 15.0, 21.5, 22.9]
            .iter()
            .map(|&t| s.users_at(t))
            .collect();
        assert_eq!(users, [0, 1, 3, 3, 10, 10, 7, 5]);
        assert_eq!(
            [
                s.index_at(0.0),
                s.index_at(10.0),
                s.index_at(22.0),
                s.index_at(99.0)
            ],
            [0, 1, 2, 2]
        );
        assert_eq!(s.peak(), 10.0);
        assert_eq!(s.peak_reached_s(), 10.0);
    }

    #[test]
    fn a_zero_length_stage_is_a_jump() {
        let s = stages(&[(5, 2.0), (0, 8.0), (5, 8.0)]);
        assert_eq!(s.users_at(4.9), 2);
        assert_eq!(s.users_at(5.1), 8);
        assert_eq!(s.index_at(5.0), 2, "the jump itself is never current");
        assert_eq!(s.spans()[2].from, 8.0);
        assert_eq!(s.peak_reached_s(), 5.0);
    }

    #[test]
    fn each_users_windows_agree_with_the_user_count() {
        let s = stages(&[(4, 4.0), (2, 4.0), (2, 0.0), (0, 3.0), (3, 3.0)]);
        // User 0 runs throughout: the level is 0 only at the instant of the jump.
        assert_eq!(s.windows(0), [(0.0, 11.0)]);
        assert_eq!(s.windows(1), [(1.0, 7.5), (8.0, 11.0)]);
        assert_eq!(s.windows(3), [(3.0, 6.5)]);
        assert!(s.windows(4).is_empty(), "the level never passes 4");
        // At any time, the users whose window is open are users_at(t).
        for tenth in 0..110 {
            let t = f64::from(tenth) / 10.0 + 0.05;
            let running = (0..5)
                .filter(|&vu| s.windows(vu).iter().any(|&(a, b)| a < t && t < b))
                .count() as u32;
            assert_eq!(running, s.users_at(t), "at {t} s");
        }
    }

    #[test]
    fn arrivals_follow_the_rate() {
        // A jump to a constant 4/s: k / 4.
        let flat = stages(&[(0, 4.0), (10, 4.0)]);
        let s: Vec<f64> = (0..5).map(|k| flat.arrival_s(k).unwrap()).collect();
        assert_eq!(s, [0.0, 0.25, 0.5, 0.75, 1.0]);
        // 0 -> 10/s over 10 s: 50 arrivals, the k-th at sqrt(2k) s.
        let ramp = stages(&[(10, 10.0), (5, 10.0)]);
        for k in [1u64, 8, 18, 50] {
            let t = ramp.arrival_s(k).unwrap();
            assert!((t - (2.0 * k as f64).sqrt()).abs() < 1e-9, "{k}: {t}");
        }
        // Then 10/s: arrival 60 is 1 s into the hold.
        assert!((ramp.arrival_s(60).unwrap() - 11.0).abs() < 1e-9);
        // 100 arrivals in all; the 100th is at the end, the 101st never.
        assert!((ramp.arrival_s(100).unwrap() - 15.0).abs() < 1e-9);
        assert_eq!(ramp.arrival_s(101), None);
        // Down from 10/s to 0 over 10 s: the rate falls, so the gaps grow.
        let down = stages(&[(0, 10.0), (10, 0.0)]);
        let times: Vec<f64> = (0..50).map(|k| down.arrival_s(k).unwrap()).collect();
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] > g[0]), "{gaps:?}");
        // Per second, the count of arrivals is the rate's mean over it.
        let per_second = |s: &Stages, second: f64| {
            (0..1000)
                .filter_map(|k| s.arrival_s(k))
                .filter(|&t| t >= second && t < second + 1.0)
                .count()
        };
        assert_eq!(per_second(&ramp, 4.0), 5, "mean rate over 4..5 s is 4.5/s");
        assert_eq!(per_second(&ramp, 12.0), 10);
    }
}
