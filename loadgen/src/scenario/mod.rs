//! Load scenarios: TOML files in `scenarios/` that say what virtual users
//! do (see docs/scenarios.md for the format).
//!
//! A file is parsed and compiled once, up front: unknown keys, bad
//! templates and undefined variables are reported as `path:line:column:
//! message` before any load starts (the engine exits 2), and the engine
//! gets templates it can render per request without allocating or looking
//! anything up by name.
//!
//! The engine's loop, per virtual user:
//! ```text
//! let rng = Rng::for_vu(seed, vu); let mut vars = VarStore::new(scenario.vars.len());
//! each iteration: flow = &scenario.flows[scenario.pick_flow_index(&rng)];
//!     idx = scenario.users.pick_index(vu, &rng); render users.username / users.password
//!     for step in flow.steps, step.repeat times:
//!         render step.path / headers / body with a RenderCtx into reused buffers
//!         send; if let Some(i) = step.reauth_on(status) { re-run flow.steps[i], retry }
//!         if step.expect.contains(status) { capture_into(&step.captures, body, &mut vars) }
//!         sleep step.think_time
//! ```

mod body;
mod capture;
mod error;
mod header_flag;
mod model;
mod parse;
mod raw;
mod rng;
mod template;
mod vars;

use std::path::Path;

/// The shipped scenarios, compiled in (see [`Scenario::load`]).
pub(crate) const BUILTIN: [(&str, &str); 7] = [
    (
        "login-storm",
        include_str!("../../../scenarios/login-storm.toml"),
    ),
    (
        "steady-sessions",
        include_str!("../../../scenarios/steady-sessions.toml"),
    ),
    (
        "large-claims",
        include_str!("../../../scenarios/large-claims.toml"),
    ),
    (
        "session-churn",
        include_str!("../../../scenarios/session-churn.toml"),
    ),
    ("expiry", include_str!("../../../scenarios/expiry.toml")),
    (
        "ready-only",
        include_str!("../../../scenarios/ready-only.toml"),
    ),
    (
        "capacity-steps",
        include_str!("../../../scenarios/capacity-steps.toml"),
    ),
];

pub(crate) use capture::{capture_into, Reply};
pub use error::ScenarioError;
pub use header_flag::HeaderFlag;
#[cfg(test)]
pub(crate) use model::Method;
pub(crate) use model::{LoadDefaults, LoadModel, Scenario, Stage, Step};
pub(crate) use rng::Rng;
pub(crate) use template::RenderCtx;
pub(crate) use vars::VarStore;

impl Scenario {
    /// Read and compile the scenario file at `path`.
    /// Loads a scenario file. A missing `NAME`, `NAME.toml` or
    /// `scenarios/NAME.toml` falls back to the built-in scenario of that
    /// name, so the binary works outside a checkout of this repository.
    pub(crate) fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Scenario::parse(&text, path),
            Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .map(|n| n.strip_suffix(".toml").unwrap_or(n))
                    .unwrap_or_default();
                let in_scenarios_dir = match path.parent() {
                    None => true,
                    Some(dir) => {
                        dir.as_os_str().is_empty()
                            || dir.file_name().is_some_and(|d| d == "scenarios")
                    }
                };
                match BUILTIN
                    .iter()
                    .find(|(n, _)| *n == name)
                    .filter(|_| in_scenarios_dir)
                {
                    Some((name, src)) => {
                        Scenario::parse(src, Path::new(&format!("builtin:{name}.toml")))
                    }
                    None => Err(ScenarioError::NotFound {
                        path: path.to_path_buf(),
                        name: name.to_string(),
                    }),
                }
            }
            Err(source) => Err(ScenarioError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Compile scenario source `src`; `path` is only used in messages and
    /// kept in `Scenario::path`.
    pub(crate) fn parse(src: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        parse::parse(src, path)
    }
}

/// What `check_file` found, for `clw-cli` to print when asked to validate a
/// scenario without running it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioOutline {
    pub name: String,
    /// `(flow name, weight, step names)` per flow.
    pub flows: Vec<(String, u32, Vec<String>)>,
    /// Captured variable names.
    pub variables: Vec<String>,
    /// The thresholds as rules, e.g. `peak_rss_percent < 80`.
    pub thresholds: Vec<String>,
}

impl std::fmt::Display for ScenarioOutline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "scenario {}", self.name)?;
        for (name, weight, steps) in &self.flows {
            writeln!(f, "  flow {name} (weight {weight}): {}", steps.join(" -> "))?;
        }
        if !self.variables.is_empty() {
            writeln!(f, "  captures: {}", self.variables.join(", "))?;
        }
        for t in &self.thresholds {
            writeln!(f, "  threshold {t}")?;
        }
        Ok(())
    }
}

/// Load and compile a scenario file and summarise it: the public entry
/// point for validating scenarios (tests, `clw-cli` checks).
pub fn check_file(path: &Path) -> Result<ScenarioOutline, ScenarioError> {
    Scenario::load(path).map(|s| summarise(&s))
}

/// Compile scenario source text and summarise it, as [`check_file`] does
/// for a file; `path` only names the source in errors. The fuzz target
/// (fuzz/) feeds arbitrary text here: any input must give a summary or an
/// error, never a panic.
pub fn check_str(src: &str, path: &Path) -> Result<ScenarioOutline, ScenarioError> {
    Scenario::parse(src, path).map(|s| summarise(&s))
}

