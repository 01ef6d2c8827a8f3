//! `[load]`: users, duration, ramp-up, model and `[[load.stages]]`.
//!
//! Stages follow k6: they replace `duration` and `ramp_up` (the load lasts
//! their sum), and each one's `target` is what the model counts: virtual
//! users in the closed model, iterations per second in the open model.
//! Giving a stage's quantity twice (`users` or `arrival_rate` beside the
//! stages) is a contradiction the file is told about, at the key.

use std::time::Duration;

use toml::Spanned;

use super::super::error::ScenarioError;
use super::super::model::{LoadDefaults, LoadModel, Stage};
use super::super::raw::{RawLoad, RawModel, RawScenario, RawStage};
use super::Compiler;

/// Most virtual users a stage may ask for (the engine runs one task and
/// one connection per user).
const MAX_STAGE_USERS: f64 = 1_000_000.0;

impl Compiler<'_> {
    pub(super) fn load(&self, raw: &RawScenario) -> Result<LoadDefaults, ScenarioError> {
        let l = &raw.load;
        let users = l.users.as_ref().map_or(Ok(10), |u| match *u.get_ref() {
            0 => Err(self.at(u, "`users` must be at least 1")),
            n => Ok(n),
        })?;
        let open = matches!(l.model.as_ref().map(|m| *m.get_ref()), Some(RawModel::Open));
        if let Some(stages) = &l.stages {
            return self.staged(l, stages, users, open);
        }
        let duration = l
            .duration
            .as_ref()
            .map_or(Ok(Duration::from_secs(60)), |d| match d.get_ref().0 {
                Duration::ZERO => Err(self.at(d, "`duration` must be more than 0")),
                v => Ok(v),
            })?;
        let ramp_up = l.ramp_up.as_ref().map_or(Duration::ZERO, |d| d.get_ref().0);
        if let Some(r) = l.ramp_up.as_ref().filter(|_| ramp_up > duration) {
            return Err(self.at(
                r,
                format!(
                    "`ramp_up` ({}) is longer than the load's `duration` ({}{})",
                    humantime::format_duration(ramp_up),
                    humantime::format_duration(duration),
                    if l.duration.is_none() {
                        ", the default"
                    } else {
                        ""
                    }
                ),
            ));
        }
        let model = match (open, &l.arrival_rate) {
            (false, None) => LoadModel::Closed,
            (false, Some(rate)) => {
                return Err(self.at(rate, "`arrival_rate` applies only to model = \"open\""))
            }
            (true, Some(rate)) if rate.get_ref().is_finite() && *rate.get_ref() > 0.0 => {
                LoadModel::Open {
                    arrival_rate: *rate.get_ref(),
                }
            }
            (true, Some(rate)) => {
                return Err(self.at(
                    rate,
                    "`arrival_rate` must be a positive number of iterations per second",
                ))
            }
            (true, None) => {
                let m = l.model.as_ref().expect("model is open");
                return Err(self.at(
                    m,
                    "model = \"open\" needs `arrival_rate` (iterations per second) or [[load.stages]]",
                ));
            }
        };
        Ok(LoadDefaults {
            users,
            duration,
            ramp_up,
            model,
            stages: Vec::new(),
        })
    }

    /// `[load]` with `[[load.stages]]`.
    // Long: one check per stage rule of docs/scenarios.md, each error pointing
    // at its place in the file.
    fn staged(
        &self,
        l: &RawLoad,
        raw: &Spanned<Vec<Spanned<RawStage>>>,
        users: u32,
        open: bool,
    ) -> Result<LoadDefaults, ScenarioError> {
        let what = if open {
            "iterations per second (model = \"open\")"
        } else {
            "virtual users (closed model)"
        };
        // The stages set the load's length and its level; the same thing
        // given twice is a contradiction, pointed at the second one.
        for (key, span) in [
            ("duration", l.duration.as_ref().map(Spanned::span)),
            ("ramp_up", l.ramp_up.as_ref().map(Spanned::span)),
        ] {
            if let Some(span) = span {
                return Err(self.src.error_at(
                    span.start,
                    format!("`{key}` cannot be set beside [[load.stages]]: the stages ramp the load and it lasts their sum; remove `{key}`"),
                ));
            }
        }
        if let (false, Some(u)) = (open, &l.users) {
            return Err(self.at(
                u,
                "`users` cannot be set beside [[load.stages]] in the closed model: each stage's `target` is the number of virtual users; remove `users` (in the open model `users` is the pool that serves the arrivals)",
            ));
        }
        if let Some(rate) = &l.arrival_rate {
            return Err(self.at(
                rate,
                if open {
                    "`arrival_rate` cannot be set beside [[load.stages]]: each stage's `target` is the arrival rate; remove `arrival_rate`"
                } else {
                    "`arrival_rate` applies only to model = \"open\""
                },
            ));
        }
        if raw.get_ref().is_empty() {
            return Err(self.at(raw, "`stages` is empty: give at least one stage, as [[load.stages]] tables with `duration` and `target`"));
        }
        let mut stages = Vec::with_capacity(raw.get_ref().len());
        for (i, stage) in raw.get_ref().iter().enumerate() {
            let n = i + 1;
            let target = *stage.get_ref().target.get_ref();
            let bad = if !target.is_finite() || target < 0.0 {
                Some(format!(
                    "stage {n}: `target` must be 0 or more {what}, found {target}"
                ))
            } else if !open && target.fract() != 0.0 {
                Some(format!(
                    "stage {n}: `target` must be a whole number of {what}, found {target}"
                ))
            } else if !open && target > MAX_STAGE_USERS {
                Some(format!("stage {n}: `target` of {target} virtual users is more than the {MAX_STAGE_USERS} a run supports"))
            } else {
                None
            };
            if let Some(message) = bad {
                return Err(self.at(&stage.get_ref().target, message));
            }
            stages.push(Stage {
                duration: stage.get_ref().duration.get_ref().0,
                target,
            });
        }
        let duration: Duration = stages.iter().map(|s| s.duration).sum();
        if duration.is_zero() {
            return Err(self.at(
                raw,
                "the stages last 0 s in all: at least one stage needs a `duration` above 0",
            ));
        }
        let peak = stages.iter().map(|s| s.target).fold(0.0, f64::max);
        if peak == 0.0 {
            return Err(self.at(
                raw,
                format!("every stage's `target` is 0: at least one must ask for some {what}"),
            ));
        }
        let (users, model) = if open {
            (users, LoadModel::Open { arrival_rate: peak })
        } else {
            (peak as u32, LoadModel::Closed)
        };
        Ok(LoadDefaults {
            users,
            duration,
            ramp_up: Duration::ZERO,
            model,
            stages,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::scenario::model::{LoadModel, Stage};
    use crate::scenario::{Scenario, ScenarioError};

    const STEPS: &str = "name = \"t\"\n[[steps]]\nmethod = \"GET\"\npath = \"/ready\"\n";

    fn parse(load: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(&format!("{STEPS}{load}"), Path::new("staged.toml"))
    }

    /// `(line, column, message)` of the error, lines counted from the
    /// `[load]` text (the 4 lines of steps come first).
    fn err(load: &str) -> (usize, usize, String) {
        match parse(load).expect_err("should not parse") {
            ScenarioError::Invalid {
                line,
                column,
                message,
                path,
            } => {
                assert_eq!(path, Path::new("staged.toml"));
                (line - 4, column, message)
            }
            other => panic!("unexpected {other}"),
        }
    }

    fn assert_err(load: &str, line: usize, column: usize, needle: &str) {
        let (l, c, m) = err(load);
        assert!(m.contains(needle), "`{m}` lacks `{needle}`");
        assert_eq!((l, c), (line, column), "message: {m}");
    }

    fn stage(secs: u64, target: f64) -> Stage {
        Stage {
            duration: Duration::from_secs(secs),
            target,
        }
    }

    #[test]
    fn closed_stages_set_the_duration_and_the_peak_users() {
        let s = parse(
            "[[load.stages]]\nduration = \"30s\"\ntarget = 50\n\
             [[load.stages]]\nduration = \"1m\"\ntarget = 50\n\
             [[load.stages]]\nduration = 10\ntarget = 0\n",
        )
        .unwrap();
        let d = &s.defaults;
        assert_eq!(d.stages, [stage(30, 50.0), stage(60, 50.0), stage(10, 0.0)]);
        assert_eq!(
            d.duration,
            Duration::from_secs(100),
            "the sum of the stages"
        );
        assert_eq!((d.users, d.ramp_up), (50, Duration::ZERO));
        assert_eq!(d.model, LoadModel::Closed);
    }

    // Long: one scenario file and every figure resolved from it.
    #[test]
    fn open_stages_are_arrival_rates_and_users_is_the_pool() {
        let s = parse(
            "[load]\nmodel = \"open\"\nusers = 40\n\
             stages = [{ duration = \"10s\", target = 12.5 }, { duration = \"0s\", target = 200 }, { duration = \"5s\", target = 200 }]\n",
        )
        .unwrap();
        let d = &s.defaults;
        assert_eq!(
            d.stages,
            [stage(10, 12.5), stage(0, 200.0), stage(5, 200.0)]
        );
        assert_eq!(d.users, 40);
        assert_eq!(
            d.model,
            LoadModel::Open {
                arrival_rate: 200.0
            }
        );
        assert_eq!(d.duration, Duration::from_secs(15));
    }

    #[test]
    fn bad_stages_point_at_the_stage() {
        // Line 1 is the first line of the [load] text.
        let two = "[[load.stages]]\nduration = \"5s\"\ntarget = 5\n[[load.stages]]\n";
        assert_err(
            &format!("{two}duration = \"5s\"\ntarget = 2.5\n"),
            6,
            10,
            "stage 2: `target` must be a whole number of virtual users",
        );
        assert_err(
            &format!("{two}duration = \"5s\"\ntarget = -1\n"),
            6,
            10,
            "stage 2: `target` must be 0 or more",
        );
        assert_err(
            &format!("{two}duration = \"soon\"\ntarget = 1\n"),
            5,
            12,
            "invalid duration \"soon\"",
        );
        assert_err(
            &format!("{two}duration = \"5s\"\n"),
            4,
            1,
            "missing field `target`",
        );
        assert_err(
            &format!("{two}duration = \"5s\"\ntarget = 1\nusers = 3\n"),
            7,
            1,
            "unknown field `users`, expected `duration` or `target`",
        );
        assert_err("[load]\nstages = []\n", 2, 10, "`stages` is empty");
        assert_err(
            "[load]\nstages = [{ duration = 0, target = 5 }]\n",
            2,
            10,
            "last 0 s in all",
        );
        assert_err(
            "[load]\nstages = [{ duration = 5, target = 0 }]\n",
            2,
            10,
            "every stage's `target` is 0",
        );
    }

    #[test]
    fn what_the_stages_set_cannot_be_set_twice() {
        let stages = "stages = [{ duration = 5, target = 5 }]\n";
        assert_err(
            &format!("[load]\nduration = \"1m\"\n{stages}"),
            2,
            12,
            "`duration` cannot be set beside [[load.stages]]",
        );
        assert_err(
            &format!("[load]\n{stages}ramp_up = 3\n"),
            3,
            11,
            "remove `ramp_up`",
        );
        assert_err(
            &format!("[load]\nusers = 9\n{stages}"),
            2,
            9,
            "`users` cannot be set beside [[load.stages]] in the closed model",
        );
        assert_err(
            &format!("[load]\nmodel = \"open\"\narrival_rate = 9\n{stages}"),
            3,
            16,
            "each stage's `target` is the arrival rate",
        );
    }

    #[test]
    fn a_ramp_up_longer_than_the_duration_is_refused_in_the_file() {
        assert_err(
            "[load]\nduration = \"5s\"\nramp_up = \"10s\"\n",
            3,
            11,
            "`ramp_up` (10s) is longer than the load's `duration` (5s)",
        );
        assert_err("[load]\nramp_up = \"2m\"\n", 2, 11, "(1m, the default)");
    }
}
