//! Where a period will end: its deviation and penalty projected from what
//! has been read so far and from scenarios of the rest.
//!
//! A projection is a settlement of possible futures. Up to the cut the
//! readings are what they are; from the cut on, each scenario supplies its
//! own readings for the contract's meters, and the period is settled under
//! it by the same rules as a real settlement (allocation of shared meters,
//! bands, penalty, tiers). The outcome is a distribution: the delivered
//! energy, the deviation and the penalty at requested levels, each an
//! order statistic of the scenarios (so an amount is one a scenario would
//! really pay, exact to the cent), the expected penalty and how likely any
//! penalty is.
//!
//! The penalty is not monotone in the delivered energy (both a shortfall
//! and an excess pay), so each quantity's levels are taken on their own:
//! the P90 penalty is not the penalty at the P90 volume.
//!
//! Index prices of intervals after the cut not yet published are assumed
//! at the mean of the index over the period's prices before the cut, and
//! the projection says so.

use jiff::Timestamp;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Period;
use crate::error::ContractError;
use crate::ledger::{IndexPrices, Ledger, MarketPrices, Portfolio};
use crate::parties::ContractId;
use crate::quantity::{Energy, Price};
use crate::readings::{Quality, Reading, ReadingLog};
use crate::settlement::{Settlement, settle};

/// Most scenarios of one projection.
pub const MAX_SCENARIOS: usize = 1_000;

/// Most levels of one projection.
pub const MAX_LEVELS: usize = 99;

/// One settled outcome of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// Delivered energy over the period.
    pub delivered: Energy,
    /// Delivered minus contracted (negative: a shortfall).
    pub deviation: Energy,
    /// The deviation beyond the band that pays, kWh.
    pub penalty_volume: Decimal,
    /// What it pays, exact.
    pub penalty_amount: Decimal,
}

impl Outcome {
    fn of(settlement: &Settlement) -> Self {
        Self {
            delivered: settlement.delivered,
            deviation: settlement.delivered - settlement.contracted,
            penalty_volume: settlement.penalty_volume,
            penalty_amount: settlement.penalty_amount,
        }
    }
}

/// The outcome at one level: each quantity's own order statistic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// The level, in (0, 1).
    pub level: f64,
    /// Each quantity at that level of its own distribution.
    pub outcome: Outcome,
}

/// An index price assumed for the intervals after the cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assumed {
    /// The index.
    pub index: String,
    /// The mean of its prices over the period before the cut.
    pub price: Price,
    /// How many prices the mean is over.
    pub over: usize,
    /// How many intervals after the cut it prices (those not yet priced).
    pub intervals: usize,
}

/// A period's projected end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The contract.
    pub contract: ContractId,
    /// The period.
    pub period: Period,
    /// Readings before this instant are as read; from it on, projected.
    pub cut: Timestamp,
    /// Contracted over the whole period.
    pub contracted: Energy,
    /// Contracted before the cut.
    pub contracted_to_date: Energy,
    /// Delivered before the cut.
    pub delivered_to_date: Energy,
    /// Intervals before the cut with a meter's reading missing (counted
    /// as nothing delivered, as a settlement counts them).
    pub missing_to_date: u64,
    /// The outcome of the expected future (the point forecast).
    pub expected: Outcome,
    /// The outcome at each requested level, over the scenarios.
    pub levels: Vec<Level>,
    /// The mean penalty over the scenarios, exact.
    pub expected_penalty: Decimal,
    /// The share of scenarios that pay a penalty, in [0, 1].
    pub penalty_probability: Decimal,
    /// Each scenario's outcome, in the order given.
    pub outcomes: Vec<Outcome>,
    /// The penalty rule, in words, as a settlement states it.
    pub rule: String,
    /// Index prices assumed after the cut.
    pub assumed: Vec<Assumed>,
}

/// The future of the contract's meters under one scenario: a reading per
/// meter and interval from the cut to the end of the period.
pub type Future = Vec<Reading>;

