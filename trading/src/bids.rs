//! Bids from the core: how a site with flexible assets enters the market.
//!
//! A site's dispatch case (its loads, PV, storage, CHP, heat pumps, ...)
//! says what it would do at any prices. To turn that into a bid curve per
//! interval, the case is scheduled once per price level, the grid
//! connection that faces the market buying and selling at a forecast price
//! profile shifted by that level; each schedule's net import in each
//! interval is what the site would buy (or, negative, sell) at that
//! interval's price. The levels become price-quantity steps:
//!
//! - a buy step at level `k` of the energy the site would stop buying
//!   between level `k` and the next higher one (the highest level keeps
//!   what it still buys), so that at a clearing price equal to level `k`
//!   the accepted buys add up to the schedule's import at `k`;
//! - a sell step at level `k` of the energy it would start selling between
//!   the next lower level and `k`.
//!
//! Shifting the whole profile keeps its shape, so storage still arbitrages
//! between cheap and dear intervals at every level: the curve carries what
//! the assets can shift, not only what they can curtail. A schedule is the
//! optimum of a MILP for each level on its own; where commitment makes the
//! import rise with the price (which the steps cannot express), the
//! quantities are made monotone (the running minimum of the import, the
//! running maximum of the export) and the change is counted.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use volta_contracts::Energy;
use volta_dispatch::Options;
use volta_engine::Case;

use crate::error::TradingError;
use crate::order::Side;
use crate::price::Price;

/// Most price levels of one curve.
pub const MAX_LEVELS: usize = 64;

/// One step of an interval's curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidStep {
    /// Buy or sell.
    pub side: Side,
    /// The limit per kWh.
    pub price: Price,
    /// The energy, Wh.
    pub quantity: Energy,
}

/// The curve of one interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntervalCurve {
    /// The interval's start.
    pub start: Timestamp,
    /// Its steps (none: the site neither buys nor sells at any level).
    pub steps: Vec<BidStep>,
    /// The price of each level: the forecast plus the level's shift.
    pub prices: Vec<Price>,
    /// Net import at each level, Wh (negative: export), as scheduled.
    pub net_import: Vec<Energy>,
}

/// A site's bid curves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Curves {
    /// The price shifts, ascending.
    pub shifts: Vec<Price>,
    /// Per interval of the case.
    pub intervals: Vec<IntervalCurve>,
    /// Quantities that were not monotone in the price and were evened out.
    pub evened: usize,
}

