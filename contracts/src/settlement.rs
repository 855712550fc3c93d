//! Settling a contract's period: contracted, delivered, the deviations
//! beyond its band, the penalty and the rule that produced it, the energy
//! amount, and a statement rounded once by the contract's rule.
//!
//! A settlement names the term versions and the readings revision it
//! used, and carries a SHA-256 of every input (terms, allocation,
//! intervals with their prices), so that a re-run on the same inputs is
//! recognised and a re-run after a correction is a new settlement that
//! supersedes the old; none is ever changed.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::calendar::Period;
use crate::contract::TermVersion;
use crate::error::ContractError;
use crate::ledger::{Entry, Ledger, MarketPrices, Portfolio};
use crate::parties::ContractId;
use crate::quantity::Energy;
use crate::statistics::{BandLine, band_by_scan};
use crate::terms::{Direction, PenaltyBase, Terms};

/// One band bucket of a settlement, with its penalty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    /// The band check of the bucket.
    pub band: BandLine,
    /// The term version that judged it (in force on its last day).
    pub version: u32,
    /// The penalty price per kWh before the multiplier.
    pub base_price: Decimal,
    /// The deviation that pays, kWh.
    pub penalty_volume: Decimal,
    /// What it pays, exact.
    pub penalty_amount: Decimal,
}

/// Amounts as billed: each rounded once, the total their sum.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// ISO 4217 code.
    pub currency: String,
    /// The energy charge (a CfD: the difference payment to the seller).
    pub energy: Decimal,
    /// The penalty.
    pub penalty: Decimal,
    /// Energy plus penalty.
    pub total: Decimal,
}

/// A settled period of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The contract.
    pub contract: ContractId,
    /// The period settled.
    pub period: Period,
    /// The term versions in force over the period.
    pub versions: Vec<u32>,
    /// The highest readings revision used.
    pub readings_revision: u64,
    /// Contracted energy.
    pub contracted: Energy,
    /// Delivered energy.
    pub delivered: Energy,
    /// Delivered above contracted, per band bucket, added up.
    pub deviation_up: Energy,
    /// Delivered below contracted, per band bucket, added up.
    pub deviation_down: Energy,
    /// Delivered within the band, kWh.
    pub within_band: Decimal,
    /// The deviation beyond the band that pays, kWh.
    pub penalty_volume: Decimal,
    /// The energy amount, exact.
    pub energy_amount: Decimal,
    /// The penalty, exact.
    pub penalty_amount: Decimal,
    /// The rule that produced the penalty, in words.
    pub rule: String,
    /// Per band bucket.
    pub lines: Vec<Line>,
    /// Intervals with a missing reading.
    pub missing_intervals: u64,
    /// As billed.
    pub statement: Statement,
    /// SHA-256 of the inputs, hex.
    pub input_hash: String,
}

