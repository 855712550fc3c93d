//! Conversions between the trading service's messages and the market
//! domain (`volta-trading`): rules, orders, trades and book depth.

use jiff::{SignedDuration, Timestamp};
use tonic::Status;
use volta_contracts::{Energy, PartyId};
use volta_trading::book::Depth;
use volta_trading::price::amount;
use volta_trading::{Entry, Kind, MarketRules, NewOrder, OrderState, Price, Side, TimeInForce, TradeRecord};

use crate::pb::trading as pb;
use crate::status;
use crate::time::{duration, instant, length, timestamp};

/// The longest client order id.
pub const MAX_CLIENT_ORDER_ID_CHARS: usize = 128;

/// A market id from request field `field`: 1 to 64 of `A-Z a-z 0-9 _ - .`.
///
/// # Errors
/// INVALID_ARGUMENT on the field.
pub fn market_id(field: &str, id: String) -> Result<String, Status> {
    if volta_engine::is_valid_id(&id) {
        Ok(id)
    } else {
        Err(status::invalid(
            field,
            format!(
                "{} is not an id (1 to 64 of A-Z a-z 0-9 _ - ., starting with a letter or digit)",
                status::shown(&id)
            ),
        ))
    }
}

/// A price per kWh from decimal text in `field`.
///
/// # Errors
/// INVALID_ARGUMENT on the field: not a decimal, more than six decimals,
/// beyond the price limit.
pub fn price(field: &str, text: &str) -> Result<Price, Status> {
    text.parse::<Price>().map_err(|e| status::trading_at(&e, &|_| field.to_owned()))
}

/// A market's rules from a request.
///
/// # Errors
/// INVALID_ARGUMENT naming the field (`rules.interval_minutes`).
pub fn rules(message: Option<pb::MarketRules>) -> Result<MarketRules, Status> {
    let pb::MarketRules { time_zone, interval_minutes, gate_opens_before, gate_closes_before, min_price, max_price } =
        message.ok_or_else(|| status::invalid("rules", "missing".to_owned()))?;
    let rules = MarketRules {
        time_zone,
        interval_minutes: i64::from(interval_minutes),
        gate_opens_before: length("rules.gate_opens_before", gate_opens_before)?
            .ok_or_else(|| status::invalid("rules.gate_opens_before", "missing".to_owned()))?,
        gate_closes_before: length("rules.gate_closes_before", gate_closes_before)?.unwrap_or(SignedDuration::ZERO),
        min_price: price("rules.min_price", &min_price)?,
        max_price: price("rules.max_price", &max_price)?,
    };
    rules.check().map_err(|e| status::trading_at(&e, &|field| format!("rules.{field}")))?;
    Ok(rules)
}

/// A market's rules as sent.
#[must_use]
pub fn rules_message(rules: &MarketRules) -> pb::MarketRules {
    pb::MarketRules {
        time_zone: rules.time_zone.clone(),
        interval_minutes: i32::try_from(rules.interval_minutes).unwrap_or(i32::MAX),
        gate_opens_before: Some(duration(rules.gate_opens_before)),
        gate_closes_before: Some(duration(rules.gate_closes_before)),
        min_price: rules.min_price.to_string(),
        max_price: rules.max_price.to_string(),
    }
}

/// A market as sent.
#[must_use]
pub fn market_message(id: &str, rules: &MarketRules, created: Timestamp) -> pb::Market {
    pb::Market { market_id: id.to_owned(), rules: Some(rules_message(rules)), created_time: Some(timestamp(created)) }
}

/// A side from its enum value.
///
/// # Errors
/// INVALID_ARGUMENT on `side` when unset or unknown.
pub fn side(value: i32) -> Result<Side, Status> {
    match pb::Side::try_from(value) {
        Ok(pb::Side::Buy) => Ok(Side::Buy),
        Ok(pb::Side::Sell) => Ok(Side::Sell),
        Ok(pb::Side::Unspecified) | Err(_) => Err(status::invalid("side", format!("{value}; SIDE_BUY or SIDE_SELL"))),
    }
}

/// A side as sent.
#[must_use]
pub fn side_message(side: Side) -> pb::Side {
    match side {
        Side::Buy => pb::Side::Buy,
        Side::Sell => pb::Side::Sell,
    }
}

fn time_in_force(value: i32) -> Result<TimeInForce, Status> {
    match pb::TimeInForce::try_from(value) {
        Ok(pb::TimeInForce::Unspecified | pb::TimeInForce::Gtc) => Ok(TimeInForce::Gtc),
        Ok(pb::TimeInForce::Ioc) => Ok(TimeInForce::Ioc),
        Ok(pb::TimeInForce::Fok) => Ok(TimeInForce::Fok),
        Err(_) => Err(status::invalid("time_in_force", format!("{value} is not a time in force"))),
    }
}

