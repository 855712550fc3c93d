//! A small portfolio in Berlin time (two DST days a year) over 2024 (a leap
//! year) and 2025, with readings made from a deterministic pattern.

use std::str::FromStr as _;

use jiff::civil::{Date, date, time};
use rust_decimal::Decimal;
use volta_contracts::allocation::{Allocation, Claim, Take};
use volta_contracts::ledger::{IndexPrices, Portfolio};
use volta_contracts::terms::{
    Band, BandGranularity, Direction, Kind, MonthVolume, Penalty, PenaltyBase, PeriodShare, PriceRule, Quantity, Shape,
    Terms,
};
use volta_contracts::tou::{DayName, TouPeriod, TouRule, TouTable};
use volta_contracts::{
    Contract, ContractId, Energy, Location, MeterId, MeteringPoint, Percent, Period, Price, Quality, Reading,
    ReadingLog, Rounding, Technology,
};

pub const ZONE: &str = "Europe/Berlin";

pub fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).expect("decimal")
}

pub fn contract_id(text: &str) -> ContractId {
    ContractId::new(text).expect("id")
}

pub fn meter_id(text: &str) -> MeterId {
    MeterId::new(text).expect("id")
}

fn meter(id: &str, technology: Technology) -> MeteringPoint {
    MeteringPoint {
        id: meter_id(id),
        party: volta_contracts::PartyId::new("site").expect("id"),
        interval_minutes: 15,
        time_zone: ZONE.into(),
        location: Location::Zone("de".into()),
        technology,
    }
}

fn all_week() -> Vec<DayName> {
    vec![
        DayName::Monday,
        DayName::Tuesday,
        DayName::Wednesday,
        DayName::Thursday,
        DayName::Friday,
        DayName::Saturday,
        DayName::Sunday,
    ]
}

/// Peak 08:00-20:00 at 0.32, off-peak 20:00-08:00 at 0.18, with a tier
/// above 20 MWh a month at +0.02.
pub fn tou_table() -> TouTable {
    let months: Vec<i8> = (1..=12).collect();
    TouTable {
        periods: vec![
            TouPeriod { name: "peak".into(), price: Price::new(dec("0.32")) },
            TouPeriod { name: "off_peak".into(), price: Price::new(dec("0.18")) },
        ],
        rules: vec![
            TouRule {
                months: months.clone(),
                weekdays: all_week(),
                from: time(8, 0, 0, 0),
                to: time(20, 0, 0, 0),
                period: "peak".into(),
            },
            TouRule {
                months,
                weekdays: all_week(),
                from: time(20, 0, 0, 0),
                to: time(8, 0, 0, 0),
                period: "off_peak".into(),
            },
        ],
        tiers: vec![volta_contracts::tou::Tier { above: Energy::from_kwh(20_000), adder: Price::new(dec("0.02")) }],
    }
}

fn months(first: Date, last: Date, kwh: i64) -> Vec<MonthVolume> {
    let mut out = Vec::new();
    let mut month = first.first_of_month();
    while month <= last {
        out.push(MonthVolume { month, energy: Energy::from_kwh(kwh) });
        month = month.checked_add(jiff::Span::new().months(1)).expect("month");
    }
    out
}

/// A fixed-price supply for 2024-2025, monthly volumes, monthly band
/// -3 % / +5 %, penalty 5 % of the contract price on both sides.
pub fn fixed_terms(price: &str, monthly_kwh: i64) -> Terms {
    Terms {
        kind: Kind::FixedPrice,
        delivery_first: date(2024, 1, 1),
        delivery_last: date(2025, 12, 31),
        price: PriceRule::Fixed { price: Price::new(dec(price)) },
        quantity: Quantity::Monthly { months: months(date(2024, 1, 1), date(2025, 12, 31), monthly_kwh) },
        shape: Shape::Flat,
        band: Some(Band {
            granularity: BandGranularity::Month,
            lower: Percent::new(dec("3")),
            upper: Percent::new(dec("5")),
        }),
        penalty: Some(Penalty {
            base: PenaltyBase::ContractPrice,
            multiplier: dec("0.05"),
            applies_to: Direction::Both,
            exempt: vec![],
        }),
        currency: "EUR".into(),
        decimals: 2,
        rounding: Rounding::HalfUp,
    }
}

