//! Conversions between the trading service's messages and the market
//! domain (`volta-trading`): rules, orders, trades and book depth.

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp};
use tonic::Status;
use volta_contracts::{Energy, PartyId};
use volta_trading::book::Depth;
use volta_trading::order::{MAX_CURVE_STEPS, Shape, check_energy};
use volta_trading::price::amount;
use volta_trading::welfare::{self, Block, Line, Network, Step, Welfare};
use volta_trading::{
    AuctionRecord, Bid, BlockDepth, Clearing, Entry, Kind, MarketRules, Matching, NewOrder, OrderId, OrderState, Price,
    Pricing, ProductId, Side, TimeInForce, TradeRecord,
};

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
    let pb::MarketRules {
        time_zone,
        interval_minutes,
        gate_opens_before,
        gate_closes_before,
        min_price,
        max_price,
        matching,
        grid_fee,
        network: network_in,
        day_ahead_gate,
    } = message.ok_or_else(|| status::invalid("rules", "missing".to_owned()))?;
    let rules = MarketRules {
        time_zone,
        interval_minutes: i64::from(interval_minutes),
        gate_opens_before: length("rules.gate_opens_before", gate_opens_before)?
            .ok_or_else(|| status::invalid("rules.gate_opens_before", "missing".to_owned()))?,
        gate_closes_before: length("rules.gate_closes_before", gate_closes_before)?.unwrap_or(SignedDuration::ZERO),
        min_price: price("rules.min_price", &min_price)?,
        max_price: price("rules.max_price", &max_price)?,
        matching: match pb::Matching::try_from(matching) {
            Ok(pb::Matching::Unspecified | pb::Matching::Continuous) => Matching::Continuous,
            Ok(pb::Matching::PayAsClear) => Matching::Call(Pricing::PayAsClear),
            Ok(pb::Matching::PayAsBid) => Matching::Call(Pricing::PayAsBid),
            Ok(pb::Matching::Welfare) => Matching::Welfare,
            Err(_) => return Err(status::invalid("rules.matching", format!("{matching} is not a matching"))),
        },
        grid_fee: if grid_fee.is_empty() { Price::ZERO } else { price("rules.grid_fee", &grid_fee)? },
        network: network_in.map(|n| network(n, "rules.network")).transpose()?,
        day_ahead_gate: if day_ahead_gate.is_empty() {
            None
        } else {
            Some(day_ahead_gate.parse::<jiff::civil::Time>().map_err(|_| {
                status::invalid(
                    "rules.day_ahead_gate",
                    format!("{}; a local time of day, HH:MM", status::shown(&day_ahead_gate)),
                )
            })?)
        },
    };
    rules.check().map_err(|e| status::trading_at(&e, &|field| format!("rules.{}", network_field(field))))?;
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
        matching: match rules.matching {
            Matching::Continuous => pb::Matching::Continuous,
            Matching::Call(Pricing::PayAsClear) => pb::Matching::PayAsClear,
            Matching::Call(Pricing::PayAsBid) => pb::Matching::PayAsBid,
            Matching::Welfare => pb::Matching::Welfare,
        }
        .into(),
        grid_fee: rules.grid_fee.to_string(),
        network: rules.network.as_ref().map(network_message),
        day_ahead_gate: rules
            .day_ahead_gate
            .map(|t| {
                if t.second() == 0 && t.subsec_nanosecond() == 0 {
                    t.strftime("%H:%M").to_string()
                } else {
                    t.to_string()
                }
            })
            .unwrap_or_default(),
    }
}

/// A network from its message, its fields named under `prefix`
/// (`rules.network`); the domain checks the rest
/// ([`Network::check`], its fields named by [`network_field`]).
///
/// # Errors
/// INVALID_ARGUMENT on a line's fee that is not a price.
pub fn network(message: pb::Network, prefix: &str) -> Result<Network, Status> {
    let pb::Network { nodes, lines } = message;
    use volta_trading::network::{MAX_LINES, MAX_NODES};
    for (what, len, max) in [("nodes", nodes.len(), MAX_NODES), ("lines", lines.len(), MAX_LINES)] {
        if len > max {
            return Err(status::invalid(&format!("{prefix}.{what}"), format!("{len} entries; at most {max}")));
        }
    }
    Ok(Network {
        nodes,
        lines: lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let pb::Line { line_id, from_node, to_node, capacity_wh, fee } = l;
                Ok(Line {
                    id: line_id,
                    from: from_node,
                    to: to_node,
                    capacity: Energy::from_wh(capacity_wh),
                    fee: if fee.is_empty() { Price::ZERO } else { price(&format!("{prefix}.lines[{i}].fee"), &fee)? },
                })
            })
            .collect::<Result<_, Status>>()?,
    })
}