const fn time_in_force_message(tif: TimeInForce) -> pb::TimeInForce {
    match tif {
        TimeInForce::Gtc => pb::TimeInForce::Gtc,
        TimeInForce::Ioc => pb::TimeInForce::Ioc,
        TimeInForce::Fok => pb::TimeInForce::Fok,
    }
}

/// A client order id: 1 to [`MAX_CLIENT_ORDER_ID_CHARS`] printable characters.
///
/// # Errors
/// INVALID_ARGUMENT on `client_order_id`.
pub fn client_order_id(id: String) -> Result<String, Status> {
    if id.is_empty() || id.chars().count() > MAX_CLIENT_ORDER_ID_CHARS || id.chars().any(char::is_control) {
        return Err(status::invalid(
            "client_order_id",
            format!("{}; 1 to {MAX_CLIENT_ORDER_ID_CHARS} printable characters", status::shown(&id)),
        ));
    }
    Ok(id)
}

/// A submission, read: the market, the participant it names (if any), and
/// the order for whichever participant the server settles on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// The market.
    pub market_id: String,
    /// The participant the request names; `None`: the caller.
    pub participant: Option<PartyId>,
    /// The caller's id for the order.
    pub client_order_id: String,
    /// The product's delivery start.
    pub delivery_start: Timestamp,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub kind: Kind,
    /// Energy, Wh.
    pub quantity: Energy,
}

impl Submission {
    /// The order, placed by `participant`.
    #[must_use]
    pub fn order_for(self, participant: PartyId) -> NewOrder {
        NewOrder {
            client_order_id: self.client_order_id,
            participant,
            delivery_start: self.delivery_start,
            side: self.side,
            kind: self.kind,
            quantity: self.quantity,
        }
    }
}

/// A submission from its request (the product's grid, the gate and the
/// price bounds are the market's to check).
///
/// # Errors
/// INVALID_ARGUMENT naming the field.
pub fn submission(request: pb::SubmitOrderRequest) -> Result<Submission, Status> {
    let pb::SubmitOrderRequest {
        market_id: market,
        client_order_id: client,
        participant_id,
        delivery_start,
        side: side_value,
        quantity_wh,
        limit_price,
        time_in_force: tif,
    } = request;
    let participant = if participant_id.is_empty() {
        None
    } else {
        Some(crate::contracts::party_id("participant_id", participant_id)?)
    };
    if quantity_wh <= 0 {
        return Err(status::invalid("quantity_wh", format!("{quantity_wh}; a quantity is positive")));
    }
    let kind = if limit_price.is_empty() {
        if tif != 0 {
            return Err(status::invalid("time_in_force", "a market order (no limit_price) takes none".to_owned()));
        }
        Kind::Market
    } else {
        Kind::Limit { price: price("limit_price", &limit_price)?, time_in_force: time_in_force(tif)? }
    };
    Ok(Submission {
        market_id: market_id("market_id", market)?,
        participant,
        client_order_id: client_order_id(client)?,
        delivery_start: instant("delivery_start", delivery_start)?
            .ok_or_else(|| status::invalid("delivery_start", "missing".to_owned()))?,
        side: side(side_value)?,
        kind,
        quantity: Energy::from_wh(quantity_wh),
    })
}

/// A required delivery start from `field`.
///
/// # Errors
/// INVALID_ARGUMENT when missing or not a timestamp.
pub fn delivery_start(field: &str, t: Option<prost_types::Timestamp>) -> Result<Timestamp, Status> {
    instant(field, t)?.ok_or_else(|| status::invalid(field, "missing".to_owned()))
}

/// An order id from `order_id`.
///
/// # Errors
/// INVALID_ARGUMENT when not positive.
pub fn order_id(id: i64) -> Result<u64, Status> {
    u64::try_from(id)
        .ok()
        .filter(|&id| id > 0)
        .ok_or_else(|| status::invalid("order_id", format!("{id}; order ids start at 1")))
}

const fn state_message(state: OrderState) -> pb::OrderState {
    match state {
        OrderState::Resting => pb::OrderState::Resting,
        OrderState::Filled => pb::OrderState::Filled,
        OrderState::Cancelled => pb::OrderState::Cancelled,
        OrderState::Expired => pb::OrderState::Expired,
    }
}

