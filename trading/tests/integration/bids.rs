//! Bid curves from a dispatch case, worked by hand.

use volta_contracts::Energy;
use volta_dispatch::Options;
use volta_engine::case::{CaseReader, Format};
use volta_trading::bids::curves;
use volta_trading::{Price, Side};

/// The hall of `datasets/market/hall.toml`.
const SITE: &str = include_str!("../../../datasets/market/hall.toml");

#[test]
fn a_site_bids_what_it_would_buy_at_each_price() {
    // Forecast 0.10 then 0.30, shifted by -0.05 to +0.10. The battery gains
    // at every level (0.81 x the second price beats the first), so it
    // charges 10 kWh in hour 1 and gives back 8.1 in hour 2. The chillers
    // (worth 0.27 a kWh) run in hour 2 only at 0.25. Hour 1 buys 40 kWh at
    // every level: one step at the highest price. Hour 2 buys 21.9 at 0.25
    // and 11.9 above: 10 kWh at 0.25, 11.9 at 0.40.
    let case = CaseReader::new().read_str(SITE, Format::Toml).expect("case").case;
    let shifts: Vec<Price> = ["-0.05", "0", "0.05", "0.10"].iter().map(|s| s.parse().expect("price")).collect();
    let c = curves(&case, "market", &[0.10, 0.30], &shifts, &Options::default()).expect("curves");
    let wh = |e: Energy| e.wh();
    assert_eq!(c.intervals[0].net_import.iter().map(|e| wh(*e)).collect::<Vec<_>>(), [40_000; 4]);
    assert_eq!(c.intervals[1].net_import.iter().map(|e| wh(*e)).collect::<Vec<_>>(), [21_900, 11_900, 11_900, 11_900]);
    let steps = |t: usize| -> Vec<(Side, String, i64)> {
        c.intervals[t].steps.iter().map(|s| (s.side, s.price.to_string(), s.quantity.wh())).collect()
    };
    assert_eq!(steps(0), [(Side::Buy, "0.2".to_owned(), 40_000)]);
    assert_eq!(steps(1), [(Side::Buy, "0.25".to_owned(), 10_000), (Side::Buy, "0.4".to_owned(), 11_900)]);
    assert_eq!(c.evened, 0);
}

#[test]
fn bad_requests_are_named() {
    let case = CaseReader::new().read_str(SITE, Format::Toml).expect("case").case;
    let one: Vec<Price> = vec![Price::ZERO];
    let error = |grid: &str, prices: &[f64], shifts: &[Price]| {
        curves(&case, grid, prices, shifts, &Options::default()).expect_err("refused").to_string()
    };
    assert!(error("hall", &[0.1, 0.3], &one).starts_with("grid"));
    assert!(error("nope", &[0.1, 0.3], &one).starts_with("grid"));
    assert!(error("market", &[0.1], &one).starts_with("prices"));
    assert!(error("market", &[0.1, f64::NAN], &one).starts_with("prices[1]"));
    assert!(error("market", &[0.1, 0.3], &[]).starts_with("shifts"));
    assert!(error("market", &[0.1, 0.3], &[Price::ZERO, Price::ZERO]).starts_with("shifts"));
}

/// The hall buys 240 kWh a day, flat, from the grid company under contract.
fn contract_portfolio() -> volta_contracts::ledger::Portfolio {
    use volta_contracts::{Contract, ContractId, Location, MeterId, MeteringPoint, PartyId, Technology};
    let terms: volta_contracts::Terms = toml::from_str(
        r#"
kind = "fixed_price"
delivery_first = "2024-06-01"
delivery_last = "2024-06-30"
currency = "EUR"
decimals = 2
[price]
rule = "fixed"
price = "0.20"
[quantity]
basis = "daily"
energy = 240
[shape]
shape = "flat"
"#,
    )
    .expect("terms");
    let mut p = volta_contracts::ledger::Portfolio::new();
    p.add_meter(MeteringPoint {
        id: MeterId::new("hall-meter").expect("id"),
        party: PartyId::new("hall").expect("id"),
        interval_minutes: 60,
        time_zone: "UTC".into(),
        location: Location::Node("elec".into()),
        technology: Technology::Load,
    })
    .expect("meter");
    let contract = Contract::draft(
        ContractId::new("supply").expect("id"),
        PartyId::new("utility").expect("id"),
        PartyId::new("hall").expect("id"),
        vec![MeterId::new("hall-meter").expect("id")],
        terms,
    )
    .expect("contract");
    p.add_contract(contract).expect("contract");
    p
}

#[test]
fn contract_positions_are_netted_before_the_market() {
    use volta_trading::netting::{Position, coverage, net, positions};
    let case = CaseReader::new().read_str(SITE, Format::Toml).expect("case").case;
    let shifts: Vec<Price> = ["-0.05", "0", "0.05", "0.10"].iter().map(|s| s.parse().expect("price")).collect();
    let gross = curves(&case, "market", &[0.10, 0.30], &shifts, &Options::default()).expect("curves");
    // 240 kWh a day flat: 10 kWh in each hour, from the contract model.
    let starts: Vec<jiff::Timestamp> = case.grid().instants().collect();
    let day = volta_contracts::Period::day(jiff::civil::date(2024, 6, 3));
    let hall = volta_contracts::PartyId::new("hall").expect("id");
    let held =
        positions(&contract_portfolio(), &hall, &day, &starts, jiff::SignedDuration::from_hours(1)).expect("positions");
    assert_eq!(held.iter().map(|p| p.contracted.wh()).collect::<Vec<_>>(), [10_000, 10_000]);
    // The market sees the rest: hour 1, 30 kWh at 0.20; hour 2, 10 at 0.25 and 1.9 at 0.40.
    let netted = net(&gross, &held).expect("net");
    let steps = |c: &volta_trading::bids::Curves, t: usize| -> Vec<(Side, String, i64)> {
        c.intervals[t].steps.iter().map(|s| (s.side, s.price.to_string(), s.quantity.wh())).collect()
    };
    assert_eq!(steps(&netted, 0), [(Side::Buy, "0.2".to_owned(), 30_000)]);
    assert_eq!(steps(&netted, 1), [(Side::Buy, "0.25".to_owned(), 10_000), (Side::Buy, "0.4".to_owned(), 1_900)]);
    // Cleared at 0.30 in hour 2: 11.9 kWh needed, 10 by contract, 1.9 by the market.
    let c = coverage(&gross, 1, &held[1], "0.30".parse().expect("price"));
    assert_eq!((c.need.wh(), c.by_contract.wh(), c.by_market.wh()), (11_900, 10_000, 1_900));
    // A contract larger than the need turns the surplus into offers.
    let long = [held[0], Position { start: held[1].start, contracted: Energy::from_wh(25_000) }];
    let netted = net(&gross, &long).expect("net");
    assert_eq!(steps(&netted, 1), [(Side::Sell, "0.25".to_owned(), 3_100), (Side::Sell, "0.3".to_owned(), 10_000)]);
    assert!(net(&gross, &held[..1]).is_err(), "one position per interval");
}
