//! The picture of contracted against delivered energy.

use std::path::Path;

use plotters::prelude::*;
use volta_contracts::statistics::Volume;

use super::plot::{PALETTE, err, register_font};

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
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}
