//! Call auctions, worked by hand.

use rust_decimal::Decimal;
use volta_contracts::Energy;
use volta_trading::{Bid, Clearing, Price, Pricing, Side, clear};

use crate::support::{bid, kwh, price, product};

fn run(bids: &[Bid], pricing: Pricing) -> Clearing {
    clear(&product().id, bids, pricing, Price::ZERO).expect("clears")
}

fn filled(c: &Clearing) -> Vec<(u64, Energy)> {
    c.fills.iter().map(|f| (f.id, f.quantity)).collect()
}

#[test]
fn curves_crossing_along_a_range_of_prices_clear_in_its_middle() {
    // Demand: 10 at 0.20 and 10 more at 0.15; supply: 10 at 0.10 and 10
    // more at 0.18. Between 0.15 and 0.18 (both excluded) demand and supply
    // are both 10: the curves meet along that range, so the price is its
    // middle, 0.165. At its edges one side is long by 10.
    let bids = [
        bid(1, "shop", Side::Buy, Some("0.20"), 10),
        bid(2, "pool", Side::Buy, Some("0.15"), 10),
        bid(3, "pv", Side::Sell, Some("0.10"), 10),
        bid(4, "chp", Side::Sell, Some("0.18"), 10),
    ];
    let c = run(&bids, Pricing::PayAsClear);
    assert_eq!(c.price, Some(price("0.165")));
    assert_eq!((c.volume, c.demand, c.supply), (kwh(10), kwh(10), kwh(10)));
    assert_eq!(filled(&c), [(1, kwh(10)), (2, kwh(0)), (3, kwh(10)), (4, kwh(0))]);
    assert_eq!(c.paid, Decimal::new(165, 2));
    assert_eq!(c.surplus(), Decimal::ZERO);
    assert_eq!(c.trades.len(), 1);
    assert_eq!((c.trades[0].buy, c.trades[0].sell), (1, 3));

    // Pay-as-bid: the same acceptance, each at its own limit; the buyer
    // pays 2.00, the seller receives 1.00, the operator keeps 1.00.
    let c = run(&bids, Pricing::PayAsBid);
    assert_eq!(filled(&c), [(1, kwh(10)), (2, kwh(0)), (3, kwh(10)), (4, kwh(0))]);
    assert_eq!((c.paid, c.received, c.surplus()), (Decimal::new(2, 0), Decimal::new(1, 0), Decimal::new(1, 0)));
    assert_eq!((c.trades[0].buyer_price, c.trades[0].seller_price), (price("0.20"), price("0.10")));
}

#[test]
fn curves_sharing_volumes_at_one_price_clear_there_and_ration_the_longer_side() {
    // At 0.15 demand is 20 (10 at 0.20, 10 at 0.15) and supply 15 (5 at
    // 0.10, 10 at 0.15): 15 trade. The sellers are filled; the buyer at
    // 0.20 is filled and the one at 0.15 gets the 5 left.
    let bids = [
        bid(1, "shop", Side::Buy, Some("0.20"), 10),
        bid(2, "pool", Side::Buy, Some("0.15"), 10),
        bid(3, "pv", Side::Sell, Some("0.10"), 5),
        bid(4, "chp", Side::Sell, Some("0.15"), 10),
    ];
    let c = run(&bids, Pricing::PayAsClear);
    assert_eq!(c.price, Some(price("0.15")));
    assert_eq!((c.volume, c.demand, c.supply), (kwh(15), kwh(20), kwh(15)));
    assert_eq!(filled(&c), [(1, kwh(10)), (2, kwh(5)), (3, kwh(5)), (4, kwh(10))]);
    let traded: Energy = c.trades.iter().map(|t| t.quantity).sum();
    assert_eq!(traded, kwh(15));
}

