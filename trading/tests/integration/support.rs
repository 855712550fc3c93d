//! Products, orders and bids for the tests.

use jiff::{SignedDuration, Timestamp};
use volta_contracts::{Energy, PartyId};
use volta_trading::{Bid, Kind, Order, OrderId, Price, Product, ProductId, Side, TimeInForce};

/// 12:00-12:15 UTC on 2024-06-03, gate open from a day before to 5 minutes before.
pub fn product() -> Product {
    let start: Timestamp = "2024-06-03T12:00:00Z".parse().expect("instant");
    Product {
        id: ProductId::of(start, 15),
        delivery_start: start,
        delivery_end: start + SignedDuration::from_mins(15),
        gate_open: start - SignedDuration::from_hours(24),
        gate_close: start - SignedDuration::from_mins(5),
        min_price: price("-0.5"),
        max_price: price("4"),
        grid_fee: Price::ZERO,
    }
}

pub fn price(text: &str) -> Price {
    text.parse().expect("price")
}

pub fn party(name: &str) -> PartyId {
    PartyId::new(name).expect("id")
}

pub fn kwh(k: i64) -> Energy {
    Energy::from_kwh(k)
}

/// A limit order of `who` placed at 11:00.
pub fn limit(id: OrderId, who: &str, side: Side, p: &str, q: i64, tif: TimeInForce) -> Order {
    Order {
        id,
        participant: party(who),
        product: product().id,
        side,
        kind: Kind::Limit { price: price(p), time_in_force: tif },
        quantity: kwh(q),
        placed: "2024-06-03T11:00:00Z".parse().expect("instant"),
    }
}

pub fn gtc(id: OrderId, who: &str, side: Side, p: &str, q: i64) -> Order {
    limit(id, who, side, p, q, TimeInForce::Gtc)
}

pub fn bid(id: OrderId, who: &str, side: Side, p: Option<&str>, q: i64) -> Bid {
    Bid { id, participant: party(who), side, price: p.map(price), quantity: kwh(q) }
}
