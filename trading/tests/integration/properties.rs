//! Invariants on random books, with and without a grid fee: the continuous
//! book against a plain reference matcher (a list scanned for the best
//! price, then the earliest order), and the call auction against a scan of
//! every price.

use proptest::prelude::*;
use volta_contracts::Energy;
use volta_trading::{Bid, Book, Cancelled, Kind, Order, Price, Pricing, Product, Side, TimeInForce, clear};

use crate::support::{party, product};

/// One step of a random session.
#[derive(Debug, Clone)]
enum Step {
    Submit { who: u8, side: Side, price: Option<i64>, kwh: i64, tif: TimeInForce },
    Cancel { back: usize },
}

fn step() -> impl Strategy<Value = Step> {
    let side = prop_oneof![Just(Side::Buy), Just(Side::Sell)];
    let tif = prop_oneof![4 => Just(TimeInForce::Gtc), 1 => Just(TimeInForce::Ioc), 1 => Just(TimeInForce::Fok)];
    let price = prop_oneof![9 => (8_i64..14).prop_map(|c| Some(c * 10_000)), 1 => Just(None)];
    prop_oneof![
        5 => (0_u8..3, side, price, 1_i64..8, tif).prop_map(|(who, side, price, kwh, tif)| Step::Submit { who, side, price, kwh, tif }),
        1 => (0_usize..20).prop_map(|back| Step::Cancel { back }),
    ]
}

/// A resting order of the reference matcher.
#[derive(Debug, Clone)]
struct Rest {
    id: u64,
    who: u8,
    side: Side,
    price: i64,
    left: i64,
}

/// What the reference says of an order: trades as (buy, sell, Wh, price),
/// the Wh that rest, and the Wh cancelled with the reason.
type Outcome = (Vec<(u64, u64, i64, i64)>, i64, Option<(i64, Cancelled)>);

/// A grid fee per kWh, in millionths: none, one cent, three cents.
fn fee() -> impl Strategy<Value = i64> {
    prop_oneof![2 => Just(0_i64), 1 => Just(10_000), 1 => Just(30_000)]
}

/// The test product with grid fee `fee` (millionths per kWh).
fn with_fee(fee: i64) -> Product {
    Product { grid_fee: Price::from_micros(fee), ..product() }
}

