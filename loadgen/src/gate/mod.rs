//! `clw-cli gate RUN_DIR... --baseline FILE`: the CI regression gate.
//!
//! A run (or the median of several) passes when its own thresholds passed
//! (summary.json's `passed`: the leak verdict, the 80% rule, a dead server,
//! no successful request all fail it there) and no gated figure moved past
//! its baseline's tolerance. The result goes to the console, to JUnit XML
//! (one test case per threshold and per baseline metric) and to a Markdown
//! table, appended to `$GITHUB_STEP_SUMMARY` when CI sets it.
//!
//! Exit codes: 0 nothing regressed, 1 a threshold failed or a figure
//! regressed, 2 a missing or unreadable baseline or run.

mod junit;
mod markdown;
mod setup;

use std::path::{Path, PathBuf};

use clw_run::baseline::{Baseline, Comparison};
use clw_run::{files, RunSummary, ThresholdResult};

use crate::opts::GateOpts;
use crate::outcome::{usage, Error, Outcome};

/// One run folder read for the gate.
pub(crate) struct GatedRun {
    pub(crate) dir: PathBuf,
    pub(crate) summary: RunSummary,
}

/// Everything the gate decided, for the console, JUnit and Markdown.
pub(crate) struct GateResult {
    pub(crate) runs: Vec<GatedRun>,
    /// Every run's thresholds, tagged with the run folder when repeated.
    pub(crate) thresholds: Vec<(String, ThresholdResult)>,
    /// Runs that failed as a whole (not through a threshold): the reason.
    pub(crate) run_failures: Vec<(String, String)>,
    pub(crate) comparisons: Vec<Comparison>,
    pub(crate) setup_warnings: Vec<String>,
    pub(crate) baseline_path: PathBuf,
}

impl GateResult {
    pub(crate) fn passed(&self) -> bool {
        self.run_failures.is_empty()
            && self.thresholds.iter().all(|(_, t)| t.passed != Some(false))
            && self.comparisons.iter().all(|c| c.passed)
    }
}

/// Runs the gate.
pub(crate) fn gate(opts: GateOpts) -> Result<Outcome, Error> {
    let runs = read_runs(&opts.runs)?;
    if opts.update_baseline {
        let summaries: Vec<RunSummary> = runs.iter().map(|r| r.summary.clone()).collect();
        let measured_on = setup::measured_on(&summaries);
        let baseline = Baseline::from_runs(&summaries, measured_on);
        // One writer of the baseline's folder at a time.
        let parent = opts
            .baseline
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let _lock = crate::outcome::lock_folder(parent)?;
        baseline
            .write(&opts.baseline)
            .map_err(|e| Error::Output(e.to_string()))?;
        println!(
            "baseline {} written from {} run(s): {}",
            opts.baseline.display(),
            runs.len(),
            baseline
                .metrics
                .iter()
                .map(|(k, m)| format!("{k} {}", markdown::figure(k, m.value)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(Outcome {
            exit_code: 0,
            out_dir: None,
            passed: true,
        });
    }
    let baseline = Baseline::read(&opts.baseline).map_err(usage)?;
    let result = judge(runs, &baseline, &opts.baseline, opts.max_regression);
    print!("{}", markdown::console(&result));
    if let Some(path) = &opts.junit {
        write_file(path, junit::render(&result)?.as_bytes())?;
    }
    let table = markdown::table(&result);
    if let Some(path) = &opts.summary_md {
        write_file(path, table.as_bytes())?;
    }
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) {
        append(Path::new(&path), &table)?;
    }
    let passed = result.passed();
    Ok(Outcome {
        exit_code: if passed { 0 } else { 1 },
        out_dir: None,
        passed,
    })
}

/// The gate's decision, without I/O.
pub(crate) fn judge(
    runs: Vec<GatedRun>,
    baseline: &Baseline,
    baseline_path: &Path,
    max_regression: Option<f64>,
) -> GateResult {
    let summaries: Vec<RunSummary> = runs.iter().map(|r| r.summary.clone()).collect();
    let comparisons = baseline.compare(&summaries, max_regression);
    let many = runs.len() > 1;
    let tag = |r: &GatedRun| {
        if many {
            r.dir.display().to_string()
        } else {
            String::new()
        }
    };
    let thresholds = runs
        .iter()
        .flat_map(|r| {
            r.summary
                .thresholds
                .iter()
                .map(move |t| (tag(r), t.clone()))
        })
        .collect();
    let run_failures = runs
        .iter()
        .filter_map(|r| run_failure(&r.summary).map(|why| (r.dir.display().to_string(), why)))
        .collect();
    let setup_warnings = runs
        .first()
        .map(|r| {
            baseline
                .measured_on
                .differences(&clw_run::baseline::Setup::of(&r.summary))
        })
        .unwrap_or_default();
    GateResult {
        runs,
        thresholds,
        run_failures,
        comparisons,
        setup_warnings,
        baseline_path: baseline_path.to_path_buf(),
    }
}

/// Why a run fails the gate on its own, beyond its listed thresholds: it
/// did not finish, or it judged itself failed for a reason no threshold
/// names (a dead server, no successful request, an interruption). The
/// reason is the run's own `failures[]`, never a note: notes say what was
/// degraded ("1 samples could not read /proc"), failures say why it failed.
fn run_failure(s: &RunSummary) -> Option<String> {
    if !s.complete {
        return Some("the run did not finish (summary.json says complete: false)".into());
    }
    if !s.failures.is_empty() {
        return Some(s.failures.join("; "));
    }
    let thresholds_failed = s.thresholds.iter().any(|t| t.passed == Some(false));
    if s.passed == Some(false) && !thresholds_failed {
        return Some("the run failed (summary.json says passed: false)".into());
    }
    None
}

/// Run folders: each RUN_DIR holding summary.json, or a folder of them
/// (what `--repeat` writes), in name order.
fn read_runs(dirs: &[PathBuf]) -> Result<Vec<GatedRun>, Error> {
    let mut runs = Vec::new();
    for dir in dirs {
        if dir.join(files::SUMMARY).is_file() {
            runs.push(read_run(dir)?);
            continue;
        }
        let mut inner: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| usage(format!("cannot read run folder {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join(files::SUMMARY).is_file())
            .collect();
        if inner.is_empty() {
            return Err(usage(format!(
                "{} holds no summary.json (nor run folders that do)",
                dir.display()
            )));
        }
        inner.sort();
        for d in inner {
            runs.push(read_run(&d)?);
        }
    }
    Ok(runs)
}

fn read_run(dir: &Path) -> Result<GatedRun, Error> {
    let summary = RunSummary::read(&dir.join(files::SUMMARY)).map_err(crate::outcome::run_file)?;
    Ok(GatedRun {
        dir: dir.to_path_buf(),
        summary,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::Output(format!("cannot create {}: {e}", parent.display())))?;
    }
    clw_run::write_atomic(path, bytes)
        .map_err(|e| Error::Output(format!("cannot write {}: {e}", path.display())))
}

fn append(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::Output(format!("cannot append to {}: {e}", path.display())))
}

#[cfg(test)]
mod tests;