/// The bid curves of `case` through its grid connection `grid`, at the
/// forecast `prices` (one per step, per kWh) shifted by each of `shifts`.
///
/// # Errors
/// An unknown or non-grid asset, prices not one per step, too many or
/// unsorted shifts, a level whose schedule is infeasible, or the solver.
pub fn curves(
    case: &Case,
    grid: &str,
    prices: &[f64],
    shifts: &[Price],
    options: &Options,
) -> Result<Curves, TradingError> {
    let count = case.grid().len();
    if prices.len() != count {
        return Err(TradingError::invalid("prices", format!("{} prices for {count} steps", prices.len())));
    }
    if let Some((i, _)) = prices.iter().enumerate().find(|(_, p)| !p.is_finite() || p.abs() > 1_000.0) {
        return Err(TradingError::invalid(format!("prices[{i}]"), "not a price"));
    }
    if shifts.is_empty() || shifts.windows(2).any(|w| w[0] >= w[1]) {
        return Err(TradingError::invalid("shifts", "at least one, strictly increasing"));
    }
    crate::at_most("shifts", shifts.len(), MAX_LEVELS)?;
    let asset = case.asset(grid).ok_or_else(|| TradingError::invalid("grid", format!("no asset {grid:?}")))?;
    if asset.kind.type_name() != "grid" {
        return Err(TradingError::invalid(
            "grid",
            format!("{grid:?} is a {}, not a grid connection", asset.kind.type_name()),
        ));
    }
    let document =
        serde_json::to_value(case.to_document()).map_err(|e| TradingError::invalid("case", e.to_string()))?;
    let hours = case.grid().step().as_secs_f64() / 3600.0;
    // net[k][t]: net import at level k, Wh.
    let mut net: Vec<Vec<i64>> = Vec::with_capacity(shifts.len());
    for (k, shift) in shifts.iter().enumerate() {
        let level: Vec<f64> = prices.iter().map(|p| p + shift.micros() as f64 / 1e6).collect();
        let mut doc = document.clone();
        let entry = doc
            .get_mut("assets")
            .and_then(|a| a.as_array_mut())
            .and_then(|a| a.iter_mut().find(|a| a.get("id").and_then(|i| i.as_str()) == Some(grid)))
            .ok_or_else(|| TradingError::invalid("grid", format!("no asset {grid:?} in the case document")))?;
        entry["import_price"] = serde_json::json!(level);
        entry["export_price"] = serde_json::json!(level);
        let checked = volta_engine::case::CaseReader::new()
            .read_value(doc)
            .map_err(|e| TradingError::invalid("case", e.to_string()))?;
        let solution = volta_dispatch::schedule(&checked.case, options)
            .map_err(|e| TradingError::invalid(format!("shifts[{k}]"), e.to_string()))?;
        let schedule = solution.schedule.ok_or_else(|| {
            TradingError::invalid(
                format!("shifts[{k}]"),
                format!("the site has no schedule at {shift} ({:?})", solution.status),
            )
        })?;
        let flows = schedule
            .assets
            .iter()
            .find(|a| a.id.as_str() == grid)
            .and_then(|a| a.flows.first())
            .ok_or_else(|| TradingError::invalid("grid", "no flow of the grid connection in the schedule"))?;
        // A grid's flow into its bus is its import.
        net.push(flows.kw.iter().map(|kw| (kw * hours * 1000.0).round() as i64).collect());
    }
    let mut evened = 0;
    let mut intervals = Vec::with_capacity(count);
    for (t, start) in case.grid().instants().enumerate() {
        let mut column: Vec<i64> = net.iter().map(|n| n[t]).collect();
        // Import never rises with the price: running minimum upwards.
        for k in 1..column.len() {
            if column[k] > column[k - 1] {
                column[k] = column[k - 1];
                evened += 1;
            }
        }
        let levels: Vec<Price> =
            shifts.iter().map(|shift| Price::from_micros((prices[t] * 1e6).round() as i64 + shift.micros())).collect();
        let net_import: Vec<Energy> = column.into_iter().map(Energy::from_wh).collect();
        intervals.push(IntervalCurve { start, steps: steps(&net_import, &levels), prices: levels, net_import });
    }
    Ok(Curves { shifts: shifts.to_vec(), intervals, evened })
}

/// Steps from the net import at each level (ascending prices): a buy at
/// level `k` of what stops being bought by the next level (the last keeps
/// the rest), a sell at `k` of what starts being sold since the level
/// before. Quantities must be monotone (import falling with the price).
pub(crate) fn steps(net_import: &[Energy], prices: &[Price]) -> Vec<BidStep> {
    let last = net_import.len().saturating_sub(1);
    let buy = |k: usize| net_import[k].wh().max(0);
    let sell = |k: usize| (-net_import[k].wh()).max(0);
    let mut out = Vec::new();
    for (k, &price) in prices.iter().enumerate().take(net_import.len()) {
        let bought = buy(k) - if k < last { buy(k + 1) } else { 0 };
        if bought > 0 {
            out.push(BidStep { side: Side::Buy, price, quantity: Energy::from_wh(bought) });
        }
        let sold = sell(k) - if k > 0 { sell(k - 1) } else { 0 };
        if sold > 0 {
            out.push(BidStep { side: Side::Sell, price, quantity: Energy::from_wh(sold) });
        }
    }
    out
}
