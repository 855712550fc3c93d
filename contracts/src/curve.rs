//! The contracted curve: a volume spread over its meter intervals, exact to
//! the watt-hour.
//!
//! A volume belongs to a unit of time (the delivery period, a month or a
//! day, by the terms' quantity). It is split by weights (flat, a daily
//! profile, or shares per TOU period) with the largest-remainder method,
//! so the intervals of a unit add up to its volume exactly, and the same
//! interval always gets the same energy whichever part of the unit is asked
//! for.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;

use crate::calendar::Period;
use crate::error::ContractError;
use crate::quantity::Energy;
use crate::terms::{Quantity, Shape, Terms};

/// One interval of a unit: its start, local date and TOU period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// The interval's start.
    pub start: Timestamp,
    /// Its local date.
    pub date: Date,
    /// Its minute of the local day (0 to 1439).
    pub minute: u16,
    /// Its TOU period's index (0 when the terms have no table).
    pub period: usize,
}

/// The units of `terms`'s quantity that overlap `period`, each with its volume.
#[must_use]
pub fn units(terms: &Terms, period: &Period) -> Vec<(Period, Energy)> {
    let delivery = terms.delivery();
    let Some(wanted) = delivery.intersect(period) else { return Vec::new() };
    match &terms.quantity {
        Quantity::Total { energy } => vec![(delivery, *energy)],
        Quantity::Monthly { months } => months
            .iter()
            .filter_map(|m| Period::month_of(m.month).intersect(&delivery).map(|unit| (unit, m.energy)))
            .filter(|(unit, _)| unit.intersect(&wanted).is_some())
            .collect(),
        Quantity::Daily { energy } => wanted.days().map(|d| (Period::day(d), *energy)).collect(),
    }
}

/// The slots of `unit` in `zone` at `step`, each with its TOU period under `terms`.
///
/// # Errors
/// A step that does not divide the unit.
pub fn slots(terms: &Terms, unit: &Period, zone: &TimeZone, step: SignedDuration) -> Result<Vec<Slot>, ContractError> {
    let grid = unit.intervals(zone, step)?;
    let table = terms.tou();
    Ok(grid
        .instants()
        .map(|start| {
            let local = start.to_zoned_datetime(zone.clone()).datetime();
            let minute = u16::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
            let period = table.and_then(|t| t.period_at(local)).unwrap_or(0);
            Slot { start, date: local.date(), minute, period }
        })
        .collect())
}

