//! The continuous book, worked by hand.

use volta_contracts::Energy;
use volta_trading::{Book, Cancelled, Kind, Side, TimeInForce, TradingError};

use crate::support::{gtc, kwh, limit, price, product};

#[test]
fn an_incoming_order_takes_the_best_prices_first_then_the_earliest() {
    let mut book = Book::new(product());
    for order in [
        gtc(1, "pv-a", Side::Sell, "0.12", 10),
        gtc(2, "pv-b", Side::Sell, "0.10", 5),
        gtc(3, "pv-c", Side::Sell, "0.10", 5),
        gtc(4, "pv-d", Side::Sell, "0.15", 10),
    ] {
        assert!(book.submit(&order).expect("rests").trades.is_empty());
    }
    // 18 kWh up to 0.12: 5 from order 2 and 5 from 3 at 0.10 (2 came
    // first), then 8 of order 1's 10 at 0.12; nothing rests.
    let done = book.submit(&gtc(5, "shop", Side::Buy, "0.12", 18)).expect("matches");
    let fills: Vec<(u64, i64, String)> =
        done.trades.iter().map(|t| (t.sell, t.quantity.wh() / 1000, t.buyer_price.to_string())).collect();
    assert_eq!(fills, [(2, 5, "0.1".into()), (3, 5, "0.1".into()), (1, 8, "0.12".into())]);
    assert_eq!((done.resting, done.cancelled), (Energy::ZERO, None));
    assert_eq!(book.remaining(1), Some(kwh(2)));
    assert_eq!(book.best(Side::Sell), Some(price("0.12")));
    // A buyer at 0.11 finds nothing at its price: it rests as the best bid.
    let done = book.submit(&gtc(6, "shop", Side::Buy, "0.11", 4)).expect("rests");
    assert!(done.trades.is_empty());
    assert_eq!(done.resting, kwh(4));
    assert_eq!(book.best(Side::Buy), Some(price("0.11")));
    let depth = book.depth(Side::Sell, 5);
    assert_eq!(
        depth.iter().map(|d| (d.price.to_string(), d.volume)).collect::<Vec<_>>(),
        [("0.12".to_owned(), kwh(2)), ("0.15".to_owned(), kwh(10))]
    );
}

#[test]
fn remainders_follow_the_time_in_force() {
    let mut book = Book::new(product());
    book.submit(&gtc(1, "pv", Side::Sell, "0.10", 5)).expect("rests");
    let ioc = book.submit(&limit(2, "shop", Side::Buy, "0.10", 8, TimeInForce::Ioc)).expect("ioc");
    assert_eq!(ioc.trades.len(), 1);
    assert_eq!(ioc.cancelled, Some((kwh(3), Cancelled::ImmediateOrCancel)));
    assert!(book.is_empty());

    book.submit(&gtc(3, "pv", Side::Sell, "0.10", 5)).expect("rests");
    let fok = book.submit(&limit(4, "shop", Side::Buy, "0.10", 6, TimeInForce::Fok)).expect("fok");
    assert!(fok.trades.is_empty(), "6 kWh cannot be filled from 5");
    assert_eq!(fok.cancelled, Some((kwh(6), Cancelled::FillOrKill)));
    assert_eq!(book.remaining(3), Some(kwh(5)), "the book is untouched");
    let fok = book.submit(&limit(5, "shop", Side::Buy, "0.10", 5, TimeInForce::Fok)).expect("fok");
    assert_eq!(fok.trades.len(), 1);

    book.submit(&gtc(6, "pv", Side::Sell, "3.9", 2)).expect("rests");
    let mut market = gtc(7, "shop", Side::Buy, "0", 3);
    market.kind = Kind::Market;
    let done = book.submit(&market).expect("market");
    assert_eq!(done.trades[0].buyer_price, price("3.9"), "a market order takes any price");
    assert_eq!(done.cancelled, Some((kwh(1), Cancelled::MarketRemainder)));
}

#[test]
fn an_order_never_trades_with_its_own_participant() {
    let mut book = Book::new(product());
    book.submit(&gtc(1, "pv", Side::Sell, "0.10", 5)).expect("rests");
    book.submit(&gtc(2, "park", Side::Sell, "0.11", 5)).expect("rests");
    book.submit(&gtc(3, "other", Side::Sell, "0.12", 5)).expect("rests");
    // The park buys: it takes pv's 5, reaches its own ask, and its rest is cancelled.
    let done = book.submit(&gtc(4, "park", Side::Buy, "0.12", 12)).expect("stp");
    assert_eq!(done.trades.len(), 1);
    assert_eq!(done.cancelled, Some((kwh(7), Cancelled::SelfTrade)));
    assert_eq!(book.remaining(2), Some(kwh(5)), "the park's own ask keeps its place");
    // Fill-or-kill counts only what lies before its own order.
    let fok = book.submit(&limit(5, "park", Side::Buy, "0.12", 6, TimeInForce::Fok)).expect("fok");
    assert_eq!(fok.cancelled, Some((kwh(6), Cancelled::FillOrKill)));
}

