//! Welfare clearing on HiGHS, worked by hand: one node, a congested line
//! that splits prices, a grid fee, a block accepted at a loss; and on
//! random books, never less welfare than the call auction, with every
//! order accepted exactly when its limit beats its nodal price.

use proptest::prelude::*;
use rust_decimal::Decimal;
use volta_contracts::Energy;
use volta_lp::Settings;
use volta_trading::welfare::{Block, Book, Line, Network, Step, clear};
use volta_trading::{Bid, Price, Pricing, ProductId, Side};

use crate::support::{kwh, party, price, product};

fn hour(h: i64) -> ProductId {
    ProductId::of(
        "2024-06-03T00:00:00Z".parse::<jiff::Timestamp>().expect("instant") + jiff::SignedDuration::from_hours(h),
        60,
    )
}

fn step(id: u64, node: &str, product: &ProductId, side: Side, p: &str, q: i64) -> Step {
    Step {
        id,
        participant: party(&format!("p{id}")),
        product: product.clone(),
        node: node.into(),
        side,
        price: price(p),
        quantity: kwh(q),
    }
}

/// The book's steps as the call auction's orders.
fn as_bids(book: &Book) -> Vec<Bid> {
    book.steps
        .iter()
        .map(|s| Bid {
            id: s.id,
            participant: s.participant.clone(),
            side: s.side,
            price: Some(s.price),
            quantity: s.quantity,
        })
        .collect()
}

fn price_at(w: &volta_trading::welfare::Welfare, product: &ProductId, node: &str) -> String {
    w.prices.iter().find(|p| &p.product == product && p.node == node).expect("a price").price.to_string()
}

#[test]
fn one_node_clears_where_the_marginal_seller_sets_the_price() {
    // 10 kWh wanted at 0.20; 6 offered at 0.10 and 10 at 0.16. All 10 are
    // bought: 6 at 0.10's offer and 4 of 0.16's, which is marginal: the
    // price is 0.16, the welfare 2.00 - 0.60 - 0.64 = 0.76.
    let h = product().id;
    let book = Book {
        steps: vec![
            step(1, "n", &h, Side::Buy, "0.20", 10),
            step(2, "n", &h, Side::Sell, "0.10", 6),
            step(3, "n", &h, Side::Sell, "0.16", 10),
        ],
        blocks: vec![],
    };
    let w = clear(&Network::single("n"), &book, Price::ZERO, &Settings::default()).expect("clears");
    assert_eq!(w.steps, [(1, kwh(10)), (2, kwh(6)), (3, kwh(4))]);
    assert_eq!(price_at(&w, &h, "n"), "0.16");
    assert!((w.welfare - 0.76).abs() < 1e-9, "{}", w.welfare);
    assert_eq!((w.paid, w.received), (Decimal::new(16, 1), Decimal::new(16, 1)));
    // The call auction on the same book: the same price and volume.
    let bids = as_bids(&book);
    let auction = volta_trading::clear(&h, &bids, Pricing::PayAsClear, Price::ZERO).expect("auction");
    assert_eq!((auction.price, auction.volume), (Some(price("0.16")), kwh(10)));
}

