//! Block and curve orders in a market as a service runs it: a curve clears
//! as its steps would, a block is all or nothing over the products of a
//! day-ahead gate, and both are refused where they cannot clear, by field.

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use volta_contracts::Energy;
use volta_trading::network::Network;
use volta_trading::order::Shape;
use volta_trading::{
    BlockOutcome, Changes, Entry, Kind, Market, MarketRules, Matching, NewOrder, OrderState, Price, Pricing, Side,
    TimeInForce,
};

use crate::support::{party, price};

fn at(text: &str) -> Timestamp {
    text.parse().expect("instant")
}

/// Quarter hours in Berlin, each gate closing 5 minutes before delivery.
fn rules(matching: Matching) -> MarketRules {
    MarketRules {
        time_zone: "Europe/Berlin".into(),
        interval_minutes: 15,
        gate_opens_before: SignedDuration::from_hours(48),
        gate_closes_before: SignedDuration::from_mins(5),
        min_price: price("-0.5"),
        max_price: price("4"),
        matching,
        grid_fee: Price::ZERO,
        network: (matching == Matching::Welfare).then(|| Network::single("a")),
        day_ahead_gate: None,
    }
}

/// Hours in Berlin at one node, every product of a day closing at noon the
/// day before.
fn day_ahead() -> MarketRules {
    MarketRules {
        interval_minutes: 60,
        gate_closes_before: SignedDuration::ZERO,
        day_ahead_gate: Some(Time::constant(12, 0, 0, 0)),
        ..rules(Matching::Welfare)
    }
}

const QUARTER: &str = "2024-06-01T10:00:00Z";
const BEFORE: &str = "2024-06-01T08:00:00Z";

fn order(client: &str, who: &str, side: Side, wh: i64, limit: &str) -> NewOrder {
    NewOrder {
        client_order_id: client.into(),
        participant: party(who),
        delivery_start: at(QUARTER),
        side,
        kind: Kind::Limit { price: price(limit), time_in_force: TimeInForce::Gtc },
        quantity: Energy::from_wh(wh),
        node: None,
        shape: None,
    }
}

/// A curve of `(limit, Wh)` steps, its limit the most willing step's.
fn curve(client: &str, who: &str, side: Side, steps: &[(&str, i64)]) -> NewOrder {
    let steps: Vec<(Price, Energy)> = steps.iter().map(|(p, wh)| (price(p), Energy::from_wh(*wh))).collect();
    let prices = steps.iter().map(|(p, _)| *p);
    let willing = match side {
        Side::Buy => prices.max(),
        Side::Sell => prices.min(),
    }
    .expect("a step");
    let quantity = steps.iter().map(|(_, e)| *e).sum();
    NewOrder {
        kind: Kind::Limit { price: willing, time_in_force: TimeInForce::Gtc },
        quantity,
        shape: Some(Shape::Curve(steps)),
        ..order(client, who, side, 1, "0")
    }
}

/// A block at node `a` of `(delivery start, Wh)` intervals.
fn block(client: &str, who: &str, side: Side, limit: &str, intervals: &[(&str, i64)]) -> NewOrder {
    let profile: Vec<(Timestamp, Energy)> = intervals.iter().map(|(t, wh)| (at(t), Energy::from_wh(*wh))).collect();
    NewOrder {
        delivery_start: profile[0].0,
        quantity: profile.iter().map(|(_, e)| *e).sum(),
        node: Some("a".into()),
        shape: Some(Shape::Block(profile)),
        ..order(client, who, side, 1, limit)
    }
}

fn at_hour(start: &str, order: NewOrder) -> NewOrder {
    NewOrder { delivery_start: at(start), node: Some("a".into()), ..order }
}

fn states(changes: &Changes) -> Vec<(u64, OrderState, i64)> {
    changes.orders.iter().map(|e| (e.order.id, e.state, e.filled.wh())).collect()
}

fn rebuilt(market: &Market, rules: MarketRules, last: u64) -> Market {
    let mut again = Market::new(rules, last, 0).expect("market");
    let mut resting: Vec<Entry> = (1..=last).filter_map(|id| market.open(id).cloned()).collect();
    resting.sort_by_key(|e| e.order.id);
    for entry in resting {
        again.restore(entry).expect("restore");
    }
    again
}

