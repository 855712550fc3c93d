//! Rollups against a plain scan, DST and leap days, a mid-month change of
//! terms, a late correction, a shared meter, and any partition of a
//! period adding up to the whole.

use std::sync::OnceLock;

use jiff::civil::date;
use proptest::prelude::*;
use volta_contracts::ledger::{IndexPrices, Ledger, Portfolio};
use volta_contracts::rollup::{self, DailyRollup};
use volta_contracts::statistics::{self, band, band_by_scan, tou_breakdown, tou_by_scan, volumes, volumes_by_scan};
use volta_contracts::{Energy, Granularity, Period, Quality, ReadingLog};

use crate::support::{contract_id, meter_id, portfolio, readings, spot};

/// The portfolio, its readings over 2024-2025 and the spot prices, built once.
fn world() -> &'static (Portfolio, ReadingLog, IndexPrices, Period) {
    static WORLD: OnceLock<(Portfolio, ReadingLog, IndexPrices, Period)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let p = portfolio();
        let period = Period::new(date(2024, 1, 1), date(2026, 1, 1)).expect("period");
        let log = readings(&p, &period);
        let prices = spot(&period);
        (p, log, prices, period)
    })
}

fn ledger(contract: &str, period: &Period, as_of: Option<u64>) -> Ledger {
    let (p, log, prices, _) = world();
    p.ledger(&contract_id(contract), period, log, prices, as_of).expect("ledger")
}

const CONTRACTS: [&str; 4] = ["flat", "tou", "base", "rest"];

#[test]
fn rollups_agree_with_a_plain_scan_at_every_granularity() {
    let (_, _, _, whole) = world();
    for name in CONTRACTS {
        let l = ledger(name, whole, None);
        let rollups = rollup::daily(&l);
        for granularity in [Granularity::Day, Granularity::Month, Granularity::Year] {
            let from_rollups = volumes(&rollups, whole, granularity);
            assert_eq!(from_rollups, volumes_by_scan(&l.entries, whole, granularity), "{name} {granularity:?}");
        }
        // An odd window: from a DST day to the middle of a month.
        let odd = Period::new(date(2024, 3, 31), date(2025, 3, 17)).expect("period");
        assert_eq!(volumes(&rollups, &odd, Granularity::Month), volumes_by_scan(&l.entries, &odd, Granularity::Month));
        assert_eq!(tou_breakdown(&rollups, &odd), tou_by_scan(&l.entries, &odd), "{name}");
        let terms = &world().0.contract(&contract_id(name)).expect("contract").latest().terms;
        if let Some(b) = &terms.band {
            assert_eq!(
                band(&rollups, &odd, b).expect("month or day band"),
                band_by_scan(&l.entries, &odd, b),
                "{name}"
            );
        }
    }
}

#[test]
fn dst_and_leap_days_have_the_intervals_a_meter_records() {
    let (_, _, _, whole) = world();
    let l = ledger("flat", whole, None);
    let count = |d| l.entries.iter().filter(|e| e.date == d).count();
    assert_eq!(count(date(2025, 3, 30)), 92);
    assert_eq!(count(date(2025, 10, 26)), 100);
    assert_eq!(count(date(2024, 2, 29)), 96);
    // February 2024 (29 days) and October 2024 (a 25-hour day) contract their 30 000 kWh exactly.
    for month in [date(2024, 2, 1), date(2024, 10, 1)] {
        let p = Period::month_of(month);
        let v = volumes_by_scan(&l.entries, &p, Granularity::Month);
        assert_eq!(v[0].contracted, Energy::from_kwh(30_000), "{month}");
    }
}

#[test]
fn a_day_asked_alone_is_the_same_day_as_in_a_longer_period() {
    let (_, _, _, whole) = world();
    for name in CONTRACTS {
        let full = ledger(name, whole, None);
        for day in [date(2024, 2, 29), date(2025, 3, 14), date(2025, 3, 15), date(2025, 3, 30), date(2025, 10, 26)] {
            let alone = ledger(name, &Period::day(day), None);
            let slice: Vec<_> = full.entries.iter().filter(|e| e.date == day).cloned().collect();
            assert_eq!(alone.entries, slice, "{name} {day}");
        }
    }
}

#[test]
fn a_mid_month_change_of_terms_moves_the_curve_from_its_day() {
    let march = Period::month_of(date(2025, 3, 1));
    let l = ledger("flat", &march, None);
    let before: Vec<_> = l.entries.iter().filter(|e| e.date < date(2025, 3, 15)).collect();
    let after: Vec<_> = l.entries.iter().filter(|e| e.date >= date(2025, 3, 15)).collect();
    assert!(before.iter().all(|e| e.version == 1 && e.price.map(|p| p.to_string()).as_deref() == Some("0.25")));
    assert!(after.iter().all(|e| e.version == 2 && e.price.map(|p| p.to_string()).as_deref() == Some("0.27")));
    // Each version spreads its monthly volume over all 2 972 intervals of
    // March (31 days less the hour skipped on the 30th) and governs its own days.
    let intervals = 31 * 96 - 4;
    let share = |kwh: i64, n: usize| -> Energy {
        volta_contracts::curve::split(Energy::from_kwh(kwh), &vec![1; intervals]).iter().take(n).copied().sum()
    };
    let v1: Energy = before.iter().map(|e| e.contracted).sum();
    let v2: Energy = after.iter().map(|e| e.contracted).sum();
    assert_eq!(v1, share(30_000, before.len()));
    assert_eq!(v1 + v2, share(30_000, before.len()) + (Energy::from_kwh(36_000) - share(36_000, before.len())));
}