#[test]
fn the_marginal_level_is_shared_pro_rata_to_the_watt_hour() {
    // 10 kWh bid at 0.20 by two buyers (7 and 3), 5 offered at 0.10: the
    // price rises to the buyers' 0.20, and they share the 5: 3.5 and 1.5.
    let c = run(
        &[
            bid(1, "a", Side::Buy, Some("0.20"), 7),
            bid(2, "b", Side::Buy, Some("0.20"), 3),
            bid(3, "pv", Side::Sell, Some("0.10"), 5),
        ],
        Pricing::PayAsClear,
    );
    assert_eq!(c.price, Some(price("0.20")), "demand exceeds supply up to the buyers' limit");
    assert_eq!(filled(&c), [(1, Energy::from_wh(3_500)), (2, Energy::from_wh(1_500)), (3, kwh(5))]);
    // Three equal bids of 1 Wh for 2 Wh: the leftover Wh go to the earlier orders.
    let one = |id, side, p: &str| Bid { quantity: Energy::from_wh(1), ..bid(id, "x", side, Some(p), 1) };
    let c = run(
        &[
            one(7, Side::Buy, "0.2"),
            one(5, Side::Buy, "0.2"),
            one(6, Side::Buy, "0.2"),
            Bid { quantity: Energy::from_wh(2), ..bid(9, "y", Side::Sell, Some("0.1"), 1) },
        ],
        Pricing::PayAsClear,
    );
    let wh: Vec<(u64, i64)> = c.fills.iter().map(|f| (f.id, f.quantity.wh())).collect();
    assert_eq!(wh, [(7, 0), (5, 1), (6, 1), (9, 2)]);
}

#[test]
fn without_an_overlap_or_a_limit_nothing_clears() {
    let apart = [bid(1, "shop", Side::Buy, Some("0.10"), 5), bid(2, "pv", Side::Sell, Some("0.12"), 5)];
    let c = run(&apart, Pricing::PayAsClear);
    assert_eq!((c.price, c.volume), (None, Energy::ZERO));
    assert!(c.trades.is_empty() && c.fills.iter().all(|f| f.quantity.is_zero()));
    let single = run(&[bid(1, "shop", Side::Buy, Some("0.10"), 5)], Pricing::PayAsClear);
    assert_eq!(single.price, None);
    let markets = run(&[bid(1, "shop", Side::Buy, None, 5), bid(2, "pv", Side::Sell, None, 5)], Pricing::PayAsClear);
    assert_eq!(markets.price, None, "no limit price to form a price from");
    assert_eq!(run(&[], Pricing::PayAsBid).price, None);
}

#[test]
fn market_orders_are_filled_first_and_pay_the_clearing_price() {
    // A market buy of 5 against 3 at 0.10 and 5 at 0.12: only at 0.12 can
    // all 5 trade. The seller at 0.12 is rationed to 2.
    let bids = [
        bid(1, "shop", Side::Buy, None, 5),
        bid(2, "pv", Side::Sell, Some("0.10"), 3),
        bid(3, "wind", Side::Sell, Some("0.12"), 5),
    ];
    let c = run(&bids, Pricing::PayAsBid);
    assert_eq!(c.price, Some(price("0.12")));
    assert_eq!(filled(&c), [(1, kwh(5)), (2, kwh(3)), (3, kwh(2))]);
    assert_eq!(c.fills[0].price, price("0.12"), "a market order pays the clearing price");
    assert_eq!(c.fills[1].price, price("0.10"), "pay-as-bid: the seller its own limit");
}