/// A network as sent.
#[must_use]
pub fn network_message(network: &Network) -> pb::Network {
    pb::Network {
        nodes: network.nodes.clone(),
        lines: network
            .lines
            .iter()
            .map(|l| pb::Line {
                line_id: l.id.clone(),
                from_node: l.from.clone(),
                to_node: l.to.clone(),
                capacity_wh: l.capacity.wh(),
                fee: l.fee.to_string(),
            })
            .collect(),
    }
}

/// A field of the domain's network (`network.lines[0].capacity`) as the
/// messages name it (`network.lines[0].capacity_wh`).
#[must_use]
pub fn network_field(field: &str) -> String {
    match field.rsplit_once('.') {
        Some((head, last)) if head.starts_with("network.lines[") => {
            let last = match last {
                "id" => "line_id",
                "from" => "from_node",
                "to" => "to_node",
                "capacity" => "capacity_wh",
                other => other,
            };
            format!("{head}.{last}")
        }
        _ => field.to_owned(),
    }
}

/// A market as sent.
#[must_use]
pub fn market_message(id: &str, rules: &MarketRules, created: Timestamp) -> pb::Market {
    pb::Market { market_id: id.to_owned(), rules: Some(rules_message(rules)), created_time: Some(timestamp(created)) }
}

/// A side from its enum value in `field`.
///
/// # Errors
/// INVALID_ARGUMENT on `field` when unset or unknown.
pub fn side(field: &str, value: i32) -> Result<Side, Status> {
    match pb::Side::try_from(value) {
        Ok(pb::Side::Buy) => Ok(Side::Buy),
        Ok(pb::Side::Sell) => Ok(Side::Sell),
        Ok(pb::Side::Unspecified) | Err(_) => Err(status::invalid(field, format!("{value}; SIDE_BUY or SIDE_SELL"))),
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
    /// Its node (a welfare market's orders name one).
    pub node: Option<String>,
    /// A block's intervals or a curve's steps.
    pub shape: Option<Shape>,
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
            node: self.node,
            shape: self.shape,
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
        node,
        block,
        curve,
    } = request;
    if node.len() > volta_trading::network::MAX_NAME {
        return Err(status::invalid(
            "node",
            format!("{}; a node's name has 1 to {} bytes", status::shown(&node), volta_trading::network::MAX_NAME),
        ));
    }
    let participant = if participant_id.is_empty() {
        None
    } else {
        Some(crate::contracts::party_id("participant_id", participant_id)?)
    };
    let shape = shape(block, curve)?;
    let (kind, quantity, delivery_start) = match &shape {
        None => {
            if quantity_wh <= 0 {
                return Err(status::invalid("quantity_wh", format!("{quantity_wh}; a quantity is positive")));
            }
            let kind = if limit_price.is_empty() {
                if tif != 0 {
                    return Err(status::invalid(
                        "time_in_force",
                        "a market order (no limit_price) takes none".to_owned(),
                    ));
                }
                Kind::Market
            } else {
                Kind::Limit { price: price("limit_price", &limit_price)?, time_in_force: time_in_force(tif)? }
            };
            (kind, Energy::from_wh(quantity_wh), self::delivery_start("delivery_start", delivery_start)?)
        }
        Some(shape) => {
            let what = shape.as_str();
            if quantity_wh != 0 {
                return Err(status::invalid(
                    "quantity_wh",
                    format!("{quantity_wh}; a {what} order's quantity is its energy: leave this empty"),
                ));
            }
            if !matches!(time_in_force(tif)?, TimeInForce::Gtc) {
                return Err(status::invalid(
                    "time_in_force",
                    format!("a {what} order rests until its gate closes: TIME_IN_FORCE_GTC or none"),
                ));
            }
            let (limit, start) = match shape {
                Shape::Block(profile) => {
                    if delivery_start.is_some() {
                        return Err(status::invalid(
                            "delivery_start",
                            "a block order's delivery start is its first interval's: leave this empty".to_owned(),
                        ));
                    }
                    if limit_price.is_empty() {
                        return Err(status::invalid(
                            "limit_price",
                            "a block order has one limit price per kWh over all its intervals".to_owned(),
                        ));
                    }
                    (price("limit_price", &limit_price)?, profile.first().map(|(t, _)| *t))
                }
                Shape::Curve(_) => {
                    if !limit_price.is_empty() {
                        return Err(status::invalid(
                            "limit_price",
                            "a curve order's limits are its steps': leave this empty".to_owned(),
                        ));
                    }
                    let willing = shape.limit(side("side", side_value)?);
                    (willing.unwrap_or(Price::ZERO), instant("delivery_start", delivery_start)?)
                }
            };
            let start = start.ok_or_else(|| status::invalid("delivery_start", "missing".to_owned()))?;
            (Kind::Limit { price: limit, time_in_force: TimeInForce::Gtc }, shape.energy(), start)
        }
    };
    Ok(Submission {
        market_id: market_id("market_id", market)?,
        participant,
        client_order_id: client_order_id(client)?,
        delivery_start,
        side: side("side", side_value)?,
        kind,
        quantity,
        node: Some(node).filter(|n| !n.is_empty()),
        shape,
    })
}