#[test]
fn a_late_correction_takes_effect_and_the_earlier_revision_stays_readable() {
    let day = Period::day(date(2025, 3, 30));
    let latest = ledger("flat", &day, None);
    let first = ledger("flat", &day, Some(1));
    let delivered = |l: &Ledger| -> Energy { l.entries.iter().map(|e| e.delivered).sum() };
    assert_eq!(delivered(&latest), Energy::from_wh(92 * 2_400));
    assert!(latest.entries.iter().all(|e| e.revision == 2 && e.quality == Quality::Substituted));
    assert_ne!(delivered(&first), delivered(&latest));
    assert!(first.entries.iter().all(|e| e.revision == 1));
}

#[test]
fn a_shared_meter_is_handed_out_in_order_and_nothing_is_lost() {
    let june = Period::month_of(date(2024, 6, 1));
    let base = ledger("base", &june, None);
    let rest = ledger("rest", &june, None);
    let (_, log, _, _) = world();
    assert_eq!(base.entries.len(), rest.entries.len());
    for (b, r) in base.entries.iter().zip(&rest.entries) {
        let reading = log.at(&meter_id("m-shared"), b.start, None).map_or(Energy::ZERO, |x| x.energy);
        assert_eq!(b.delivered + r.delivered, reading, "{}", b.start);
        assert!(b.delivered <= b.contracted);
        if reading >= b.contracted {
            assert_eq!(b.delivered, b.contracted);
        }
    }
}

#[test]
fn statistics_name_their_buckets_and_completion() {
    let (_, _, _, whole) = world();
    let l = ledger("flat", whole, None);
    let rollups: Vec<DailyRollup> = rollup::daily(&l);
    let months = volumes(&rollups, whole, Granularity::Month);
    assert_eq!(months.len(), 24);
    assert_eq!(months[1].label, "2024-02");
    let v: &statistics::Volume = &months[1];
    let completion = v.completion().expect("contracted");
    let expected = rust_decimal::Decimal::from(v.delivered.wh()) * rust_decimal::Decimal::ONE_HUNDRED
        / rust_decimal::Decimal::from(v.contracted.wh());
    assert_eq!(completion, expected.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero));
    assert_eq!(v.deviation(), v.delivered - v.contracted);
    // Readings left out every 997 intervals show as missing in every month.
    assert!(months.iter().all(|m| m.missing > 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any partition of 2024-2025 into consecutive periods adds up to the
    /// whole, contracted, delivered, intervals and amounts alike.
    #[test]
    fn any_partition_adds_up_to_the_whole(cuts in prop::collection::btree_set(1_u32..730, 0..12), contract in 0_usize..4) {
        static LEDGERS: OnceLock<Vec<(Ledger, Vec<DailyRollup>)>> = OnceLock::new();
        let ledgers = LEDGERS.get_or_init(|| {
            let (_, _, _, whole) = world();
            CONTRACTS.iter().map(|c| { let l = ledger(c, whole, None); let r = rollup::daily(&l); (l, r) }).collect()
        });
        let (l, rollups) = &ledgers[contract];
        let (_, _, _, whole) = world();
        let days: Vec<_> = whole.days().collect();
        let mut bounds = vec![whole.first()];
        bounds.extend(cuts.iter().map(|&c| days[c as usize]));
        bounds.push(whole.end());
        let total = volumes(rollups, whole, Granularity::Year);
        let (mut contracted, mut delivered, mut intervals) = (Energy::ZERO, Energy::ZERO, 0_u64);
        let mut amount = rust_decimal::Decimal::ZERO;
        for pair in bounds.windows(2) {
            let part = Period::new(pair[0], pair[1]).expect("part");
            for v in volumes(rollups, &part, Granularity::Year) {
                contracted += v.contracted;
                delivered += v.delivered;
                intervals += v.intervals;
            }
            amount += tou_by_scan(&l.entries, &part).iter().map(|t| t.amount.expect("priced")).sum::<rust_decimal::Decimal>();
        }
        prop_assert_eq!(contracted, total.iter().map(|v| v.contracted).sum::<Energy>());
        prop_assert_eq!(delivered, total.iter().map(|v| v.delivered).sum::<Energy>());
        prop_assert_eq!(intervals, total.iter().map(|v| v.intervals).sum::<u64>());
        prop_assert_eq!(amount, l.entries.iter().map(|e| e.amount.expect("priced")).sum::<rust_decimal::Decimal>());
    }
}
