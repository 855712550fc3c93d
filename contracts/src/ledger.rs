//! A contract's intervals over a period: contracted, delivered and priced,
//! each with the term version, TOU period and reading revision it used.
//!
//! The [`Portfolio`] holds what a ledger reads besides the readings and the
//! market prices: contracts, meters and how shared meters are allocated.
//! Each day of a period is read under the version of the terms in force
//! that day; a version's volume is spread over its whole unit (month,
//! delivery) before the days it governs are taken, so a mid-month change
//! of terms moves the curve from that day on and nothing before it.

use std::collections::{BTreeMap, HashMap};

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::allocation::{Allocation, Take};
use crate::calendar::Period;
use crate::contract::{Contract, TermVersion};
use crate::curve;
use crate::error::ContractError;
use crate::parties::{ContractId, MeterId, MeteringPoint};
use crate::quantity::{Energy, Price};
use crate::readings::{Quality, ReadingLog};
use crate::terms::{PriceRule, Quantity};

/// Market index prices, by index and interval start.
pub trait MarketPrices {
    /// The price of `index` for the interval starting at `start`.
    fn price(&self, index: &str, start: Timestamp) -> Option<Price>;
}

/// Index prices held in memory.
#[derive(Debug, Clone, Default)]
pub struct IndexPrices(HashMap<String, BTreeMap<Timestamp, Price>>);

impl IndexPrices {
    /// No prices.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `index`'s price for the interval starting at `start`.
    pub fn insert(&mut self, index: &str, start: Timestamp, price: Price) {
        self.0.entry(index.to_owned()).or_default().insert(start, price);
    }

    /// Removes `index`'s price for the interval starting at `start`.
    pub fn remove(&mut self, index: &str, start: Timestamp) -> Option<Price> {
        self.0.get_mut(index)?.remove(&start)
    }

    /// `index`'s prices of the intervals starting from `from` (inclusive)
    /// to `to` (exclusive), in time order.
    pub fn between(&self, index: &str, from: Timestamp, to: Timestamp) -> impl Iterator<Item = Price> + '_ {
        self.0.get(index).into_iter().flat_map(move |p| p.range(from..to).map(|(_, price)| *price))
    }
}

impl MarketPrices for IndexPrices {
    fn price(&self, index: &str, start: Timestamp) -> Option<Price> {
        self.0.get(index)?.get(&start).copied()
    }
}

/// One interval of a contract's ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The interval's start.
    pub start: Timestamp,
    /// Its local date.
    pub date: Date,
    /// The version of the terms in force.
    pub version: u32,
    /// Its TOU period under that version (0 without a table).
    pub period: usize,
    /// Contracted energy.
    pub contracted: Energy,
    /// Delivered energy: the contract's part of its meters' readings.
    pub delivered: Energy,
    /// The worst flag of the readings used (`missing` when a meter had none).
    pub quality: Quality,
    /// The highest revision of the readings used (0: none).
    pub revision: u64,
    /// The price per kWh of the delivered energy (for a CfD: strike minus
    /// index); none while a market index price it needs is missing.
    pub price: Option<Price>,
    /// What the delivered energy is worth, tier surcharges included, exact;
    /// none while unpriced.
    pub amount: Option<Decimal>,
}

/// A contract's entries over a period, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    /// The contract.
    pub contract: ContractId,
    /// The period asked for.
    pub period: Period,
    /// One entry per delivered interval.
    pub entries: Vec<Entry>,
}

impl Ledger {
    /// The first interval left unpriced, if any.
    #[must_use]
    pub fn first_unpriced(&self) -> Option<&Entry> {
        self.entries.iter().find(|e| e.amount.is_none())
    }
}

/// Contracts, meters and allocations: what ledgers are read against.
#[derive(Debug, Clone, Default)]
pub struct Portfolio {
    contracts: HashMap<ContractId, Contract>,
    meters: HashMap<MeterId, MeteringPoint>,
    allocations: HashMap<MeterId, Allocation>,
}

impl Portfolio {
    /// An empty portfolio.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a metering point.
    ///
    /// # Errors
    /// An invalid interval or zone.
    pub fn add_meter(&mut self, meter: MeteringPoint) -> Result<(), ContractError> {
        meter.check()?;
        self.meters.insert(meter.id.clone(), meter);
        Ok(())
    }

    /// Adds or replaces a contract; its meters must be known and share one
    /// interval and zone.
    ///
    /// # Errors
    /// An unknown meter, or meters that differ in interval or zone.
    pub fn add_contract(&mut self, contract: Contract) -> Result<(), ContractError> {
        let mut first: Option<&MeteringPoint> = None;
        for (i, id) in contract.meters().iter().enumerate() {
            let meter = self
                .meters
                .get(id)
                .ok_or_else(|| ContractError::invalid(format!("meters[{i}]"), format!("no metering point {id}")))?;
            if let Some(first) = first
                && (first.interval_minutes != meter.interval_minutes || first.time_zone != meter.time_zone)
            {
                return Err(ContractError::invalid(
                    format!("meters[{i}]"),
                    "a contract's meters share one interval and time zone",
                ));
            }
            first = Some(meter);
        }
        self.contracts.insert(contract.id().clone(), contract);
        Ok(())
    }

