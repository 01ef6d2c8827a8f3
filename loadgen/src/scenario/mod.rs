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
//! each iteration: flow = scenario.pick_flow(&rng);
//!     idx = scenario.users.pick_index(vu, &rng); render users.username / users.password
//!     for step in flow.steps, step.repeat times:
//!         render step.path / headers / body with a RenderCtx into reused buffers
//!         send; if let Some(i) = step.reauth_on(status) { re-run flow.steps[i], retry }
//!         if step.expect.contains(status) { capture_into(&step.captures, body, &mut vars) }
//!         sleep step.think_time
//! ```
// The engine consumes this API as it lands; until every item is wired up
// some are only used by tests.
#![allow(dead_code, unused_imports)]

mod body;
mod error;
mod model;
mod parse;
mod raw;
mod rng;
mod template;
mod vars;

use std::path::Path;

pub use error::ScenarioError;
pub(crate) use model::{
    Flow, LoadDefaults, LoadModel, Method, Scenario, StatusSet, Step, Threshold, ThresholdKind,
    UserPick, UserPool,
};
pub(crate) use rng::Rng;
pub(crate) use template::{RenderCtx, Template};
pub(crate) use vars::{capture_into, Capture, CaptureError, Slot, VarStore};

impl Scenario {
    /// Read and compile the scenario file at `path`.
    pub(crate) fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::parse(&text, path)
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
pub struct Summary {
    pub name: String,
    /// `(flow name, weight, step names)` per flow.
    pub flows: Vec<(String, u32, Vec<String>)>,
    /// Captured variable names.
    pub variables: Vec<String>,
    /// Threshold names with their limits, e.g. `peak_rss_percent <= 80`.
    pub thresholds: Vec<String>,
}

impl std::fmt::Display for Summary {
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
pub fn check_file(path: &Path) -> Result<Summary, ScenarioError> {
    let s = Scenario::load(path)?;
    Ok(Summary {
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
        thresholds: s
            .thresholds
            .iter()
            .map(|t| {
                let op = if t.kind.is_minimum() { ">=" } else { "<=" };
                format!("{} {op} {}", t.kind.as_str(), t.limit)
            })
            .collect(),
    })
}