/// Energy from `wh` in `field`: positive and at most
/// [`MAX_QUANTITY`](volta_trading::order::MAX_QUANTITY).
///
/// # Errors
/// INVALID_ARGUMENT on the field.
fn energy(field: &str, wh: i64) -> Result<Energy, Status> {
    let e = Energy::from_wh(wh);
    check_energy(field, e).map_err(|error| status::trading_at(&error, &|_| field.to_owned()))?;
    Ok(e)
}

/// A block's intervals or a curve's steps from a submission, each
/// interval's start and each step's price and energy read (the market
/// checks them against its products).
///
/// # Errors
/// INVALID_ARGUMENT naming the field (`block[2].quantity_wh`).
fn shape(block: Vec<pb::BlockInterval>, curve: Vec<pb::CurveStep>) -> Result<Option<Shape>, Status> {
    match (block.is_empty(), curve.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Err(status::invalid("curve", "an order is a block or a curve, not both".to_owned())),
        (false, true) => {
            if block.len() > welfare::MAX_BLOCK_LENGTH {
                return Err(status::invalid(
                    "block",
                    format!("{} intervals; at most {}", block.len(), welfare::MAX_BLOCK_LENGTH),
                ));
            }
            let profile = block
                .into_iter()
                .enumerate()
                .map(|(i, b)| {
                    let start = delivery_start(&format!("block[{i}].delivery_start"), b.delivery_start)?;
                    Ok((start, energy(&format!("block[{i}].quantity_wh"), b.quantity_wh)?))
                })
                .collect::<Result<_, Status>>()?;
            Ok(Some(Shape::Block(profile)))
        }
        (true, false) => {
            if curve.len() > MAX_CURVE_STEPS {
                return Err(status::invalid("curve", format!("{} steps; at most {MAX_CURVE_STEPS}", curve.len())));
            }
            let steps = curve
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let field = format!("curve[{i}].limit_price");
                    if c.limit_price.is_empty() {
                        return Err(status::invalid(&field, "missing: every step has its limit".to_owned()));
                    }
                    Ok((price(&field, &c.limit_price)?, energy(&format!("curve[{i}].quantity_wh"), c.quantity_wh)?))
                })
                .collect::<Result<_, Status>>()?;
            Ok(Some(Shape::Curve(steps)))
        }
    }
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
        node: entry.node.clone().unwrap_or_default(),
        block: match &entry.shape {
            Some(Shape::Block(profile)) => profile
                .iter()
                .map(|(t, e)| pb::BlockInterval { delivery_start: Some(timestamp(*t)), quantity_wh: e.wh() })
                .collect(),
            Some(Shape::Curve(_)) | None => Vec::new(),
        },
        curve: match &entry.shape {
            Some(Shape::Curve(steps)) => {
                steps.iter().map(|(p, e)| pb::CurveStep { limit_price: p.to_string(), quantity_wh: e.wh() }).collect()
            }
            Some(Shape::Block(_)) | None => Vec::new(),
        },
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
        aggressor_side: record.aggressor.map_or(pb::Side::Unspecified, side_message).into(),
        trade_time: Some(timestamp(record.at)),
        seller_price: t.seller_price.to_string(),
        seller_amount: amount(t.quantity, t.seller_price).to_string(),
        grid_fee: t.grid_fee.to_string(),
        grid_fee_amount: t.fee_amount().to_string(),
    }
}

