//! Charts: each is a stack of [`panel::Panel`]s written as an SVG (inlined in
//! the page) and a PNG (for pasting into a ticket).

pub(crate) mod compare;
#[cfg(test)]
mod death_tests;
pub(crate) mod panel;
pub(crate) mod run;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::ReportError;
pub(crate) use crate::format::{format_bytes, format_duration};
use panel::{HLine, Panel};

pub(crate) const WIDTH: u32 = 1000;
const PANEL_HEIGHT: u32 = 400;
const STACKED_PANEL_HEIGHT: u32 = 280;

pub(crate) const BLUE: RGBColor = RGBColor(31, 119, 180);
pub(crate) const GREEN: RGBColor = RGBColor(44, 160, 44);
pub(crate) const PURPLE: RGBColor = RGBColor(148, 103, 189);
pub(crate) const BROWN: RGBColor = RGBColor(140, 86, 75);
pub(crate) const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub(crate) const RED: RGBColor = RGBColor(214, 39, 40);
pub(crate) const DARK_RED: RGBColor = RGBColor(150, 0, 0);

pub(crate) const MIB: f64 = 1.0 / (1024.0 * 1024.0);

/// The memory limit as a solid line and the field guide's 80% warning level
/// as a dashed one, for a panel whose y axis is in MiB.
pub(crate) fn limit_lines(limit_bytes: f64, color: RGBColor) -> [HLine; 2] {
    [
        HLine {
            y: limit_bytes * MIB,
            label: format!("limit {}", format_bytes(limit_bytes)),
            color,
            dashed: false,
        },
        HLine {
            y: 0.8 * limit_bytes * MIB,
            label: "80% of limit".into(),
            color: ORANGE,
            dashed: true,
        },
    ]
}

/// A chart to write: file stem, title for the page, and its panels.
pub(crate) struct ChartSpec<'a> {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) panels: Vec<Panel<'a>>,
}

/// A chart once written: the SVG text to inline and the files on disk.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Written {
    pub(crate) name: String,
    pub(crate) title: String,
    /// The SVG without its XML namespace URL, for inlining in HTML5.
    pub(crate) inline_svg: String,
    pub(crate) svg_file: String,
    pub(crate) png_file: Option<String>,
    #[serde(skip)]
    pub(crate) files: Vec<PathBuf>,
}

impl ChartSpec<'_> {
    fn height(&self) -> u32 {
        match self.panels.len() {
            0 | 1 => PANEL_HEIGHT,
            n => STACKED_PANEL_HEIGHT * n as u32,
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> panel::DrawResult<DB> {
        root.fill(&WHITE)?;
        let areas = root.split_evenly((self.panels.len().max(1), 1));
        for (area, panel) in areas.iter().zip(&self.panels) {
            panel::draw(area, panel)?;
        }
        root.present()
    }

    /// Writes `charts_dir/NAME.svg` and `NAME.png`. A PNG that cannot be
    /// drawn costs a notice, not the report: the SVG is what the page uses.
    pub(crate) fn write(
        &self,
        charts_dir: &Path,
        notices: &mut Vec<String>,
    ) -> Result<Written, ReportError> {
        let chart_err = |e: String| ReportError::Chart {
            chart: self.name.to_string(),
            reason: e,
        };
        crate::font::ensure().map_err(chart_err)?;
        let size = (WIDTH, self.height());
        let mut svg = String::new();
        self.draw(SVGBackend::with_string(&mut svg, size).into_drawing_area())
            .map_err(|e| chart_err(e.to_string()))?;
        let svg_path = charts_dir.join(format!("{}.svg", self.name));
        clw_run::write_atomic(&svg_path, svg.as_bytes())
            .map_err(|e| ReportError::write(&svg_path, e))?;
        let mut files = vec![svg_path];
        let png_path = charts_dir.join(format!("{}.png", self.name));
        // plotters writes the PNG file itself; it writes the staged copy.
        let staged = clw_run::atomic::Staged::beside(&png_path)
            .map_err(|e| ReportError::write(&png_path, e))?;
        let drawn = self.draw(BitMapBackend::new(staged.tmp_path(), size).into_drawing_area());
        let png_file = match drawn {
            Ok(()) => {
                staged
                    .commit()
                    .map_err(|e| ReportError::write(&png_path, e))?;
                files.push(png_path);
                Some(format!("charts/{}.png", self.name))
            }
            Err(e) => {
                notices.push(format!("{}.png not written ({e}): SVG only", self.name));
                None
            }
        };
        Ok(Written {
            name: self.name.to_string(),
            title: self.title.to_string(),
            inline_svg: inline(&svg),
            svg_file: format!("charts/{}.svg", self.name),
            png_file,
            files,
        })
    }
}

/// Creates `dir` unless it is there, refusing one that is a symbolic link:
/// charts are written only into a real folder inside the run folder, never
/// through a link to wherever it points.
pub(crate) fn real_dir(dir: &Path) -> Result<(), ReportError> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(ReportError::io(
            dir,
            std::io::Error::other(
                "is a symbolic link: the report writes only into real folders inside the run folder",
            ),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| ReportError::write(dir, e))
}

/// Writes every chart of `specs` into `dir/charts/`.
pub(crate) fn write_all(
    specs: &[ChartSpec<'_>],
    dir: &Path,
    notices: &mut Vec<String>,
) -> Result<Vec<Written>, ReportError> {
    let charts = dir.join("charts");
    real_dir(&charts)?;
    specs.iter().map(|s| s.write(&charts, notices)).collect()
}

/// HTML5 puts an inline `<svg>` in the SVG namespace by itself; dropping the
/// namespace URL keeps the page free of any URL it could be mistaken to load.
fn inline(svg: &str) -> String {
    svg.replacen(r#" xmlns="http://www.w3.org/2000/svg""#, "", 1)
        .replacen(r#"xmlns="http://www.w3.org/2000/svg" "#, "", 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_svg_loses_its_namespace_url() {
        let svg = r#"<svg width="1" height="1" viewBox="0 0 1 1" xmlns="http://www.w3.org/2000/svg"></svg>"#;
        assert!(!inline(svg).contains("http"));
    }
}
