//! One plot area described as data (lines, reference lines, markers, a
//! shaded span) and drawn on any plotters backend, so the SVG for the page
//! and the PNG for sharing come from the same description.

use plotters::coord::Shift;
use plotters::element::ComposedElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::samples::Column;
pub(crate) use crate::stages::Boundary;

pub(crate) type DrawResult<DB> =
    Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

/// A time series: `values[i]` at `t[i]`, multiplied by `scale` (e.g. bytes
/// to MiB). Unknown values break the line instead of dropping to zero.
pub(crate) struct Line<'a> {
    pub(crate) label: String,
    pub(crate) t: &'a [f64],
    pub(crate) values: &'a Column,
    pub(crate) scale: f64,
    pub(crate) color: RGBColor,
    pub(crate) dashed: bool,
}

/// A horizontal reference line such as the memory limit.
pub(crate) struct HLine {
    pub(crate) y: f64,
    pub(crate) label: String,
    pub(crate) color: RGBColor,
    pub(crate) dashed: bool,
}

/// A vertical event marker such as an OOM kill.
pub(crate) struct Marker {
    pub(crate) x: f64,
    pub(crate) label: String,
    pub(crate) color: RGBColor,
}

/// One plot: caption, axes and what to draw on them.
pub(crate) struct Panel<'a> {
    pub(crate) caption: String,
    pub(crate) y_desc: String,
    pub(crate) lines: Vec<Line<'a>>,
    pub(crate) hlines: Vec<HLine>,
    pub(crate) markers: Vec<Marker>,
    /// A shaded time span, e.g. ramp-up: (from, to, label).
    pub(crate) shade: Option<(f64, f64, String)>,
    /// Shown in the middle when no line has data.
    pub(crate) empty_message: String,
    /// Where the legend goes: where the lines usually are not.
    pub(crate) legend_at: SeriesLabelPosition,
    /// Whole numbers only (sessions, evictions): no "0.20" ticks.
    pub(crate) counts: bool,
    /// Where the load's stages begin and end (summary.json `stages[]`):
    /// thin dashed lines, labelled at the top.
    pub(crate) boundaries: Vec<Boundary>,
}

const GRID: RGBColor = RGBColor(226, 226, 226);
const AXIS_TEXT: RGBColor = RGBColor(60, 60, 60);
const SHADE: RGBColor = RGBColor(120, 140, 170);
const BOUNDARY: RGBColor = RGBColor(110, 110, 110);

impl Line<'_> {
    /// Continuous runs of known values, scaled.
    fn segments(&self) -> Vec<Vec<(f64, f64)>> {
        let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut current = Vec::new();
        for (t, v) in self.t.iter().zip(self.values.iter()) {
            match v {
                Some(v) => current.push((*t, v * self.scale)),
                None if !current.is_empty() => out.push(std::mem::take(&mut current)),
                None => {}
            }
        }
        if !current.is_empty() {
            out.push(current);
        }
        out.into_iter()
            .map(|segment| thin(segment, MAX_POINTS))
            .collect()
    }

    fn has_data(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }
}

impl Panel<'_> {
    fn has_data(&self) -> bool {
        self.lines.iter().any(Line::has_data)
    }

    fn x_max(&self) -> f64 {
        // Lines without data still span the run: an empty chart keeps the
        // run's time axis.
        let lines = self.lines.iter().filter_map(|l| l.t.last().copied());
        let markers = self.markers.iter().map(|m| m.x);
        let shade = self.shade.iter().map(|s| s.1);
        let boundaries = self.boundaries.iter().map(|b| b.x);
        let max = lines
            .chain(markers)
            .chain(shade)
            .chain(boundaries)
            .fold(0.0, f64::max);
        if max > 0.0 {
            max * 1.02
        } else {
            1.0
        }
    }

    fn y_max(&self) -> f64 {
        let lines = self
            .lines
            .iter()
            .flat_map(|l| l.values.iter().flatten().map(move |v| v * l.scale));
        let max = lines
            .chain(self.hlines.iter().map(|h| h.y))
            .fold(0.0, f64::max);
        if max > 0.0 {
            max * 1.1
        } else {
            1.0
        }
    }
}

