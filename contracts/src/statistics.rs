//! Volume statistics, TOU breakdowns and band checks.
//!
//! Each is computed two ways: from [`DailyRollup`]s (what a service reads)
//! and by a plain scan of the ledger's intervals (what the tests hold the
//! rollups to). Both must agree to the watt-hour and the last decimal.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::{Granularity, Period};
use crate::ledger::Entry;
use crate::quantity::{Energy, Rounding};
use crate::readings::Quality;
use crate::rollup::DailyRollup;
use crate::terms::{Band, BandGranularity};

/// Contracted against delivered over one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// The bucket: a day, a month or a year (clipped to the period asked).
    pub bucket: Period,
    /// The bucket's label (`2025-03`).
    pub label: String,
    /// Contracted energy.
    pub contracted: Energy,
    /// Delivered energy.
    pub delivered: Energy,
    /// Intervals counted.
    pub intervals: u64,
    /// Of them, with a missing reading.
    pub missing: u64,
}

impl Volume {
    fn empty(bucket: Period, granularity: Granularity) -> Self {
        Self {
            bucket,
            label: bucket.label(granularity),
            contracted: Energy::ZERO,
            delivered: Energy::ZERO,
            intervals: 0,
            missing: 0,
        }
    }

    /// Delivered minus contracted.
    #[must_use]
    pub fn deviation(&self) -> Energy {
        self.delivered - self.contracted
    }

    /// Delivered as a percentage of contracted, to two decimals (none when
    /// nothing was contracted).
    #[must_use]
    pub fn completion(&self) -> Option<Decimal> {
        (!self.contracted.is_zero()).then(|| {
            let ratio = Decimal::from(self.delivered.wh()) * Decimal::ONE_HUNDRED / Decimal::from(self.contracted.wh());
            Rounding::HalfUp.apply(ratio, 2)
        })
    }
}

/// Every bucket of `period` at `granularity`, empty, keyed by its first day.
fn buckets(period: &Period, granularity: Granularity) -> BTreeMap<jiff::civil::Date, Volume> {
    period.buckets(granularity).into_iter().map(|b| (b.first(), Volume::empty(b, granularity))).collect()
}

fn bucket_key(date: jiff::civil::Date, period: &Period, granularity: Granularity) -> jiff::civil::Date {
    Period::bucket_of(date, granularity).first().max(period.first())
}

/// Volumes per bucket of `period`, from daily rollups (rollups outside the
/// period are ignored).
#[must_use]
pub fn volumes(rollups: &[DailyRollup], period: &Period, granularity: Granularity) -> Vec<Volume> {
    let mut out = buckets(period, granularity);
    for r in rollups.iter().filter(|r| period.contains(r.date)) {
        if let Some(v) = out.get_mut(&bucket_key(r.date, period, granularity)) {
            v.contracted += r.contracted;
            v.delivered += r.delivered;
            v.intervals += u64::from(r.intervals);
            v.missing += u64::from(r.missing);
        }
    }
    out.into_values().collect()
}

/// Volumes per bucket of `period`, by a plain scan of intervals.
#[must_use]
pub fn volumes_by_scan(entries: &[Entry], period: &Period, granularity: Granularity) -> Vec<Volume> {
    let mut out = buckets(period, granularity);
    for e in entries.iter().filter(|e| period.contains(e.date)) {
        if let Some(v) = out.get_mut(&bucket_key(e.date, period, granularity)) {
            v.contracted += e.contracted;
            v.delivered += e.delivered;
            v.intervals += 1;
            v.missing += u64::from(e.quality == Quality::Missing);
        }
    }
    out.into_values().collect()
}

/// One TOU period's share of a contract's period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouLine {
    /// The period's index in the TOU table.
    pub period: usize,
    /// Contracted energy.
    pub contracted: Energy,
    /// Delivered energy.
    pub delivered: Energy,
    /// What it is worth, exact; none while an interval of it is unpriced.
    pub amount: Option<Decimal>,
}

impl TouLine {
    /// The effective average price per kWh, to `decimals` places (none
    /// when nothing was delivered or it is unpriced).
    #[must_use]
    pub fn average_price(&self, decimals: u32) -> Option<Decimal> {
        let amount = self.amount?;
        (!self.delivered.is_zero()).then(|| Rounding::HalfUp.apply(amount / self.delivered.kwh(), decimals))
    }
}

