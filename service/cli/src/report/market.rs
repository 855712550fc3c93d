//! The picture of a call auction: supply and demand as step curves and the
//! point where they cross.

use std::path::Path;

use plotters::prelude::*;
use volta_trading::{Bid, Price, Side};

use super::plot::{PALETTE, err, legend, register_font};

/// Demand (bids, highest first) and supply (offers, lowest first) as
/// cumulative step curves in kWh against price, with the clearing price
/// and volume marked. Prices are what buyers pay: under grid fee `fee`
/// the caller gives the offers at their ask plus the fee, and the legend
/// says so.
pub(crate) fn curves(
    title: &str,
    bids: &[Bid],
    fee: Price,
    price: Option<Price>,
    volume: volta_contracts::Energy,
    path: &Path,
) -> anyhow::Result<()> {
    register_font();
    let steps = |side: Side| -> Vec<(f64, f64)> {
        let mut orders: Vec<(f64, f64)> = bids
            .iter()
            .filter(|b| b.side == side)
            .filter_map(|b| b.price.map(|p| (p.micros() as f64 / 1e6, b.quantity.wh() as f64 / 1000.0)))
            .collect();
        orders.sort_by(|a, b| if side == Side::Buy { b.0.total_cmp(&a.0) } else { a.0.total_cmp(&b.0) });
        let mut points = Vec::with_capacity(2 * orders.len());
        let mut q = 0.0;
        for (p, k) in orders {
            points.push((q, p));
            q += k;
            points.push((q, p));
        }
        points
    };
    let (demand, supply) = (steps(Side::Buy), steps(Side::Sell));
    let right = demand.iter().chain(&supply).map(|p| p.0).fold(1e-3, f64::max) * 1.05;
    let (low, high) = demand
        .iter()
        .chain(&supply)
        .map(|p| p.1)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let (low, high) = if low.is_finite() { (low, high) } else { (0.0, 1.0) };
    let pad = ((high - low) * 0.1).max(1e-3);
    let root = BitMapBackend::new(path, (1100, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("{title}: supply and demand"), ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..right, (low - pad)..(high + pad))
        .map_err(err)?;
    chart.configure_mesh().x_desc("kWh").y_desc("price per kWh").draw().map_err(err)?;
    let offers = if fee == Price::ZERO {
        "supply (offers)".to_owned()
    } else {
        format!("supply (offers at ask + {fee} grid fee)")
    };
    for (points, colour, name) in [(demand, PALETTE[0], "demand (bids)".to_owned()), (supply, PALETTE[1], offers)] {
        chart
            .draw_series(LineSeries::new(points, colour.stroke_width(3)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], colour.stroke_width(3)));
    }
    if let Some(p) = price {
        let (q, p) = (volume.wh() as f64 / 1000.0, p.micros() as f64 / 1e6);
        chart
            .draw_series([Circle::new((q, p), 7, BLACK.filled())])
            .map_err(err)?
            .label(format!("clears {q:.3} kWh at {p}"))
            .legend(|(x, y)| Circle::new((x + 6, y), 5, BLACK.filled()));
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present().map_err(err)?;
    Ok(())
}