/// An id as an `int64` field.
fn signed(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// An order as sent.
#[must_use]
pub fn order_message(entry: &Entry) -> pb::Order {
    let (limit, tif) = match entry.order.kind {
        Kind::Limit { price, time_in_force } => (price.to_string(), time_in_force_message(time_in_force)),
        Kind::Market => (String::new(), pb::TimeInForce::Unspecified),
    };
    pb::Order {
        order_id: signed(entry.order.id),
        client_order_id: entry.client_order_id.clone(),
        participant_id: entry.order.participant.to_string(),
        delivery_start: Some(timestamp(entry.delivery_start)),
        delivery_end: Some(timestamp(entry.delivery_end)),
        side: side_message(entry.order.side).into(),
        limit_price: limit,
        time_in_force: tif.into(),
        quantity_wh: entry.order.quantity.wh(),
        filled_wh: entry.filled.wh(),
        resting_wh: entry.resting().wh(),
        state: state_message(entry.state).into(),
        cancel_reason: entry.cancel_reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
        placed_time: Some(timestamp(entry.order.placed)),
    }
}

/// A trade as sent; a counterparty is shown only where `shown` says so.
#[must_use]
pub fn trade_message(record: &TradeRecord, shown: &dyn Fn(&PartyId) -> bool) -> pb::Trade {
    let t = &record.trade;
    let party = |p: &PartyId| if shown(p) { p.to_string() } else { String::new() };
    pb::Trade {
        trade_id: signed(record.id),
        delivery_start: Some(timestamp(record.delivery_start)),
        quantity_wh: t.quantity.wh(),
        price: t.buyer_price.to_string(),
        amount: amount(t.quantity, t.buyer_price).to_string(),
        buy_order_id: signed(t.buy),
        sell_order_id: signed(t.sell),
        buyer_id: party(&t.buyer),
        seller_id: party(&t.seller),
        aggressor_side: side_message(record.aggressor).into(),
        trade_time: Some(timestamp(record.at)),
    }
}

/// A book's depth as sent.
#[must_use]
pub fn book_message(
    delivery_start: Timestamp,
    gate_close: Timestamp,
    bids: &[Depth],
    asks: &[Depth],
    last_order: u64,
) -> pb::Book {
    let levels = |side: &[Depth]| {
        side.iter()
            .map(|d| pb::Level {
                price: d.price.to_string(),
                quantity_wh: d.volume.wh(),
                orders: crate::time::count(d.orders),
            })
            .collect()
    };
    pb::Book {
        delivery_start: Some(timestamp(delivery_start)),
        gate_close_time: Some(timestamp(gate_close)),
        bids: levels(bids),
        asks: levels(asks),
        last_order_id: signed(last_order),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> pb::SubmitOrderRequest {
        pb::SubmitOrderRequest {
            market_id: "park".into(),
            client_order_id: "c-1".into(),
            participant_id: String::new(),
            delivery_start: Some(prost_types::Timestamp { seconds: 1_717_236_000, nanos: 0 }),
            side: pb::Side::Buy.into(),
            quantity_wh: 1_500,
            limit_price: "0.125".into(),
            time_in_force: 0,
        }
    }

    fn field(status: &Status) -> String {
        use tonic_types::StatusExt as _;
        status.get_details_bad_request().expect("bad request").field_violations[0].field.clone()
    }

    #[test]
    fn submissions_are_read_whole_and_refused_by_field() {
        let s = submission(request()).expect("valid");
        assert_eq!(s.kind, Kind::Limit { price: Price::from_micros(125_000), time_in_force: TimeInForce::Gtc });
        let market = submission(pb::SubmitOrderRequest { limit_price: String::new(), ..request() }).expect("market");
        assert_eq!(market.kind, Kind::Market);
        let cases = [
            (pb::SubmitOrderRequest { quantity_wh: 0, ..request() }, "quantity_wh"),
            (pb::SubmitOrderRequest { limit_price: "0.1234567".into(), ..request() }, "limit_price"),
            (pb::SubmitOrderRequest { side: 0, ..request() }, "side"),
            (pb::SubmitOrderRequest { client_order_id: String::new(), ..request() }, "client_order_id"),
            (pb::SubmitOrderRequest { client_order_id: "x".repeat(129), ..request() }, "client_order_id"),
            (pb::SubmitOrderRequest { market_id: "../etc".into(), ..request() }, "market_id"),
            (pb::SubmitOrderRequest { participant_id: "a b".into(), ..request() }, "participant_id"),
            (pb::SubmitOrderRequest { delivery_start: None, ..request() }, "delivery_start"),
            (pb::SubmitOrderRequest { time_in_force: 9, ..request() }, "time_in_force"),
            (pb::SubmitOrderRequest { limit_price: String::new(), time_in_force: 2, ..request() }, "time_in_force"),
        ];
        for (request, expected) in cases {
            let status = submission(request).expect_err(expected);
            assert_eq!(field(&status), expected, "{status:?}");
        }
    }

    #[test]
    fn rules_round_trip_and_are_refused_by_field() {
        let message = pb::MarketRules {
            time_zone: "Europe/Berlin".into(),
            interval_minutes: 15,
            gate_opens_before: Some(duration(SignedDuration::from_hours(24))),
            gate_closes_before: None,
            min_price: "-0.5".into(),
            max_price: "4".into(),
        };
        let read = rules(Some(message.clone())).expect("rules");
        assert_eq!(rules(Some(rules_message(&read))).expect("again"), read);
        let bad = rules(Some(pb::MarketRules { interval_minutes: 7, ..message.clone() })).expect_err("7");
        assert_eq!(field(&bad), "rules.interval_minutes");
        let bad = rules(Some(pb::MarketRules { max_price: "x".into(), ..message })).expect_err("price");
        assert_eq!(field(&bad), "rules.max_price");
    }
}