/// Alice sells a curve of three 2 kWh steps at 0.10, 0.20 and 0.30; bob
/// buys 3 kWh up to 0.25, carol 2 kWh up to 0.15. Supply reaches 4 kWh at
/// 0.20, where demand is bob's 3 kWh: the price is alice's second step,
/// bob is filled, alice sells 3 kWh (one step whole, 1 kWh of the next)
/// and carol is rejected. Alice's two steps trade with bob at one price:
/// one trade.
#[test]
fn a_curve_clears_as_its_steps_would_in_one_order() {
    let call = rules(Matching::Call(Pricing::PayAsClear));
    let mut market = Market::new(call.clone(), 0, 0).expect("market");
    let now = at(BEFORE);
    let alice = curve("a", "alice", Side::Sell, &[("0.10", 2_000), ("0.20", 2_000), ("0.30", 2_000)]);
    let made = market.submit(alice, now).expect("curve");
    assert_eq!((made.orders[0].order.quantity.wh(), made.orders[0].state), (6_000, OrderState::Resting));
    market.submit(order("b", "bob", Side::Buy, 3_000, "0.25"), now).expect("bob");
    market.submit(order("c", "carol", Side::Buy, 2_000, "0.15"), now).expect("carol");
    let (bids, asks) = market.depth(at(QUARTER), 10);
    let shown = |d: &[volta_trading::Depth]| d.iter().map(|l| (l.price.to_string(), l.volume.wh())).collect::<Vec<_>>();
    assert_eq!(shown(&asks), [("0.1".into(), 2_000), ("0.2".into(), 2_000), ("0.3".into(), 2_000)]);
    assert_eq!(shown(&bids), [("0.25".into(), 3_000), ("0.15".into(), 2_000)]);

    let mut again = rebuilt(&market, call, 3);
    let gate = at("2024-06-01T09:55:00Z");
    let closed = market.close(gate);
    assert_eq!(closed, again.close(gate), "a market rebuilt from its records clears the same");
    let auction = &closed.auctions[0];
    assert_eq!((auction.price, auction.volume.wh(), auction.orders), (Some(price("0.20")), 3_000, 3));
    assert_eq!(
        states(&closed),
        [(1, OrderState::Expired, 3_000), (2, OrderState::Filled, 3_000), (3, OrderState::Expired, 0)]
    );
    let trades: Vec<_> =
        closed.trades.iter().map(|t| (t.trade.buy, t.trade.sell, t.trade.quantity.wh(), t.trade.buyer_price)).collect();
    assert_eq!(trades, [(2, 1, 3_000, price("0.20"))]);
}

