//! The load's shape, resolved from the scenario's `[load]` and the command
//! line: how many users, for how long, ramped how, in which model, and
//! the stages when the load changes over time.
//!
//! The rules follow k6 (docs/loadgen.md, "Stages"): flags override the
//! file key by key; stages replace `duration` and `ramp_up`; `--duration`
//! on the command line replaces a file's stages by a constant load (k6's
//! `--duration` replaces a script's `stages` the same way), which is said
//! on the console and in summary.json's notes. A flag that contradicts the
//! stages without replacing them is an error naming the file and the flag.

use std::path::Path;
use std::time::Duration;

use super::stages::Stages;
use crate::scenario::{LoadDefaults, LoadModel, Stage};

/// The load flags of `clw-cli auth load-test`, as given (None: not given).
#[derive(Debug, Clone, Default)]
pub(crate) struct LoadFlags {
    pub(crate) users: Option<u32>,
    pub(crate) duration: Option<Duration>,
    pub(crate) ramp_up: Option<Duration>,
    pub(crate) arrival_rate: Option<f64>,
    /// `--stage DURATION:TARGET`, in order; empty when not given.
    pub(crate) stages: Vec<Stage>,
}

/// What the engine runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shape {
    /// Virtual users: the most that run at once (closed model) or the pool
    /// serving the arrivals (open model).
    pub(crate) users: u32,
    /// The load's length; with stages, their sum.
    pub(crate) duration: Duration,
    /// Users start evenly over this time (zero with stages).
    pub(crate) ramp_up: Duration,
    /// With stages in the open model, `arrival_rate` is their peak.
    pub(crate) model: LoadModel,
    pub(crate) stages: Option<Stages>,
    /// What the user should know about how flags and file combined.
    pub(crate) notes: Vec<String>,
}

impl Shape {
    /// Until when (seconds since load start) memory is not judged: the
    /// ramp-up, or with stages the time the load first reaches its peak.
    pub(crate) fn warm_up(&self) -> Duration {
        match &self.stages {
            Some(stages) => Duration::from_secs_f64(stages.peak_reached_s()),
            None => self.ramp_up,
        }
    }
}

fn human(d: Duration) -> humantime::FormattedDuration {
    humantime::format_duration(d)
}

/// A load the flags and the scenario's `[load]` cannot make together (bad
/// usage, exit 2): the message says which flags clash and what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct ShapeError(String);

impl From<&str> for ShapeError {
    fn from(message: &str) -> ShapeError {
        ShapeError(message.to_string())
    }
}

