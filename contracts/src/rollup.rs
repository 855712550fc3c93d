//! Daily rollups: a contract's ledger summed per local day and TOU period.
//!
//! A store writes them in the same transaction as the readings they cover,
//! and statistics read them instead of the intervals: 96 intervals of a
//! day become one row per TOU period. Sums are of integer watt-hours and
//! exact decimals, so a rollup never disagrees with the intervals it sums.

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;
use crate::parties::ContractId;
use crate::quantity::Energy;
use crate::readings::Quality;

/// One contract's day in one TOU period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyRollup {
    /// The contract.
    pub contract: ContractId,
    /// The local date.
    pub date: Date,
    /// The version of the terms in force.
    pub version: u32,
    /// The TOU period (0 without a table).
    pub period: usize,
    /// Contracted energy.
    pub contracted: Energy,
    /// Delivered energy.
    pub delivered: Energy,
    /// What the delivered energy is worth, exact; none while an interval
    /// of it is unpriced.
    pub amount: Option<Decimal>,
    /// Intervals summed.
    pub intervals: u32,
    /// Of them, read from estimated or substituted values.
    pub estimated: u32,
    /// Of them, with a missing reading.
    pub missing: u32,
    /// The highest reading revision used.
    pub revision: u64,
}

/// `ledger` summed per local day and TOU period, in date then period order.
#[must_use]
pub fn daily(ledger: &Ledger) -> Vec<DailyRollup> {
    let mut out: Vec<DailyRollup> = Vec::new();
    let mut by_key: std::collections::BTreeMap<(Date, usize), usize> = std::collections::BTreeMap::new();
    for entry in &ledger.entries {
        let i = *by_key.entry((entry.date, entry.period)).or_insert_with(|| {
            out.push(DailyRollup {
                contract: ledger.contract.clone(),
                date: entry.date,
                version: entry.version,
                period: entry.period,
                contracted: Energy::ZERO,
                delivered: Energy::ZERO,
                amount: Some(Decimal::ZERO),
                intervals: 0,
                estimated: 0,
                missing: 0,
                revision: 0,
            });
            out.len() - 1
        });
        let row = &mut out[i];
        row.contracted += entry.contracted;
        row.delivered += entry.delivered;
        row.amount = row.amount.zip(entry.amount).map(|(a, b)| a + b);
        row.intervals += 1;
        row.estimated += u32::from(matches!(entry.quality, Quality::Estimated | Quality::Substituted));
        row.missing += u32::from(entry.quality == Quality::Missing);
        row.revision = row.revision.max(entry.revision);
    }
    out.sort_by_key(|r| (r.date, r.period));
    out
}
