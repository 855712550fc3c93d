//! PNG plots: the dispatch stack of a bus and the Pareto front.
//!
//! Text is drawn with DejaVu Sans, bundled (`service/assets`, free licence),
//! so plots look the same on every machine without system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::FontStyle;
use volta_dispatch::{Detail, Front, Schedule};
use volta_engine::{Bus, Case};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// A qualitative palette (Tableau 10), cycled.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(78, 121, 167),
    RGBColor(242, 142, 43),
    RGBColor(225, 87, 89),
    RGBColor(118, 183, 178),
    RGBColor(89, 161, 79),
    RGBColor(237, 201, 72),
    RGBColor(176, 122, 161),
    RGBColor(255, 157, 167),
    RGBColor(156, 117, 95),
    RGBColor(186, 176, 172),
];

pub(super) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled font is valid; if it were not, plotters would fall
        // back to drawing no text rather than fail.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

pub(super) fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing failed: {e}")
}

/// Draws the legend of `chart`'s labelled series at `position`: a white box
/// with a black border, 14-point labels.
pub(super) fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)
}

/// Steps as a staircase: `(t, v[t])` and `(t + 1, v[t])` for every step.
fn stairs(values: &[f64]) -> Vec<(f64, f64)> {
    values.iter().enumerate().flat_map(|(t, &v)| [(t as f64, v), (t as f64 + 1.0, v)]).collect()
}