/// Projects the end of `period` for contract `id`: the readings of `log`
/// before `cut`, then `expected` (the point forecast) or each of
/// `scenarios` from it on; `levels` in (0, 1), increasing.
///
/// # Errors
/// An unknown contract; a cut outside the period; levels out of (0, 1)
/// or not increasing; no scenarios, or more than [`MAX_SCENARIOS`]; a
/// scenario reading before the cut, after the period or repeated; an index
/// the terms need with no price at all before the cut.
#[expect(clippy::too_many_arguments, reason = "each is one input of a settlement of futures")]
pub fn project(
    portfolio: &Portfolio,
    id: &ContractId,
    period: &Period,
    log: &ReadingLog,
    prices: &IndexPrices,
    cut: Timestamp,
    expected: &Future,
    scenarios: &[Future],
    levels: &[f64],
) -> Result<Projection, ContractError> {
    let contract =
        portfolio.contract(id).ok_or_else(|| ContractError::invalid("contract_id", format!("no contract {id}")))?;
    let (zone, step) = portfolio.clock(id)?;
    let begin = crate::calendar::local_midnight(period.first(), &zone)?.timestamp();
    let end = crate::calendar::local_midnight(period.end(), &zone)?.timestamp();
    if cut < begin || cut > end {
        return Err(ContractError::invalid("as_of", format!("{cut} is outside {period} ({begin} to {end})")));
    }
    crate::at_most("levels", levels.len(), MAX_LEVELS)?;
    if levels.iter().any(|l| !(*l > 0.0 && *l < 1.0)) || levels.windows(2).any(|w| w[0] >= w[1]) {
        return Err(ContractError::invalid("levels", "each in (0, 1), increasing"));
    }
    if scenarios.is_empty() {
        return Err(ContractError::invalid("scenarios", "none to project with"));
    }
    crate::at_most("scenarios", scenarios.len(), MAX_SCENARIOS)?;

    // Index prices: as known, and after the cut the mean before it.
    let mut indices: Vec<&str> = contract.versions().iter().flat_map(|v| v.terms.indices()).collect();
    indices.sort_unstable();
    indices.dedup();
    let rest: Vec<Timestamp> = period.intervals(&zone, step)?.instants().filter(|t| *t >= cut).collect();
    let mut assumed = Vec::new();
    for index in indices {
        let unpriced = rest.iter().filter(|t| prices.price(index, **t).is_none()).count();
        if unpriced == 0 {
            continue;
        }
        let (sum, over) =
            prices.between(index, begin, cut).fold((Decimal::ZERO, 0_usize), |(s, n), p| (s + p.per_kwh(), n + 1));
        if over > 0 {
            assumed.push(Assumed {
                index: index.to_owned(),
                price: Price::new((sum / Decimal::from(over)).round_dp(6)),
                over,
                intervals: unpriced,
            });
        }
    }
    let future_prices = Assuming { known: prices, cut, assumed: &assumed };

    let settle_with = |future: &Future, field: &str| -> Result<(Ledger, Settlement), ContractError> {
        let mut log = log.clone();
        for (i, reading) in future.iter().enumerate() {
            if reading.start < cut || reading.start >= end {
                return Err(ContractError::invalid(
                    format!("{field}[{i}]"),
                    format!("{} is not between the cut {cut} and the end of the period {end}", reading.start),
                ));
            }
        }
        // The future has no readings yet: it loads as the next revision.
        log.load(log.latest_revision() + 1, future).map_err(|e| e.within(field))?;
        let ledger = portfolio.ledger(id, period, &log, &future_prices, None)?;
        let settlement = settle(portfolio, &ledger, &future_prices)?;
        Ok((ledger, settlement))
    };

    let (ledger, settlement) = settle_with(expected, "expected")?;
    let to_date = |f: fn(&crate::ledger::Entry) -> Energy| -> Energy {
        ledger.entries.iter().filter(|e| e.start < cut).map(f).sum()
    };
    let outcomes: Vec<Outcome> = scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| settle_with(s, &format!("scenarios[{i}]")).map(|(_, s)| Outcome::of(&s)))
        .collect::<Result<_, _>>()?;

    let n = outcomes.len();
    let order = |key: &dyn Fn(&Outcome) -> Decimal| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        idx.sort_by_key(|&i| key(&outcomes[i]));
        idx
    };
    let by_delivered = order(&|o| o.delivered.kwh());
    let by_deviation = order(&|o| o.deviation.kwh());
    let by_volume = order(&|o| o.penalty_volume);
    let by_amount = order(&|o| o.penalty_amount);
    let levels = levels
        .iter()
        .map(|&level| {
            let k = rank(level, n);
            Level {
                level,
                outcome: Outcome {
                    delivered: outcomes[by_delivered[k]].delivered,
                    deviation: outcomes[by_deviation[k]].deviation,
                    penalty_volume: outcomes[by_volume[k]].penalty_volume,
                    penalty_amount: outcomes[by_amount[k]].penalty_amount,
                },
            }
        })
        .collect();
    let total: Decimal = outcomes.iter().map(|o| o.penalty_amount).sum();
    let paying = outcomes.iter().filter(|o| o.penalty_amount > Decimal::ZERO).count();
    let count = Decimal::from(n);
    Ok(Projection {
        contract: id.clone(),
        period: *period,
        cut,
        contracted: settlement.contracted,
        contracted_to_date: to_date(|e| e.contracted),
        delivered_to_date: to_date(|e| e.delivered),
        missing_to_date: ledger.entries.iter().filter(|e| e.start < cut && e.quality == Quality::Missing).count()
            as u64,
        expected: Outcome::of(&settlement),
        levels,
        expected_penalty: total / count,
        penalty_probability: Decimal::from(paying) / count,
        outcomes,
        rule: settlement.rule,
        assumed,
    })
}

/// The 0-based rank of the order statistic at `level` of `n` values: the
/// smallest value with at least `level` of the values at or below it.
fn rank(level: f64, n: usize) -> usize {
    let k = (level * n as f64).ceil() as usize;
    k.clamp(1, n) - 1
}

/// Known prices, and an assumed one for unpriced intervals after the cut.
struct Assuming<'a> {
    known: &'a IndexPrices,
    cut: Timestamp,
    assumed: &'a [Assumed],
}

impl MarketPrices for Assuming<'_> {
    fn price(&self, index: &str, start: Timestamp) -> Option<Price> {
        self.known.price(index, start).or_else(|| {
            (start >= self.cut).then(|| self.assumed.iter().find(|a| a.index == index).map(|a| a.price)).flatten()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::rank;

    #[test]
    fn ranks_are_the_order_statistics_that_cover_their_level() {
        assert_eq!(rank(0.1, 100), 9);
        assert_eq!(rank(0.5, 100), 49);
        assert_eq!(rank(0.9, 100), 89);
        assert_eq!(rank(0.1, 5), 0);
        assert_eq!(rank(0.9, 5), 4);
        assert_eq!(rank(0.01, 1), 0);
        assert_eq!(rank(0.99, 1), 0);
    }
}