/// Generator `g` sells 2 kWh in each of two hours as one block. Hour 1
/// (10:00 local): bob buys 3 kWh up to 0.30, sam sells 2 kWh from 0.25;
/// hour 2 (11:00): bea buys 3 kWh up to 0.16, sue sells 2 kWh from 0.10.
///
/// Without the block, 2 kWh trade each hour and welfare is 2 × 0.05 +
/// 2 × 0.06 = 0.22. At 0.15 the block is worth taking: hour 1 gains
/// 0.90 - 0.25 - 0.30 = 0.35, hour 2 gains 0.48 - 0.10 - 0.30 = 0.08,
/// 0.43 in all. Sam and sue, each with 1 kWh left over, set the prices at
/// 0.25 and 0.10. At 0.40 the block would lose welfare, so it is rejected
/// whole, though hour 1 alone would have paid it.
#[test]
fn a_block_is_all_or_nothing_over_the_products_of_a_day_ahead_gate() {
    let (h1, h2) = ("2024-06-02T08:00:00Z", "2024-06-02T09:00:00Z");
    let now = at(BEFORE);
    for (limit, accepted) in [("0.15", true), ("0.40", false)] {
        let mut market = Market::new(day_ahead(), 0, 0).expect("market");
        let g = block("g", "gen", Side::Sell, limit, &[(h1, 2_000), (h2, 2_000)]);
        let made = market.submit(g, now).expect("block");
        assert_eq!(made.orders[0].delivery_end, at("2024-06-02T10:00:00Z"), "a block ends with its last interval");
        for o in [
            at_hour(h1, order("b", "bob", Side::Buy, 3_000, "0.30")),
            at_hour(h1, order("s", "sam", Side::Sell, 2_000, "0.25")),
            at_hour(h2, order("e", "bea", Side::Buy, 3_000, "0.16")),
            at_hour(h2, order("u", "sue", Side::Sell, 2_000, "0.10")),
        ] {
            market.submit(o, now).expect("order");
        }
        let mut again = rebuilt(&market, day_ahead(), 5);
        assert!(market.close(at("2024-06-01T09:59:59Z")).is_empty(), "open until noon the day before");
        let gate = at("2024-06-01T10:00:00Z");
        let closed = market.close(gate);
        assert_eq!(closed, again.close(gate), "a market rebuilt from its records clears the same");
        assert_eq!(closed.auctions.len(), 2, "the day's products clear together");
        let trades: Vec<_> = closed
            .trades
            .iter()
            .map(|t| (t.delivery_start, t.trade.buy, t.trade.sell, t.trade.quantity.wh(), t.trade.buyer_price))
            .collect();
        let outcome = |i: usize| {
            let a = &closed.auctions[i];
            (a.price, a.volume.wh(), a.orders, a.network.as_ref().expect("network").welfare.to_string())
        };
        // The block's outcome is its first hour's: at 0.25 and 0.10 its 4 kWh
        // earn 0.70, 0.10 over its 0.60 asked; at 0.30 and 0.16, 0.92, below
        // the 1.60 it asks, so its rejection is no paradox.
        let blocks = |i: usize| closed.auctions[i].network.as_ref().expect("network").blocks.clone();
        let surplus = if accepted { "0.1" } else { "-0.68" };
        let outcome_of_g = BlockOutcome {
            order: 1,
            accepted,
            surplus: surplus.parse().expect("decimal"),
            paradoxically_accepted: false,
            paradoxically_rejected: false,
        };
        assert_eq!(blocks(0), [outcome_of_g]);
        assert!(blocks(1).is_empty(), "a block is reported with its first interval");
        if accepted {
            assert_eq!(
                trades,
                [
                    (at(h1), 2, 3, 1_000, price("0.25")),
                    (at(h1), 2, 1, 2_000, price("0.25")),
                    (at(h2), 4, 5, 1_000, price("0.10")),
                    (at(h2), 4, 1, 2_000, price("0.10")),
                ]
            );
            assert_eq!(outcome(0), (Some(price("0.25")), 3_000, 3, "0.35".into()));
            assert_eq!(outcome(1), (Some(price("0.10")), 3_000, 3, "0.08".into()));
            assert_eq!(
                states(&closed),
                [
                    (1, OrderState::Filled, 4_000),
                    (2, OrderState::Filled, 3_000),
                    (3, OrderState::Expired, 1_000),
                    (4, OrderState::Filled, 3_000),
                    (5, OrderState::Expired, 1_000),
                ]
            );
        } else {
            assert_eq!(trades, [(at(h1), 2, 3, 2_000, price("0.30")), (at(h2), 4, 5, 2_000, price("0.16"))]);
            assert_eq!(outcome(0), (Some(price("0.30")), 2_000, 3, "0.1".into()));
            assert_eq!(outcome(1), (Some(price("0.16")), 2_000, 3, "0.12".into()));
            assert_eq!(closed.orders[0].state, OrderState::Expired);
            assert_eq!(closed.orders[0].filled, Energy::ZERO, "nothing of a rejected block");
        }
        assert_eq!(market.resting(), 0);
    }
}