/// The reference: a plain list, scanned for the best price and then the
/// lowest id at every fill, an incoming order paying (a buy) or receiving
/// (a sell) the resting price moved by the fee. Returns (trades as (buy,
/// sell, Wh, buyer's price), resting Wh, cancelled Wh and why).
#[expect(clippy::too_many_arguments, reason = "one order's fields, as the reference takes them")]
fn reference(
    book: &mut Vec<Rest>,
    fee: i64,
    id: u64,
    who: u8,
    side: Side,
    limit: Option<i64>,
    wh: i64,
    tif: TimeInForce,
) -> Outcome {
    let ok = |p: i64| match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(l)) => p + fee <= l,
        (Side::Sell, Some(l)) => p - fee >= l,
    };
    let best = |book: &Vec<Rest>| {
        book.iter()
            .enumerate()
            .filter(|(_, r)| r.side != side && ok(r.price))
            .min_by_key(|(_, r)| (if side == Side::Buy { r.price } else { -r.price }, r.id))
            .map(|(i, _)| i)
    };
    if limit.is_some() && tif == TimeInForce::Fok {
        let mut scan = book.clone();
        let mut got = 0;
        while got < wh {
            let Some(i) = best(&scan) else { break };
            if scan[i].who == who {
                break;
            }
            got += scan[i].left;
            scan.remove(i);
        }
        if got < wh {
            return (Vec::new(), 0, Some((wh, Cancelled::FillOrKill)));
        }
    }
    let mut trades = Vec::new();
    let mut left = wh;
    while left > 0 {
        let Some(i) = best(book) else { break };
        if book[i].who == who {
            return (trades, 0, Some((left, Cancelled::SelfTrade)));
        }
        let q = left.min(book[i].left);
        let (b, s) = if side == Side::Buy { (id, book[i].id) } else { (book[i].id, id) };
        trades.push((b, s, q, if side == Side::Buy { book[i].price + fee } else { book[i].price }));
        left -= q;
        book[i].left -= q;
        if book[i].left == 0 {
            book.remove(i);
        }
    }
    if left == 0 {
        return (trades, 0, None);
    }
    match (limit, tif) {
        (None, _) => (trades, 0, Some((left, Cancelled::MarketRemainder))),
        (Some(_), TimeInForce::Ioc | TimeInForce::Fok) => (trades, 0, Some((left, Cancelled::ImmediateOrCancel))),
        (Some(price), TimeInForce::Gtc) => {
            book.push(Rest { id, who, side, price, left });
            (trades, left, None)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_book_matches_as_the_reference_does(steps in prop::collection::vec(step(), 1..80), fee in fee()) {
        let mut book = Book::new(with_fee(fee));
        let mut plain: Vec<Rest> = Vec::new();
        let mut ids = Vec::new();
        for (n, s) in steps.iter().enumerate() {
            let id = n as u64 + 1;
            match s {
                Step::Submit { who, side, price, kwh, tif } => {
                    let order = Order {
                        id,
                        participant: party(&format!("p{who}")),
                        product: product().id,
                        side: *side,
                        kind: price.map_or(Kind::Market, |p| Kind::Limit {
                            price: Price::from_micros(p),
                            time_in_force: *tif,
                        }),
                        quantity: Energy::from_kwh(*kwh),
                        placed: "2024-06-03T11:00:00Z".parse().expect("instant"),
                    };
                    let got = book.submit(&order).expect("valid");
                    let (trades, resting, cancelled) =
                        reference(&mut plain, fee, id, *who, *side, *price, kwh * 1000, *tif);
                    let got_trades: Vec<(u64, u64, i64, i64)> =
                        got.trades.iter().map(|t| (t.buy, t.sell, t.quantity.wh(), t.buyer_price.micros())).collect();
                    prop_assert_eq!(got_trades, trades);
                    prop_assert_eq!(got.resting.wh(), resting);
                    prop_assert_eq!(got.cancelled.map(|(e, why)| (e.wh(), why)), cancelled);
                    // No trade outside the incoming order's limit, and the
                    // fee is exactly what the buyer pays above the seller.
                    for t in &got.trades {
                        let within = match (side, price) {
                            (_, None) => true,
                            (Side::Buy, Some(l)) => t.buyer_price.micros() <= *l,
                            (Side::Sell, Some(l)) => t.seller_price.micros() >= *l,
                        };
                        prop_assert!(within, "trade {:?} outside the limit", t);
                        prop_assert_eq!(t.buyer_price.micros() - t.seller_price.micros(), fee);
                        prop_assert_eq!(t.grid_fee.micros(), fee);
                    }
                    ids.push(id);
                }
                Step::Cancel { back } => {
                    let Some(&target) = ids.iter().rev().nth(*back % ids.len().max(1)) else { continue };
                    let got = book.cancel(target).ok().map(|e| e.wh());
                    let want = plain.iter().position(|r| r.id == target).map(|i| plain.remove(i).left);
                    prop_assert_eq!(got, want);
                }
            }
            // The book never crosses (a bid never covers an ask and the
            // fee), and its depth is the reference's.
            if let (Some(bid), Some(ask)) = (book.best(Side::Buy), book.best(Side::Sell)) {
                prop_assert!(bid.micros() < ask.micros() + fee);
            }
            for side in [Side::Buy, Side::Sell] {
                let depth: Vec<(i64, i64)> = book.depth(side, 100).iter().map(|d| (d.price.micros(), d.volume.wh())).collect();
                let mut levels: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
                for r in plain.iter().filter(|r| r.side == side) {
                    *levels.entry(r.price).or_default() += r.left;
                }
                let mut want: Vec<(i64, i64)> = levels.into_iter().collect();
                if side == Side::Buy {
                    want.reverse();
                }
                prop_assert_eq!(depth, want);
            }
        }
    }

    #[test]
    fn an_auction_clears_the_most_volume_within_every_limit(
        raw in prop::collection::vec((any::<bool>(), prop::option::weighted(0.9, 5_i64..25), 1_i64..5_000), 0..40),
        pay_as_bid in any::<bool>(),
        fee in fee(),
    ) {
        let bids: Vec<Bid> = raw
            .iter()
            .enumerate()
            .map(|(i, (buy, cents, wh))| Bid {
                id: i as u64,
                participant: party(&format!("p{}", i % 4)),
                side: if *buy { Side::Buy } else { Side::Sell },
                price: cents.map(|c| Price::from_micros(c * 10_000)),
                quantity: Energy::from_wh(*wh),
            })
            .collect();
        let pricing = if pay_as_bid { Pricing::PayAsBid } else { Pricing::PayAsClear };
        let c = clear(&product().id, &bids, pricing, Price::from_micros(fee)).expect("clears");
        // The order of the ids is no matter (increasing ids skip the sort
        // that looks for a repeated one).
        let backwards: Vec<Bid> = bids.iter().map(|b| Bid { id: (raw.len() - b.id as usize) as u64, ..b.clone() }).collect();
        let again = clear(&product().id, &backwards, pricing, Price::from_micros(fee)).expect("clears");
        prop_assert_eq!((again.price, again.volume), (c.price, c.volume));
        // The greatest volume over every price buyers pay, by a plain scan:
        // a sell is in at its ask plus the fee.
        let at = |p: i64| {
            let d: i64 = bids.iter().filter(|b| b.side == Side::Buy && b.price.is_none_or(|l| l.micros() >= p)).map(|b| b.quantity.wh()).sum();
            let s: i64 = bids.iter().filter(|b| b.side == Side::Sell && b.price.is_none_or(|l| l.micros() + fee <= p)).map(|b| b.quantity.wh()).sum();
            d.min(s)
        };
        let best = (0..=300_000).step_by(5_000).map(at).max().unwrap_or(0);
        let any_limit = bids.iter().any(|b| b.price.is_some());
        prop_assert_eq!(c.volume.wh(), if any_limit { best } else { 0 });
        let side_total = |side| c.fills.iter().filter(|f| f.side == side).map(|f| f.quantity.wh()).sum::<i64>();
        prop_assert_eq!(side_total(Side::Buy), c.volume.wh());
        prop_assert_eq!(side_total(Side::Sell), c.volume.wh());
        prop_assert_eq!(c.trades.iter().map(|t| t.quantity.wh()).sum::<i64>(), c.volume.wh());
        for (b, f) in bids.iter().zip(&c.fills) {
            prop_assert!(f.quantity <= b.quantity);
            if !f.quantity.is_zero() {
                let p = c.price.expect("a price when anything trades");
                // No fill outside its limit: a buyer pays at most its
                // limit, a seller receives at least its ask.
                let within = b.price.is_none_or(|l| if b.side == Side::Buy { l >= f.price } else { l <= f.price });
                prop_assert!(within, "bid {} filled at {} (clearing {})", b.id, f.price, p);
                if !pay_as_bid {
                    let want = if b.side == Side::Buy { p.micros() } else { p.micros() - fee };
                    prop_assert_eq!(f.price.micros(), want);
                }
                let traded: i64 = c.trades.iter().filter(|t| t.buy == b.id || t.sell == b.id).map(|t| t.quantity.wh()).sum();
                prop_assert_eq!(traded, f.quantity.wh());
            }
        }
        prop_assert!(c.surplus() >= rust_decimal::Decimal::ZERO);
        prop_assert_eq!(c.fees, volta_trading::price::amount(c.volume, Price::from_micros(fee)));
        for t in &c.trades {
            prop_assert_eq!(t.grid_fee.micros(), fee);
            prop_assert!(t.buyer_price.micros() - t.seller_price.micros() >= fee);
        }
    }
}
