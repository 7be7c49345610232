//! SVG charts with plotters: read-path cost per competitor, commit time
//! against N, rendezvous per queue mode. Text is left to the SVG viewer
//! (`<text>` elements), so no font is needed at build time.

use std::path::Path;

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

/// Any chart error, as text.
pub type ChartResult = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Horizontal bars, log scale: `(label, value)` per bar, dynkey's first.
pub fn bars(path: &Path, title: &str, unit: &str, rows: &[(String, f64)]) -> ChartResult {
    let rows: Vec<&(String, f64)> = rows.iter().filter(|(_, v)| *v > 0.0).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let max = rows.iter().map(|r| r.1).fold(f64::MIN, f64::max);
    let min = rows.iter().map(|r| r.1).fold(f64::MAX, f64::min);
    let (lo, hi) = (min / 3.0, max * 6.0);
    let height = 90 + 34 * rows.len() as u32;
    let root = SVGBackend::new(path, (900, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let n = rows.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(210)
        .build_cartesian_2d((lo..hi).log_scale(), (0..n).into_segmented())
        .map_err(err)?;
    let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc(unit)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (name, v))| {
            let color = if name.starts_with("dynkey") {
                PALETTE[0]
            } else {
                PALETTE[1]
            };
            let mut bar = Rectangle::new(
                [
                    (lo, SegmentValue::Exact(i)),
                    (*v, SegmentValue::Exact(i + 1)),
                ],
                color.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(err)?;
    chart
        .draw_series(rows.iter().enumerate().map(|(i, (_, v))| {
            Text::new(
                format!(" {}", super::fmt_ns(*v)),
                (*v, SegmentValue::CenterOf(i)),
                ("sans-serif", 13),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)
}

/// Log-log lines: one `(name, points)` series per line.
pub fn lines(
    path: &Path,
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[(String, Vec<(f64, f64)>)],
) -> ChartResult {
    let all: Vec<(f64, f64)> = series.iter().flat_map(|s| s.1.iter().copied()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let fold = |f: fn(f64, f64) -> f64, init: f64, pick: fn(&(f64, f64)) -> f64| {
        all.iter().map(pick).fold(init, f)
    };
    let (x0, x1) = (
        fold(f64::min, f64::MAX, |p| p.0),
        fold(f64::max, f64::MIN, |p| p.0),
    );
    let (y0, y1) = (
        fold(f64::min, f64::MAX, |p| p.1),
        fold(f64::max, f64::MIN, |p| p.1),
    );
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (x0 / 2.0..x1 * 2.0).log_scale(),
            (y0 / 3.0..y1 * 3.0).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    for (k, (name, points)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// Grouped bars, log scale: categories along x, one bar per series in each.
pub fn grouped(
    path: &Path,
    title: &str,
    y_desc: &str,
    categories: &[&str],
    series: &[(String, Vec<f64>)],
) -> ChartResult {
    let max = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .fold(1.0, f64::max);
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let n = categories.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, (0.1..max * 8.0).log_scale())
        .map_err(err)?;
    // Category names are drawn under the bars (bars start at 1), since a
    // numeric axis labels numbers, not categories.
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(y_desc)
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            categories
                .iter()
                .enumerate()
                .map(|(i, c)| Text::new(c.to_string(), (i as f64 + 0.1, 0.3), ("sans-serif", 14))),
        )
        .map_err(err)?;
    let width = 0.8 / series.len().max(1) as f64;
    for (k, (name, values)) in series.iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let bars = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, v)| {
                let x = i as f64 + 0.1 + k as f64 * width;
                Rectangle::new([(x, 1.0), (x + width * 0.9, *v)], color.filled())
            });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        let labels = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(i, v)| {
                let x = i as f64 + 0.1 + k as f64 * width;
                Text::new(format!("{v:.0}"), (x, *v * 1.25), ("sans-serif", 11))
            });
        chart.draw_series(labels).map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}