/// Three panels for one bus: the stacked flows into (above zero) and out of
/// (below zero) the bus, the storage levels on it, and its marginal price.
pub(super) fn dispatch(case: &Case, schedule: &Schedule, bus: &Bus, path: &Path) -> anyhow::Result<()> {
    register_font();
    let n = schedule.grid.len();
    let grid = &schedule.grid;
    let mut supply: Vec<(String, Vec<f64>)> = Vec::new();
    let mut use_: Vec<(String, Vec<f64>)> = Vec::new();
    let mut levels: Vec<(String, Vec<f64>)> = Vec::new();
    for asset in &schedule.assets {
        for flow in asset.flows.iter().filter(|f| f.bus == bus.id) {
            let pos: Vec<f64> = flow.kw.iter().map(|v| v.max(0.0)).collect();
            let neg: Vec<f64> = flow.kw.iter().map(|v| v.min(0.0)).collect();
            if pos.iter().any(|&v| v > 1e-6) {
                supply.push((asset.id.to_string(), pos));
            }
            if neg.iter().any(|&v| v < -1e-6) {
                use_.push((asset.id.to_string(), neg));
            }
        }
        if let Detail::Storage { energy_kwh, .. } = &asset.detail
            && asset.flows.iter().any(|f| f.bus == bus.id)
        {
            levels.push((asset.id.to_string(), energy_kwh.clone()));
        }
    }
    let bus_schedule = schedule.bus(bus.id.as_str());
    if let Some(b) = bus_schedule
        && b.unserved_kw.iter().any(|&v| v > 1e-6)
    {
        supply.push(("unserved".to_owned(), b.unserved_kw.clone()));
    }
    let cumulative = |series: &[(String, Vec<f64>)]| -> Vec<Vec<f64>> {
        let mut acc = vec![0.0; n];
        series
            .iter()
            .map(|(_, v)| {
                for (a, x) in acc.iter_mut().zip(v) {
                    *a += x;
                }
                acc.clone()
            })
            .collect()
    };
    let up = cumulative(&supply);
    let down = cumulative(&use_);
    let top = up.last().map_or(1.0, |v| v.iter().copied().fold(0.0, f64::max)).max(1.0) * 1.08;
    let bottom = down.last().map_or(0.0, |v| v.iter().copied().fold(0.0, f64::min)) * 1.08;
    let carrier = case.bus_carrier(&bus.id).map_or_else(|| bus.carrier.to_string(), |c| c.display_name().to_owned());
    let currency = &case.settings().currency;
    let x_label = |x: &f64| {
        let t = (*x as usize).min(n.saturating_sub(1));
        grid.at(t).strftime("%a %d %H:%M").to_string()
    };

    let root = BitMapBackend::new(path, (1400, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (upper, rest) = root.split_vertically(560);
    let (middle, lower) = rest.split_vertically(220);

    let mut chart = ChartBuilder::on(&upper)
        .caption(format!("{} — bus {} ({carrier}), kW", case.name(), bus.id), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, bottom.min(0.0)..top)
        .map_err(err)?;
    chart.configure_mesh().x_labels(8).x_label_formatter(&x_label).y_desc("kW").draw().map_err(err)?;
    // Draw the largest cumulative sum first so the smaller ones sit on top.
    for (k, (name, _)) in supply.iter().enumerate().rev() {
        let color = PALETTE[k % PALETTE.len()];
        chart
            .draw_series(AreaSeries::new(stairs(&up[k]), 0.0, color.mix(0.9)).border_style(color))
            .map_err(err)?
            .label(format!("+ {name}"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    for (k, (name, _)) in use_.iter().enumerate().rev() {
        let color = PALETTE[(supply.len() + k) % PALETTE.len()];
        chart
            .draw_series(AreaSeries::new(stairs(&down[k]), 0.0, color.mix(0.6)).border_style(color))
            .map_err(err)?
            .label(format!("− {name}"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.mix(0.6).filled()));
    }
    chart.draw_series(LineSeries::new([(0.0, 0.0), (n as f64, 0.0)], BLACK.stroke_width(1))).map_err(err)?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(err)?;

    let max_level = levels.iter().flat_map(|(_, v)| v.iter().copied()).fold(0.0, f64::max).max(1.0) * 1.08;
    let mut chart = ChartBuilder::on(&middle)
        .margin(12)
        .x_label_area_size(20)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, 0.0..max_level)
        .map_err(err)?;
    chart.configure_mesh().x_labels(8).x_label_formatter(&x_label).y_desc("stored kWh").draw().map_err(err)?;
    for (k, (name, values)) in levels.iter().enumerate() {
        let color = PALETTE[(k + 4) % PALETTE.len()];
        let points: Vec<(f64, f64)> = values.iter().enumerate().map(|(t, &v)| (t as f64 + 1.0, v)).collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(err)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], color.stroke_width(2)));
    }
    if !levels.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
    }

    let price = bus_schedule.and_then(|b| b.price.clone()).unwrap_or_default();
    let (pmin, pmax) = price.iter().fold((0.0f64, 0.0f64), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    let pad = ((pmax - pmin) * 0.1).max(1e-3);
    let mut chart = ChartBuilder::on(&lower)
        .margin(12)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n as f64, (pmin - pad)..(pmax + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&x_label)
        .y_desc(format!("price {currency}/kWh"))
        .draw()
        .map_err(err)?;
    if !price.is_empty() {
        chart.draw_series(LineSeries::new(stairs(&price), PALETTE[2].stroke_width(2))).map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// The cost–CO2 front: one marker per point, joined in order.
pub(super) fn front(case: &Case, front: &Front, path: &Path) -> anyhow::Result<()> {
    register_font();
    let points: Vec<(f64, f64)> = front.points.iter().map(|p| (p.co2_kg / 1000.0, p.cost)).collect();
    let (xmin, xmax) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.0), b.max(p.0)));
    let (ymin, ymax) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (xpad, ypad) = (((xmax - xmin) * 0.08).max(1e-3), ((ymax - ymin) * 0.08).max(1e-3));
    let root = BitMapBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{} — cost against CO2 ({} points)", case.name(), points.len()), ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d((xmin - xpad)..(xmax + xpad), (ymin - ypad)..(ymax + ypad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("CO2, t")
        .y_desc(format!("cost, {}", case.settings().currency))
        .draw()
        .map_err(err)?;
    chart.draw_series(LineSeries::new(points.clone(), PALETTE[0].stroke_width(2))).map_err(err)?;
    chart.draw_series(points.iter().map(|&p| Circle::new(p, 6, PALETTE[1].filled()))).map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A stretch of backtest forecasts against the actuals: the point forecast,
/// the central interval as a band, and the actual values.
pub(super) struct ForecastPlot<'a> {
    pub title: String,
    pub unit: &'a str,
    /// The local date of an x position (hours since the first issue).
    pub time_label: &'a dyn Fn(f64) -> String,
    /// Hours since the first issue, per plotted step.
    pub hours: Vec<f64>,
    pub actual: Vec<f64>,
    /// Flagged actuals, not scored: (hours, the value the features saw).
    pub flagged: Vec<(f64, f64)>,
    pub point: Vec<f64>,
    /// Lower and upper bounds, with their label (e.g. "P10–P90").
    pub band: Option<(String, Vec<f64>, Vec<f64>)>,
    /// Hours at which a new forecast is issued (drawn as faint lines).
    pub issues: Vec<f64>,
}