/// The TOU breakdown of the rollups within `period`.
#[must_use]
pub fn tou_breakdown(rollups: &[DailyRollup], period: &Period) -> Vec<TouLine> {
    let mut lines: BTreeMap<usize, TouLine> = BTreeMap::new();
    for r in rollups.iter().filter(|r| period.contains(r.date)) {
        let line = lines.entry(r.period).or_insert_with(|| TouLine::zero(r.period));
        line.contracted += r.contracted;
        line.delivered += r.delivered;
        line.amount = line.amount.zip(r.amount).map(|(a, b)| a + b);
    }
    lines.into_values().collect()
}

/// The TOU breakdown by a plain scan of intervals.
#[must_use]
pub fn tou_by_scan(entries: &[Entry], period: &Period) -> Vec<TouLine> {
    let mut lines: BTreeMap<usize, TouLine> = BTreeMap::new();
    for e in entries.iter().filter(|e| period.contains(e.date)) {
        let line = lines.entry(e.period).or_insert_with(|| TouLine::zero(e.period));
        line.contracted += e.contracted;
        line.delivered += e.delivered;
        line.amount = line.amount.zip(e.amount).map(|(a, b)| a + b);
    }
    lines.into_values().collect()
}

impl TouLine {
    fn zero(period: usize) -> Self {
        Self { period, contracted: Energy::ZERO, delivered: Energy::ZERO, amount: Some(Decimal::ZERO) }
    }
}

/// A band check of one bucket: the band's bounds and the deviations beyond it, in kWh, exact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandLine {
    /// The bucket (a month, a day, or one interval's day).
    pub bucket: Period,
    /// The interval's start, for an interval band.
    pub start: Option<jiff::Timestamp>,
    /// Contracted energy.
    pub contracted: Energy,
    /// Delivered energy.
    pub delivered: Energy,
    /// The band's lower bound, kWh.
    pub lower: Decimal,
    /// Its upper bound, kWh.
    pub upper: Decimal,
    /// Delivered above the upper bound, kWh.
    pub over: Decimal,
    /// Delivered below the lower bound, kWh.
    pub under: Decimal,
}

impl BandLine {
    /// The line of a bucket that contracted `contracted` and delivered `delivered`.
    #[must_use]
    pub fn new(
        bucket: Period,
        start: Option<jiff::Timestamp>,
        contracted: Energy,
        delivered: Energy,
        band: &Band,
    ) -> Self {
        let c = contracted.kwh();
        let d = delivered.kwh();
        let lower = c * (Decimal::ONE - band.lower.fraction());
        let upper = c * (Decimal::ONE + band.upper.fraction());
        Self {
            bucket,
            start,
            contracted,
            delivered,
            lower,
            upper,
            over: (d - upper).max(Decimal::ZERO),
            under: (lower - d).max(Decimal::ZERO),
        }
    }

    /// Delivered within the band (delivered less the excess), kWh.
    #[must_use]
    pub fn within(&self) -> Decimal {
        self.delivered.kwh() - self.over
    }
}

/// The band check of `period` from daily rollups, for a monthly or daily
/// band (an interval band needs the intervals: [`band_by_scan`]).
#[must_use]
pub fn band(rollups: &[DailyRollup], period: &Period, band: &Band) -> Option<Vec<BandLine>> {
    let granularity = match band.granularity {
        BandGranularity::Month => Granularity::Month,
        BandGranularity::Day => Granularity::Day,
        BandGranularity::Interval => return None,
    };
    Some(
        volumes(rollups, period, granularity)
            .into_iter()
            .map(|v| BandLine::new(v.bucket, None, v.contracted, v.delivered, band))
            .collect(),
    )
}

/// The band check of `period` by a plain scan of intervals, at any granularity.
#[must_use]
pub fn band_by_scan(entries: &[Entry], period: &Period, band: &Band) -> Vec<BandLine> {
    let granularity = match band.granularity {
        BandGranularity::Month => Granularity::Month,
        BandGranularity::Day => Granularity::Day,
        BandGranularity::Interval => {
            return entries
                .iter()
                .filter(|e| period.contains(e.date))
                .map(|e| BandLine::new(Period::day(e.date), Some(e.start), e.contracted, e.delivered, band))
                .collect();
        }
    };
    volumes_by_scan(entries, period, granularity)
        .into_iter()
        .map(|v| BandLine::new(v.bucket, None, v.contracted, v.delivered, band))
        .collect()
}