/// More points than a 1000-pixel-wide chart can show only make the page heavy.
const MAX_POINTS: usize = 1500;

/// Reduces `points` to about `max` by keeping, per bucket of consecutive
/// points, the lowest and the highest: peaks (and the drops of a sawtooth)
/// survive, which averaging would flatten.
fn thin(points: Vec<(f64, f64)>, max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points;
    }
    let bucket = points.len().div_ceil(max / 2);
    let mut out = Vec::with_capacity(max + 2);
    for chunk in points.chunks(bucket) {
        let lo = chunk
            .iter()
            .enumerate()
            .min_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|(i, _)| i);
        let hi = chunk
            .iter()
            .enumerate()
            .max_by(|a, b| a.1 .1.total_cmp(&b.1 .1))
            .map(|(i, _)| i);
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let (first, second) = (lo.min(hi), lo.max(hi));
            out.push(chunk[first]);
            if second != first {
                out.push(chunk[second]);
            }
        }
    }
    out
}

/// Axis numbers: few decimals for small values, k/M for large counts.
pub(crate) fn axis_number(v: f64, range_max: f64) -> String {
    let a = v.abs();
    if a >= 1e6 && range_max >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 && range_max >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if range_max >= 20.0 {
        format!("{v:.0}")
    } else if range_max >= 2.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn stroke(color: RGBColor, width: u32) -> ShapeStyle {
    ShapeStyle::from(&color).stroke_width(width)
}

/// Draws `panel` filling `area`.
// Long by design: plotters layers drawn in order (shade, stage boundaries,
// lines, horizontal lines, markers) on the one chart context each borrows.
pub(crate) fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<'_>,
) -> DrawResult<DB> {
    let (x_max, mut y_max) = (panel.x_max(), panel.y_max());
    if panel.counts {
        y_max = y_max.max(5.5);
    }
    let mut chart = ChartBuilder::on(area)
        .caption(
            &panel.caption,
            ("sans-serif", 18).into_font().color(&AXIS_TEXT),
        )
        .margin(12)
        .margin_right(24)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID)
        .axis_style(RGBColor(160, 160, 160))
        .x_desc("time since load start (s)")
        .y_desc(panel.y_desc.as_str())
        .x_labels(12)
        .y_labels(6)
        .x_label_formatter(&|v| axis_number(*v, x_max))
        .y_label_formatter(&|v| axis_number(*v, if panel.counts { y_max.max(20.0) } else { y_max }))
        .label_style(("sans-serif", 13).into_font().color(&AXIS_TEXT))
        .axis_desc_style(("sans-serif", 14).into_font().color(&AXIS_TEXT))
        .draw()?;

    if let Some((from, to, label)) = &panel.shade {
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(*from, 0.0), (*to, y_max)],
                SHADE.mix(0.15).filled(),
            )))?
            .label(label.as_str())
            .legend(|(x, y)| {
                Rectangle::new([(x, y - 6), (x + 20, y + 6)], SHADE.mix(0.3).filled())
            });
    }

    let mut first = true;
    for b in &panel.boundaries {
        let style = stroke(BOUNDARY, 1);
        let annotation = chart.draw_series(DashedLineSeries::new(
            vec![(b.x, 0.0), (b.x, y_max)],
            4,
            4,
            style,
        ))?;
        if std::mem::take(&mut first) {
            annotation
                .label("stage boundary")
                .legend(move |(x, y)| legend_line(x, y, BOUNDARY, true));
        }
        let text = ("sans-serif", 12)
            .into_font()
            .color(&BOUNDARY)
            .pos(Pos::new(HPos::Left, VPos::Top));
        chart.draw_series(std::iter::once(
            EmptyElement::at((b.x, y_max)) + Text::new(b.label.clone(), (3, 3), text),
        ))?;
    }

    if !panel.has_data() {
        let style = ("sans-serif", 18)
            .into_font()
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        chart.draw_series(std::iter::once(Text::new(
            panel.empty_message.clone(),
            (x_max / 2.0, y_max / 2.0),
            style,
        )))?;
    }

    for line in &panel.lines {
        let style = stroke(line.color, 2);
        let mut first = true;
        for segment in line.segments() {
            let annotation = if line.dashed {
                chart.draw_series(DashedLineSeries::new(segment, 7, 4, style))?
            } else {
                chart.draw_series(LineSeries::new(segment, style))?
            };
            if std::mem::take(&mut first) {
                let (color, dashed) = (line.color, line.dashed);
                annotation
                    .label(line.label.as_str())
                    .legend(move |(x, y)| legend_line(x, y, color, dashed));
            }
        }
    }

    for h in &panel.hlines {
        let points = vec![(0.0, h.y), (x_max, h.y)];
        let style = stroke(h.color, 2);
        let annotation = if h.dashed {
            chart.draw_series(DashedLineSeries::new(points, 9, 6, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        let (color, dashed) = (h.color, h.dashed);
        annotation
            .label(h.label.as_str())
            .legend(move |(x, y)| legend_line(x, y, color, dashed));
    }

    for m in &panel.markers {
        let style = stroke(m.color, 2);
        chart
            .draw_series(LineSeries::new(vec![(m.x, 0.0), (m.x, y_max)], style))?
            .label(m.label.as_str())
            .legend(move |(x, y)| Cross::new((x + 10, y), 5, stroke(m.color, 2)));
        let text = ("sans-serif", 14)
            .into_font()
            .color(&m.color)
            .pos(Pos::new(HPos::Right, VPos::Top));
        chart.draw_series(std::iter::once(
            EmptyElement::at((m.x, y_max)) + Text::new(m.label.clone(), (-6, 6), text),
        ))?;
    }

    if panel.has_data() || !panel.hlines.is_empty() {
        chart
            .configure_series_labels()
            .position(panel.legend_at.clone())
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 13).into_font().color(&AXIS_TEXT))
            .draw()?;
    }
    Ok(())
}