#[test]
fn a_flat_grid_fee_clears_as_the_call_auction_does() {
    // The park's noon book in one node with a fee of 0.03: the canteen's
    // 0.30 is worth 0.27 to the welfare, the EV hub's 0.18 only 0.15. The
    // canteen's 10 kWh come from the PV's 8 and 2 of the CHP's, which is
    // marginal: sellers get 0.25, buyers pay 0.28 (the call auction's
    // price), the welfare is 10 x 0.27 - 0.80 - 0.50 = 1.40, the fees 0.30.
    let h = product().id;
    let book = Book {
        steps: vec![
            step(1, "n", &h, Side::Sell, "0.10", 8),
            step(2, "n", &h, Side::Buy, "0.30", 10),
            step(3, "n", &h, Side::Sell, "0.25", 10),
            step(4, "n", &h, Side::Buy, "0.18", 6),
        ],
        blocks: vec![],
    };
    let fee = price("0.03");
    let w = clear(&Network::single("n"), &book, fee, &Settings::default()).expect("clears");
    assert_eq!(w.steps, [(1, kwh(8)), (2, kwh(10)), (3, kwh(2)), (4, kwh(0))]);
    assert_eq!(price_at(&w, &h, "n"), "0.28");
    assert!((w.welfare - 1.4).abs() < 1e-9, "{}", w.welfare);
    assert_eq!((w.paid, w.received, w.fees), (Decimal::new(28, 1), Decimal::new(25, 1), Decimal::new(3, 1)));
    let bids = as_bids(&book);
    let auction = volta_trading::clear(&h, &bids, Pricing::PayAsClear, fee).expect("auction");
    assert_eq!((auction.price, auction.volume, auction.fees), (Some(price("0.28")), kwh(10), w.fees));
    let error = clear(&Network::single("n"), &book, price("-0.01"), &Settings::default()).expect_err("negative");
    assert!(error.to_string().starts_with("grid_fee"), "{error}");
}

#[test]
fn a_congested_line_splits_the_prices_and_a_fee_separates_them() {
    // Cheap PV at node a (8 kWh at 0.10), a buyer (10 at 0.30) and a CHP
    // (10 at 0.25) at node b, a line a-b.
    let h = product().id;
    let book = Book {
        steps: vec![
            step(1, "a", &h, Side::Sell, "0.10", 8),
            step(2, "b", &h, Side::Buy, "0.30", 10),
            step(3, "b", &h, Side::Sell, "0.25", 10),
        ],
        blocks: vec![],
    };
    let network = |capacity: i64, fee: &str| Network {
        nodes: vec!["a".into(), "b".into()],
        lines: vec![Line {
            id: "ab".into(),
            from: "a".into(),
            to: "b".into(),
            capacity: kwh(capacity),
            fee: price(fee),
        }],
    };
    // Room for all: the PV's 8 cross, the CHP supplies 2 and is marginal
    // everywhere: one price, 0.25.
    let w = clear(&network(100, "0"), &book, Price::ZERO, &Settings::default()).expect("clears");
    assert_eq!(w.steps, [(1, kwh(8)), (2, kwh(10)), (3, kwh(2))]);
    assert_eq!((price_at(&w, &h, "a"), price_at(&w, &h, "b")), ("0.25".to_owned(), "0.25".to_owned()));
    assert!(!w.flows[0].congested);
    // A 4 kWh line: 4 cross, the PV is marginal at a (0.10), the CHP at b
    // (0.25); the welfare 3.00 - 0.40 - 1.50 = 1.10; the congestion rent,
    // 4 x (0.25 - 0.10) = 0.60, is what buyers pay above what sellers get.
    let w = clear(&network(4, "0"), &book, Price::ZERO, &Settings::default()).expect("clears");
    assert_eq!(w.steps, [(1, kwh(4)), (2, kwh(10)), (3, kwh(6))]);
    assert_eq!((price_at(&w, &h, "a"), price_at(&w, &h, "b")), ("0.1".to_owned(), "0.25".to_owned()));
    assert_eq!((w.flows[0].energy, w.flows[0].congested), (kwh(4), true));
    assert!((w.welfare - 1.10).abs() < 1e-9, "{}", w.welfare);
    assert_eq!(w.paid - w.received, Decimal::new(6, 1));
    // A fee of 0.01 per kWh on an ample line: a's price is b's less the fee.
    let w = clear(&network(100, "0.01"), &book, Price::ZERO, &Settings::default()).expect("clears");
    assert_eq!((price_at(&w, &h, "a"), price_at(&w, &h, "b")), ("0.24".to_owned(), "0.25".to_owned()));
}