/// A call auction's outcome as sent.
#[must_use]
pub fn auction_message(record: &AuctionRecord) -> pb::AuctionResult {
    pb::AuctionResult {
        delivery_start: Some(timestamp(record.delivery_start)),
        delivery_end: Some(timestamp(record.delivery_end)),
        price: record.price.map(|p| p.to_string()).unwrap_or_default(),
        volume_wh: record.volume.wh(),
        demand_wh: record.demand.wh(),
        supply_wh: record.supply.wh(),
        paid: record.paid.to_string(),
        received: record.received.to_string(),
        orders: i32::try_from(record.orders).unwrap_or(i32::MAX),
        cleared_time: Some(timestamp(record.at)),
        prices: record.network.as_ref().map_or_else(Vec::new, |n| {
            n.prices
                .iter()
                .map(|(node, price)| pb::ClearingPrice {
                    delivery_start: Some(timestamp(record.delivery_start)),
                    node: node.clone(),
                    price: price.to_string(),
                    volume_wh: 0,
                })
                .collect()
        }),
        flows: record.network.as_ref().map_or_else(Vec::new, |n| {
            n.flows
                .iter()
                .map(|f| pb::LineFlow {
                    delivery_start: Some(timestamp(record.delivery_start)),
                    line_id: f.line.clone(),
                    energy_wh: f.energy.wh(),
                    congested: f.congested,
                })
                .collect()
        }),
        welfare: record
            .network
            .as_ref()
            .filter(|n| n.failure.is_none())
            .map(|n| n.welfare.to_string())
            .unwrap_or_default(),
        failure: record.network.as_ref().and_then(|n| n.failure.clone()).unwrap_or_default(),
        blocks: record.network.as_ref().map_or_else(Vec::new, |n| {
            n.blocks
                .iter()
                .map(|b| pb::BlockOutcome {
                    order_id: signed(b.order),
                    accepted: b.accepted,
                    surplus: b.surplus.to_string(),
                    paradoxically_accepted: b.paradoxically_accepted,
                    paradoxically_rejected: b.paradoxically_rejected,
                })
                .collect()
        }),
    }
}

/// A book's depth as sent.
#[must_use]
pub fn book_message(
    delivery_start: Timestamp,
    gate_close: Timestamp,
    (bids, asks): (&[Depth], &[Depth]),
    (bid_blocks, ask_blocks): (&[BlockDepth], &[BlockDepth]),
    last_order: u64,
) -> pb::Book {
    let blocks = |side: &[BlockDepth]| {
        side.iter()
            .map(|b| pb::BlockLevel {
                price: b.price.to_string(),
                quantity_wh: b.volume.wh(),
                block_start: Some(timestamp(b.block_start)),
                intervals: crate::time::count(b.intervals),
            })
            .collect()
    };
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
        bid_blocks: blocks(bid_blocks),
        ask_blocks: blocks(ask_blocks),
    }
}

/// A call auction, read: what to clear and how.
#[derive(Debug, Clone, PartialEq)]
pub enum Auction {
    /// Pay-as-clear or pay-as-bid, product by product (in time order).
    Call {
        /// How accepted orders pay.
        pricing: Pricing,
        /// The grid fee per kWh.
        fee: Price,
        /// Each product's orders, in the order given.
        products: Vec<(Timestamp, ProductId, Vec<Bid>)>,
        /// The order ids, in the order given.
        order: Vec<OrderId>,
    },
    /// Welfare over a network.
    Welfare {
        /// The network.
        network: Network,
        /// The flat grid fee per kWh.
        fee: Price,
        /// The orders.
        book: welfare::Book,
        /// Delivery starts by product.
        starts: HashMap<ProductId, Timestamp>,
    },
}