    /// Sets how a meter is shared; every claimant must cover the meter.
    ///
    /// # Errors
    /// An invalid order, or a claimant that does not list the meter.
    pub fn allocate(&mut self, allocation: Allocation) -> Result<(), ContractError> {
        allocation.check()?;
        for (i, claim) in allocation.claims.iter().enumerate() {
            let covers = self.contracts.get(&claim.contract).is_some_and(|c| c.meters().contains(&allocation.meter));
            if !covers {
                return Err(ContractError::invalid(
                    format!("claims[{i}].contract"),
                    format!("{} is not a contract on meter {}", claim.contract, allocation.meter),
                ));
            }
        }
        self.allocations.insert(allocation.meter.clone(), allocation);
        Ok(())
    }

    /// A contract.
    #[must_use]
    pub fn contract(&self, id: &ContractId) -> Option<&Contract> {
        self.contracts.get(id)
    }

    /// A metering point.
    #[must_use]
    pub fn meter(&self, id: &MeterId) -> Option<&MeteringPoint> {
        self.meters.get(id)
    }

    /// The allocation of a meter, if it is shared.
    #[must_use]
    pub fn allocation(&self, meter: &MeterId) -> Option<&Allocation> {
        self.allocations.get(meter)
    }

    /// Every contract, in id order.
    #[must_use]
    pub fn contracts(&self) -> Vec<&Contract> {
        let mut all: Vec<&Contract> = self.contracts.values().collect();
        all.sort_by(|a, b| a.id().cmp(b.id()));
        all
    }

    /// The zone and interval of a contract's meters.
    ///
    /// # Errors
    /// An unknown contract or meter.
    pub fn clock(&self, id: &ContractId) -> Result<(TimeZone, SignedDuration), ContractError> {
        let contract = self.known(id)?;
        let meter = contract
            .meters()
            .first()
            .and_then(|m| self.meters.get(m))
            .ok_or_else(|| ContractError::invalid("meters", format!("contract {id} has no known meter")))?;
        Ok((meter.zone()?, meter.interval()))
    }

    fn known(&self, id: &ContractId) -> Result<&Contract, ContractError> {
        self.contracts.get(id).ok_or_else(|| ContractError::invalid("contract", format!("no contract {id}")))
    }

