//! clw-report: charts and one self-contained HTML page per run folder
//! (docs/run-folder.md), side-by-side comparisons of runs, and an index of
//! the runs in a reports folder.
//!
//! Everything is recomputed from the run folder's files, so a report can be
//! re-rendered at any time, including for a run whose server or load
//! generator was killed half-way: damaged input becomes a notice on the
//! page, not a failure.

mod chart;
mod compare;
mod error;
mod errors;
/// Synthetic run folders for tests and demos (the `fixtures` feature).
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
mod font;
mod format;
mod growth;
mod index;
mod latency;
mod loaded;
mod page;
mod samples;
mod stages;
mod verdict;
mod view;

use std::path::{Path, PathBuf};

pub use compare::render_comparison;
pub use error::ReportError;
pub use index::render_index;

/// What a render wrote, and what it had to say about its input.
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    /// The HTML page (`index.html`).
    pub page: PathBuf,
    /// Every file written: charts (SVG and PNG) and the page.
    pub files: Vec<PathBuf>,
    /// Things a reader should know, e.g. "samples.csv truncated: last row
    /// ignored". They are shown on the page too.
    pub notices: Vec<String>,
}

/// Renders `dir/charts/*.svg`, `dir/charts/*.png` and `dir/index.html` from
/// the run folder's samples.csv, latency.csv and summary.json.
///
/// Fails only when `dir` is not a run folder, a CSV breaks the contract
/// before its last line, or an output cannot be written.
pub fn render_run(dir: &Path) -> Result<Rendered, ReportError> {
    let run = loaded::LoadedRun::load(dir)?;
    let mut notices = Vec::new();
    let charts = chart::write_all(&chart::run::specs(&run), dir, &mut notices)?;
    let mut files: Vec<PathBuf> = charts
        .iter()
        .flat_map(|c| c.files.iter().cloned())
        .collect();
    let growth = growth::Growth::of(&run, &mut files, &mut notices)?;
    let page = dir.join("index.html");
    let view = view::RunView::new(&run, charts, growth, notices);
    let notices = view.notices.clone();
    page::write("run.html", &view, &page)?;
    files.push(page.clone());
    Ok(Rendered {
        page,
        files,
        notices,
    })
}