/// Reads a call auction of at most `max_orders` orders (intervals of
/// blocks counted), checking what the mechanisms need by the request's
/// field names.
///
/// # Errors
/// INVALID_ARGUMENT naming the field; OVER_LIMIT past `max_orders`.
pub fn auction(request: pb::ClearAuctionRequest, max_orders: usize) -> Result<Auction, Status> {
    let pb::ClearAuctionRequest { mechanism, interval_minutes, orders, blocks, network, grid_fee } = request;
    let mechanism = pb::Mechanism::try_from(mechanism).unwrap_or(pb::Mechanism::Unspecified);
    if ![5, 10, 15, 30, 60].contains(&interval_minutes) {
        return Err(status::invalid("interval_minutes", format!("{interval_minutes}; one of 5, 10, 15, 30, 60")));
    }
    let size = orders.len() + blocks.iter().map(|b| b.intervals.len().max(1)).sum::<usize>();
    if size > max_orders {
        return Err(status::over_limit("orders", "orders", "orders of one auction", max_orders));
    }
    if orders.is_empty() && blocks.is_empty() {
        return Err(status::invalid("orders", "no orders".to_owned()));
    }
    let minutes = i64::from(interval_minutes);
    let mut starts: HashMap<ProductId, Timestamp> = HashMap::new();
    let product = |field: &str, t: Option<prost_types::Timestamp>| -> Result<(ProductId, Timestamp), Status> {
        let start = delivery_start(field, t)?;
        if start.as_second().rem_euclid(minutes * 60) != 0 || start.subsec_nanosecond() != 0 {
            return Err(status::invalid(field, format!("{start} is not on a {minutes}-minute grid")));
        }
        Ok((ProductId::of(start, minutes), start))
    };
    let mut ids = HashSet::new();
    let mut id = |field: String, id: i64| -> Result<OrderId, Status> {
        let id = u64::try_from(id)
            .ok()
            .filter(|&i| i > 0)
            .ok_or_else(|| status::invalid(&field, format!("{id}; order ids are positive")))?;
        if !ids.insert(id) {
            return Err(status::invalid(&field, format!("{id} is used twice")));
        }
        Ok(id)
    };
    let party = |field: &str, p: String| crate::contracts::party_id(field, p);
    let fee = if grid_fee.is_empty() { Price::ZERO } else { price("grid_fee", &grid_fee)? };
    volta_trading::price::check_fee(fee).map_err(|e| status::trading(&e))?;
    match mechanism {
        pb::Mechanism::PayAsClear | pb::Mechanism::PayAsBid => {
            if !blocks.is_empty() {
                return Err(status::invalid("blocks", "block orders clear only under MECHANISM_WELFARE".to_owned()));
            }
            if network.is_some() {
                return Err(status::invalid("network", "a call auction clears one zone: no network".to_owned()));
            }
            let mut by_product: std::collections::BTreeMap<(Timestamp, ProductId), Vec<Bid>> =
                std::collections::BTreeMap::new();
            let mut order = Vec::with_capacity(orders.len());
            for (i, o) in orders.into_iter().enumerate() {
                let pb::AuctionOrder {
                    order_id,
                    participant_id,
                    delivery_start,
                    node,
                    side: s,
                    limit_price,
                    quantity_wh,
                } = o;
                let at = |f: &str| format!("orders[{i}].{f}");
                if !node.is_empty() {
                    return Err(status::invalid(&at("node"), "nodes are for MECHANISM_WELFARE".to_owned()));
                }
                let bid = Bid {
                    id: id(at("order_id"), order_id)?,
                    participant: party(&at("participant_id"), participant_id)?,
                    side: side(&at("side"), s)?,
                    price: if limit_price.is_empty() { None } else { Some(price(&at("limit_price"), &limit_price)?) },
                    quantity: energy(&at("quantity_wh"), quantity_wh)?,
                };
                let (product, start) = product(&at("delivery_start"), delivery_start)?;
                order.push(bid.id);
                by_product.entry((start, product)).or_default().push(bid);
            }
            let pricing = if mechanism == pb::Mechanism::PayAsBid { Pricing::PayAsBid } else { Pricing::PayAsClear };
            Ok(Auction::Call {
                pricing,
                fee,
                products: by_product.into_iter().map(|((start, product), bids)| (start, product, bids)).collect(),
                order,
            })
        }
        pb::Mechanism::Welfare => {
            let mut steps = Vec::with_capacity(orders.len());
            for (i, o) in orders.into_iter().enumerate() {
                let pb::AuctionOrder {
                    order_id,
                    participant_id,
                    delivery_start,
                    node,
                    side: s,
                    limit_price,
                    quantity_wh,
                } = o;
                let at = |f: &str| format!("orders[{i}].{f}");
                if limit_price.is_empty() {
                    return Err(status::invalid(
                        &at("limit_price"),
                        "welfare clearing needs every order's limit".into(),
                    ));
                }
                let (product, start) = product(&at("delivery_start"), delivery_start)?;
                starts.insert(product.clone(), start);
                steps.push(Step {
                    id: id(at("order_id"), order_id)?,
                    participant: party(&at("participant_id"), participant_id)?,
                    product,
                    node,
                    side: side(&at("side"), s)?,
                    price: price(&at("limit_price"), &limit_price)?,
                    quantity: energy(&at("quantity_wh"), quantity_wh)?,
                });
            }
            let mut book_blocks = Vec::with_capacity(blocks.len());
            for (i, b) in blocks.into_iter().enumerate() {
                let pb::BlockOrder { order_id, participant_id, node, side: s, limit_price, intervals } = b;
                let at = |f: &str| format!("blocks[{i}].{f}");
                if intervals.is_empty() {
                    return Err(status::invalid(&at("intervals"), "a block has at least one interval".to_owned()));
                }
                let mut profile = Vec::with_capacity(intervals.len());
                for (k, interval) in intervals.into_iter().enumerate() {
                    let pb::BlockInterval { delivery_start, quantity_wh } = interval;
                    let (product, start) =
                        product(&format!("blocks[{i}].intervals[{k}].delivery_start"), delivery_start)?;
                    starts.insert(product.clone(), start);
                    profile.push((product, energy(&format!("blocks[{i}].intervals[{k}].quantity_wh"), quantity_wh)?));
                }
                book_blocks.push(Block {
                    id: id(at("order_id"), order_id)?,
                    participant: party(&at("participant_id"), participant_id)?,
                    node,
                    side: side(&at("side"), s)?,
                    price: price(&at("limit_price"), &limit_price)?,
                    profile,
                });
            }
            let network = match network {
                Some(n) => self::network(n, "network")?,
                None => {
                    let nodes: std::collections::BTreeSet<String> = steps
                        .iter()
                        .map(|s| s.node.clone())
                        .chain(book_blocks.iter().map(|b| b.node.clone()))
                        .collect();
                    Network { nodes: nodes.into_iter().collect(), lines: Vec::new() }
                }
            };
            Ok(Auction::Welfare { network, fee, book: welfare::Book { steps, blocks: book_blocks }, starts })
        }
        pb::Mechanism::Unspecified => Err(status::invalid(
            "mechanism",
            "MECHANISM_PAY_AS_CLEAR, MECHANISM_PAY_AS_BID or MECHANISM_WELFARE".to_owned(),
        )),
    }
}

