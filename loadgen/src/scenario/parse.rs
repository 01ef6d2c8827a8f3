//! (in progress) TOML -> Scenario.
use std::path::Path;

use super::{Scenario, ScenarioError};

pub(crate) fn parse(_src: &str, _path: &Path) -> Result<Scenario, ScenarioError> {
    todo!("scenario parsing lands next")
}
