//! Contract-aware bidding: a participant's bilateral contract positions
//! are netted before the local market, and what it needs is reported as
//! covered by contract or by the market.
//!
//! A contract delivers its contracted curve whatever the market does (it
//! is paid at the contract's price, outside the market). So a participant
//! that would import `D(p)` at a market price `p` and receives `C` under
//! its contracts needs `D(p) - C` from the market: a buy while positive, a
//! sell of the surplus while negative. A seller under contract (`C`
//! negative) must find what it delivers: its need rises by the same
//! amount. Positions come from the contract model: the contracted energy
//! of every contract the party buys or sells under, summed over each
//! market interval.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use volta_contracts::ledger::{IndexPrices, Portfolio};
use volta_contracts::{Contract, Energy, MeteringPoint, PartyId, Period, ReadingLog};

use crate::bids::{Curves, IntervalCurve, steps};
use crate::error::TradingError;
use crate::price::Price;
use crate::product::MarketRules;

/// A participant's contract position in one market interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The interval's start.
    pub start: Timestamp,
    /// Energy it receives under its contracts (negative: it delivers), Wh.
    pub contracted: Energy,
}

/// What a participant's need at a price is met by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    /// The interval's start.
    pub start: Timestamp,
    /// Its net import at the price, before contracts, Wh.
    pub need: Energy,
    /// What its contracts bring (negative: take), Wh.
    pub by_contract: Energy,
    /// What the market must bring (negative: take), Wh.
    pub by_market: Energy,
}

/// `party`'s positions in the intervals starting at `starts` (each
/// `length` long, in time order): the contracted energy of every contract
/// in `portfolio` it buys (positive) or sells (negative) under, over
/// `period`.
///
/// # Errors
/// A contract the portfolio cannot read a ledger of.
pub fn positions(
    portfolio: &Portfolio,
    party: &PartyId,
    period: &Period,
    starts: &[Timestamp],
    length: SignedDuration,
) -> Result<Vec<Position>, TradingError> {
    let mut out: Vec<Position> = starts.iter().map(|s| Position { start: *s, contracted: Energy::ZERO }).collect();
    for contract in portfolio.contracts() {
        let sign = if contract.buyer() == party {
            1
        } else if contract.seller() == party {
            -1
        } else {
            continue;
        };
        let ledger = portfolio
            .ledger(contract.id(), period, &ReadingLog::new(), &IndexPrices::new(), None)
            .map_err(|e| TradingError::invalid("contracts", format!("{}: {e}", contract.id())))?;
        for entry in &ledger.entries {
            // The last interval starting at or before the entry.
            let Some(k) = out.partition_point(|p| p.start <= entry.start).checked_sub(1) else { continue };
            let p = &mut out[k];
            if entry.start < p.start + length {
                p.contracted += if sign > 0 { entry.contracted } else { -entry.contracted };
            }
        }
    }
    Ok(out)
}

/// `party`'s positions in every delivery interval of a market with
/// `rules` on the local days of `period`, from `contracts` (each with its
/// metering points, which give the zone and interval its curve is read
/// in). Only contracts in a state that delivers count
/// ([`State::delivers`](volta_contracts::State::delivers)).
///
/// # Errors
/// Invalid rules, or a contract whose metering points do not read.
pub fn market_positions(
    rules: &MarketRules,
    party: &PartyId,
    period: &Period,
    contracts: &[(Contract, Vec<MeteringPoint>)],
) -> Result<Vec<Position>, TradingError> {
    let mut starts = Vec::new();
    for day in period.days() {
        starts.extend(rules.products(day)?.into_iter().map(|p| p.delivery_start));
    }
    let mut portfolio = Portfolio::new();
    for (i, (contract, meters)) in contracts.iter().enumerate() {
        if !contract.state().delivers() {
            continue;
        }
        for meter in meters {
            portfolio
                .add_meter(meter.clone())
                .map_err(|e| TradingError::invalid(format!("contracts[{i}].meters"), e.to_string()))?;
        }
        portfolio
            .add_contract(contract.clone())
            .map_err(|e| TradingError::invalid(format!("contracts[{i}]"), e.to_string()))?;
    }
    positions(&portfolio, party, period, &starts, SignedDuration::from_mins(rules.interval_minutes))
}

/// `curves` with each interval's contract position netted: the net import
/// at every level less what the contracts bring, turned back into steps.
///
/// # Errors
/// Positions that do not match the curves' intervals.
pub fn net(curves: &Curves, positions: &[Position]) -> Result<Curves, TradingError> {
    if positions.len() != curves.intervals.len() {
        return Err(TradingError::invalid(
            "positions",
            format!("{} positions for {} intervals", positions.len(), curves.intervals.len()),
        ));
    }
    let mut intervals = Vec::with_capacity(curves.intervals.len());
    for (i, (curve, position)) in curves.intervals.iter().zip(positions).enumerate() {
        if curve.start != position.start {
            return Err(TradingError::invalid(
                format!("positions[{i}].start"),
                format!("{} is not the interval's start {}", position.start, curve.start),
            ));
        }
        let net_import: Vec<Energy> = curve.net_import.iter().map(|n| *n - position.contracted).collect();
        intervals.push(IntervalCurve {
            start: curve.start,
            steps: steps(&net_import, &curve.prices),
            prices: curve.prices.clone(),
            net_import,
        });
    }
    Ok(Curves { shifts: curves.shifts.clone(), intervals, evened: curves.evened })
}

/// What `curve`'s need at `price` is met by, given its `position`: the
/// need is the net import at the highest level at or below the price (the
/// lowest level below them all).
#[must_use]
pub fn coverage(curves: &Curves, interval: usize, position: &Position, price: Price) -> Coverage {
    let curve = &curves.intervals[interval];
    let k = curve.prices.iter().rposition(|p| *p <= price).unwrap_or(0);
    let need = curve.net_import.get(k).copied().unwrap_or(Energy::ZERO);
    Coverage { start: curve.start, need, by_contract: position.contracted, by_market: need - position.contracted }
}