#[test]
fn bad_bids_are_named_by_position() {
    let zero = [bid(1, "a", Side::Buy, Some("0.1"), 1), bid(2, "b", Side::Sell, Some("0.1"), 0)];
    let error = clear(&product().id, &zero, Pricing::PayAsClear, Price::ZERO).expect_err("zero");
    assert!(error.to_string().starts_with("bids[1].quantity"), "{error}");
    let twice = [bid(1, "a", Side::Buy, Some("0.1"), 1), bid(1, "b", Side::Sell, Some("0.1"), 1)];
    let error = clear(&product().id, &twice, Pricing::PayAsClear, Price::ZERO).expect_err("repeated");
    assert!(error.to_string().starts_with("bids[1].id"), "{error}");
    // Increasing, then one again; and out of order: the later one is named.
    for ids in [[1, 2, 2], [3, 1, 3]] {
        let book: Vec<Bid> = ids.iter().map(|&id| bid(id, "a", Side::Buy, Some("0.1"), 1)).collect();
        let error = clear(&product().id, &book, Pricing::PayAsClear, Price::ZERO).expect_err("repeated");
        assert!(error.to_string().starts_with("bids[2].id"), "{ids:?}: {error}");
    }
}

#[test]
fn a_grid_fee_stands_between_what_buyers_pay_and_sellers_receive() {
    // Noon of the park's book in one zone, with a fee of 0.03 per kWh. In
    // what buyers pay, the PV's ask counts at 0.13 and the CHP's at 0.28.
    // Below 0.28 only the PV's 8 kWh sell against the canteen's 10 (short
    // by 2); at 0.28 the CHP's step spans the rest (a horizontal overlap),
    // so 0.28 is the price: the canteen gets 10 kWh, the PV 8 and the CHP 2,
    // the EV hub's 0.18 is out. Buyers pay 10 x 0.28 = 2.80, sellers
    // receive 10 x 0.25 = 2.50, the grid 10 x 0.03 = 0.30.
    let bids = [
        bid(1, "pv-roof", Side::Sell, Some("0.10"), 8),
        bid(2, "canteen", Side::Buy, Some("0.30"), 10),
        bid(3, "chp", Side::Sell, Some("0.25"), 10),
        bid(4, "ev-hub", Side::Buy, Some("0.18"), 6),
    ];
    let fee = price("0.03");
    let c = clear(&product().id, &bids, Pricing::PayAsClear, fee).expect("clears");
    assert_eq!(c.price, Some(price("0.28")));
    assert_eq!(filled(&c), [(1, kwh(8)), (2, kwh(10)), (3, kwh(2)), (4, kwh(0))]);
    let prices: Vec<String> = c.fills.iter().map(|f| f.price.to_string()).collect();
    assert_eq!(prices, ["0.25", "0.28", "0.25", "0.28"]);
    assert_eq!((c.paid, c.received, c.fees), (Decimal::new(28, 1), Decimal::new(25, 1), Decimal::new(3, 1)));
    assert_eq!(c.surplus(), Decimal::ZERO);
    for t in &c.trades {
        assert_eq!((t.buyer_price, t.seller_price, t.grid_fee), (price("0.28"), price("0.25"), fee));
    }

    // Without the fee the same book clears at the CHP's 0.25 (the gRPC
    // test's numbers); with a fee of 0.21 the PV's ask (0.31 with it) is
    // beyond every bid and nothing trades.
    let none = clear(&product().id, &bids, Pricing::PayAsClear, Price::ZERO).expect("clears");
    assert_eq!((none.price, none.volume), (Some(price("0.25")), kwh(10)));
    let dear = clear(&product().id, &bids, Pricing::PayAsClear, price("0.21")).expect("clears");
    assert_eq!(dear.volume, kwh(0));

    // Pay-as-bid: the same fills; the canteen pays its 0.30, the sellers
    // get their asks, and the operator keeps what is left after the fees.
    let c = clear(&product().id, &bids, Pricing::PayAsBid, fee).expect("clears");
    assert_eq!(filled(&c), [(1, kwh(8)), (2, kwh(10)), (3, kwh(2)), (4, kwh(0))]);
    assert_eq!((c.paid, c.received, c.fees), (Decimal::new(3, 0), Decimal::new(13, 1), Decimal::new(3, 1)));
    assert_eq!(c.surplus(), Decimal::new(14, 1));

    let error = clear(&product().id, &bids, Pricing::PayAsClear, price("-0.01")).expect_err("negative");
    assert!(error.to_string().starts_with("grid_fee"), "{error}");
}