/// Combine the scenario file's `[load]` (`file` names it in messages) with
/// the flags; the error is a usage error's message.
// Long: the rules combining flags with `[load]` (docs/loadgen.md, Stages),
// one check per rule in the documented order.
pub(crate) fn resolve(file: &Path, d: &LoadDefaults, f: &LoadFlags) -> Result<Shape, ShapeError> {
    if !f.stages.is_empty() {
        let d = flag_stages(d, f)?;
        let f = LoadFlags {
            stages: Vec::new(),
            ..f.clone()
        };
        return resolve(file, &d, &f);
    }
    let file = file.display();
    if f.users == Some(0) {
        return Err(ShapeError::from("--concurrent-users must be at least 1"));
    }
    if f.duration.is_some_and(|d| d.is_zero()) {
        return Err(ShapeError::from("--duration must be above 0"));
    }
    if !d.stages.is_empty() && f.duration.is_none() {
        let stages = Stages::new(&d.stages);
        let open = matches!(d.model, LoadModel::Open { .. });
        let replace = "or add --duration to replace the stages by a constant load";
        let contradiction = match (open, f) {
            (_, LoadFlags { ramp_up: Some(_), .. }) => Some(format!(
                "{file} sets its load by [[load.stages]], which ramp by themselves: drop --ramp-up, {replace}"
            )),
            (false, LoadFlags { users: Some(_), .. }) => Some(format!(
                "{file} sets the virtual users stage by stage ([[load.stages]] targets, peak {}): drop --concurrent-users, {replace} of --concurrent-users users",
                stages.peak()
            )),
            (false, LoadFlags { arrival_rate: Some(_), .. }) => Some(format!(
                "{file}'s [[load.stages]] count virtual users (closed model), not arrivals: drop --arrival-rate, {replace} at --arrival-rate"
            )),
            (true, LoadFlags { arrival_rate: Some(_), .. }) => Some(format!(
                "{file} sets the arrival rate stage by stage ([[load.stages]] targets, peak {}/s): drop --arrival-rate, {replace} at --arrival-rate",
                stages.peak()
            )),
            _ => None,
        };
        if let Some(message) = contradiction {
            return Err(ShapeError(message));
        }
        return Ok(Shape {
            users: f.users.unwrap_or(d.users),
            duration: d.duration,
            ramp_up: Duration::ZERO,
            model: d.model,
            stages: Some(stages),
            notes: Vec::new(),
        });
    }
    let mut notes = Vec::new();
    if !d.stages.is_empty() {
        notes.push(format!(
            "--duration replaces the [[load.stages]] of {file} (as k6's --duration replaces a script's stages): a constant load for {}",
            human(f.duration.unwrap_or_default())
        ));
    }
    let users = f.users.unwrap_or(d.users);
    let duration = f.duration.unwrap_or(d.duration);
    let ramp_up = f.ramp_up.unwrap_or(d.ramp_up);
    if ramp_up > duration {
        return Err(ShapeError(match (f.ramp_up.is_some(), f.duration.is_some()) {
            (false, _) => format!(
                "{file} ramps up over {} ([load] ramp_up), longer than --duration {}: give a --duration of at least {}, or --ramp-up {} or shorter",
                human(ramp_up),
                human(duration),
                human(ramp_up),
                human(duration)
            ),
            (true, false) => format!(
                "--ramp-up {} is longer than the {} load {file} sets ([load] duration, or its default): give a --duration of at least {}, or a shorter --ramp-up",
                human(ramp_up),
                human(duration),
                human(ramp_up)
            ),
            (true, true) => format!(
                "--ramp-up ({}) is longer than --duration ({})",
                human(ramp_up),
                human(duration)
            ),
        }));
    }
    let model = match (f.arrival_rate, d.model) {
        (Some(arrival_rate), _) => LoadModel::Open { arrival_rate },
        (None, model) => model,
    };
    Ok(Shape {
        users,
        duration,
        ramp_up,
        model,
        stages: None,
        notes,
    })
}

