//! The comparison page: several runs (typically leaky against fixed) on one
//! time axis, with their peaks, verdicts, throughput and latency side by side.

use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::chart;
use crate::error::ReportError;
use crate::format::{self, DASH};
use crate::loaded::LoadedRun;
use crate::verdict::Banner;
use crate::Rendered;

/// Marks a folder as a comparison for [`crate::render_index`].
pub(crate) const MARKER: &str = "compare.json";

#[derive(Serialize)]
struct CompareView {
    runs: Vec<RunColumn>,
    charts: Vec<chart::Written>,
    notices: Vec<String>,
}

#[derive(Serialize)]
struct RunColumn {
    name: String,
    color: String,
    link: Option<String>,
    banner: Banner,
    rows: Vec<(&'static str, String)>,
}

impl RunColumn {
    fn new(run: &LoadedRun, index: usize, out: &Path) -> RunColumn {
        let s = run.summary.as_ref();
        let memory = run.memory();
        let requests = run.requests();
        let latency = run.latency_ms();
        let corrected = run.latency_corrected_ms();
        let oom = match run.oom_kill() {
            Some(Some(at)) => format!("yes, at {}", format::format_duration(at)),
            Some(None) => "yes".into(),
            None if run.server_known() => "no".into(),
            None => DASH.into(),
        };
        let rows = vec![
            ("Peak memory", format::bytes(run.peak_memory().map(|p| p.0))),
            ("Peak % of limit", format::percent(run.peak_percent())),
            ("Memory limit", format::bytes(run.limit_bytes())),
            ("OOM kill", oom),
            (
                "Growth",
                memory
                    .and_then(|m| m.slope_bytes_per_s)
                    .map(|b| format!("{}/min", format::format_bytes(b * 60.0)))
                    .unwrap_or_else(|| DASH.into()),
            ),
            (
                "Time to limit",
                format::duration(memory.and_then(|m| m.projected_time_to_limit_s)),
            ),
            ("Requests", format::count(requests.map(|r| r.total as f64))),
            ("Failed", format::count(requests.map(|r| r.failed as f64))),
            (
                "Throughput",
                run.finished()
                    .and_then(|s| s.throughput_rps)
                    .map(|r| format!("{r:.0} req/s"))
                    .unwrap_or_else(|| DASH.into()),
            ),
            ("p50", format::ms(latency.map(|l| l.p50))),
            ("p90", format::ms(latency.map(|l| l.p90))),
            ("p99", format::ms(latency.map(|l| l.p99))),
            ("p99 corrected", format::ms(corrected.map(|l| l.p99))),
            ("max", format::ms(latency.map(|l| l.max))),
            (
                "Gate",
                match s.and_then(|s| s.passed) {
                    Some(true) => "passed".into(),
                    Some(false) => "failed".into(),
                    None => DASH.into(),
                },
            ),
        ];
        let c = chart::compare::color(index);
        RunColumn {
            name: run.name.clone(),
            color: format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2),
            link: run
                .dir
                .join("index.html")
                .exists()
                .then(|| relative(out, &run.dir.join("index.html"))),
            banner: Banner::of(run),
            rows,
        }
    }
}

/// Writes `out/index.html` and `out/charts/` comparing `runs`.
pub fn render_comparison(runs: &[PathBuf], out: &Path) -> Result<Rendered, ReportError> {
    if runs.is_empty() {
        return Err(ReportError::NoRuns);
    }
    let loaded = runs
        .iter()
        .map(|d| LoadedRun::load(d))
        .collect::<Result<Vec<_>, _>>()?;
    std::fs::create_dir_all(out).map_err(|e| ReportError::write(out, e))?;
    let mut notices: Vec<String> = loaded
        .iter()
        .flat_map(|r| r.notices.iter().map(move |n| format!("{}: {n}", r.name)))
        .collect();
    let charts = chart::write_all(&chart::compare::specs(&loaded), out, &mut notices)?;
    let mut files: Vec<PathBuf> = charts
        .iter()
        .flat_map(|c| c.files.iter().cloned())
        .collect();

    let marker = out.join(MARKER);
    let names: Vec<&str> = loaded.iter().map(|r| r.name.as_str()).collect();
    let json = serde_json::json!({ "runs": names, "dirs": runs });
    clw_run::write_atomic(&marker, format!("{json:#}\n").as_bytes())
        .map_err(|e| ReportError::write(&marker, e))?;
    files.push(marker);

    let view = CompareView {
        runs: loaded
            .iter()
            .enumerate()
            .map(|(i, r)| RunColumn::new(r, i, out))
            .collect(),
        charts,
        notices: notices.clone(),
    };
    let page = out.join("index.html");
    crate::page::write("compare.html", &view, &page)?;
    files.push(page.clone());
    Ok(Rendered {
        page,
        files,
        notices,
    })
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `to` relative to directory `from`, with `/` separators, for links that
/// keep working when the reports folder is copied elsewhere. Each segment
/// is percent-encoded and the link starts with `./` or `../`, so that no
/// folder name, however it was chosen (`javascript:alert(1)`,
/// `https:x`), can become a scheme or another host in an `href`.
pub(crate) fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| {
        p.canonicalize()
            .unwrap_or_else(|_| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
    };
    let (from, to) = (abs(from), abs(to));
    let from: Vec<Component> = from.components().collect();
    let to: Vec<Component> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    if parts.is_empty() {
        parts.push(".".into());
    }
    parts.extend(to[common..].iter().map(|c| {
        percent_encoding::utf8_percent_encode(&c.as_os_str().to_string_lossy(), SEGMENT).to_string()
    }));
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_between_sibling_folders() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("compare");
        let b = root.path().join("leak-repro");
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("index.html"), "").unwrap();
        assert_eq!(
            relative(&a, &b.join("index.html")),
            "../leak-repro/index.html"
        );
    }
}