/// Settles `ledger`'s period for its contract in `portfolio`; `prices`
/// gives a market-based penalty its index.
///
/// # Errors
/// An unknown contract, an empty ledger, or a missing index price (an
/// unpriced interval, or one a market-based penalty needs).
pub fn settle(portfolio: &Portfolio, ledger: &Ledger, prices: &dyn MarketPrices) -> Result<Settlement, ContractError> {
    let contract = portfolio
        .contract(&ledger.contract)
        .ok_or_else(|| ContractError::invalid("contract", format!("no contract {}", ledger.contract)))?;
    if let Some(entry) = ledger.first_unpriced() {
        let terms = &contract.terms_on(entry.date)?.terms;
        let index = terms.indices().first().map_or_else(String::new, |i| (*i).to_owned());
        return Err(ContractError::MissingPrice { index, at: entry.start.to_string() });
    }
    let (Some(first), Some(last)) = (ledger.entries.first(), ledger.entries.last()) else {
        return Err(ContractError::invalid(
            "period",
            format!("{} delivers nothing in {}", ledger.contract, ledger.period),
        ));
    };
    let final_terms = &contract.terms_on(last.date)?.terms;
    let mut versions: Vec<u32> = ledger.entries.iter().map(|e| e.version).collect();
    versions.dedup();
    let exempt = contract.meters().iter().all(|m| {
        let technology = portfolio.meter(m).map(|m| m.technology);
        final_terms.penalty.as_ref().is_some_and(|p| technology.is_some_and(|t| p.exempt.contains(&t)))
    });

    // Without a band the whole period is one bucket with no tolerance.
    let band_lines: Vec<BandLine> = match &final_terms.band {
        Some(band) => band_by_scan(&ledger.entries, &ledger.period, band),
        None => {
            let no_band = crate::terms::Band {
                granularity: crate::terms::BandGranularity::Month,
                lower: crate::quantity::Percent::default(),
                upper: crate::quantity::Percent::default(),
            };
            let contracted = ledger.entries.iter().map(|e| e.contracted).sum();
            let delivered = ledger.entries.iter().map(|e| e.delivered).sum();
            vec![BandLine::new(ledger.period, None, contracted, delivered, &no_band)]
        }
    };

    let mut lines = Vec::with_capacity(band_lines.len());
    for band in band_lines {
        let inside: Vec<&Entry> = ledger
            .entries
            .iter()
            .filter(|e| band.bucket.contains(e.date) && band.start.is_none_or(|s| s == e.start))
            .collect();
        let Some(last_day) = inside.last().map(|e| e.date) else { continue };
        let version = contract.terms_on(last_day)?;
        let (base_price, penalty_volume) = match (&version.terms.penalty, &version.terms.band) {
            (Some(penalty), Some(_)) if !exempt => {
                let volume = match penalty.applies_to {
                    Direction::Both => band.over + band.under,
                    Direction::Over => band.over,
                    Direction::Under => band.under,
                };
                let base = match &penalty.base {
                    PenaltyBase::ContractPrice => contract_price(&inside),
                    PenaltyBase::Index { index } => index_price(&inside, index, prices)?,
                    PenaltyBase::Spread { index } => {
                        (contract_price(&inside) - index_price(&inside, index, prices)?).abs()
                    }
                };
                (base * penalty.multiplier, volume)
            }
            _ => (Decimal::ZERO, Decimal::ZERO),
        };
        lines.push(Line {
            version: version.version,
            base_price,
            penalty_volume,
            penalty_amount: penalty_volume * base_price,
            band,
        });
    }

    let contracted: Energy = ledger.entries.iter().map(|e| e.contracted).sum();
    let delivered: Energy = ledger.entries.iter().map(|e| e.delivered).sum();
    let deviation_up = lines.iter().map(|l| (l.band.delivered - l.band.contracted).positive_part()).sum();
    let deviation_down = lines.iter().map(|l| (l.band.contracted - l.band.delivered).positive_part()).sum();
    let energy_amount: Decimal = ledger.entries.iter().map(amount).sum();
    let penalty_amount: Decimal = lines.iter().map(|l| l.penalty_amount).sum();
    let round = |amount: Decimal| final_terms.rounding.apply(amount, final_terms.decimals);
    let statement = Statement {
        currency: final_terms.currency.clone(),
        energy: round(energy_amount),
        penalty: round(penalty_amount),
        total: round(energy_amount) + round(penalty_amount),
    };
    let used: Vec<&TermVersion> = contract.versions().iter().filter(|v| versions.contains(&v.version)).collect();
    let input_hash = hash(&ledger.contract, &ledger.period, &used, portfolio, contract.meters(), &ledger.entries);
    Ok(Settlement {
        contract: ledger.contract.clone(),
        period: ledger.period,
        versions,
        readings_revision: ledger.entries.iter().map(|e| e.revision).max().unwrap_or(0),
        contracted,
        delivered,
        deviation_up,
        deviation_down,
        within_band: lines.iter().map(|l| l.band.within()).sum(),
        penalty_volume: lines.iter().map(|l| l.penalty_volume).sum(),
        energy_amount,
        penalty_amount,
        rule: rule(final_terms, exempt, first.version, last.version),
        lines,
        missing_intervals: ledger.entries.iter().filter(|e| e.quality == crate::readings::Quality::Missing).count()
            as u64,
        statement,
        input_hash,
    })
}