/// The chart of values over time that the forecast and quality plots share.
type TimeChart<'a, 'b> = ChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The lowest and highest finite value, or `(0, 1)` without one.
fn finite_range<'v>(values: impl IntoIterator<Item = &'v f64>) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// Draws a `size` chart of values over time into `path`: x in hours from
/// `0` to `xmax` labelled by `time_label`, y over `y` in `unit`; `draw`
/// adds the series, and their legend goes to the upper right.
#[expect(clippy::too_many_arguments, reason = "one plot's frame: every argument is one of its parts")]
fn time_chart(
    path: &Path,
    size: (u32, u32),
    title: &str,
    unit: &str,
    time_label: &dyn Fn(f64) -> String,
    xmax: f64,
    y: std::ops::Range<f64>,
    draw: impl FnOnce(&mut TimeChart<'_, '_>) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    register_font();
    let root = BitMapBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..xmax.max(1.0), y)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(12)
        .x_label_formatter(&|x| time_label(*x))
        .y_desc(unit)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(err)?;
    draw(&mut chart)?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

pub(super) fn forecast(plot: &ForecastPlot<'_>, path: &Path) -> anyhow::Result<()> {
    let band = plot.band.iter().flat_map(|(_, lo, hi)| lo.iter().chain(hi));
    let (ymin, ymax) = finite_range(plot.actual.iter().chain(&plot.point).chain(band));
    let pad = ((ymax - ymin) * 0.05).max(1e-6);
    let xmax = plot.hours.last().copied().unwrap_or(1.0);
    let (bottom, top) = (ymin - pad, ymax + pad);
    time_chart(path, (1400, 600), &plot.title, plot.unit, plot.time_label, xmax, bottom..top, |chart| {
        for &x in &plot.issues {
            chart.draw_series(LineSeries::new([(x, bottom), (x, top)], BLACK.mix(0.08))).map_err(err)?;
        }
        let pts = |v: &[f64]| -> Vec<(f64, f64)> {
            plot.hours.iter().zip(v).filter(|(_, y)| y.is_finite()).map(|(&x, &y)| (x, y)).collect()
        };
        if let Some((label, lo, hi)) = &plot.band {
            let mut poly = pts(hi);
            poly.extend(pts(lo).into_iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(poly, PALETTE[0].mix(0.22).filled())))
                .map_err(err)?
                .label(label.as_str())
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], PALETTE[0].mix(0.22).filled()));
        }
        chart
            .draw_series(LineSeries::new(pts(&plot.actual), BLACK.stroke_width(2)))
            .map_err(err)?
            .label("actual")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.stroke_width(2)));
        chart
            .draw_series(LineSeries::new(pts(&plot.point), PALETTE[0].stroke_width(2)))
            .map_err(err)?
            .label("forecast")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], PALETTE[0].stroke_width(2)));
        if !plot.flagged.is_empty() {
            let shown = plot
                .flagged
                .iter()
                .filter(|(_, y)| y.is_finite())
                .map(|&(x, y)| Cross::new((x, y), 6, PALETTE[2].stroke_width(2)));
            chart
                .draw_series(shown)
                .map_err(err)?
                .label("flagged actual (not scored)")
                .legend(|(x, y)| Cross::new((x + 8, y), 6, PALETTE[2].stroke_width(2)));
        }
        Ok(())
    })
}

/// A series with what the quality check flagged: the values the features
/// see as a line, and per kind of flag the values as read (a cross) and,
/// where they differ, the value used instead (a dot).
pub(super) struct QualityPlot<'a> {
    pub title: String,
    pub unit: &'a str,
    /// The local date of an x position (hours since the first step).
    pub time_label: &'a dyn Fn(f64) -> String,
    pub hours: Vec<f64>,
    pub values: Vec<f64>,
    /// Per kind: its legend label and its marks.
    pub marks: Vec<(String, Vec<Mark>)>,
}

