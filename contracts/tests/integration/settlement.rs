//! Settlements checked by hand: an excess and a shortfall beyond a monthly
//! band, a spread penalty recomputed from the intervals, exemption by
//! technology, the input hash across a correction, and a missing index.

use jiff::civil::date;
use rust_decimal::Decimal;
use volta_contracts::ledger::{IndexPrices, MarketPrices as _};
use volta_contracts::settlement::settle;
use volta_contracts::{ContractError, Energy, Period, ReadingLog, Technology};

use crate::support::{constant, contract_id, dec, fixed_terms, portfolio, readings, single, spot, with_terms};

#[test]
fn an_excess_beyond_a_monthly_band_pays_five_percent_of_the_price() {
    // February 2024: 29 days, 2 784 quarter hours at 11.5 kWh = 32 016 kWh
    // against 30 000 contracted; the band's top is 31 500, so 516 kWh pay
    // 0.25 x 0.05 = 0.0125 each: 6.45. Energy: 32 016 x 0.25 = 8 004.00.
    let p = single(Technology::Load, false);
    let february = Period::month_of(date(2024, 2, 1));
    let mut log = ReadingLog::new();
    constant(&mut log, &february, 11_500, 1);
    let ledger = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), None).expect("ledger");
    let s = settle(&p, &ledger, &IndexPrices::new()).expect("settlement");
    assert_eq!(s.contracted, Energy::from_kwh(30_000));
    assert_eq!(s.delivered, Energy::from_kwh(32_016));
    assert_eq!(s.deviation_up, Energy::from_kwh(2_016));
    assert_eq!(s.deviation_down, Energy::ZERO);
    assert_eq!(s.penalty_volume, dec("516"));
    assert_eq!(s.within_band, dec("31500"));
    assert_eq!(s.penalty_amount, dec("6.45"));
    assert_eq!(s.energy_amount, dec("8004"));
    assert_eq!(s.statement.total, dec("8010.45"));
    assert_eq!(s.statement.currency, "EUR");
    assert_eq!(s.versions, [1]);
    assert_eq!(s.readings_revision, 1);
    assert_eq!(s.rule, "monthly band -3 % / +5 %, penalty 0.05 x the contract price on both sides (version 1)");
    assert_eq!(s.input_hash.len(), 64);
}

#[test]
fn a_shortfall_pays_too_and_a_correction_makes_a_new_settlement() {
    // 2 784 x 10 kWh = 27 840 kWh; the band's floor is 29 100: 1 260 kWh
    // short, 15.75 of penalty.
    let p = single(Technology::Load, false);
    let february = Period::month_of(date(2024, 2, 1));
    let mut log = ReadingLog::new();
    constant(&mut log, &february, 10_000, 1);
    let first = {
        let ledger = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), None).expect("ledger");
        settle(&p, &ledger, &IndexPrices::new()).expect("settlement")
    };
    assert_eq!(first.penalty_volume, dec("1260"));
    assert_eq!(first.penalty_amount, dec("15.75"));
    assert_eq!(first.statement.total, dec("6975.75"));
    // The same inputs give the same hash.
    let again = {
        let ledger = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), None).expect("ledger");
        settle(&p, &ledger, &IndexPrices::new()).expect("settlement")
    };
    assert_eq!(again, first);
    // A correction of one day: a new revision, a new hash; as of revision 1 the old numbers stand.
    constant(&mut log, &Period::day(date(2024, 2, 29)), 12_000, 2);
    let ledger = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), None).expect("ledger");
    let corrected = settle(&p, &ledger, &IndexPrices::new()).expect("settlement");
    assert_eq!(corrected.readings_revision, 2);
    assert_ne!(corrected.input_hash, first.input_hash);
    assert_eq!(corrected.delivered, Energy::from_kwh(27_840 + 96 * 2));
    let as_before = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), Some(1)).expect("ledger");
    assert_eq!(settle(&p, &as_before, &IndexPrices::new()).expect("settlement"), first);
}

#[test]
fn an_exempt_technology_pays_no_penalty_and_says_why() {
    let p = single(Technology::Solar, true);
    let february = Period::month_of(date(2024, 2, 1));
    let mut log = ReadingLog::new();
    constant(&mut log, &february, 11_500, 1);
    let ledger = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), None).expect("ledger");
    let s = settle(&p, &ledger, &IndexPrices::new()).expect("settlement");
    assert_eq!(s.penalty_amount, Decimal::ZERO);
    assert!(s.rule.contains("exempt"), "{}", s.rule);
    assert_eq!(s.statement.total, dec("8004.00"));
}

