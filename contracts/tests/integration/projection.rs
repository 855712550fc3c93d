//! Projections checked by hand: a month half read, settled under five
//! futures, and the ways a projection's inputs are refused.

use jiff::SignedDuration;
use jiff::civil::date;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use volta_contracts::ledger::IndexPrices;
use volta_contracts::projection::{Future, project};
use volta_contracts::settlement::settle;
use volta_contracts::{ContractError, Energy, Period, Quality, Reading, ReadingLog, Technology};

use crate::support::{ZONE, at, constant, contract_id, dec, fixed_terms, meter_id, single, with_terms};

/// Every interval of February 2024 from `from` on, at `wh` each.
fn future(from: &str, wh: i64) -> Future {
    let zone = TimeZone::get(ZONE).expect("zone");
    let cut = at(from);
    Period::month_of(date(2024, 2, 1))
        .intervals(&zone, SignedDuration::from_mins(15))
        .expect("grid")
        .instants()
        .filter(|s| *s >= cut)
        .map(|start| Reading { meter: meter_id("m"), start, energy: Energy::from_wh(wh), quality: Quality::Estimated })
        .collect()
}

/// February 2024 read to the 15th (00:00 Berlin) at 10.5 kWh a quarter hour.
fn half_read() -> ReadingLog {
    let mut log = ReadingLog::new();
    constant(&mut log, &Period::new(date(2024, 2, 1), date(2024, 2, 15)).expect("period"), 10_500, 1);
    log
}

const CUT: &str = "2024-02-14T23:00:00Z";

#[test]
fn a_half_read_month_settles_under_each_future_and_levels_are_order_statistics() {
    // 1 344 quarter hours read at 10.5 kWh: 14 112 kWh. The band of the
    // 30 000 kWh month is [29 100, 31 500]; the penalty 0.05 x 0.25 per
    // kWh beyond it. The 1 440 quarter hours left at v kWh each deliver:
    //   v = 9: 27 072, 2 028 short, 25.35    v = 12: 31 392, within, 0
    //   v = 10: 28 512, 588 short, 7.35      v = 13: 32 832, 1 332 over, 16.65
    //   v = 11: 29 952, within, 0
    let p = single(Technology::Load, false);
    let february = Period::month_of(date(2024, 2, 1));
    let log = half_read();
    let scenarios: Vec<Future> = (9..=13).map(|v| future(CUT, v * 1000)).collect();
    let projection = project(
        &p,
        &contract_id("c"),
        &february,
        &log,
        &IndexPrices::new(),
        at(CUT),
        &future(CUT, 11_000),
        &scenarios,
        &[0.1, 0.5, 0.9],
    )
    .expect("projection");
    assert_eq!(projection.delivered_to_date, Energy::from_kwh(14_112));
    assert_eq!(projection.missing_to_date, 0);
    assert_eq!(projection.contracted, Energy::from_kwh(30_000));
    // Contracted to date, by a plain scan of the ledger's first 14 days.
    let ledger = p.ledger(&contract_id("c"), &february, &log, &IndexPrices::new(), None).expect("ledger");
    let scanned: Energy = ledger.entries.iter().filter(|e| e.date < date(2024, 2, 15)).map(|e| e.contracted).sum();
    assert_eq!(projection.contracted_to_date, scanned);
    assert_eq!(projection.expected.delivered, Energy::from_kwh(29_952));
    assert_eq!(projection.expected.penalty_amount, Decimal::ZERO);
    let delivered: Vec<Energy> = projection.levels.iter().map(|l| l.outcome.delivered).collect();
    assert_eq!(delivered, [Energy::from_kwh(27_072), Energy::from_kwh(29_952), Energy::from_kwh(32_832)]);
    let deviation: Vec<Energy> = projection.levels.iter().map(|l| l.outcome.deviation).collect();
    assert_eq!(deviation, [Energy::from_kwh(-2_928), Energy::from_kwh(-48), Energy::from_kwh(2_832)]);
    // The penalty's own distribution: 0, 0, 7.35, 16.65, 25.35. Its P90 is
    // the shortfall's, not the P90 volume's.
    let penalty: Vec<Decimal> = projection.levels.iter().map(|l| l.outcome.penalty_amount).collect();
    assert_eq!(penalty, [dec("0"), dec("7.35"), dec("25.35")]);
    assert_eq!(projection.expected_penalty, dec("9.87"));
    assert_eq!(projection.penalty_probability, dec("0.6"));
    assert_eq!(projection.outcomes.len(), 5);
    assert!(projection.assumed.is_empty());
    assert!(projection.rule.starts_with("monthly band -3 % / +5 %"), "{}", projection.rule);

    // A future equal to what then happens projects the settlement exactly.
    let mut full = log;
    full.load(2, &future(CUT, 9_000)).expect("the rest of the month");
    let ledger = p.ledger(&contract_id("c"), &february, &full, &IndexPrices::new(), None).expect("ledger");
    let settled = settle(&p, &ledger, &IndexPrices::new()).expect("settlement");
    assert_eq!(settled.penalty_amount, dec("25.35"));
    assert_eq!(settled.delivered, projection.outcomes[0].delivered);
    assert_eq!(settled.penalty_amount, projection.outcomes[0].penalty_amount);
}