/// A TOU retail contract, 65 % of its volume in peak hours, daily band
/// of 5 % with 3x the spread to the spot index as penalty.
pub fn tou_terms() -> Terms {
    Terms {
        kind: Kind::TimeOfUse,
        price: PriceRule::Tou { table: tou_table() },
        shape: Shape::ByTouPeriod {
            shares: vec![
                PeriodShare { period: "peak".into(), share: Percent::new(dec("65")) },
                PeriodShare { period: "off_peak".into(), share: Percent::new(dec("35")) },
            ],
        },
        band: Some(Band {
            granularity: BandGranularity::Day,
            lower: Percent::new(dec("5")),
            upper: Percent::new(dec("5")),
        }),
        penalty: Some(Penalty {
            base: PenaltyBase::Spread { index: "spot".into() },
            multiplier: dec("3"),
            applies_to: Direction::Both,
            exempt: vec![],
        }),
        ..fixed_terms("0", 24_000)
    }
}

/// A portfolio:
/// - `flat`: fixed price on meter `m-flat`, amended from 2025-03-15 (price and volume);
/// - `tou`: TOU retail on meter `m-tou`;
/// - `base` and `rest`: meter `m-shared`, `base` up to its contracted
///   volume, `rest` the remainder.
pub fn portfolio() -> Portfolio {
    let mut p = Portfolio::new();
    for (id, technology) in [("m-flat", Technology::Load), ("m-tou", Technology::Load), ("m-shared", Technology::Solar)]
    {
        p.add_meter(meter(id, technology)).expect("meter");
    }
    let mut flat = Contract::draft(
        contract_id("flat"),
        party("grid"),
        party("site"),
        vec![meter_id("m-flat")],
        fixed_terms("0.25", 30_000),
    )
    .expect("flat");
    flat.amend(date(2025, 3, 15), fixed_terms("0.27", 36_000)).expect("amend");
    let tou = Contract::draft(contract_id("tou"), party("grid"), party("site"), vec![meter_id("m-tou")], tou_terms())
        .expect("tou");
    let base = Contract::draft(
        contract_id("base"),
        party("site"),
        party("grid"),
        vec![meter_id("m-shared")],
        Terms {
            kind: Kind::PpaPhysical,
            quantity: Quantity::Daily { energy: Energy::from_kwh(60) },
            ..fixed_terms("0.08", 0)
        },
    )
    .expect("base");
    let rest = Contract::draft(
        contract_id("rest"),
        party("site"),
        party("trader"),
        vec![meter_id("m-shared")],
        Terms {
            kind: Kind::PpaPhysical,
            quantity: Quantity::Daily { energy: Energy::from_kwh(100) },
            ..fixed_terms("0.06", 0)
        },
    )
    .expect("rest");
    for c in [flat, tou, base, rest] {
        p.add_contract(c).expect("contract");
    }
    p.allocate(Allocation {
        meter: meter_id("m-shared"),
        claims: vec![
            Claim { contract: contract_id("base"), take: Take::UpToContracted },
            Claim { contract: contract_id("rest"), take: Take::Remainder },
        ],
    })
    .expect("allocation");
    p
}

fn party(text: &str) -> volta_contracts::PartyId {
    volta_contracts::PartyId::new(text).expect("id")
}

/// A deterministic reading in Wh for interval `k` of meter `salt`: a daily
/// shape with a wobble, so no two days are alike.
fn pattern(k: u64, salt: u64) -> i64 {
    let x = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(salt.wrapping_mul(1_442_695_040_888_963_407));
    let noise = i64::try_from((x >> 33) % 400).unwrap_or(0);
    let hour = i64::try_from((k / 4) % 24).unwrap_or(0);
    let day_shape = if (8..20).contains(&hour) { 1_300 } else { 700 };
    day_shape + noise * 3 + i64::try_from(salt % 7).unwrap_or(0)
}