/// A block shows in the book of every interval it delivers in, at its limit
/// and its energy there, and leaves them all when it is cancelled; the
/// levels of simple orders do not count it.
#[test]
fn a_block_shows_in_the_book_of_each_of_its_intervals() {
    let (h1, h2, h3) = ("2024-06-02T08:00:00Z", "2024-06-02T09:00:00Z", "2024-06-02T10:00:00Z");
    let now = at(BEFORE);
    let mut market = Market::new(day_ahead(), 0, 0).expect("market");
    market.submit(block("g", "gen", Side::Sell, "0.15", &[(h1, 2_000), (h2, 1_000)]), now).expect("block");
    market.submit(block("l", "lia", Side::Buy, "0.20", &[(h2, 500), (h3, 700)]), now).expect("block");
    market.submit(block("m", "max", Side::Buy, "0.35", &[(h2, 300)]), now).expect("block");
    market.submit(at_hour(h2, order("b", "bob", Side::Buy, 3_000, "0.30")), now).expect("order");
    let shown = |market: &Market, start: &str| {
        let (bids, asks) = market.blocks_at(at(start), 10);
        let row = |b: &volta_trading::BlockDepth| (b.price, b.volume.wh(), b.block_start, b.intervals);
        (bids.iter().map(row).collect::<Vec<_>>(), asks.iter().map(row).collect::<Vec<_>>())
    };
    assert_eq!(shown(&market, h1), (vec![], vec![(price("0.15"), 2_000, at(h1), 2)]));
    assert_eq!(
        shown(&market, h2),
        (
            vec![(price("0.35"), 300, at(h2), 1), (price("0.20"), 500, at(h2), 2)],
            vec![(price("0.15"), 1_000, at(h1), 2)]
        )
    );
    assert_eq!(shown(&market, h3), (vec![(price("0.20"), 700, at(h2), 2)], vec![]));
    assert_eq!(market.blocks_at(at(h2), 1).0.len(), 1, "at most the levels asked");
    let (bids, asks) = market.depth(at(h2), 10);
    assert_eq!((bids.len(), bids[0].volume.wh(), asks.len()), (1, 3_000, 0), "bob's order alone has a level");
    // A rebuilt market shows the same; a cancelled block leaves every book.
    let again = rebuilt(&market, day_ahead(), 4);
    assert_eq!(again.blocks_at(at(h2), 10), market.blocks_at(at(h2), 10));
    let entry = market.cancel(1).expect("cancel");
    assert_eq!(entry.books(), [at(h1), at(h2)]);
    assert_eq!(shown(&market, h1), (vec![], vec![]));
    assert!(shown(&market, h2).1.is_empty());
}