/// A welfare clearing's refusal, its field named as the request names it
/// (`steps[2]` is `orders[2]`, a block's `profile` its `intervals`).
#[must_use]
pub fn welfare_refused(error: &volta_trading::TradingError) -> Status {
    status::trading_at(error, &|field| {
        if field.starts_with("network.") {
            network_field(field)
        } else {
            field.replace("steps[", "orders[").replace(".profile", ".intervals").replace("].id", "].order_id")
        }
    })
}

/// The outcome of a pay-as-clear or pay-as-bid auction, product by product.
#[must_use]
pub fn call_message(cleared: &[(Timestamp, Clearing)], order: &[OrderId]) -> pb::ClearAuctionResponse {
    let mut fills: HashMap<OrderId, (Energy, Price)> = HashMap::new();
    let (mut paid, mut received, mut fees) =
        (rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO, rust_decimal::Decimal::ZERO);
    let mut prices = Vec::with_capacity(cleared.len());
    for (start, c) in cleared {
        fills.extend(c.fills.iter().map(|f| (f.id, (f.quantity, f.price))));
        paid += c.paid;
        received += c.received;
        fees += c.fees;
        prices.push(pb::ClearingPrice {
            delivery_start: Some(timestamp(*start)),
            node: String::new(),
            price: c.price.map(|p| p.to_string()).unwrap_or_default(),
            volume_wh: c.volume.wh(),
        });
    }
    pb::ClearAuctionResponse {
        prices,
        fills: order
            .iter()
            .map(|id| {
                let (quantity, price) = fills.get(id).copied().unwrap_or((Energy::ZERO, Price::ZERO));
                pb::AuctionFill { order_id: signed(*id), quantity_wh: quantity.wh(), price: price.to_string() }
            })
            .collect(),
        blocks: Vec::new(),
        flows: Vec::new(),
        paid: paid.normalize().to_string(),
        received: received.normalize().to_string(),
        welfare: 0.0,
        grid_fees: fees.normalize().to_string(),
    }
}