/// Readings for `period` on every meter as revision 1, with a few missing
/// and estimated ones; then a late correction as revision 2.
pub fn readings(portfolio: &Portfolio, period: &Period) -> ReadingLog {
    let mut log = ReadingLog::new();
    let zone = jiff::tz::TimeZone::get(ZONE).expect("zone");
    let grid = period.intervals(&zone, jiff::SignedDuration::from_mins(15)).expect("grid");
    let mut first = Vec::new();
    for (salt, name) in ["m-flat", "m-tou", "m-shared"].iter().enumerate() {
        let id = meter_id(name);
        assert!(portfolio.meter(&id).is_some());
        for (k, start) in grid.instants().enumerate() {
            let k = k as u64;
            if k % 997 == 13 {
                continue; // missing
            }
            let quality = if k % 501 == 7 { Quality::Estimated } else { Quality::Measured };
            first.push(Reading {
                meter: id.clone(),
                start,
                energy: Energy::from_wh(pattern(k, salt as u64 + 1)),
                quality,
            });
        }
    }
    log.load(1, &first).expect("load 1");
    // Late corrections: a day of m-flat doubled, on the spring DST day.
    let day = Period::day(date(2025, 3, 30));
    let corrected: Vec<Reading> = day
        .intervals(&zone, jiff::SignedDuration::from_mins(15))
        .expect("grid")
        .instants()
        .map(|start| Reading {
            meter: meter_id("m-flat"),
            start,
            energy: Energy::from_wh(2_400),
            quality: Quality::Substituted,
        })
        .collect();
    log.load(2, &corrected).expect("load 2");
    log
}

/// Spot prices for `period`: a deterministic daily curve.
pub fn spot(period: &Period) -> IndexPrices {
    let zone = jiff::tz::TimeZone::get(ZONE).expect("zone");
    let mut prices = IndexPrices::new();
    for (k, start) in period.intervals(&zone, jiff::SignedDuration::from_mins(15)).expect("grid").instants().enumerate()
    {
        let cents = 8 + (k % 96) as i64 / 8;
        prices.insert("spot", start, Price::new(Decimal::new(cents, 2)));
    }
    prices
}

/// An instant from RFC 3339 text.
pub fn at(text: &str) -> jiff::Timestamp {
    text.parse().expect("instant")
}

/// One contract (`fixed_terms("0.25", 30_000)`) on one meter of `technology`.
pub fn single(technology: Technology, exempt: bool) -> Portfolio {
    let mut terms = fixed_terms("0.25", 30_000);
    if exempt && let Some(penalty) = terms.penalty.as_mut() {
        penalty.exempt = vec![Technology::Solar];
    }
    with_terms(technology, terms)
}

/// One contract with `terms` on one meter of `technology`.
pub fn with_terms(technology: Technology, terms: Terms) -> Portfolio {
    let mut p = Portfolio::new();
    p.add_meter(MeteringPoint {
        id: meter_id("m"),
        party: volta_contracts::PartyId::new("site").expect("id"),
        interval_minutes: 15,
        time_zone: ZONE.into(),
        location: Location::Node("n1".into()),
        technology,
    })
    .expect("meter");
    let contract = Contract::draft(
        contract_id("c"),
        volta_contracts::PartyId::new("seller").expect("id"),
        volta_contracts::PartyId::new("buyer").expect("id"),
        vec![meter_id("m")],
        terms,
    )
    .expect("contract");
    p.add_contract(contract).expect("contract");
    p
}

/// Every interval of `period` at `wh`, as revision `revision`.
pub fn constant(log: &mut ReadingLog, period: &Period, wh: i64, revision: u64) {
    let zone = jiff::tz::TimeZone::get(ZONE).expect("zone");
    let readings: Vec<Reading> = period
        .intervals(&zone, jiff::SignedDuration::from_mins(15))
        .expect("grid")
        .instants()
        .map(|start| Reading { meter: meter_id("m"), start, energy: Energy::from_wh(wh), quality: Quality::Measured })
        .collect();
    log.load(revision, &readings).expect("load");
}