/// An entry's amount (`settle` has checked that every entry is priced).
fn amount(entry: &Entry) -> Decimal {
    entry.amount.unwrap_or_default()
}

/// The volume-weighted contract price of `entries` per kWh: delivered-
/// weighted, or contracted-weighted when nothing was delivered.
fn contract_price(entries: &[&Entry]) -> Decimal {
    let delivered: Energy = entries.iter().map(|e| e.delivered).sum();
    if !delivered.is_zero() {
        return entries.iter().map(|e| amount(e)).sum::<Decimal>() / delivered.kwh();
    }
    let contracted: Energy = entries.iter().map(|e| e.contracted).sum();
    if contracted.is_zero() {
        return Decimal::ZERO;
    }
    entries.iter().map(|e| e.contracted.at(e.price.unwrap_or_default())).sum::<Decimal>() / contracted.kwh()
}

/// The contracted-weighted average of `index` over `entries` (the plain
/// mean when nothing was contracted).
fn index_price(entries: &[&Entry], index: &str, prices: &dyn MarketPrices) -> Result<Decimal, ContractError> {
    let mut weighted = Decimal::ZERO;
    let mut plain = Decimal::ZERO;
    let mut contracted = Energy::ZERO;
    for e in entries {
        let price = prices
            .price(index, e.start)
            .ok_or_else(|| ContractError::MissingPrice { index: index.to_owned(), at: e.start.to_string() })?;
        weighted += e.contracted.at(price);
        plain += price.per_kwh();
        contracted += e.contracted;
    }
    if !contracted.is_zero() {
        Ok(weighted / contracted.kwh())
    } else if entries.is_empty() {
        Ok(Decimal::ZERO)
    } else {
        Ok(plain / Decimal::from(entries.len()))
    }
}

/// The penalty rule in words.
fn rule(terms: &Terms, exempt: bool, first: u32, last: u32) -> String {
    let versions = if first == last { format!("version {last}") } else { format!("versions {first} to {last}") };
    let Some(band) = &terms.band else { return format!("no band ({versions})") };
    let granularity = match band.granularity {
        crate::terms::BandGranularity::Month => "monthly",
        crate::terms::BandGranularity::Day => "daily",
        crate::terms::BandGranularity::Interval => "per interval",
    };
    let bounds = format!("{granularity} band -{} / +{}", band.lower, band.upper);
    let Some(penalty) = &terms.penalty else { return format!("{bounds}, no penalty ({versions})") };
    if exempt {
        return format!("{bounds}, penalty exempt by technology ({versions})");
    }
    let base = match &penalty.base {
        PenaltyBase::ContractPrice => "the contract price".to_owned(),
        PenaltyBase::Index { index } => format!("index {index}"),
        PenaltyBase::Spread { index } => format!("the spread to index {index}"),
    };
    let side = match penalty.applies_to {
        Direction::Both => "both sides",
        Direction::Over => "excess only",
        Direction::Under => "shortfall only",
    };
    format!("{bounds}, penalty {} x {base} on {side} ({versions})", penalty.multiplier)
}

/// SHA-256 over a canonical JSON of every input.
fn hash(
    contract: &ContractId,
    period: &Period,
    versions: &[&TermVersion],
    portfolio: &Portfolio,
    meters: &[crate::parties::MeterId],
    entries: &[Entry],
) -> String {
    #[derive(Serialize)]
    struct Inputs<'a> {
        contract: &'a ContractId,
        period: &'a Period,
        versions: &'a [&'a TermVersion],
        allocations: Vec<&'a crate::allocation::Allocation>,
        entries: &'a [Entry],
    }
    let allocations = meters.iter().filter_map(|m| portfolio.allocation(m)).collect();
    let inputs = Inputs { contract, period, versions, allocations, entries };
    // Serialising plain data to a Vec cannot fail.
    let bytes = serde_json::to_vec(&inputs).unwrap_or_default();
    Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect()
}
