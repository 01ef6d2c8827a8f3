//! reports/index.html: one line per run folder (and per comparison) found
//! in a reports folder, newest name last, each linking to its page.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::ReportError;
use crate::format::{self, DASH};
use crate::loaded::LoadedRun;
use crate::verdict::Banner;

#[derive(Serialize)]
struct IndexView {
    runs: Vec<RunRow>,
    comparisons: Vec<ComparisonRow>,
    skipped: Vec<String>,
}

#[derive(Serialize)]
struct RunRow {
    name: String,
    link: Option<String>,
    banner: Banner,
    scenario: String,
    started: String,
    peak: String,
    peak_percent: String,
    oom: String,
    gate: String,
}

#[derive(Serialize)]
struct ComparisonRow {
    name: String,
    link: Option<String>,
    runs: String,
}

/// Writes `reports_dir/index.html` listing the runs and comparisons in its
/// sub-folders, and returns its path.
pub fn render_index(reports_dir: &Path) -> Result<PathBuf, ReportError> {
    let entries = std::fs::read_dir(reports_dir).map_err(|e| ReportError::io(reports_dir, e))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut view = IndexView {
        runs: Vec::new(),
        comparisons: Vec::new(),
        skipped: Vec::new(),
    };
    for dir in dirs {
        let name = crate::loaded::file_name(&dir);
        let link = dir
            .join("index.html")
            .exists()
            .then(|| crate::compare::relative(reports_dir, &dir.join("index.html")));
        let marker = dir.join(crate::compare::MARKER);
        if marker.exists() {
            let runs = clw_run::bounded::read_capped(&marker, clw_run::bounded::JSON_CAP)
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| {
                    let names = v
                        .get("runs")?
                        .as_array()?
                        .iter()
                        .filter_map(|n| n.as_str())
                        .collect::<Vec<_>>();
                    Some(names.join(" vs "))
                })
                .unwrap_or_else(|| DASH.into());
            view.comparisons.push(ComparisonRow { name, link, runs });
            continue;
        }
        match LoadedRun::load(&dir) {
            Ok(run) => view.runs.push(row(&run, name, link)),
            Err(ReportError::NotARunFolder(_)) => {}
            Err(e) => view.skipped.push(format!("{name}: {e}")),
        }
    }
    let page = reports_dir.join("index.html");
    crate::page::write("index.html", &view, &page)?;
    Ok(page)
}

fn row(run: &LoadedRun, name: String, link: Option<String>) -> RunRow {
    let s = run.summary.as_ref();
    RunRow {
        name,
        link,
        banner: Banner::of(run),
        scenario: s
            .map(|s| s.scenario.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DASH.into()),
        started: s
            .map(|s| s.started_at.clone())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| DASH.into()),
        peak: format::bytes(run.peak_memory().map(|p| p.0)),
        peak_percent: format::percent(run.peak_percent()),
        oom: match run.oom_kill() {
            Some(Some(at)) => format!("at {}", format::format_duration(at)),
            Some(None) => "yes".into(),
            None => DASH.into(),
        },
        gate: match s.and_then(|s| s.passed) {
            Some(true) => "passed".into(),
            Some(false) => "failed".into(),
            None => DASH.into(),
        },
    }
}