type LegendSample<DB> =
    ComposedElement<(i32, i32), DB, PathElement<(i32, i32)>, PathElement<(i32, i32)>>;

/// A short legend sample of a line: dash-gap-dash when `dashed`.
fn legend_line<DB: DrawingBackend>(
    x: i32,
    y: i32,
    color: RGBColor,
    dashed: bool,
) -> LegendSample<DB> {
    let style = stroke(color, 2);
    let (first_end, second_start) = if dashed { (7, 12) } else { (20, 0) };
    EmptyElement::at((x, y))
        + PathElement::new(vec![(0, 0), (first_end, 0)], style)
        + PathElement::new(vec![(second_start, 0), (20, 0)], style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_split_lines() {
        let t = [0.0, 1.0, 2.0, 3.0, 4.0];
        let v = vec![Some(1.0), Some(2.0), None, Some(4.0), None];
        let line = Line {
            label: "x".into(),
            t: &t,
            values: &v,
            scale: 2.0,
            color: BLACK,
            dashed: false,
        };
        assert_eq!(
            line.segments(),
            vec![vec![(0.0, 2.0), (1.0, 4.0)], vec![(3.0, 8.0)]]
        );
    }

    #[test]
    fn thinning_keeps_peaks_and_order() {
        let points: Vec<(f64, f64)> = (0..10_000).map(|i| (i as f64, (i % 100) as f64)).collect();
        let thinned = thin(points.clone(), 1500);
        assert!(
            thinned.len() <= 1500 && thinned.len() > 700,
            "{}",
            thinned.len()
        );
        assert!(
            thinned.windows(2).all(|w| w[0].0 < w[1].0),
            "time order lost"
        );
        let max = thinned.iter().map(|p| p.1).fold(0.0, f64::max);
        let min = thinned.iter().map(|p| p.1).fold(f64::MAX, f64::min);
        assert_eq!((min, max), (0.0, 99.0), "extremes lost");
        assert_eq!(thin(points[..10].to_vec(), 1500).len(), 10);
    }

    #[test]
    fn axis_numbers_suit_their_range() {
        assert_eq!(axis_number(250.0, 280.0), "250");
        assert_eq!(axis_number(1.5, 3.0), "1.5");
        assert_eq!(axis_number(25_000.0, 40_000.0), "25k");
        assert_eq!(axis_number(2_500_000.0, 3e6), "2.5M");
    }
}
