//! The picture of contracted against delivered energy.

use std::path::Path;

use plotters::prelude::*;
use rust_decimal::Decimal;
use volta_contracts::projection::Projection;
use volta_contracts::statistics::Volume;

use super::plot::{PALETTE, err, legend, register_font};

/// Delivered energy as bars against the contracted volume as a line, per
/// bucket, in MWh; completion under each bucket's label when there are few.
pub(crate) fn volumes(title: &str, volumes: &[Volume], path: &Path) -> anyhow::Result<()> {
    register_font();
    let mwh = |e: volta_contracts::Energy| e.wh() as f64 / 1e6;
    let n = volumes.len().max(1);
    let top = volumes.iter().map(|v| mwh(v.contracted).max(mwh(v.delivered))).fold(0.0, f64::max).max(1e-3) * 1.12;
    let root = BitMapBackend::new(path, (1400, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let label = |x: &f64| {
        let i = *x as usize;
        volumes.get(i).map_or_else(String::new, |v| v.label.clone())
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: contracted against delivered, MWh"), ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n as f64, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_labels(n.min(24))
        .x_label_formatter(&label)
        .y_desc("MWh")
        .disable_x_mesh()
        .draw()
        .map_err(err)?;
    let delivered = PALETTE[0];
    chart
        .draw_series(volumes.iter().enumerate().map(|(i, v)| {
            let x = i as f64;
            Rectangle::new([(x + 0.15, 0.0), (x + 0.85, mwh(v.delivered))], delivered.mix(0.85).filled())
        }))
        .map_err(err)?
        .label("delivered")
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], delivered.filled()));
    let contracted = PALETTE[1];
    chart
        .draw_series(volumes.iter().enumerate().map(|(i, v)| {
            let x = i as f64;
            PathElement::new([(x + 0.05, mwh(v.contracted)), (x + 0.95, mwh(v.contracted))], contracted.stroke_width(3))
        }))
        .map_err(err)?
        .label("contracted")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], contracted.stroke_width(3)));
    if volumes.len() <= 40 {
        chart
            .draw_series(volumes.iter().enumerate().filter_map(|(i, v)| {
                v.completion().map(|c| {
                    Text::new(
                        format!("{c}%"),
                        (i as f64 + 0.2, mwh(v.delivered).max(mwh(v.contracted)) + top * 0.02),
                        ("sans-serif", 12),
                    )
                })
            }))
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A projection's outcomes as a picture of their odds: every scenario's
/// deviation at the end of the period, sorted, against the share of
/// scenarios at or below it (an empirical quantile function), red where
/// the scenario pays a penalty; the expected outcome and the reported
/// levels marked.
pub(crate) fn projection(title: &str, p: &Projection, path: &Path) -> anyhow::Result<()> {
    register_font();
    let mwh = |e: volta_contracts::Energy| e.wh() as f64 / 1e6;
    let mut outcomes: Vec<(f64, bool)> =
        p.outcomes.iter().map(|o| (mwh(o.deviation), o.penalty_amount > Decimal::ZERO)).collect();
    outcomes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = outcomes.len().max(1);
    let (low, high) = outcomes
        .iter()
        .map(|o| o.0)
        .chain([mwh(p.expected.deviation), 0.0])
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let pad = ((high - low) * 0.1).max(1e-3);
    let root = BitMapBackend::new(path, (1200, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: projected deviation over {} as of {}, MWh", p.period, p.cut), ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..1.0, (low - pad)..(high + pad))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("share of scenarios at or below")
        .y_desc("delivered - contracted, MWh")
        .draw()
        .map_err(err)?;
    let (free, paying) = (PALETTE[0], RGBColor(200, 40, 40));
    let width = 1.0 / n as f64;
    chart
        .draw_series(outcomes.iter().enumerate().map(|(i, (v, pays))| {
            let x = i as f64 * width;
            let colour = if *pays { paying } else { free };
            Rectangle::new([(x + width * 0.1, 0.0), (x + width * 0.9, *v)], colour.mix(0.85).filled())
        }))
        .map_err(err)?;
    chart
        .draw_series([Rectangle::new([(0.0, 0.0), (0.0, 0.0)], paying.filled())])
        .map_err(err)?
        .label(format!("pays a penalty ({} of {n} scenarios)", outcomes.iter().filter(|o| o.1).count()))
        .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], paying.filled()));
    let expected = mwh(p.expected.deviation);
    let marker = PALETTE[1];
    chart
        .draw_series([PathElement::new([(0.0, expected), (1.0, expected)], marker.stroke_width(2))])
        .map_err(err)?
        .label(format!("point forecast: {expected:+.3} MWh"))
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 12, y)], marker.stroke_width(2)));
    for level in &p.levels {
        chart
            .draw_series([PathElement::new(
                [(level.level, low - pad), (level.level, high + pad)],
                BLACK.mix(0.4).stroke_width(1),
            )])
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                format!("P{:.0}", level.level * 100.0),
                (level.level + 0.005, low - pad * 0.4),
                ("sans-serif", 14),
            )])
            .map_err(err)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present().map_err(err)?;
    Ok(())
}