#[test]
fn a_spread_penalty_is_three_times_the_spread_on_each_day_beyond_the_band() {
    let p = portfolio();
    let period = Period::new(date(2025, 3, 28), date(2025, 4, 2)).expect("period");
    let log = readings(&p, &period);
    let prices = spot(&period);
    let ledger = p.ledger(&contract_id("tou"), &period, &log, &prices, None).expect("ledger");
    let s = settle(&p, &ledger, &prices).expect("settlement");
    assert_eq!(s.lines.len(), 5, "a daily band");
    // Recomputed from the intervals, day by day.
    let mut penalty = Decimal::ZERO;
    for day in period.days() {
        let entries: Vec<_> = ledger.entries.iter().filter(|e| e.date == day).collect();
        let c: Energy = entries.iter().map(|e| e.contracted).sum();
        let d: Energy = entries.iter().map(|e| e.delivered).sum();
        let (lower, upper) = (c.kwh() * dec("0.95"), c.kwh() * dec("1.05"));
        let volume = (d.kwh() - upper).max(Decimal::ZERO) + (lower - d.kwh()).max(Decimal::ZERO);
        let contract_price = entries.iter().map(|e| e.amount.expect("priced")).sum::<Decimal>() / d.kwh();
        let index = entries
            .iter()
            .map(|e| e.contracted.kwh() * prices.price("spot", e.start).expect("price").per_kwh())
            .sum::<Decimal>()
            / c.kwh();
        penalty += volume * (contract_price - index).abs() * dec("3");
    }
    assert_eq!(s.penalty_amount, penalty);
    assert!(s.penalty_amount > Decimal::ZERO, "the pattern deviates beyond 5 % on some day");
    // The DST day (30 March) is one of the five lines, with its 92 intervals.
    assert_eq!(ledger.entries.iter().filter(|e| e.date == date(2025, 3, 30)).count(), 92);
}

#[test]
fn a_missing_index_price_is_named() {
    let p = portfolio();
    let day = Period::day(date(2025, 3, 3));
    let log = readings(&p, &day);
    let ledger =
        p.ledger(&contract_id("tou"), &day, &log, &IndexPrices::new(), None).expect("TOU prices need no index");
    let error = settle(&p, &ledger, &IndexPrices::new()).expect_err("the spread needs the spot index");
    assert!(matches!(&error, ContractError::MissingPrice { index, .. } if index == "spot"), "{error}");
}

#[test]
fn an_index_priced_interval_waits_for_its_price() {
    let terms = volta_contracts::Terms {
        kind: volta_contracts::terms::Kind::PpaPhysical,
        price: volta_contracts::terms::PriceRule::IndexPlus {
            index: "spot".into(),
            adder: volta_contracts::Price::new(dec("0.01")),
        },
        ..fixed_terms("0", 30_000)
    };
    let p = with_terms(Technology::Wind, terms);
    let february = Period::month_of(date(2024, 2, 1));
    let mut log = ReadingLog::new();
    constant(&mut log, &february, 10_000, 1);
    let mut prices = spot(&february);
    let full = prices.clone();
    // One price not published yet.
    let hole = crate::support::at("2024-02-10T11:00:00Z");
    prices.remove("spot", hole);
    let ledger = p.ledger(&contract_id("c"), &february, &log, &prices, None).expect("ledger");
    assert_eq!(ledger.first_unpriced().map(|e| e.start), Some(hole));
    let rollups = volta_contracts::rollup::daily(&ledger);
    for r in &rollups {
        assert_eq!(r.amount.is_none(), r.date == date(2024, 2, 10), "{}", r.date);
    }
    let error = settle(&p, &ledger, &prices).expect_err("unpriced");
    assert_eq!(error, ContractError::MissingPrice { index: "spot".into(), at: hole.to_string() });
    // Once published: every kWh at spot + 0.01.
    let ledger = p.ledger(&contract_id("c"), &february, &log, &full, None).expect("ledger");
    let s = settle(&p, &ledger, &full).expect("settlement");
    let expected: Decimal = ledger
        .entries
        .iter()
        .map(|e| dec("10") * (full.price("spot", e.start).expect("price").per_kwh() + dec("0.01")))
        .sum();
    assert_eq!(s.energy_amount, expected);
}

#[test]
fn a_month_without_a_volume_still_delivers_at_zero_contracted() {
    let mut terms = fixed_terms("0.25", 30_000);
    if let volta_contracts::terms::Quantity::Monthly { months } = &mut terms.quantity {
        months.truncate(1);
    }
    let p = with_terms(Technology::Load, terms);
    let period = Period::new(date(2024, 1, 1), date(2024, 3, 1)).expect("period");
    let mut log = ReadingLog::new();
    constant(&mut log, &period, 1_000, 1);
    let ledger = p.ledger(&contract_id("c"), &period, &log, &IndexPrices::new(), None).expect("ledger");
    let (january, february): (Vec<_>, Vec<_>) = ledger.entries.iter().partition(|e| e.date < date(2024, 2, 1));
    assert_eq!(january.iter().map(|e| e.contracted).sum::<Energy>(), Energy::from_kwh(30_000));
    assert_eq!(february.len(), 29 * 96);
    assert!(february.iter().all(|e| e.contracted.is_zero() && e.delivered == Energy::from_kwh(1)));
}