fn summarise(s: &Scenario) -> ScenarioOutline {
    ScenarioOutline {
        name: s.name.clone(),
        flows: s
            .flows
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    f.weight,
                    f.steps.iter().map(|st| st.name.clone()).collect(),
                )
            })
            .collect(),
        variables: s.vars.clone(),
        thresholds: s.thresholds.iter().map(|t| t.to_string()).collect(),
    }
}

#[cfg(test)]
mod shipped_tests {
    //! The scenarios in `scenarios/` compile and have the traffic shape
    //! their comments promise.
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn load(name: &str) -> Scenario {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(format!("{name}.toml"));
        Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn check_str_compiles_text_as_check_file_compiles_the_file() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios/expiry.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            check_str(&text, &path).unwrap_or_else(|e| panic!("{e}")),
            check_file(&path).unwrap_or_else(|e| panic!("{e}"))
        );
        let err = check_str("name = 1\n", Path::new("inline.toml")).unwrap_err();
        assert!(err.to_string().contains("inline.toml"), "{err}");
    }

    fn step_names(s: &Scenario) -> Vec<&str> {
        s.steps().map(|st| st.name.as_str()).collect()
    }

    #[test]
    fn every_shipped_scenario_compiles_and_checks() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scenarios");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .map(|p| {
                let summary = check_file(&p).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(
                    Some(summary.name.as_str()),
                    p.file_stem().and_then(|s| s.to_str()),
                    "name matches file"
                );
                assert!(
                    !summary.thresholds.is_empty(),
                    "{} has thresholds",
                    summary.name
                );
                summary.name
            })
            .collect();
        names.sort();
        for required in [
            "capacity-steps",
            "expiry",
            "large-claims",
            "login-storm",
            "ready-only",
            "session-churn",
            "steady-sessions",
        ] {
            assert!(
                names.iter().any(|n| n == required),
                "scenarios/{required}.toml is missing"
            );
        }
    }

    #[test]
    fn login_storm_logs_in_every_iteration_and_never_out() {
        let s = load("login-storm");
        assert_eq!(step_names(&s), ["login", "validate"]);
        assert_eq!(
            (s.defaults.users, s.defaults.duration),
            (100, Duration::from_secs(300))
        );
        assert!(s
            .steps()
            .all(|st| st.path.as_static() != Some(b"/auth/logout")));
    }

    #[test]
    fn steady_sessions_refreshes_and_logs_out() {
        let s = load("steady-sessions");
        assert_eq!(
            step_names(&s),
            ["login", "validate", "refresh", "validate", "logout"]
        );
        let refresh = s.steps().nth(2).unwrap();
        assert_eq!(refresh.reauth, Some(0), "a refused refresh logs in again");
        assert_eq!(s.thresholds.len(), 3);
    }

    #[test]
    fn large_claims_sends_exactly_4_kib_of_claims() {
        let s = load("large-claims");
        let login = &s.flows[0].steps[0];
        let vars = VarStore::new(s.vars.len());
        let rng = Rng::for_vu(0, 0);
        let ctx = RenderCtx {
            vu: 0,
            iter: 0,
            user_index: 0,
            user: b"user-0",
            password: b"clw-load-test",
            vars: &vars,
            rng: &rng,
            host: b"127.0.0.1:8443",
        };
        let mut body = Vec::new();
        login
            .body
            .as_ref()
            .unwrap()
            .template
            .render(&ctx, &mut body);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["claims"].to_string().len(), 4096);
    }

    #[test]
    fn session_churn_weights_flows_nine_to_one() {
        let s = load("session-churn");
        let w: Vec<_> = s
            .flows
            .iter()
            .map(|f| (f.name.as_str(), f.weight))
            .collect();
        assert_eq!(w, [("login-logout", 9), ("login-refresh-logout", 1)]);
        assert!(s
            .flows
            .iter()
            .all(|f| f.steps.last().unwrap().name == "logout"));
    }

    #[test]
    fn expiry_outwaits_a_5s_session_and_expects_401() {
        let s = load("expiry");
        let last = s.flows[0].steps.last().unwrap();
        assert!(last.expect.contains(401) && !last.expect.contains(200));
        assert_eq!(
            last.reauth_on(401),
            None,
            "an expected 401 does not trigger a new login"
        );
        assert!(s.steps().map(|st| st.think_time).sum::<Duration>() > Duration::from_secs(5));
    }

    #[test]
    fn capacity_steps_steps_login_storm_users_up_holding_each_level() {
        let s = load("capacity-steps");
        assert_eq!(step_names(&s), step_names(&load("login-storm")));
        let d = &s.defaults;
        let targets: Vec<f64> = d.stages.iter().map(|st| st.target).collect();
        assert_eq!(
            targets,
            [25.0, 25.0, 50.0, 50.0, 100.0, 100.0, 200.0, 200.0]
        );
        // Every level is held long enough for the cache to settle.
        for pair in d.stages.chunks(2) {
            assert_eq!(pair[0].target, pair[1].target, "a ramp then a hold");
            assert!(pair[1].duration >= Duration::from_secs(30));
        }
        assert_eq!((d.users, d.duration), (200, Duration::from_secs(240)));
    }

    #[test]
    fn ready_only_touches_only_ready() {
        let s = load("ready-only");
        assert!(s
            .steps()
            .all(|st| st.path.as_static() == Some(b"/ready") && st.body.is_none()));
        assert!(s.vars.is_empty());
    }
}