/// A flagged value: hours since the first step, the value as read, and the
/// value used instead, if any.
pub(super) type Mark = (f64, f64, Option<f64>);

pub(super) fn quality(plot: &QualityPlot<'_>, path: &Path) -> anyhow::Result<()> {
    // The scale follows the series and the values used; a spike of 1e12
    // would flatten everything else, so values read far outside it are
    // drawn at the edge.
    let used = plot.marks.iter().flat_map(|(_, m)| m.iter().filter_map(|p| p.2.as_ref()));
    let (ymin, ymax) = finite_range(plot.values.iter().chain(used));
    let pad = ((ymax - ymin) * 0.08).max(1e-6);
    let (lo, hi) = (ymin - pad, ymax + pad);
    let xmax = plot.hours.last().copied().unwrap_or(1.0);
    time_chart(path, (1600, 600), &plot.title, plot.unit, plot.time_label, xmax, lo..hi, |chart| {
        let line: Vec<(f64, f64)> =
            plot.hours.iter().zip(&plot.values).filter(|(_, y)| y.is_finite()).map(|(&x, &y)| (x, y)).collect();
        chart
            .draw_series(LineSeries::new(line, BLACK.mix(0.55).stroke_width(1)))
            .map_err(err)?
            .label("series (as used)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.55).stroke_width(2)));
        for (k, (label, points)) in plot.marks.iter().enumerate() {
            let color = PALETTE[(k + 1) % PALETTE.len()];
            // Values read: off-scale ones (and non-finite ones) at the edge.
            let read = points.iter().map(move |&(x, v, _)| {
                let y = if v.is_nan() { hi } else { v.clamp(lo, hi) };
                Cross::new((x, y), 6, color.stroke_width(2))
            });
            chart
                .draw_series(read)
                .map_err(err)?
                .label(label.as_str())
                .legend(move |(x, y)| Cross::new((x + 8, y), 6, color.stroke_width(2)));
            let used = points
                .iter()
                .filter_map(|&(x, v, u)| u.filter(|u| (u - v).abs() > 1e-12 || v.is_nan()).map(|u| (x, u)))
                .map(move |p| Circle::new(p, 3, color.filled()));
            chart.draw_series(used).map_err(err)?;
        }
        Ok(())
    })
}

/// A day-ahead plan: one panel per forecast series with its scenarios (a
/// fan of thin lines, darker for likelier ones), its P10–P90 band and point
/// forecast, the grid nomination and the committed hours; and the cost
/// distribution over the scenarios.
pub(super) struct PlanPlot<'a> {
    pub title: String,
    /// The local time of a step.
    pub time_label: &'a dyn Fn(f64) -> String,
    pub series: Vec<FanSeries>,
    /// Per nominated grid: its name and net import per step, kW.
    pub nominations: Vec<(String, Vec<f64>)>,
    /// Per unit under commitment: its name and on/off per step.
    pub commitment: Vec<(String, Vec<bool>)>,
    /// `(cost, probability)` per scenario.
    pub costs: Vec<(f64, f64)>,
    pub expected: f64,
    /// CVaR with its level.
    pub cvar: Option<(f64, f64)>,
    pub currency: &'a str,
}

/// One forecast series of a plan plot: its name, point forecast, P10–P90
/// (if any) and scenarios `(probability, values)`.
pub(super) type FanSeries = (String, Vec<f64>, Option<(Vec<f64>, Vec<f64>)>, Vec<(f64, Vec<f64>)>);