/// The outcome of a welfare clearing.
#[must_use]
pub fn welfare_message(
    w: &Welfare,
    book: &welfare::Book,
    starts: &HashMap<ProductId, Timestamp>,
) -> pb::ClearAuctionResponse {
    let start = |p: &ProductId| starts.get(p).copied().map(timestamp);
    let price_of: HashMap<(&ProductId, &str), Price> =
        w.prices.iter().map(|p| ((&p.product, p.node.as_str()), p.price)).collect();
    let accepted: HashMap<OrderId, Energy> = w.steps.iter().copied().collect();
    pb::ClearAuctionResponse {
        prices: w
            .prices
            .iter()
            .map(|p| pb::ClearingPrice {
                delivery_start: start(&p.product),
                node: p.node.clone(),
                price: p.price.to_string(),
                volume_wh: 0,
            })
            .collect(),
        fills: book
            .steps
            .iter()
            .map(|s| pb::AuctionFill {
                order_id: signed(s.id),
                quantity_wh: accepted.get(&s.id).map_or(0, |e| e.wh()),
                price: price_of
                    .get(&(&s.product, s.node.as_str()))
                    .map(|p| volta_trading::order::settled(s.side, *p, w.grid_fee))
                    .map(|p| p.to_string())
                    .unwrap_or_default(),
            })
            .collect(),
        blocks: w
            .blocks
            .iter()
            .map(|b| pb::BlockOutcome {
                order_id: signed(b.id),
                accepted: b.accepted,
                surplus: b.surplus.normalize().to_string(),
                paradoxically_accepted: b.paradoxically_accepted,
                paradoxically_rejected: b.paradoxically_rejected,
            })
            .collect(),
        flows: w
            .flows
            .iter()
            .map(|f| pb::LineFlow {
                delivery_start: start(&f.product),
                line_id: f.line.clone(),
                energy_wh: f.energy.wh(),
                congested: f.congested,
            })
            .collect(),
        paid: w.paid.normalize().to_string(),
        received: w.received.normalize().to_string(),
        welfare: w.welfare,
        grid_fees: w.fees.normalize().to_string(),
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
            node: String::new(),
            block: Vec::new(),
            curve: Vec::new(),
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
            (pb::SubmitOrderRequest { node: "n".repeat(65), ..request() }, "node"),
        ];
        for (request, expected) in cases {
            let status = submission(request).expect_err(expected);
            assert_eq!(field(&status), expected, "{status:?}");
        }
    }

    #[test]
    fn block_and_curve_orders_are_read_whole_and_refused_by_field() {
        let step = |price: &str, wh| pb::CurveStep { limit_price: price.into(), quantity_wh: wh };
        let curve = || pb::SubmitOrderRequest {
            limit_price: String::new(),
            quantity_wh: 0,
            curve: vec![step("0.1", 1_000), step("0.3", 500), step("0.2", 250)],
            ..request()
        };
        let read = submission(curve()).expect("curve");
        assert_eq!(read.kind, Kind::Limit { price: Price::from_micros(300_000), time_in_force: TimeInForce::Gtc });
        assert_eq!(read.quantity, Energy::from_wh(1_750), "a curve's quantity is its steps'");
        let at = |seconds| Some(prost_types::Timestamp { seconds, nanos: 0 });
        let interval = |seconds, wh| pb::BlockInterval { delivery_start: at(seconds), quantity_wh: wh };
        let block = || pb::SubmitOrderRequest {
            delivery_start: None,
            quantity_wh: 0,
            block: vec![interval(1_717_236_000, 1_000), interval(1_717_239_600, 2_000)],
            ..request()
        };
        let read = submission(block()).expect("block");
        assert_eq!((read.delivery_start.as_second(), read.quantity.wh()), (1_717_236_000, 3_000));
        let cases = [
            (pb::SubmitOrderRequest { curve: vec![step("", 1)], ..curve() }, "curve[0].limit_price"),
            (pb::SubmitOrderRequest { curve: vec![step("0.1", 0)], ..curve() }, "curve[0].quantity_wh"),
            (pb::SubmitOrderRequest { curve: vec![step("0.1", 1); 257], ..curve() }, "curve"),
            (pb::SubmitOrderRequest { limit_price: "0.1".into(), ..curve() }, "limit_price"),
            (pb::SubmitOrderRequest { quantity_wh: 1_750, ..curve() }, "quantity_wh"),
            (pb::SubmitOrderRequest { time_in_force: pb::TimeInForce::Ioc.into(), ..curve() }, "time_in_force"),
            (pb::SubmitOrderRequest { curve: curve().curve, ..block() }, "curve"),
            (
                pb::SubmitOrderRequest { block: vec![interval(1, 1), pb::BlockInterval::default()], ..block() },
                "block[1].delivery_start",
            ),
            (pb::SubmitOrderRequest { block: vec![interval(1, i64::MAX)], ..block() }, "block[0].quantity_wh"),
            (pb::SubmitOrderRequest { block: vec![interval(1, 1); 673], ..block() }, "block"),
            (pb::SubmitOrderRequest { limit_price: String::new(), ..block() }, "limit_price"),
            (pb::SubmitOrderRequest { delivery_start: at(1), ..block() }, "delivery_start"),
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
            matching: 0,
            grid_fee: String::new(),
            network: None,
            day_ahead_gate: String::new(),
        };
        let read = rules(Some(message.clone())).expect("rules");
        assert_eq!(read.matching, Matching::Continuous, "unset is continuous");
        assert_eq!(read.grid_fee, Price::ZERO, "unset is no fee");
        let fee = rules(Some(pb::MarketRules { grid_fee: "0.035".into(), ..message.clone() })).expect("fee");
        assert_eq!(fee.grid_fee, "0.035".parse().expect("price"));
        assert_eq!(rules(Some(rules_message(&fee))).expect("again"), fee);
        let bad = rules(Some(pb::MarketRules { grid_fee: "-0.01".into(), ..message.clone() })).expect_err("negative");
        assert_eq!(field(&bad), "rules.grid_fee");
        assert_eq!(rules(Some(rules_message(&read))).expect("again"), read);
        let noon = pb::MarketRules {
            day_ahead_gate: "12:00".into(),
            gate_opens_before: Some(duration(SignedDuration::from_hours(48))),
            ..message.clone()
        };
        let day_ahead = rules(Some(noon.clone())).expect("day ahead");
        assert_eq!(day_ahead.day_ahead_gate, Some(jiff::civil::Time::constant(12, 0, 0, 0)));
        assert_eq!(rules_message(&day_ahead).day_ahead_gate, "12:00");
        assert_eq!(rules(Some(rules_message(&day_ahead))).expect("again"), day_ahead);
        for (gate, opens) in [("noon", 48), ("12:00", 12)] {
            let bad = pb::MarketRules {
                day_ahead_gate: gate.into(),
                gate_opens_before: Some(duration(SignedDuration::from_hours(opens))),
                ..noon.clone()
            };
            let bad = rules(Some(bad)).expect_err(gate);
            assert_eq!(field(&bad), if opens == 48 { "rules.day_ahead_gate" } else { "rules.gate_opens_before" });
        }
        let call =
            rules(Some(pb::MarketRules { matching: pb::Matching::PayAsBid.into(), ..message.clone() })).expect("call");
        assert_eq!(call.matching, Matching::Call(Pricing::PayAsBid));
        assert_eq!(rules(Some(rules_message(&call))).expect("again"), call);
        let bad = rules(Some(pb::MarketRules { matching: 9, ..message.clone() })).expect_err("9");
        assert_eq!(field(&bad), "rules.matching");
        let bad = rules(Some(pb::MarketRules { interval_minutes: 7, ..message.clone() })).expect_err("7");
        assert_eq!(field(&bad), "rules.interval_minutes");
        let bad = rules(Some(pb::MarketRules { max_price: "x".into(), ..message.clone() })).expect_err("price");
        assert_eq!(field(&bad), "rules.max_price");
        // A welfare market's network: its size checked before it is read,
        // then each node and line by field.
        let welfare = |network: pb::Network| pb::MarketRules {
            matching: pb::Matching::Welfare.into(),
            network: Some(network),
            ..message.clone()
        };
        let crowd = pb::Network { nodes: (0..10_001).map(|i| format!("n{i}")).collect(), lines: Vec::new() };
        assert_eq!(field(&rules(Some(welfare(crowd))).expect_err("too many")), "rules.network.nodes");
        let long = pb::Network { nodes: vec!["n".repeat(65)], lines: Vec::new() };
        assert_eq!(field(&rules(Some(welfare(long))).expect_err("too long")), "rules.network.nodes[0]");
        let line = pb::Line {
            line_id: "ab".into(),
            from_node: "a".into(),
            to_node: "b".into(),
            capacity_wh: -1,
            fee: String::new(),
        };
        let bad = pb::Network { nodes: vec!["a".into(), "b".into()], lines: vec![line] };
        assert_eq!(field(&rules(Some(welfare(bad))).expect_err("capacity")), "rules.network.lines[0].capacity_wh");
        let good = pb::Network { nodes: vec!["a".into()], lines: Vec::new() };
        let read = rules(Some(welfare(good))).expect("a welfare market");
        assert_eq!(rules_message(&read).network.expect("network").nodes, ["a"]);
    }
}