/// Each slot's weight under `terms`'s shape (at least one is positive
/// unless the unit has no interval the shape weighs).
fn weights(terms: &Terms, slots: &[Slot]) -> Vec<u64> {
    match &terms.shape {
        Shape::Flat => vec![1; slots.len()],
        Shape::Profile { weights } => {
            let per_day = weights.len();
            slots.iter().map(|s| u64::from(weights[usize::from(s.minute) * per_day / 1440])).collect()
        }
        Shape::ByTouPeriod { shares } => {
            // Each period's share spread flat over its slots: slot weight =
            // share / (slots of the period), scaled to integers by the
            // product of the period counts' least common multiple.
            let table = terms.tou();
            let names = |s: &Slot| table.map_or("", |t| t.period_name(s.period));
            let count = |name: &str| slots.iter().filter(|s| names(s) == name).count() as u64;
            let share_of =
                |name: &str| -> Decimal { shares.iter().filter(|s| s.period == name).map(|s| s.share.value()).sum() };
            // Periods absent from the unit give their share to the others in proportion.
            let present: Vec<(&str, u64, Decimal)> = shares
                .iter()
                .map(|s| (s.period.as_str(), count(&s.period), share_of(&s.period)))
                .filter(|(_, n, _)| *n > 0)
                .collect();
            let lcm = present.iter().fold(1_u64, |acc, (_, n, _)| lcm(acc, *n));
            // Shares are decimals; scale them to integers.
            let scale = present.iter().map(|(_, _, s)| s.scale()).max().unwrap_or(0);
            let unit = Decimal::from(10_u64.pow(scale.min(9)));
            slots
                .iter()
                .map(|slot| {
                    present.iter().find(|(name, _, _)| *name == names(slot)).map_or(0, |(_, n, share)| {
                        let integral = u64::try_from((*share * unit).trunc()).unwrap_or(0);
                        integral.saturating_mul(lcm / n)
                    })
                })
                .collect()
        }
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

/// `total` split in proportion to `weights`, exactly: each part rounded
/// down, the watt-hours left over given one each to the largest
/// remainders (the earlier on ties). All weights zero: nothing is split
/// and the parts are zero.
#[must_use]
pub fn split(total: Energy, weights: &[u64]) -> Vec<Energy> {
    let sum: u128 = weights.iter().map(|w| u128::from(*w)).sum();
    if sum == 0 || total.is_zero() {
        return vec![Energy::ZERO; weights.len()];
    }
    let negative = total < Energy::ZERO;
    let wh = u128::from(total.wh().unsigned_abs());
    let mut parts: Vec<u128> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(weights.len());
    for (i, w) in weights.iter().enumerate() {
        let product = wh * u128::from(*w);
        parts.push(product / sum);
        remainders.push((product % sum, i));
    }
    let left = wh - parts.iter().sum::<u128>();
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(usize::try_from(left).unwrap_or(usize::MAX)) {
        parts[i] += 1;
    }
    parts
        .into_iter()
        .map(|p| {
            let wh = i64::try_from(p).unwrap_or(i64::MAX);
            Energy::from_wh(if negative { -wh } else { wh })
        })
        .collect()
}

/// The contracted energy of each slot of `unit` under `terms`, with the slots.
///
/// # Errors
/// A step that does not divide the unit.
pub fn contracted(
    terms: &Terms,
    unit: &Period,
    volume: Energy,
    zone: &TimeZone,
    step: SignedDuration,
) -> Result<(Vec<Slot>, Vec<Energy>), ContractError> {
    let slots = slots(terms, unit, zone, step)?;
    let weights = weights(terms, &slots);
    let parts = split(volume, &weights);
    Ok((slots, parts))
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{fixed_terms, tou_terms};

    proptest! {
        #[test]
        fn a_split_adds_up_exactly(total in -10_000_000_i64..10_000_000, weights in prop::collection::vec(0_u64..1000, 1..200)) {
            let parts = split(Energy::from_wh(total), &weights);
            prop_assert_eq!(parts.len(), weights.len());
            if weights.iter().any(|w| *w > 0) {
                prop_assert_eq!(parts.iter().sum::<Energy>(), Energy::from_wh(total));
            }
            for (p, w) in parts.iter().zip(&weights) {
                if *w == 0 { prop_assert!(p.is_zero()); }
            }
        }
    }

    #[test]
    fn a_flat_month_on_a_dst_day_has_its_extra_quarter_hours() {
        let zone = TimeZone::get("Europe/Berlin").expect("zone");
        let terms = fixed_terms("0.40");
        let october = Period::month_of(date(2025, 10, 1));
        let (slots, parts) =
            contracted(&terms, &october, Energy::from_kwh(2_980), &zone, SignedDuration::from_mins(15)).expect("curve");
        // 31 days x 96 quarter hours + 4 for the hour repeated on the 26th.
        assert_eq!(slots.len(), 2_980);
        assert!(parts.iter().all(|p| *p == Energy::from_kwh(1)));
        let on_26th = slots.iter().filter(|s| s.date == date(2025, 10, 26)).count();
        assert_eq!(on_26th, 100);
    }

    #[test]
    fn tou_shares_are_spread_within_their_periods() {
        let zone = TimeZone::get("Asia/Shanghai").expect("zone");
        let terms = tou_terms();
        let day = Period::day(date(2025, 3, 4));
        let (slots, parts) =
            contracted(&terms, &day, Energy::from_kwh(960), &zone, SignedDuration::from_mins(15)).expect("curve");
        let table = terms.tou().expect("a table");
        let total = |name: &str| -> Energy {
            slots.iter().zip(&parts).filter(|(s, _)| table.period_name(s.period) == name).map(|(_, e)| *e).sum()
        };
        // 60 % peak, 40 % off-peak.
        assert_eq!(total("peak"), Energy::from_kwh(576));
        assert_eq!(total("off_peak"), Energy::from_kwh(384));
    }
}