#[test]
fn blocks_and_curves_are_refused_where_they_cannot_clear_by_field() {
    let now = at(BEFORE);
    let refused = |rules: MarketRules, order: NewOrder| {
        let mut market = Market::new(rules, 0, 0).expect("market");
        market.submit(order, now).expect_err("refused").to_string()
    };
    let steps = [("0.10", 1_000), ("0.20", 1_000)];
    let starts = |text: String, field: &str| assert!(text.starts_with(field), "{field}: {text}");
    starts(refused(rules(Matching::Continuous), curve("c", "x", Side::Sell, &steps)), "curve: a continuous market");
    let out_of_bounds = curve("c", "x", Side::Sell, &[("0.10", 1_000), ("4.5", 1_000)]);
    starts(refused(rules(Matching::Call(Pricing::PayAsBid)), out_of_bounds), "curve[1].limit_price");
    let empty = NewOrder { shape: Some(Shape::Curve(Vec::new())), ..curve("c", "x", Side::Sell, &steps) };
    starts(refused(rules(Matching::Call(Pricing::PayAsClear)), empty), "curve: a curve has at least one step");
    let wrong_limit = NewOrder {
        kind: Kind::Limit { price: price("0.2"), time_in_force: TimeInForce::Gtc },
        ..curve("c", "x", Side::Sell, &steps)
    };
    starts(refused(rules(Matching::Call(Pricing::PayAsClear)), wrong_limit), "limit_price");
    let short = NewOrder { quantity: Energy::from_wh(1_500), ..curve("c", "x", Side::Sell, &steps) };
    starts(refused(rules(Matching::Call(Pricing::PayAsClear)), short), "quantity_wh");

    let (h1, h2) = ("2024-06-02T08:00:00Z", "2024-06-02T09:00:00Z");
    let two = || block("b", "x", Side::Sell, "0.1", &[(h1, 1_000), (h2, 1_000)]);
    let unplaced = NewOrder { node: None, ..two() };
    starts(refused(rules(Matching::Call(Pricing::PayAsClear)), unplaced), "block: only a welfare market");
    // Each quarter hour has its own gate: a block cannot span two.
    let quarters = block("b", "x", Side::Sell, "0.1", &[(QUARTER, 1_000), ("2024-06-01T10:15:00Z", 1_000)]);
    starts(refused(rules(Matching::Welfare), quarters), "block[1].delivery_start");
    let off_grid = block("b", "x", Side::Sell, "0.1", &[(h1, 1_000), ("2024-06-02T09:30:00Z", 1_000)]);
    starts(refused(day_ahead(), off_grid), "block[1].delivery_start");
    let backwards = block("b", "x", Side::Sell, "0.1", &[(h2, 1_000), (h1, 1_000)]);
    starts(refused(day_ahead(), backwards), "block[1].delivery_start");
    let nothing = block("b", "x", Side::Sell, "0.1", &[(h1, 1_000), (h2, 0)]);
    starts(refused(day_ahead(), NewOrder { quantity: Energy::from_wh(1_000), ..nothing }), "block[1].quantity_wh");
    let market_block = NewOrder { kind: Kind::Market, ..two() };
    starts(refused(day_ahead(), market_block), "limit_price");
    let next_day = block("b", "x", Side::Sell, "0.1", &[(h1, 1_000), ("2024-06-03T09:00:00Z", 1_000)]);
    starts(refused(day_ahead(), next_day), "block[1].delivery_start");

    // A block or curve is cancelled and sent again, not reduced.
    let mut market = Market::new(day_ahead(), 0, 0).expect("market");
    market.submit(two(), now).expect("block");
    let reduce = market.reduce(1, Energy::from_wh(1_000)).expect_err("no reduction").to_string();
    starts(reduce, "quantity_wh: order 1 is a block order");
    assert_eq!(market.reduce(1, Energy::from_wh(2_000)).expect("a retried no-change").state, OrderState::Resting);
    assert_eq!(market.cancel(1).expect("cancel").state, OrderState::Cancelled);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A curve clears as its steps sent one by one in its place: the same
    /// price, volume and money, and the curve's fill is its steps' fills.
    #[test]
    fn a_curve_clears_as_its_steps_sent_as_orders(
        book in prop::collection::vec(
            (any::<bool>(), prop::collection::vec((1i64..=40, 1i64..=5), 1..=4)),
            1..=12,
        ),
        pay_as_bid in any::<bool>(),
    ) {
        let pricing = if pay_as_bid { Pricing::PayAsBid } else { Pricing::PayAsClear };
        let now = at(BEFORE);
        let mut curves = Market::new(rules(Matching::Call(pricing)), 0, 0).expect("market");
        let mut split = Market::new(rules(Matching::Call(pricing)), 0, 0).expect("market");
        // Which split orders make up each curve.
        let mut parts: Vec<Vec<u64>> = Vec::new();
        for (k, (buy, steps)) in book.iter().enumerate() {
            let side = if *buy { Side::Buy } else { Side::Sell };
            let steps: Vec<(String, i64)> =
                steps.iter().map(|(cents, kwh)| (format!("0.{cents:02}"), kwh * 1_000)).collect();
            let borrowed: Vec<(&str, i64)> = steps.iter().map(|(p, wh)| (p.as_str(), *wh)).collect();
            let who = format!("p{k}");
            curves.submit(curve(&format!("c{k}"), &who, side, &borrowed), now).expect("curve");
            let mut ids = Vec::new();
            for (i, (p, wh)) in borrowed.iter().enumerate() {
                let made = split.submit(order(&format!("c{k}.{i}"), &who, side, *wh, p), now).expect("step");
                ids.push(made.orders[0].order.id);
            }
            parts.push(ids);
        }
        let gate = at("2024-06-01T09:55:00Z");
        let (a, b) = (curves.close(gate), split.close(gate));
        let (x, y) = (&a.auctions[0], &b.auctions[0]);
        prop_assert_eq!((x.price, x.volume, x.paid, x.received), (y.price, y.volume, y.paid, y.received));
        for (k, ids) in parts.iter().enumerate() {
            let curve_fill = a.orders.iter().find(|e| e.order.id == k as u64 + 1).map(|e| e.filled);
            let steps_fill: Energy =
                b.orders.iter().filter(|e| ids.contains(&e.order.id)).map(|e| e.filled).sum();
            prop_assert_eq!(curve_fill, Some(steps_fill), "curve {}", k);
        }
        let traded = |c: &Changes| c.trades.iter().map(|t| t.trade.quantity).sum::<Energy>();
        prop_assert_eq!(traded(&a), traded(&b));
    }
}