/// The scenario's `[load]` with `--stage` in place of its stages,
/// duration and ramp-up (k6's `--stage` replaces a script's `stages` the
/// same way); the flags that would contradict them are refused here.
fn flag_stages(d: &LoadDefaults, f: &LoadFlags) -> Result<LoadDefaults, ShapeError> {
    if f.duration.is_some() || f.ramp_up.is_some() {
        return Err(ShapeError::from("--stage sets the load's length and ramp: give --stage or --duration/--ramp-up, not both"));
    }
    if f.arrival_rate.is_some() {
        return Err(ShapeError::from("--stage with --arrival-rate: the stages' targets are the rate in the open model; set model = \"open\" in the scenario and drop --arrival-rate"));
    }
    let open = matches!(d.model, LoadModel::Open { .. });
    if !open && f.users.is_some() {
        return Err(ShapeError::from(
            "--stage sets the virtual users stage by stage (closed model): drop --concurrent-users",
        ));
    }
    for (i, s) in f.stages.iter().enumerate() {
        if !open && s.target.fract() != 0.0 {
            return Err(ShapeError(format!(
                "--stage {}: the target {} is not a whole number of virtual users (closed model)",
                i + 1,
                s.target
            )));
        }
    }
    let duration: Duration = f.stages.iter().map(|s| s.duration).sum();
    let peak = f.stages.iter().map(|s| s.target).fold(0.0, f64::max);
    if duration.is_zero() || peak == 0.0 {
        return Err(ShapeError::from("--stage: the stages need some time (a duration above 0) and some load (a target above 0)"));
    }
    Ok(LoadDefaults {
        users: if open { d.users } else { peak as u32 },
        duration,
        ramp_up: Duration::ZERO,
        model: if open {
            LoadModel::Open { arrival_rate: peak }
        } else {
            LoadModel::Closed
        },
        stages: f.stages.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stage;

    fn defaults(users: u32, duration: u64, ramp_up: u64) -> LoadDefaults {
        LoadDefaults {
            users,
            duration: Duration::from_secs(duration),
            ramp_up: Duration::from_secs(ramp_up),
            model: LoadModel::Closed,
            stages: Vec::new(),
        }
    }

    fn staged(open: bool) -> LoadDefaults {
        let stages = vec![
            Stage {
                duration: Duration::from_secs(10),
                target: 20.0,
            },
            Stage {
                duration: Duration::from_secs(20),
                target: 20.0,
            },
        ];
        LoadDefaults {
            users: if open { 8 } else { 20 },
            duration: Duration::from_secs(30),
            ramp_up: Duration::ZERO,
            model: if open {
                LoadModel::Open { arrival_rate: 20.0 }
            } else {
                LoadModel::Closed
            },
            stages,
        }
    }

    fn secs(s: u64) -> Option<Duration> {
        Some(Duration::from_secs(s))
    }

    const FILE: &str = "scenarios/mine.toml";

    /// As the phase reads it: the message.
    fn resolve(d: &LoadDefaults, f: LoadFlags) -> Result<Shape, String> {
        super::resolve(Path::new(FILE), d, &f).map_err(|e| e.to_string())
    }

    #[test]
    fn a_ramp_up_from_the_file_longer_than_duration_names_the_file_and_the_flags() {
        let err = resolve(
            &defaults(10, 60, 10),
            LoadFlags {
                duration: secs(2),
                ..LoadFlags::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            "scenarios/mine.toml ramps up over 10s ([load] ramp_up), longer than --duration 2s: give a --duration of at least 10s, or --ramp-up 2s or shorter"
        );
        let err = resolve(
            &defaults(10, 5, 0),
            LoadFlags {
                ramp_up: secs(9),
                ..LoadFlags::default()
            },
        )
        .unwrap_err();
        assert!(
            err.starts_with("--ramp-up 9s is longer than the 5s load scenarios/mine.toml sets"),
            "{err}"
        );
        // Either flag fixes it.
        for flags in [
            LoadFlags {
                duration: secs(10),
                ..LoadFlags::default()
            },
            LoadFlags {
                duration: secs(2),
                ramp_up: secs(1),
                ..LoadFlags::default()
            },
        ] {
            assert!(resolve(&defaults(10, 60, 10), flags).is_ok());
        }
    }

    #[test]
    fn flags_override_the_file_key_by_key() {
        let s = resolve(
            &defaults(10, 60, 5),
            LoadFlags {
                users: Some(3),
                arrival_rate: Some(50.0),
                ..LoadFlags::default()
            },
        )
        .unwrap();
        assert_eq!(
            (s.users, s.duration, s.ramp_up),
            (3, Duration::from_secs(60), Duration::from_secs(5))
        );
        assert_eq!(s.model, LoadModel::Open { arrival_rate: 50.0 });
        assert_eq!((&s.stages, s.notes.len()), (&None, 0));
        assert_eq!(s.warm_up(), Duration::from_secs(5));
    }

    #[test]
    fn stages_run_unless_duration_replaces_them() {
        let s = resolve(&staged(false), LoadFlags::default()).unwrap();
        assert_eq!((s.users, s.duration), (20, Duration::from_secs(30)));
        assert_eq!(s.stages.as_ref().map(|s| s.spans().len()), Some(2));
        assert_eq!(
            s.warm_up(),
            Duration::from_secs(10),
            "judged from the peak on"
        );
        // The open model's pool may be set beside its stages.
        let s = resolve(
            &staged(true),
            LoadFlags {
                users: Some(50),
                ..LoadFlags::default()
            },
        )
        .unwrap();
        assert_eq!((s.users, s.stages.is_some()), (50, true));
        // --duration: a constant load instead, said in a note.
        let s = resolve(
            &staged(false),
            LoadFlags {
                duration: secs(5),
                users: Some(4),
                ..LoadFlags::default()
            },
        )
        .unwrap();
        assert_eq!(
            (s.users, s.duration, s.stages),
            (4, Duration::from_secs(5), None)
        );
        assert!(
            s.notes[0].contains("--duration replaces the [[load.stages]] of scenarios/mine.toml"),
            "{:?}",
            s.notes
        );
    }

    #[test]
    fn stage_flags_replace_the_files_load() {
        let flags = LoadFlags {
            stages: vec![
                Stage {
                    duration: Duration::from_secs(5),
                    target: 4.0,
                },
                Stage {
                    duration: Duration::from_secs(10),
                    target: 4.0,
                },
            ],
            ..LoadFlags::default()
        };
        // Over a constant file and over a staged one alike.
        for d in [defaults(10, 60, 5), staged(false)] {
            let s = resolve(&d, flags.clone()).unwrap();
            assert_eq!(
                (s.users, s.duration, s.ramp_up),
                (4, Duration::from_secs(15), Duration::ZERO)
            );
            assert_eq!(s.stages.map(|s| s.peak()), Some(4.0));
        }
        // The open model's pool stays the file's or --concurrent-users.
        let s = resolve(
            &staged(true),
            LoadFlags {
                users: Some(30),
                ..flags.clone()
            },
        )
        .unwrap();
        assert_eq!(
            (s.users, s.model),
            (30, LoadModel::Open { arrival_rate: 4.0 })
        );
        let refused = [
            (
                LoadFlags {
                    users: Some(3),
                    ..flags.clone()
                },
                "drop --concurrent-users",
            ),
            (
                LoadFlags {
                    duration: secs(3),
                    ..flags.clone()
                },
                "not both",
            ),
            (
                LoadFlags {
                    arrival_rate: Some(3.0),
                    ..flags.clone()
                },
                "drop --arrival-rate",
            ),
        ];
        for (f, needle) in refused {
            let err = resolve(&defaults(10, 60, 0), f).unwrap_err();
            assert!(err.contains(needle), "{err}");
        }
        let mut half = flags.clone();
        half.stages[0].target = 2.5;
        let err = resolve(&defaults(10, 60, 0), half).unwrap_err();
        assert!(
            err.contains("--stage 1: the target 2.5 is not a whole number"),
            "{err}"
        );
    }

    #[test]
    fn flags_that_contradict_the_stages_are_refused_naming_file_and_flag() {
        let cases = [
            (
                false,
                LoadFlags {
                    users: Some(5),
                    ..LoadFlags::default()
                },
                "drop --concurrent-users",
            ),
            (
                false,
                LoadFlags {
                    ramp_up: secs(5),
                    ..LoadFlags::default()
                },
                "drop --ramp-up",
            ),
            (
                false,
                LoadFlags {
                    arrival_rate: Some(5.0),
                    ..LoadFlags::default()
                },
                "drop --arrival-rate",
            ),
            (
                true,
                LoadFlags {
                    arrival_rate: Some(5.0),
                    ..LoadFlags::default()
                },
                "peak 20/s): drop --arrival-rate",
            ),
        ];
        for (open, flags, needle) in cases {
            let err = resolve(&staged(open), flags).unwrap_err();
            assert!(err.starts_with(FILE) && err.contains(needle), "{err}");
            assert!(err.contains("or add --duration"), "{err}");
        }
    }
}