pub(super) fn plan(plot: &PlanPlot<'_>, path: &Path) -> anyhow::Result<()> {
    register_font();
    let panels = plot.series.len() + 1;
    let root = BitMapBackend::new(path, (1200, 360 * u32::try_from(panels).unwrap_or(2))).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(&plot.title, ("sans-serif", 22)).map_err(err)?;
    let areas = root.split_evenly((panels, 1));
    for ((name, point, band, scenarios), area) in plot.series.iter().zip(&areas) {
        let n = point.len();
        let nominated = plot.nominations.iter().flat_map(|(_, v)| v.iter());
        let all = scenarios.iter().flat_map(|(_, v)| v.iter()).chain(point).chain(nominated);
        let (lo, hi) = finite_range(all);
        let pad = ((hi - lo) * 0.06).max(1e-6);
        let (bottom, top) = (lo.min(0.0) - pad, hi + pad);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{name}: scenarios and plan"), ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..n as f64, bottom..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_labels(12)
            .x_label_formatter(&|x| (plot.time_label)(*x))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(err)?;
        // Committed steps as a strip along the bottom, one per unit.
        let strip = (top - bottom) * 0.03;
        for (k, (unit, on)) in plot.commitment.iter().enumerate() {
            let y0 = bottom + strip * k as f64;
            let color = PALETTE[(4 + k) % PALETTE.len()];
            let bars = on.iter().enumerate().filter(|(_, on)| **on).map(|(t, _)| {
                Rectangle::new([(t as f64, y0), (t as f64 + 1.0, y0 + strip * 0.8)], color.mix(0.7).filled())
            });
            chart
                .draw_series(bars)
                .map_err(err)?
                .label(format!("{unit} committed"))
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.mix(0.7).filled()));
        }
        let max_p = scenarios.iter().map(|(p, _)| *p).fold(0.0, f64::max).max(1e-12);
        for (k, (p, values)) in scenarios.iter().enumerate() {
            let series =
                chart.draw_series(LineSeries::new(stairs(values), BLACK.mix(0.12 + 0.5 * p / max_p))).map_err(err)?;
            if k == 0 {
                series
                    .label(format!("{} scenarios", scenarios.len()))
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLACK.mix(0.4)));
            }
        }
        if let Some((lo, hi)) = band {
            let mut poly = stairs(hi);
            poly.extend(stairs(lo).into_iter().rev());
            chart
                .draw_series(std::iter::once(Polygon::new(poly, PALETTE[0].mix(0.18).filled())))
                .map_err(err)?
                .label("P10–P90")
                .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], PALETTE[0].mix(0.18).filled()));
        }
        chart
            .draw_series(LineSeries::new(stairs(point), PALETTE[0].stroke_width(2)))
            .map_err(err)?
            .label("point forecast")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], PALETTE[0].stroke_width(2)));
        for (k, (grid, values)) in plot.nominations.iter().enumerate() {
            let color = PALETTE[(1 + k) % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(stairs(values), color.stroke_width(2)))
                .map_err(err)?
                .label(format!("{grid} nominated net import, kW"))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    }
    // The cost distribution: the cumulative probability of the scenario costs.
    let Some(area) = areas.last() else { return Ok(()) };
    let mut costs = plot.costs.clone();
    costs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (lo, hi) = finite_range(costs.iter().map(|(c, _)| c));
    let pad = ((hi - lo) * 0.08).max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("cost over the scenarios, {}", plot.currency), ("sans-serif", 17))
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(70)
        .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..1.05)
        .map_err(err)?;
    chart.configure_mesh().y_desc("cumulative probability").light_line_style(WHITE.mix(0.0)).draw().map_err(err)?;
    let mut cumulative = 0.0;
    let mut steps = vec![(lo - pad, 0.0)];
    for &(cost, p) in &costs {
        steps.push((cost, cumulative));
        cumulative += p;
        steps.push((cost, cumulative));
    }
    steps.push((hi + pad, cumulative));
    chart
        .draw_series(LineSeries::new(steps, PALETTE[0].stroke_width(2)))
        .map_err(err)?
        .label("cumulative probability")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], PALETTE[0].stroke_width(2)));
    let expected = plot.expected;
    chart
        .draw_series(LineSeries::new([(expected, 0.0), (expected, 1.05)], PALETTE[1].stroke_width(2)))
        .map_err(err)?
        .label(format!("expected {expected:.1}"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], PALETTE[1].stroke_width(2)));
    if let Some((alpha, cvar)) = plot.cvar {
        chart
            .draw_series(LineSeries::new([(cvar, 0.0), (cvar, 1.05)], PALETTE[2].stroke_width(2)))
            .map_err(err)?
            .label(format!("CVaR({alpha}) {cvar:.1}"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], PALETTE[2].stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present().map_err(err)?;
    Ok(())
}
