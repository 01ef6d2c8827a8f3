//! The run page's heap growth: the table of allocation sites that grew
//! between the first and last heap profile (`heap/*.pb.gz`), and a flame
//! graph of that growth drawn by inferno.
//!
//! With the profiles in the folder both are recomputed from them; without,
//! the table comes from summary.json's `memory.growth_sites` (no flame
//! graph: it needs the stacks). The page inlines the flame graph without
//! inferno's script and styles (the rects, text and `<title>` tooltips are
//! plain SVG); charts/heap-growth.svg keeps them for zooming and search.

use std::path::Path;

use clw_run::heap::{self, HeapDiff};
use clw_run::GrowthSite;
use serde::Serialize;

use crate::error::ReportError;
use crate::format;
use crate::loaded::LoadedRun;

/// Rows in the table.
const TOP_SITES: usize = 10;
const FLAME_FILE: &str = "charts/heap-growth.svg";

#[derive(Debug, Default, Serialize)]
pub(crate) struct Growth {
    pub(crate) sites: Vec<SiteRow>,
    /// The inline flame graph (no script); `None` without profiles.
    pub(crate) flame_svg: Option<String>,
    pub(crate) flame_file: Option<String>,
    /// Where the figures come from, in words.
    pub(crate) source: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct SiteRow {
    pub(crate) function: String,
    pub(crate) location: String,
    pub(crate) bytes: String,
    pub(crate) share: String,
}

impl SiteRow {
    fn new(s: &GrowthSite) -> SiteRow {
        SiteRow {
            function: s.function.clone(),
            location: s.location(),
            bytes: format::bytes(Some(s.bytes_grown as f64)),
            share: format::percent(Some(s.share_percent)),
        }
    }
}

impl Growth {
    /// `None` when the run has neither two profiles nor growth sites.
    pub(crate) fn of(
        run: &LoadedRun,
        files: &mut Vec<std::path::PathBuf>,
        notices: &mut Vec<String>,
    ) -> Result<Option<Growth>, ReportError> {
        let count = match heap::profile_files(&run.dir) {
            Ok(files) => files.len(),
            Err(e) => {
                notices.push(format!("heap profiles unreadable: {e}"));
                0
            }
        };
        if count >= 2 {
            match heap::diff_run(&run.dir) {
                Ok(Some(diff)) => {
                    return Growth::from_diff(&run.dir, &diff, count, files).map(Some)
                }
                Ok(None) => {}
                Err(e) => notices.push(format!("heap profiles unreadable: {e}")),
            }
        }
        let from_summary = run.memory().and_then(|m| m.growth_sites.as_ref());
        Ok(from_summary.map(|sites| Growth {
            sites: sites.iter().map(SiteRow::new).collect(),
            source: "from summary.json (memory.growth_sites); no heap profiles in the folder for a flame graph".into(),
            ..Growth::default()
        }))
    }

    fn from_diff(
        dir: &Path,
        diff: &HeapDiff,
        count: usize,
        files: &mut Vec<std::path::PathBuf>,
    ) -> Result<Growth, ReportError> {
        let sites = diff.growth_sites(TOP_SITES);
        let source = format!("the last of {count} heap profiles (heap/*.pb.gz) against the first");
        let folded = diff.folded();
        if folded.is_empty() {
            return Ok(Growth {
                sites: sites.iter().map(SiteRow::new).collect(),
                source,
                ..Growth::default()
            });
        }
        let svg = flame_graph(&folded)?;
        let path = dir.join(FLAME_FILE);
        if let Some(parent) = path.parent() {
            crate::chart::real_dir(parent)?;
        }
        clw_run::write_atomic(&path, svg.as_bytes()).map_err(|e| ReportError::write(&path, e))?;
        files.push(path);
        Ok(Growth {
            sites: sites.iter().map(SiteRow::new).collect(),
            flame_svg: Some(inline(&svg)),
            flame_file: Some(FLAME_FILE.into()),
            source,
        })
    }
}

/// inferno's flame graph of the folded growth, as a standalone SVG.
fn flame_graph(folded: &[String]) -> Result<String, ReportError> {
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = "Heap growth, first profile to last".into();
    opt.count_name = "bytes".into();
    opt.name_type = "Site:".into();
    let mut out = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, folded.iter().map(String::as_str), &mut out)
        .map_err(|e| ReportError::Chart {
            chart: "heap-growth".into(),
            reason: e.to_string(),
        })?;
    String::from_utf8(out).map_err(|e| ReportError::Chart {
        chart: "heap-growth".into(),
        reason: e.to_string(),
    })
}

/// Removes the first `<tag ...>...</tag>` (or `<!--...-->`) from `svg`.
fn cut(svg: &mut String, open: &str, close: &str) -> bool {
    let Some(start) = svg.find(open) else {
        return false;
    };
    let Some(len) = svg[start..].find(close) else {
        return false;
    };
    svg.replace_range(start..start + len + close.len(), "");
    true
}

/// The flame graph for inlining in the page: no script, no style sheet
/// (inferno's would restyle the whole page), no controls that need the
/// script, no namespace URLs; fonts and the title set as attributes.
fn inline(svg: &str) -> String {
    let mut s = svg[svg.find("<svg").unwrap_or(0)..].to_string();
    while cut(&mut s, "<!--", "-->") {}
    for (open, close) in [
        ("<script", "</script>"),
        ("<style", "</style>"),
        ("<defs>", "</defs>"),
        ("<text id=\"details\"", "</text>"),
        ("<text id=\"unzoom\"", "</text>"),
        ("<text id=\"search\"", "</text>"),
        ("<text id=\"matched\"", "</text>"),
    ] {
        cut(&mut s, open, close);
    }
    s.replacen(" onload=\"init(evt)\"", "", 1)
        .replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
        .replacen(" xmlns:xlink=\"http://www.w3.org/1999/xlink\"", "", 1)
        .replacen("http://github.com/jonhoo/inferno", "urn:inferno", 1)
        .replacen(
            "<svg ",
            "<svg font-family=\"monospace\" font-size=\"12\" ",
            1,
        )
        .replacen("fill=\"url(#background)\"", "fill=\"#f4f4ec\"", 1)
        .replacen(
            "<text id=\"title\"",
            "<text id=\"heap-growth-title\" text-anchor=\"middle\" font-size=\"17\"",
            1,
        )
        .replacen("id=\"frames\"", "id=\"heap-growth-frames\"", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_inline_flame_graph_has_no_script_style_or_url() {
        let svg = flame_graph(&["main;app::cache::insert (src/cache.rs:3) 1000".into()]).unwrap();
        assert!(
            svg.contains("<script"),
            "inferno's own file keeps its script"
        );
        let inline = inline(&svg);
        for banned in [
            "<script",
            "<style",
            "onload",
            "://",
            "url(",
            "Reset Zoom",
            "<?xml",
        ] {
            assert!(!inline.contains(banned), "{banned} in {inline}");
        }
        assert!(inline.starts_with("<svg font-family=\"monospace\""));
        assert!(inline.contains("<rect") && inline.contains("app::cache::insert (src/cache.rs:3)"));
    }
}