#[test]
fn unpriced_intervals_after_the_cut_take_the_mean_of_the_index_before_it() {
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
    let zone = TimeZone::get(ZONE).expect("zone");
    let mut prices = IndexPrices::new();
    for (k, start) in february.intervals(&zone, SignedDuration::from_mins(15)).expect("grid").instants().enumerate() {
        if start < at(CUT) {
            prices.insert(
                "spot",
                start,
                volta_contracts::Price::new(if k % 2 == 0 { dec("0.10") } else { dec("0.20") }),
            );
        }
    }
    let projection = project(
        &p,
        &contract_id("c"),
        &february,
        &half_read(),
        &prices,
        at(CUT),
        &future(CUT, 11_000),
        &[future(CUT, 11_000)],
        &[0.5],
    )
    .expect("projection");
    assert_eq!(projection.assumed.len(), 1);
    assert_eq!(projection.assumed[0].index, "spot");
    assert_eq!(projection.assumed[0].price.per_kwh(), dec("0.15"));
    assert_eq!(projection.assumed[0].over, 1344);
    assert_eq!(projection.assumed[0].intervals, 1440);

    // With no price of the index at all, there is nothing to assume.
    let error = project(
        &p,
        &contract_id("c"),
        &february,
        &half_read(),
        &IndexPrices::new(),
        at(CUT),
        &future(CUT, 11_000),
        &[future(CUT, 11_000)],
        &[0.5],
    )
    .expect_err("no prices");
    assert!(matches!(&error, ContractError::MissingPrice { index, .. } if index == "spot"), "{error}");
}

#[test]
fn inputs_out_of_place_are_refused_by_name() {
    let p = single(Technology::Load, false);
    let february = Period::month_of(date(2024, 2, 1));
    let log = half_read();
    let run = |cut: &str, expected: &Future, scenarios: &[Future], levels: &[f64]| {
        project(&p, &contract_id("c"), &february, &log, &IndexPrices::new(), at(cut), expected, scenarios, levels)
            .expect_err("refused")
            .to_string()
    };
    let rest = future(CUT, 11_000);
    assert!(run("2024-03-05T00:00:00Z", &rest, std::slice::from_ref(&rest), &[0.5]).starts_with("as_of"));
    assert!(run(CUT, &rest, &[], &[0.5]).starts_with("scenarios"));
    assert!(run(CUT, &rest, std::slice::from_ref(&rest), &[0.9, 0.1]).starts_with("levels"));
    assert!(run(CUT, &rest, std::slice::from_ref(&rest), &[1.0]).starts_with("levels"));
    // A scenario reading before the cut would rewrite what was read.
    let early = future("2024-02-14T22:45:00Z", 11_000);
    assert!(run(CUT, &rest, &[rest.clone(), early], &[0.5]).starts_with("scenarios[1][0]"));
    let mut repeated = rest.clone();
    repeated.push(rest[0].clone());
    let error = run(CUT, &repeated, std::slice::from_ref(&rest), &[0.5]);
    assert!(error.starts_with("expected.readings[1440]"), "{error}");
    let unknown = project(
        &p,
        &contract_id("nope"),
        &february,
        &log,
        &IndexPrices::new(),
        at(CUT),
        &rest,
        std::slice::from_ref(&rest),
        &[0.5],
    );
    assert!(unknown.expect_err("unknown").to_string().starts_with("contract_id"));
}