#[test]
fn a_block_is_all_or_nothing_and_a_loss_at_the_prices_is_reported() {
    // A CHP block of 12 kWh in hour 1 and 10 in hour 2 at 0.12. Buyers:
    // hour 1, 10 at 0.20 and 5 at 0.13; hour 2, 4 at 0.20 and 10 at 0.05.
    // Another seller offers 10 at 0.15 in hour 2. With the block: hour 1
    // sells 10 + 2 (price 0.13), hour 2 sells 4 + 6 (price 0.05); welfare
    // 2.26 + 1.10 - 2.64 = 0.72. Without: only 4 at 0.15 to 0.20 in hour
    // 2, 0.20. The block is accepted, though at the prices it earns 1.56 +
    // 0.50 = 2.06 for 2.64 asked: paradoxically accepted, uplift 0.58.
    let (h1, h2) = (hour(1), hour(2));
    let book = Book {
        steps: vec![
            step(1, "n", &h1, Side::Buy, "0.20", 10),
            step(2, "n", &h1, Side::Buy, "0.13", 5),
            step(3, "n", &h2, Side::Buy, "0.20", 4),
            step(4, "n", &h2, Side::Buy, "0.05", 10),
            step(5, "n", &h2, Side::Sell, "0.15", 10),
        ],
        blocks: vec![
            Block {
                id: 10,
                participant: party("chp"),
                node: "n".into(),
                side: Side::Sell,
                price: price("0.12"),
                profile: vec![(h1.clone(), kwh(12)), (h2.clone(), kwh(10))],
            },
            // A buyer's block too cheap for any hour: rejected, rightly.
            Block {
                id: 11,
                participant: party("pool"),
                node: "n".into(),
                side: Side::Buy,
                price: price("0.01"),
                profile: vec![(h1.clone(), kwh(5))],
            },
        ],
    };
    let w = clear(&Network::single("n"), &book, Price::ZERO, &Settings::default()).expect("clears");
    assert!((w.welfare - 0.72).abs() < 1e-9, "{}", w.welfare);
    assert_eq!(w.steps, [(1, kwh(10)), (2, kwh(2)), (3, kwh(4)), (4, kwh(6)), (5, Energy::ZERO)]);
    assert_eq!((price_at(&w, &h1, "n"), price_at(&w, &h2, "n")), ("0.13".to_owned(), "0.05".to_owned()));
    let chp = &w.blocks[0];
    assert!(chp.accepted && chp.paradoxically_accepted);
    assert_eq!(chp.surplus, Decimal::new(-58, 2));
    let pool = &w.blocks[1];
    assert!(!pool.accepted && !pool.paradoxically_rejected);
}