#[test]
fn cancel_and_reduce_keep_the_book_consistent() {
    let mut book = Book::new(product());
    book.submit(&gtc(1, "a", Side::Buy, "0.10", 5)).expect("rests");
    book.submit(&gtc(2, "b", Side::Buy, "0.10", 5)).expect("rests");
    book.reduce(2, kwh(3)).expect("reduce");
    assert!(book.reduce(2, kwh(3)).is_err(), "not below what remains");
    assert_eq!(book.cancel(1).expect("cancel"), kwh(5));
    assert_eq!(book.cancel(1), Err(TradingError::UnknownOrder { id: 1 }));
    assert_eq!(book.depth(Side::Buy, 1)[0].volume, kwh(3));
    // The cancelled order is skipped; order 2 keeps its place.
    let done = book.submit(&gtc(3, "c", Side::Sell, "0.10", 10)).expect("matches");
    assert_eq!(done.trades.iter().map(|t| (t.buy, t.quantity)).collect::<Vec<_>>(), [(2, kwh(3))]);
    assert_eq!(done.resting, kwh(7));
    assert_eq!(book.submit(&gtc(3, "c", Side::Sell, "0.10", 1)), Err(TradingError::DuplicateOrder { id: 3 }));
}

#[test]
fn bad_orders_are_refused_by_field_and_gate() {
    let mut book = Book::new(product());
    let field = |e: TradingError| match e {
        TradingError::Invalid { field, .. } => field,
        other @ (TradingError::GateClosed { .. }
        | TradingError::UnknownOrder { .. }
        | TradingError::DuplicateOrder { .. }
        | TradingError::Solver(_)) => other.to_string(),
    };
    let error = book.submit(&gtc(1, "a", Side::Buy, "0.10", 0)).expect_err("zero");
    assert_eq!(field(error), "quantity");
    let error = book.submit(&gtc(1, "a", Side::Buy, "4.5", 1)).expect_err("above the cap");
    assert_eq!(field(error), "price");
    let mut late = gtc(1, "a", Side::Buy, "0.10", 1);
    late.placed = "2024-06-03T11:56:00Z".parse().expect("instant");
    assert!(matches!(book.submit(&late), Err(TradingError::GateClosed { state: "closed", .. })));
    let mut other = gtc(1, "a", Side::Buy, "0.10", 1);
    other.product = volta_trading::ProductId::of("2024-06-03T12:15:00Z".parse().expect("instant"), 15);
    assert_eq!(field(book.submit(&other).expect_err("product")), "product");
    assert!(book.is_empty());
}

#[test]
fn a_restored_book_is_the_book_that_was_stored() {
    let mut book = Book::new(product());
    book.submit(&gtc(1, "a", Side::Buy, "0.10", 5)).expect("rests");
    book.submit(&gtc(2, "b", Side::Sell, "0.12", 5)).expect("rests");
    let mut restored = Book::new(product());
    restored.restore(&gtc(1, "a", Side::Buy, "0.10", 5), kwh(5)).expect("bid");
    restored.restore(&gtc(2, "b", Side::Sell, "0.12", 5), kwh(5)).expect("ask");
    assert_eq!(restored.depth(Side::Buy, 9), book.depth(Side::Buy, 9));
    assert_eq!(restored.depth(Side::Sell, 9), book.depth(Side::Sell, 9));
    let crossing = restored.restore(&gtc(3, "c", Side::Buy, "0.13", 1), kwh(1));
    assert!(crossing.is_err(), "a stored book never crosses");
}

#[test]
fn a_grid_fee_lies_between_the_sides_and_keeps_a_narrow_spread_apart() {
    let fee = price("0.03");
    let mut book = Book::new(volta_trading::Product { grid_fee: fee, ..product() });
    book.submit(&gtc(1, "pv", Side::Sell, "0.10", 5)).expect("rests");
    // A bid of 0.12 does not cover the ask and the fee (0.13): both rest.
    let done = book.submit(&gtc(2, "shop", Side::Buy, "0.12", 4)).expect("rests");
    assert!(done.trades.is_empty());
    assert_eq!((book.best(Side::Buy), book.best(Side::Sell)), (Some(price("0.12")), Some(price("0.10"))));
    // A bid of 0.13 covers both: it pays 0.13, the seller receives its 0.10.
    let done = book.submit(&gtc(3, "hall", Side::Buy, "0.13", 2)).expect("matches");
    let t = &done.trades[0];
    assert_eq!((t.buy, t.sell, t.quantity), (3, 1, kwh(2)));
    assert_eq!((t.buyer_price, t.seller_price, t.grid_fee), (price("0.13"), price("0.10"), fee));
    assert_eq!(t.fee_amount(), rust_decimal::Decimal::new(6, 2));
    // An ask coming in takes the best bid, 0.12, and receives 0.09: a sell
    // limit of 0.09 accepts it, one of 0.095 does not.
    let done = book.submit(&gtc(4, "chp", Side::Sell, "0.095", 1)).expect("rests");
    assert!(done.trades.is_empty());
    let done = book.submit(&gtc(5, "pv2", Side::Sell, "0.09", 1)).expect("matches");
    let t = &done.trades[0];
    assert_eq!((t.buy, t.sell), (2, 5));
    assert_eq!((t.buyer_price, t.seller_price), (price("0.12"), price("0.09")));
    // A stored book is rebuilt with the same rule: a bid within the fee of
    // the best ask rests, one that covers it would cross (a corrupt store).
    let mut rebuilt = Book::new(volta_trading::Product { grid_fee: fee, ..product() });
    rebuilt.restore(&gtc(1, "pv", Side::Sell, "0.10", 5), kwh(3)).expect("ask");
    rebuilt.restore(&gtc(2, "shop", Side::Buy, "0.12", 4), kwh(3)).expect("bid within the fee");
    let crossing = rebuilt.restore(&gtc(6, "hall", Side::Buy, "0.13", 1), kwh(1)).expect_err("crosses");
    assert!(matches!(crossing, TradingError::Invalid { .. }), "{crossing:?}");
}