    /// Contract `id`'s contracted curve over the intervals of `period`
    /// (`grid`): per interval, the version, TOU period and energy, or
    /// `None` on a day it does not deliver.
    fn curve(
        &self,
        id: &ContractId,
        period: &Period,
        grid: &[Timestamp],
    ) -> Result<Vec<Option<Point<'_>>>, ContractError> {
        let contract = self.known(id)?;
        let (zone, step) = self.clock(id)?;
        let mut out: Vec<Option<Point>> = vec![None; grid.len()];
        let index: HashMap<Timestamp, usize> = grid.iter().enumerate().map(|(i, t)| (*t, i)).collect();
        // The version in force on each day the contract delivers.
        let in_force: HashMap<Date, u32> = period
            .days()
            .filter(|d| contract.delivers_on(*d))
            .filter_map(|d| contract.terms_on(d).ok().map(|v| (d, v.version)))
            .collect();
        for version in contract.versions() {
            let governs = |d: Date| in_force.get(&d) == Some(&version.version);
            if !period.days().any(governs) {
                continue;
            }
            for (unit, volume) in curve::units(&version.terms, period) {
                let (slots, parts) = curve::contracted(&version.terms, &unit, volume, &zone, step)?;
                for (slot, energy) in slots.iter().zip(parts) {
                    if period.contains(slot.date)
                        && governs(slot.date)
                        && let Some(&i) = index.get(&slot.start)
                    {
                        out[i] = Some(Point { date: slot.date, version, period: slot.period, contracted: energy });
                    }
                }
            }
            // Days in force with no unit of volume (a month not listed) still deliver, at zero.
            let unlisted = match &version.terms.quantity {
                Quantity::Monthly { months } => {
                    period.days().any(|d| governs(d) && !months.iter().any(|m| m.month == d.first_of_month()))
                }
                Quantity::Total { .. } | Quantity::Daily { .. } => false,
            };
            if !unlisted {
                continue;
            }
            for slot in curve::slots(&version.terms, period, &zone, step)? {
                if governs(slot.date)
                    && let Some(&i) = index.get(&slot.start)
                    && out[i].is_none()
                {
                    out[i] = Some(Point { date: slot.date, version, period: slot.period, contracted: Energy::ZERO });
                }
            }
        }
        Ok(out)
    }

    /// Contract `id`'s ledger over `period`, from the readings as of
    /// revision `as_of` (the latest when `None`) and the market `prices`
    /// (an interval whose index price is missing is left unpriced).
    ///
    /// # Errors
    /// An unknown contract or meter.
    pub fn ledger(
        &self,
        id: &ContractId,
        period: &Period,
        readings: &ReadingLog,
        prices: &dyn MarketPrices,
        as_of: Option<u64>,
    ) -> Result<Ledger, ContractError> {
        let contract = self.known(id)?;
        let (zone, step) = self.clock(id)?;
        // Tiers count the month's energy from its first day.
        let tiered = contract.versions().iter().any(|v| v.terms.tou().is_some_and(|t| !t.tiers.is_empty()));
        let span = if tiered { Period::new(Period::month_of(period.first()).first(), period.end())? } else { *period };
        let grid: Vec<Timestamp> = span.intervals(&zone, step)?.instants().collect();
        let curve = self.curve(id, &span, &grid)?;
        let delivered = self.delivered(contract, &curve, &span, &grid, readings, as_of)?;

        let mut entries = Vec::with_capacity(grid.len());
        let mut month_to_date: Option<(i16, i8, Energy)> = None;
        for (i, start) in grid.iter().enumerate() {
            let Some(point) = curve[i] else { continue };
            let (energy, quality, revision) = delivered[i];
            let date = point.date;
            let terms = &point.version.terms;
            let price = match &terms.price {
                PriceRule::Fixed { price } => Some(*price),
                PriceRule::Tou { table } => table.periods.get(point.period).map(|p| p.price),
                PriceRule::IndexPlus { index, adder } => prices.price(index, *start).map(|p| p + *adder),
                PriceRule::CfdStrike { index, strike } => prices.price(index, *start).map(|p| *strike - p),
            };
            let mut amount = price.map(|p| energy.at(p));
            if let Some(table) = terms.tou().filter(|t| !t.tiers.is_empty())
                && let Some(amount) = amount.as_mut()
            {
                let used = match month_to_date {
                    Some((y, m, used)) if y == date.year() && m == date.month() => used,
                    _ => Energy::ZERO,
                };
                *amount += table.tier_surcharge(used, energy);
                month_to_date = Some((date.year(), date.month(), used + energy));
            }
            if period.contains(date) {
                entries.push(Entry {
                    start: *start,
                    date,
                    version: point.version.version,
                    period: point.period,
                    contracted: point.contracted,
                    delivered: energy,
                    quality,
                    revision,
                    price,
                    amount,
                });
            }
        }
        Ok(Ledger { contract: id.clone(), period: *period, entries })
    }

    /// Per interval of `grid`: the contract's part of its meters' readings,
    /// the worst flag and the highest revision.
    fn delivered(
        &self,
        contract: &Contract,
        own: &[Option<Point>],
        period: &Period,
        grid: &[Timestamp],
        readings: &ReadingLog,
        as_of: Option<u64>,
    ) -> Result<Vec<(Energy, Quality, u64)>, ContractError> {
        let mut out = vec![(Energy::ZERO, Quality::Measured, 0_u64); grid.len()];
        for meter in contract.meters() {
            let allocation = self.allocations.get(meter);
            // Curves of the claims served before this contract that take up to their volume.
            let mut before: Vec<Option<Vec<Option<Point>>>> = Vec::new();
            let position = allocation.and_then(|a| a.position(contract.id()));
            if let (Some(allocation), Some(position)) = (allocation, position) {
                for claim in &allocation.claims[..position] {
                    before.push(match claim.take {
                        Take::UpToContracted => Some(self.curve(&claim.contract, period, grid)?),
                        Take::Share { .. } | Take::Remainder => None,
                    });
                }
            }
            for (i, start) in grid.iter().enumerate() {
                let slot = &mut out[i];
                let Some(reading) = readings.at(meter, *start, as_of) else {
                    slot.1 = Quality::Missing;
                    continue;
                };
                let part = match (allocation, position) {
                    (Some(allocation), Some(position)) => {
                        let contracted = |k: usize| {
                            if k == position {
                                own[i].map_or(Energy::ZERO, |p| p.contracted)
                            } else {
                                before
                                    .get(k)
                                    .and_then(|c| c.as_ref())
                                    .and_then(|c| c[i])
                                    .map_or(Energy::ZERO, |p| p.contracted)
                            }
                        };
                        allocation.split(reading.energy, contracted).0[position]
                    }
                    // An allocation that leaves this contract out gives it nothing.
                    (Some(_), None) => Energy::ZERO,
                    (None, _) => reading.energy,
                };
                slot.0 += part;
                slot.1 = slot.1.max(reading.quality);
                slot.2 = slot.2.max(reading.revision);
            }
        }
        Ok(out)
    }
}

/// A contract's curve at one interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point<'a> {
    /// The interval's local date.
    date: Date,
    /// The version of the terms in force on it.
    version: &'a TermVersion,
    period: usize,
    contracted: Energy,
}