#[test]
fn bad_books_are_named() {
    let h = product().id;
    let unknown = Book { steps: vec![step(1, "x", &h, Side::Buy, "0.2", 1)], blocks: vec![] };
    let error = clear(&Network::single("n"), &unknown, Price::ZERO, &Settings::default()).expect_err("node");
    assert!(error.to_string().starts_with("steps[0].node"), "{error}");
    let looped = Network {
        nodes: vec!["n".into()],
        lines: vec![Line { id: "l".into(), from: "n".into(), to: "n".into(), capacity: kwh(1), fee: price("0") }],
    };
    let error = clear(&looped, &Book::default(), Price::ZERO, &Settings::default()).expect_err("loop");
    assert!(error.to_string().starts_with("network.lines[0].to"), "{error}");
    let empty = Block {
        id: 1,
        participant: party("a"),
        node: "n".into(),
        side: Side::Sell,
        price: price("0.1"),
        profile: vec![],
    };
    let error =
        clear(&Network::single("n"), &Book { steps: vec![], blocks: vec![empty] }, Price::ZERO, &Settings::default())
            .expect_err("empty block");
    assert!(error.to_string().starts_with("blocks[0].profile"), "{error}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn welfare_clearing_beats_the_auction_and_prices_support_every_decision(
        raw in prop::collection::vec((any::<bool>(), 5_i64..25, 1_i64..20), 1..30),
    ) {
        let h = product().id;
        let steps: Vec<Step> = raw
            .iter()
            .enumerate()
            .map(|(i, (buy, cents, q))| step(i as u64, "n", &h, if *buy { Side::Buy } else { Side::Sell }, &format!("0.{cents:02}"), *q))
            .collect();
        let book = Book { steps, blocks: vec![] };
        let w = clear(&Network::single("n"), &book, Price::ZERO, &Settings::default()).expect("clears");
        let bids = as_bids(&book);
        let auction = volta_trading::clear(&h, &bids, Pricing::PayAsClear, Price::ZERO).expect("auction");
        let value = |filled: &dyn Fn(usize) -> f64| -> f64 {
            book.steps.iter().enumerate().map(|(i, s)| {
                let v = filled(i) * s.price.micros() as f64 / 1e6;
                if s.side == Side::Buy { v } else { -v }
            }).sum()
        };
        let auction_welfare = value(&|i| auction.fills[i].quantity.wh() as f64 / 1000.0);
        prop_assert!(w.welfare >= auction_welfare - 1e-6, "welfare {} < auction {}", w.welfare, auction_welfare);
        // The nodal price supports every decision: better limits fully in,
        // worse ones out.
        let lambda = w.prices[0].price;
        for (s, (_, e)) in book.steps.iter().zip(&w.steps) {
            let better = match s.side { Side::Buy => s.price > lambda, Side::Sell => s.price < lambda };
            let worse = match s.side { Side::Buy => s.price < lambda, Side::Sell => s.price > lambda };
            if better { prop_assert_eq!(*e, s.quantity); }
            if worse { prop_assert_eq!(*e, Energy::ZERO); }
        }
        // Buyers and sellers trade the same energy (trades that gain
        // nothing, a buyer's limit equal to a seller's, may be left out: the
        // auction's volume is an upper bound).
        let side = |side| w.steps.iter().zip(&book.steps).filter(|(_, s)| s.side == side).map(|((_, e), _)| e.wh()).sum::<i64>();
        prop_assert_eq!(side(Side::Buy), side(Side::Sell));
        prop_assert!(side(Side::Buy) <= auction.volume.wh());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn without_congestion_or_fees_every_node_has_one_price(
        raw in prop::collection::vec((any::<bool>(), 5_i64..25, 1_i64..20, 0_usize..4), 2..30),
    ) {
        // Four nodes in a ring of lines far larger than the whole book.
        let h = product().id;
        let nodes: Vec<String> = (0..4).map(|i| format!("n{i}")).collect();
        let network = Network {
            nodes: nodes.clone(),
            lines: (0..4)
                .map(|i| Line {
                    id: format!("l{i}"),
                    from: nodes[i].clone(),
                    to: nodes[(i + 1) % 4].clone(),
                    capacity: kwh(10_000),
                    fee: price("0"),
                })
                .collect(),
        };
        let steps: Vec<Step> = raw
            .iter()
            .enumerate()
            .map(|(i, (buy, cents, q, node))| {
                step(i as u64, &nodes[*node], &h, if *buy { Side::Buy } else { Side::Sell }, &format!("0.{cents:02}"), *q)
            })
            .collect();
        let w = clear(&network, &Book { steps, blocks: vec![] }, Price::ZERO, &Settings::default()).expect("clears");
        let first = w.prices[0].price;
        for p in &w.prices {
            prop_assert_eq!(p.price, first, "node {} differs", p.node);
        }
        prop_assert!(w.flows.iter().all(|f| !f.congested));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The trades a stored welfare market records from a clearing: on
    /// random books over a three-node chain with tight lines, a random grid
    /// fee and blocks, every order's trades add up to its fill, every trade
    /// is priced at its buyer's and its seller's nodes, and the money on
    /// the trades is the clearing's.
    #[test]
    fn welfare_trades_add_up_to_the_fills_at_the_nodal_prices(
        raw in prop::collection::vec((any::<bool>(), 5_i64..25, 1_i64..20, 0_usize..3, 0_i64..2), 2..30),
        capacity in 0_i64..8,
        fee in 0_i64..3,
        blocks in prop::collection::vec((any::<bool>(), 5_i64..25, 1_i64..6, 0_usize..3), 0..3),
    ) {
        let nodes = ["a", "b", "c"];
        let network = Network {
            nodes: nodes.iter().map(|n| (*n).to_owned()).collect(),
            lines: [("ab", "a", "b"), ("bc", "b", "c")]
                .iter()
                .map(|(id, from, to)| Line { id: (*id).into(), from: (*from).into(), to: (*to).into(), capacity: kwh(capacity), fee: price("0.01") })
                .collect(),
        };
        let side = |buy: bool| if buy { Side::Buy } else { Side::Sell };
        let steps: Vec<Step> = raw
            .iter()
            .enumerate()
            .map(|(i, (buy, cents, q, node, h))| step(i as u64, nodes[*node], &hour(*h), side(*buy), &format!("0.{cents:02}"), *q))
            .collect();
        let blocks: Vec<Block> = blocks
            .iter()
            .enumerate()
            .map(|(k, (buy, cents, q, node))| Block {
                id: 1_000 + k as u64,
                participant: party(&format!("b{k}")),
                node: nodes[*node].into(),
                side: side(*buy),
                price: price(&format!("0.{cents:02}")),
                profile: vec![(hour(0), kwh(*q)), (hour(1), kwh(*q))],
            })
            .collect();
        let book = Book { steps, blocks };
        let fee = Price::from_micros(fee * 10_000);
        let w = clear(&network, &book, fee, &Settings::default()).expect("clears");
        let trades = w.trades(&book);
        let at = |product: &ProductId, node: &str| {
            w.prices.iter().find(|p| &p.product == product && p.node == node).map(|p| p.price).expect("a price")
        };
        // Each order's fill per product, from the clearing.
        let mut fills: std::collections::HashMap<(u64, ProductId), (i64, &str, Side)> = std::collections::HashMap::new();
        for (s, (_, e)) in book.steps.iter().zip(&w.steps) {
            fills.insert((s.id, s.product.clone()), (e.wh(), s.node.as_str(), s.side));
        }
        for (b, r) in book.blocks.iter().zip(&w.blocks) {
            for (p, e) in &b.profile {
                fills.insert((b.id, p.clone()), (if r.accepted { e.wh() } else { 0 }, b.node.as_str(), b.side));
            }
        }
        let mut paired: std::collections::HashMap<(u64, ProductId), i64> = std::collections::HashMap::new();
        let (mut paid, mut received) = (Decimal::ZERO, Decimal::ZERO);
        for t in &trades {
            prop_assert!(t.quantity > Energy::ZERO);
            let (_, buyer_node, buyer_side) = fills[&(t.buy, t.product.clone())];
            let (_, seller_node, seller_side) = fills[&(t.sell, t.product.clone())];
            prop_assert_eq!((buyer_side, seller_side), (Side::Buy, Side::Sell));
            prop_assert_eq!(t.buyer_price, at(&t.product, buyer_node));
            prop_assert_eq!(t.seller_price, at(&t.product, seller_node) - fee);
            prop_assert_eq!(t.grid_fee, fee);
            *paired.entry((t.buy, t.product.clone())).or_default() += t.quantity.wh();
            *paired.entry((t.sell, t.product.clone())).or_default() += t.quantity.wh();
            paid += volta_trading::price::amount(t.quantity, t.buyer_price);
            received += volta_trading::price::amount(t.quantity, t.seller_price);
        }
        // Fills are rounded to the Wh, so a side may be a few Wh longer than
        // the other; that much stays unpaired, nothing more.
        let mut unpaired = 0;
        for (key, (fill, _, _)) in &fills {
            let got = paired.get(key).copied().unwrap_or(0);
            prop_assert!(got <= *fill, "order {:?} paired {got} Wh of its {fill}", key);
            unpaired += fill - got;
        }
        prop_assert!(unpaired <= fills.len() as i64, "{unpaired} Wh unpaired");
        let slack = Decimal::from(unpaired) * Decimal::new(30, 5);
        prop_assert!((paid - w.paid).abs() <= slack, "paid {paid} against {}", w.paid);
        prop_assert!((received - w.received).abs() <= slack, "received {received} against {}", w.received);
    }
}
