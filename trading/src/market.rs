//! A market: the books of its products and the life of every order in
//! them, as a service runs it.
//!
//! [`Book`] matches continuously and [`crate::auction`] clears a call; a
//! [`Market`] adds what a market service needs around them: products
//! looked up on the market's grid, order ids and trade ids handed out in
//! sequence, the record of every order ([`Entry`]: quantity, what traded,
//! its state and why it was cancelled), the resting orders by id (so that a
//! cancel names only the order), what happens when a product's gate closes,
//! and a rebuild from stored records after a restart.
//!
//! The market's [`Matching`] decides what a product's gate closure does. In
//! a continuous market orders trade as they arrive and whatever still rests
//! at gate closure expires. In a call market an order only rests (a limit
//! order good till the gate closes, or a market order) and nothing trades
//! until the gate closes; then the product clears at once under the
//! market's pricing ([`AuctionRecord`]), the accepted orders are filled,
//! and what was not accepted expires.
//!
//! Every call returns what it changed ([`Changes`]), which is what a store
//! must write before the caller is told; if writing fails, the market is
//! rebuilt from the store, so memory never runs ahead of what was kept.

use std::collections::hash_map::Entry as Slot;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use volta_contracts::{Energy, PartyId};

use crate::auction::{self, Bid};
use crate::book::{Book, Cancelled, Depth};
use crate::error::TradingError;
use crate::network::{Network, NodeId};
use crate::order::{Kind, MAX_CURVE_STEPS, Order, OrderId, Shape, Side, TimeInForce, Trade, check_energy};
use crate::price::Price;
use crate::price::Pricing;
use crate::product::{MarketRules, Matching, Product, ProductId};
use crate::welfare;

/// Seconds the solver may take over one product of a welfare market.
pub const WELFARE_TIME_LIMIT_S: f64 = 60.0;

/// A trade's number, unique in its market, in the order trades happened.
pub type TradeId = u64;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// In the book with energy left.
    Resting,
    /// Traded in full.
    Filled,
    /// Cancelled (see its [`CancelReason`]).
    Cancelled,
    /// Still resting when its product's gate closed.
    Expired,
}

impl OrderState {
    /// The state as stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Resting => "resting",
            Self::Filled => "filled",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }

    /// The state of [`Self::as_str`].
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Resting, Self::Filled, Self::Cancelled, Self::Expired].into_iter().find(|s| s.as_str() == text)
    }
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// Its participant (or the market operator) cancelled it.
    Participant,
    /// A book rule cancelled its remainder.
    Rule(Cancelled),
}

impl CancelReason {
    /// The reason as stored and sent.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Participant => "participant",
            Self::Rule(Cancelled::ImmediateOrCancel) => "immediate_or_cancel",
            Self::Rule(Cancelled::FillOrKill) => "fill_or_kill",
            Self::Rule(Cancelled::MarketRemainder) => "market_remainder",
            Self::Rule(Cancelled::SelfTrade) => "self_trade",
        }
    }

    /// The reason of [`Self::as_str`].
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Participant,
            Self::Rule(Cancelled::ImmediateOrCancel),
            Self::Rule(Cancelled::FillOrKill),
            Self::Rule(Cancelled::MarketRemainder),
            Self::Rule(Cancelled::SelfTrade),
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// The record of an order: what was asked and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The order (its quantity is the quantity asked for, after any
    /// reduction).
    pub order: Order,
    /// The caller's id for it, unique per participant in the market.
    pub client_order_id: String,
    /// Its product's delivery start (the book it went to).
    pub delivery_start: Timestamp,
    /// Its product's delivery end.
    pub delivery_end: Timestamp,
    /// Energy traded, Wh.
    pub filled: Energy,
    /// Where it is.
    pub state: OrderState,
    /// Why it was cancelled, if it was.
    pub cancel_reason: Option<CancelReason>,
    /// Its node, in a welfare market; none elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<NodeId>,
    /// A block's intervals or a curve's steps; none for a simple order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
}

impl Entry {
    /// The delivery starts of the books it shows in: a block's every
    /// interval, any other order's product.
    #[must_use]
    pub fn books(&self) -> Vec<Timestamp> {
        match &self.shape {
            Some(Shape::Block(intervals)) => intervals.iter().map(|(at, _)| *at).collect(),
            Some(Shape::Curve(_)) | None => vec![self.delivery_start],
        }
    }

    /// Energy still resting, Wh.
    #[must_use]
    pub fn resting(&self) -> Energy {
        match self.state {
            OrderState::Resting => self.order.quantity - self.filled,
            OrderState::Filled | OrderState::Cancelled | OrderState::Expired => Energy::ZERO,
        }
    }
}

/// A trade with its number, its delivery and who took whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TradeRecord {
    /// Its number.
    pub id: TradeId,
    /// The trade.
    pub trade: Trade,
    /// Its product's delivery start.
    pub delivery_start: Timestamp,
    /// Its product's delivery end.
    pub delivery_end: Timestamp,
    /// The side of the incoming order that took the resting one; none for
    /// a trade of a call auction.
    pub aggressor: Option<Side>,
    /// When it happened.
    pub at: Timestamp,
}

/// The outcome of a product's call auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuctionRecord {
    /// Its product's delivery start.
    pub delivery_start: Timestamp,
    /// Its product's delivery end.
    pub delivery_end: Timestamp,
    /// The clearing price; none when nothing cleared.
    pub price: Option<Price>,
    /// The energy traded, Wh.
    pub volume: Energy,
    /// Demand at the clearing price, Wh.
    pub demand: Energy,
    /// Supply at the clearing price, Wh.
    pub supply: Energy,
    /// What buyers pay, exact.
    pub paid: Decimal,
    /// What sellers receive, exact (below what buyers pay only under
    /// pay-as-bid).
    pub received: Decimal,
    /// The orders collected.
    pub orders: usize,
    /// When it cleared.
    pub at: Timestamp,
    /// What the clearing over the network found, in a welfare market;
    /// none elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkClearing>,
}

/// What a welfare market's clearing of a product found over its network.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NetworkClearing {
    /// The price at each node, what a buyer there pays per kWh (a seller
    /// receives it less the grid fee), in the network's node order.
    pub prices: Vec<(NodeId, Price)>,
    /// Energy on each line, in the network's line order.
    pub flows: Vec<LineFlow>,
    /// The welfare reached (what buyers would pay less what sellers ask,
    /// less the grid and line fees), rounded to the millionth.
    pub welfare: Decimal,
    /// Why nothing cleared, when the solver failed; none otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// What became of the block orders that rested in this product (their
    /// first interval), in order id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockOutcome>,
}

/// What a block order got in a welfare clearing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockOutcome {
    /// The block.
    pub order: OrderId,
    /// Accepted (whole) or not (at all).
    pub accepted: bool,
    /// What it gains at the nodal prices over its limit, over all its
    /// energy (a seller: prices less its ask; a buyer: its bid less the
    /// prices); negative where it is accepted at a loss.
    pub surplus: Decimal,
    /// Accepted though the prices do not pay it: its uplift is `-surplus`.
    pub paradoxically_accepted: bool,
    /// Rejected though the prices would have paid it.
    pub paradoxically_rejected: bool,
}

/// Energy on a line in a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineFlow {
    /// The line.
    pub line: String,
    /// Wh, positive from the line's `from` node to its `to` node.
    pub energy: Energy,
    /// Whether it is at its capacity.
    pub congested: bool,
}

/// What a call changed: orders as they are now (new or changed), new
/// trades in the order they happened, and the call auctions that cleared.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Orders as they are now.
    pub orders: Vec<Entry>,
    /// New trades.
    pub trades: Vec<TradeRecord>,
    /// Call auctions cleared.
    pub auctions: Vec<AuctionRecord>,
}

impl Changes {
    /// Whether nothing changed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty() && self.trades.is_empty() && self.auctions.is_empty()
    }
}

/// Where a product's orders rest.
#[derive(Debug, Clone)]
enum Venue {
    /// A continuous book.
    Book(Book),
    /// A call auction's collected orders.
    Call { product: Product, orders: BTreeSet<OrderId> },
}

impl Venue {
    fn new(product: Product, matching: Matching) -> Self {
        match matching {
            Matching::Continuous => Self::Book(Book::new(product)),
            Matching::Call(_) | Matching::Welfare => Self::Call { product, orders: BTreeSet::new() },
        }
    }

    fn product(&self) -> &Product {
        match self {
            Self::Book(book) => book.product(),
            Self::Call { product, .. } => product,
        }
    }
}

/// An order as a participant submits it, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    /// The caller's id for it.
    pub client_order_id: String,
    /// Who places it.
    pub participant: PartyId,
    /// Its product's delivery start.
    pub delivery_start: Timestamp,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub kind: Kind,
    /// Energy, Wh.
    pub quantity: Energy,
    /// Its node: one of the network's in a welfare market, none elsewhere.
    pub node: Option<NodeId>,
    /// A block or a curve (its quantity is then the shape's energy, and a
    /// block's delivery start its first interval's); none for a simple
    /// order.
    pub shape: Option<Shape>,
}

/// `trade` of `product`, numbered after `last` (which it advances).
fn numbered(
    last: &mut TradeId,
    trade: Trade,
    product: &Product,
    aggressor: Option<Side>,
    now: Timestamp,
) -> TradeRecord {
    *last += 1;
    TradeRecord {
        id: *last,
        trade,
        delivery_start: product.delivery_start,
        delivery_end: product.delivery_end,
        aggressor,
        at: now,
    }
}

/// A market, continuous or a call auction per product.
#[derive(Debug, Clone)]
pub struct Market {
    rules: MarketRules,
    zone: TimeZone,
    /// Books by delivery start, made at a product's first order.
    books: BTreeMap<Timestamp, Venue>,
    /// Resting orders by id.
    open: HashMap<OrderId, Entry>,
    /// Resting orders per participant.
    counts: HashMap<PartyId, usize>,
    /// Resting block orders by the product they rest in (their first
    /// interval): a book finds the blocks it shows without reading every
    /// other order under its gate.
    blocks: BTreeSet<(Timestamp, OrderId)>,
    last_order: OrderId,
    last_trade: TradeId,
}

impl Market {
    /// An empty market under `rules`, whose last order and trade ids are
    /// `last_order` and `last_trade` (0 for a new market).
    ///
    /// # Errors
    /// Invalid rules.
    pub fn new(rules: MarketRules, last_order: OrderId, last_trade: TradeId) -> Result<Self, TradingError> {
        let zone = rules.check()?;
        Ok(Self {
            rules,
            zone,
            books: BTreeMap::new(),
            open: HashMap::new(),
            counts: HashMap::new(),
            blocks: BTreeSet::new(),
            last_order,
            last_trade,
        })
    }

    /// The rules.
    #[must_use]
    pub fn rules(&self) -> &MarketRules {
        &self.rules
    }

    /// The id of the last order accepted.
    #[must_use]
    pub fn last_order(&self) -> OrderId {
        self.last_order
    }

    /// Resting orders, in all books.
    #[must_use]
    pub fn resting(&self) -> usize {
        self.open.len()
    }

    /// A resting order.
    #[must_use]
    pub fn open(&self, id: OrderId) -> Option<&Entry> {
        self.open.get(&id)
    }

    /// Resting orders of `participant`.
    #[must_use]
    pub fn resting_of(&self, participant: &PartyId) -> usize {
        self.counts.get(participant).copied().unwrap_or(0)
    }

    fn rest(&mut self, entry: Entry) {
        *self.counts.entry(entry.order.participant.clone()).or_default() += 1;
        if matches!(entry.shape, Some(Shape::Block(_))) {
            self.blocks.insert((entry.delivery_start, entry.order.id));
        }
        self.open.insert(entry.order.id, entry);
    }

    fn unrest(&mut self, id: OrderId) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if matches!(entry.shape, Some(Shape::Block(_))) {
            self.blocks.remove(&(entry.delivery_start, id));
        }
        if let Some(count) = self.counts.get_mut(&entry.order.participant) {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&entry.order.participant);
            }
        }
        Some(entry)
    }

    /// The product delivering from `start`.
    ///
    /// # Errors
    /// `delivery_start` when `start` is not the start of one of the
    /// market's delivery intervals.
    pub fn product(&self, start: Timestamp) -> Result<Product, TradingError> {
        if let Some(venue) = self.books.get(&start) {
            return Ok(venue.product().clone());
        }
        let day = self.zone.to_datetime(start).date();
        // The local day of an interval's start holds it; the day before is
        // asked too, for an interval that starts in the last hour of a day
        // whose clocks go back (its local date is the same, but be sure).
        for day in [day, day.yesterday().unwrap_or(day)] {
            if let Some(product) = self.rules.products(day)?.into_iter().find(|p| p.delivery_start == start) {
                return Ok(product);
            }
        }
        Err(TradingError::invalid(
            "delivery_start",
            format!(
                "{start} is not the start of a {}-minute delivery interval of the market (days in {})",
                self.rules.interval_minutes, self.rules.time_zone
            ),
        ))
    }

    /// Submits `new` at `now`: matches it, rests what its kind lets rest,
    /// and returns it with every order and trade it changed (it first).
    ///
    /// # Errors
    /// A product off the grid, a gate that is not open, an invalid order;
    /// the market is unchanged.
    pub fn submit(&mut self, new: NewOrder, now: Timestamp) -> Result<Changes, TradingError> {
        let product = self.product(new.delivery_start)?;
        self.check_node(new.node.as_deref())?;
        let order = Order {
            id: self.last_order + 1,
            participant: new.participant,
            product: product.id.clone(),
            side: new.side,
            kind: new.kind,
            quantity: new.quantity,
            placed: now,
        };
        order.check(&product)?;
        let delivery_end = match &new.shape {
            Some(shape) => self.check_shape(shape, &order, &product)?,
            None => product.delivery_end,
        };
        let matching = self.rules.matching;
        let venue = self.books.entry(product.delivery_start).or_insert_with(|| Venue::new(product.clone(), matching));
        let book = match venue {
            Venue::Book(book) => book,
            Venue::Call { orders, .. } => {
                if let Kind::Limit { time_in_force: tif @ (TimeInForce::Ioc | TimeInForce::Fok), .. } = order.kind {
                    return Err(TradingError::invalid(
                        "time_in_force",
                        format!(
                            "{tif:?} cannot be met in a call auction, where nothing trades before the gate closes; \
                             send a good-till-cancelled limit order or a market order"
                        ),
                    ));
                }
                orders.insert(order.id);
                self.last_order = order.id;
                let entry = Entry {
                    order,
                    client_order_id: new.client_order_id,
                    delivery_start: product.delivery_start,
                    delivery_end,
                    filled: Energy::ZERO,
                    state: OrderState::Resting,
                    cancel_reason: None,
                    node: new.node,
                    shape: new.shape,
                };
                self.rest(entry.clone());
                return Ok(Changes { orders: vec![entry], ..Changes::default() });
            }
        };
        let execution = book.submit(&order)?;
        self.last_order = order.id;
        let mut changes = Changes::default();
        let mut filled = Energy::ZERO;
        for trade in execution.trades {
            filled += trade.quantity;
            let maker = match order.side {
                Side::Buy => trade.sell,
                Side::Sell => trade.buy,
            };
            if let Some(entry) = self.open.get_mut(&maker) {
                entry.filled += trade.quantity;
                if book.remaining(maker).is_none() {
                    entry.state = OrderState::Filled;
                }
            }
            changes.trades.push(numbered(&mut self.last_trade, trade, &product, Some(order.side), now));
        }
        let state = match execution.cancelled {
            Some(_) => OrderState::Cancelled,
            None if execution.resting.is_zero() => OrderState::Filled,
            None => OrderState::Resting,
        };
        let entry = Entry {
            order,
            client_order_id: new.client_order_id,
            delivery_start: product.delivery_start,
            delivery_end: product.delivery_end,
            filled,
            state,
            cancel_reason: execution.cancelled.map(|(_, why)| CancelReason::Rule(why)),
            node: None,
            shape: None,
        };
        changes.orders.push(entry.clone());
        if state == OrderState::Resting {
            self.rest(entry);
        }
        // The makers, as they are now; the filled ones leave the index.
        let mut makers: Vec<OrderId> = changes
            .trades
            .iter()
            .map(|t| match t.aggressor {
                Some(Side::Buy) => t.trade.sell,
                Some(Side::Sell) | None => t.trade.buy,
            })
            .collect();
        makers.dedup();
        for maker in makers {
            let Some(entry) = self.open.get(&maker) else { continue };
            changes.orders.push(entry.clone());
            if entry.state == OrderState::Filled {
                self.unrest(maker);
            }
        }
        Ok(changes)
    }

    /// Refuses a node a market does not have: a welfare market's order
    /// names one of its network's nodes, another market's names none.
    fn check_node(&self, node: Option<&str>) -> Result<(), TradingError> {
        match (&self.rules.network, node) {
            (Some(network), Some(node)) if network.has(node) => Ok(()),
            (Some(network), Some(node)) => Err(TradingError::invalid(
                "node",
                format!("{node:?} is not a node of the market's network ({})", network.nodes.join(", ")),
            )),
            (Some(network), None) => Err(TradingError::invalid(
                "node",
                format!("a welfare market places each order at a node: one of {}", network.nodes.join(", ")),
            )),
            (None, Some(node)) => Err(TradingError::invalid(
                "node",
                format!(
                    "{node:?}; only a welfare market places orders at nodes, and this one is {}",
                    self.rules.matching.as_str()
                ),
            )),
            (None, None) => Ok(()),
        }
    }

    /// Refuses a block or a curve the market cannot clear, and returns the
    /// order's delivery end (a block's last interval's).
    fn check_shape(&self, shape: &Shape, order: &Order, product: &Product) -> Result<Timestamp, TradingError> {
        let end = match shape {
            Shape::Curve(steps) => {
                if self.rules.matching == Matching::Continuous {
                    return Err(TradingError::invalid(
                        "curve",
                        "a continuous market matches each order as it comes: send the steps as limit orders, \
                         or trade the curve in a call market",
                    ));
                }
                if steps.is_empty() {
                    return Err(TradingError::invalid("curve", "a curve has at least one step"));
                }
                crate::at_most("curve", steps.len(), MAX_CURVE_STEPS)?;
                for (i, (price, e)) in steps.iter().enumerate() {
                    product.check_price(*price, &format!("curve[{i}].limit_price"))?;
                    check_energy(&format!("curve[{i}].quantity_wh"), *e)?;
                }
                if shape
                    .limit(order.side)
                    .is_some_and(|p| order.kind != Kind::Limit { price: p, time_in_force: TimeInForce::Gtc })
                {
                    return Err(TradingError::invalid(
                        "limit_price",
                        "a curve order's limit is its most willing step's, good till the gate closes",
                    ));
                }
                product.delivery_end
            }
            Shape::Block(profile) => {
                if self.rules.matching != Matching::Welfare {
                    return Err(TradingError::invalid(
                        "block",
                        format!(
                            "only a welfare market clears block orders (all or nothing, over its network); this one \
                             is {}",
                            self.rules.matching.as_str()
                        ),
                    ));
                }
                if !matches!(order.kind, Kind::Limit { time_in_force: TimeInForce::Gtc, .. }) {
                    return Err(TradingError::invalid(
                        "limit_price",
                        "a block order has a limit price and rests until its gate closes",
                    ));
                }
                if profile.is_empty() {
                    return Err(TradingError::invalid("block", "a block spans at least one interval"));
                }
                crate::at_most("block", profile.len(), welfare::MAX_BLOCK_LENGTH)?;
                let mut end = product.delivery_end;
                for (i, (start, e)) in profile.iter().enumerate() {
                    let field = || format!("block[{i}].delivery_start");
                    check_energy(&format!("block[{i}].quantity_wh"), *e)?;
                    if i == 0 && *start != product.delivery_start {
                        return Err(TradingError::invalid(field(), "a block order's product is its first interval"));
                    }
                    if i > 0 && *start <= profile[i - 1].0 {
                        return Err(TradingError::invalid(field(), format!("{start}; intervals ascend, each once")));
                    }
                    let interval = self.product(*start).map_err(|e| match e {
                        TradingError::Invalid { reason, .. } => TradingError::invalid(field(), reason),
                        other @ (TradingError::GateClosed { .. }
                        | TradingError::UnknownOrder { .. }
                        | TradingError::Solver(_)
                        | TradingError::DuplicateOrder { .. }) => other,
                    })?;
                    if interval.gate_close != product.gate_close {
                        return Err(TradingError::invalid(
                            field(),
                            format!(
                                "{start} closes at {}, the block's first interval at {}: a block's intervals close \
                                 at one gate (a market with a day-ahead gate)",
                                interval.gate_close, product.gate_close
                            ),
                        ));
                    }
                    end = interval.delivery_end;
                }
                end
            }
        };
        if shape.energy() != order.quantity {
            return Err(TradingError::invalid(
                "quantity_wh",
                format!(
                    "{} Wh; a {} order's quantity is its energy, {} Wh",
                    order.quantity.wh(),
                    shape.as_str(),
                    shape.energy().wh()
                ),
            ));
        }
        Ok(end)
    }

    /// Cancels resting order `id` (as its participant or the operator).
    ///
    /// # Errors
    /// [`TradingError::UnknownOrder`] when it does not rest.
    pub fn cancel(&mut self, id: OrderId) -> Result<Entry, TradingError> {
        let mut entry = self.unrest(id).ok_or(TradingError::UnknownOrder { id })?;
        match self.books.get_mut(&entry.delivery_start) {
            Some(Venue::Book(book)) => {
                book.cancel(id)?;
            }
            Some(Venue::Call { orders, .. }) => {
                orders.remove(&id);
            }
            None => {}
        }
        entry.state = OrderState::Cancelled;
        entry.cancel_reason = Some(CancelReason::Participant);
        Ok(entry)
    }

    /// Reduces resting order `id` to `quantity` in all (traded and
    /// resting), keeping its place; its quantity as it is already is no
    /// change (a retried reduction).
    ///
    /// # Errors
    /// An order that does not rest, or a quantity that is not above what
    /// traded and below what was asked.
    pub fn reduce(&mut self, id: OrderId, quantity: Energy) -> Result<Entry, TradingError> {
        let entry = self.open.get_mut(&id).ok_or(TradingError::UnknownOrder { id })?;
        if quantity == entry.order.quantity {
            return Ok(entry.clone());
        }
        if let Some(shape) = &entry.shape {
            return Err(TradingError::invalid(
                "quantity_wh",
                format!("order {id} is a {} order, which is not reduced: cancel it and send it again", shape.as_str()),
            ));
        }
        if quantity <= entry.filled || quantity >= entry.order.quantity {
            return Err(TradingError::invalid(
                "quantity_wh",
                format!(
                    "{} Wh; a reduction is above the {} Wh traded and below the {} Wh of the order",
                    quantity.wh(),
                    entry.filled.wh(),
                    entry.order.quantity.wh()
                ),
            ));
        }
        if let Some(Venue::Book(book)) = self.books.get_mut(&entry.delivery_start) {
            book.reduce(id, quantity - entry.filled)?;
        }
        entry.order.quantity = quantity;
        Ok(entry.clone())
    }

    /// Closes the products whose gate has closed by `now`. A continuous
    /// book's resting orders expire; a call auction clears, its accepted
    /// orders are filled (in part where rationed: the rest expires) and its
    /// rejected ones expire. A welfare market clears the products that
    /// close together as one book, so that a block may span them. Returns
    /// every order as it is now, the auctions' trades and their outcomes.
    pub fn close(&mut self, now: Timestamp) -> Changes {
        let closed: BTreeSet<Timestamp> =
            self.books.iter().filter(|(_, v)| v.product().gate_close <= now).map(|(t, _)| *t).collect();
        let mut changes = Changes::default();
        if closed.is_empty() {
            // The sequencer asks every second: no scan of the resting
            // orders unless a product closed.
            return changes;
        }
        let mut gates: BTreeMap<Timestamp, Vec<(Product, BTreeSet<OrderId>)>> = BTreeMap::new();
        for start in &closed {
            match self.books.remove(start) {
                Some(Venue::Call { product, orders }) => {
                    gates.entry(product.gate_close).or_default().push((product, orders));
                }
                Some(Venue::Book(_)) | None => {}
            }
        }
        for calls in gates.into_values() {
            match self.rules.matching {
                Matching::Call(pricing) => {
                    for (product, orders) in &calls {
                        self.clear_call(pricing, product, orders, now, &mut changes);
                    }
                }
                Matching::Welfare => self.clear_welfare(&calls, now, &mut changes),
                Matching::Continuous => {}
            }
        }
        let mut gone: Vec<OrderId> =
            self.open.values().filter(|e| closed.contains(&e.delivery_start)).map(|e| e.order.id).collect();
        gone.sort_unstable();
        for id in gone {
            if let Some(mut entry) = self.unrest(id) {
                if entry.state == OrderState::Resting {
                    entry.state = OrderState::Expired;
                }
                changes.orders.push(entry);
            }
        }
        changes
    }

    /// Adds `traded` to the fill of order `id`.
    fn fill(&mut self, id: OrderId, traded: Energy) {
        if let Some(entry) = self.open.get_mut(&id) {
            entry.filled += traded;
            if entry.filled == entry.order.quantity {
                entry.state = OrderState::Filled;
            }
        }
    }

    /// Clears the call auction of `product` over its resting `orders`
    /// under `pricing`, marking fills on their entries (which
    /// [`Self::close`] then takes out of the book) and adding its trades
    /// and outcome to `changes`. A curve's steps bid as orders of their
    /// own in the curve's place in time.
    fn clear_call(
        &mut self,
        pricing: Pricing,
        product: &Product,
        orders: &BTreeSet<OrderId>,
        now: Timestamp,
        changes: &mut Changes,
    ) {
        let mut numbers = Numbering::default();
        let mut bids = Vec::with_capacity(orders.len());
        let mut collected = 0;
        for entry in orders.iter().filter_map(|id| self.open.get(id)) {
            collected += 1;
            let mut bid = |price: Option<Price>, quantity: Energy| {
                let id = numbers.next(entry.order.id);
                bids.push(Bid {
                    id,
                    participant: entry.order.participant.clone(),
                    side: entry.order.side,
                    price,
                    quantity,
                });
            };
            match &entry.shape {
                Some(Shape::Curve(steps)) => steps.iter().for_each(|(price, q)| bid(Some(*price), *q)),
                Some(Shape::Block(_)) | None => bid(entry.order.limit(), entry.resting()),
            }
        }
        // Every order was checked as it came in, so the auction cannot
        // refuse them; if it ever did, nothing clears and all expire.
        let clearing =
            auction::clear(&product.id, &bids, pricing, product.grid_fee).unwrap_or_else(|_| auction::Clearing {
                price: None,
                volume: Energy::ZERO,
                demand: Energy::ZERO,
                supply: Energy::ZERO,
                fills: Vec::new(),
                trades: Vec::new(),
                paid: Decimal::ZERO,
                received: Decimal::ZERO,
                fees: Decimal::ZERO,
            });
        for fill in clearing.fills.iter().filter(|f| !f.quantity.is_zero()) {
            self.fill(numbers.order_of(fill.id), fill.quantity);
        }
        for trade in numbers.trades(clearing.trades) {
            changes.trades.push(numbered(&mut self.last_trade, trade, product, None, now));
        }
        changes.auctions.push(AuctionRecord {
            delivery_start: product.delivery_start,
            delivery_end: product.delivery_end,
            price: clearing.price,
            volume: clearing.volume,
            demand: clearing.demand,
            supply: clearing.supply,
            paid: clearing.paid.normalize(),
            received: clearing.received.normalize(),
            orders: collected,
            at: now,
            network: None,
        });
    }

    /// Clears the products in `calls`, which closed together, over the
    /// market's network as one book: every resting order is a step at its
    /// node (a market order at the product's price bound: a buy at its
    /// highest, a seller at its lowest; a curve a step each), a block is
    /// all or nothing over its intervals, welfare is maximised on HiGHS,
    /// and the accepted energy is paired into trades at the nodal prices
    /// ([`welfare::Welfare::trades`]). Each product gets its outcome: its
    /// nodal prices, flows, welfare, trades and money. If the solver
    /// fails, nothing clears, every order expires, and each outcome says
    /// why.
    fn clear_welfare(&mut self, calls: &[(Product, BTreeSet<OrderId>)], now: Timestamp, changes: &mut Changes) {
        let Some(network) = self.rules.network.clone() else { return };
        // Every product that clears: the books' and any only a block reaches.
        let mut products: BTreeMap<Timestamp, Product> =
            calls.iter().map(|(p, _)| (p.delivery_start, p.clone())).collect();
        let mut collected: BTreeMap<Timestamp, usize> = BTreeMap::new();
        let mut numbers = Numbering::default();
        let mut book = welfare::Book::default();
        for (product, orders) in calls {
            for entry in orders.iter().filter_map(|id| self.open.get(id)) {
                let (participant, side) = (entry.order.participant.clone(), entry.order.side);
                let node = entry.node.clone().unwrap_or_default();
                let mut step = |price: Price, quantity: Energy| {
                    let id = numbers.next(entry.order.id);
                    let (participant, product, node) = (participant.clone(), product.id.clone(), node.clone());
                    book.steps.push(welfare::Step { id, participant, product, node, side, price, quantity });
                };
                match &entry.shape {
                    Some(Shape::Curve(steps)) => steps.iter().for_each(|(price, q)| step(*price, *q)),
                    None => {
                        let bound = match side {
                            Side::Buy => product.max_price,
                            Side::Sell => product.min_price,
                        };
                        step(entry.order.limit().unwrap_or(bound), entry.resting());
                    }
                    Some(Shape::Block(intervals)) => {
                        let mut profile = Vec::with_capacity(intervals.len());
                        for (start, e) in intervals {
                            // Each interval was found on the grid when the
                            // block came in.
                            let Ok(interval) = self.interval_id(&mut products, *start) else { continue };
                            *collected.entry(*start).or_default() += 1;
                            profile.push((interval, *e));
                        }
                        let id = numbers.next(entry.order.id);
                        let price = entry.order.limit().unwrap_or(product.max_price);
                        book.blocks.push(welfare::Block { id, participant, node, side, price, profile });
                        continue;
                    }
                }
                *collected.entry(product.delivery_start).or_default() += 1;
            }
        }
        let fee = self.rules.grid_fee;
        let settings =
            volta_lp::Settings { threads: Some(1), time_limit_s: Some(WELFARE_TIME_LIMIT_S), ..Default::default() };
        let cleared = welfare::clear(&network, &book, fee, &settings);
        let trades = match &cleared {
            Ok(w) => numbers.trades(w.trades(&book)),
            Err(_) => Vec::new(),
        };
        let mut by_product: HashMap<&str, Vec<&Trade>> = HashMap::new();
        for trade in &trades {
            by_product.entry(trade.product.as_str()).or_default().push(trade);
        }
        for trade in &trades {
            self.fill(trade.buy, trade.quantity);
            self.fill(trade.sell, trade.quantity);
        }
        let found = cleared.as_ref().ok().map(|w| Found::of(&network, &book, w, fee, &numbers));
        for product in products.values() {
            let traded = by_product.remove(product.id.as_str()).unwrap_or_default();
            let outcome = match &found {
                Some(found) => found.outcome(&network, &product.id),
                None => NetworkClearing {
                    failure: cleared.as_ref().err().map(ToString::to_string),
                    ..NetworkClearing::default()
                },
            };
            let (mut paid, mut received, mut volume) = (Decimal::ZERO, Decimal::ZERO, Energy::ZERO);
            for trade in &traded {
                paid += crate::price::amount(trade.quantity, trade.buyer_price);
                received += crate::price::amount(trade.quantity, trade.seller_price);
                volume += trade.quantity;
            }
            // One price when every node has it (no congestion, no line fees
            // that bind); each node's own otherwise.
            let uniform = match outcome.prices.split_first() {
                Some(((_, first), rest)) if outcome.failure.is_none() && rest.iter().all(|(_, p)| p == first) => {
                    Some(*first)
                }
                _ => None,
            };
            for trade in traded {
                changes.trades.push(numbered(&mut self.last_trade, trade.clone(), product, None, now));
            }
            changes.auctions.push(AuctionRecord {
                delivery_start: product.delivery_start,
                delivery_end: product.delivery_end,
                price: uniform,
                volume,
                demand: volume,
                supply: volume,
                paid: paid.normalize(),
                received: received.normalize(),
                orders: collected.get(&product.delivery_start).copied().unwrap_or(0),
                at: now,
                network: Some(outcome),
            });
        }
    }

    /// The id of the product delivering from `start`, from `known` or
    /// found on the grid (and then kept in `known`).
    fn interval_id(
        &self,
        known: &mut BTreeMap<Timestamp, Product>,
        start: Timestamp,
    ) -> Result<ProductId, TradingError> {
        if let Some(product) = known.get(&start) {
            return Ok(product.id.clone());
        }
        let product = self.product(start)?;
        let id = product.id.clone();
        known.insert(start, product);
        Ok(id)
    }

    /// Puts a stored resting order back, in id order, after a restart.
    ///
    /// # Errors
    /// An entry that is not resting, off the grid, or that would cross its
    /// book (the store is corrupt).
    pub fn restore(&mut self, mut entry: Entry) -> Result<(), TradingError> {
        if entry.state != OrderState::Resting {
            return Err(TradingError::invalid("state", format!("order {} is not resting", entry.order.id)));
        }
        let product = self.product(entry.delivery_start)?;
        // A store reads a product from the delivery an order spans, which
        // for a block is more than its first interval.
        entry.order.product = product.id.clone();
        let matching = self.rules.matching;
        match self.books.entry(product.delivery_start).or_insert_with(|| Venue::new(product, matching)) {
            Venue::Book(book) => book.restore(&entry.order, entry.resting())?,
            Venue::Call { orders, .. } => {
                orders.insert(entry.order.id);
            }
        }
        self.last_order = self.last_order.max(entry.order.id);
        self.rest(entry);
        Ok(())
    }

    /// The best `levels` levels of each side of the book of the product
    /// delivering from `start` (empty sides if nothing rests there). A call
    /// auction's book shows its collected limit orders the same way, a
    /// curve a level per step (its market orders have no level, nor its
    /// blocks, which span products).
    #[must_use]
    pub fn depth(&self, start: Timestamp, levels: usize) -> (Vec<Depth>, Vec<Depth>) {
        match self.books.get(&start) {
            None => (Vec::new(), Vec::new()),
            Some(Venue::Book(b)) => (b.depth(Side::Buy, levels), b.depth(Side::Sell, levels)),
            Some(Venue::Call { orders, .. }) => {
                let mut sides: [BTreeMap<Price, Depth>; 2] = [BTreeMap::new(), BTreeMap::new()];
                for entry in orders.iter().filter_map(|id| self.open.get(id)) {
                    let side = usize::from(entry.order.side == Side::Sell);
                    let mut show = |price: Price, volume: Energy| {
                        let level =
                            sides[side].entry(price).or_insert(Depth { price, volume: Energy::ZERO, orders: 0 });
                        level.volume += volume;
                        level.orders += 1;
                    };
                    match (&entry.shape, entry.order.limit()) {
                        (Some(Shape::Curve(steps)), _) => steps.iter().for_each(|(price, e)| show(*price, *e)),
                        (None, Some(price)) => show(price, entry.resting()),
                        // A block is not one product's; a market order has no level.
                        (Some(Shape::Block(_)), _) | (None, None) => {}
                    }
                }
                let [bids, asks] = sides;
                (bids.into_values().rev().take(levels).collect(), asks.into_values().take(levels).collect())
            }
        }
    }

    /// The block orders resting in a welfare market that deliver in the
    /// product from `start`, at most `levels` a side: the bids, the highest
    /// limit first, and the asks, the lowest first (earlier orders first at
    /// one limit). Each shows its limit (per kWh over the block), its energy
    /// in this interval and its span, not its owner. A block rests with
    /// its first interval, and all its intervals close at one gate, so only
    /// the venues before `start` under the same gate are read.
    #[must_use]
    pub fn blocks_at(&self, start: Timestamp, levels: usize) -> (Vec<BlockDepth>, Vec<BlockDepth>) {
        // Only a welfare market takes blocks; its book is asked after every change.
        if self.rules.matching != Matching::Welfare {
            return (Vec::new(), Vec::new());
        }
        // Its own venue may hold nothing: a block rests with its first interval.
        let Ok(gate) = self.product(start).map(|p| p.gate_close) else { return (Vec::new(), Vec::new()) };
        let mut sides: [Vec<(OrderId, BlockDepth)>; 2] = [Vec::new(), Vec::new()];
        // Gates only move forward with delivery: the blocks under this one
        // rest in the products just before `start`.
        let under_gate = self
            .blocks
            .range(..=(start, OrderId::MAX))
            .rev()
            .take_while(|(at, _)| self.books.get(at).is_some_and(|v| v.product().gate_close == gate));
        for (_, id) in under_gate {
            let Some(entry) = self.open.get(id) else { continue };
            let (Some(Shape::Block(intervals)), Some(price)) = (&entry.shape, entry.order.limit()) else {
                continue;
            };
            let Some(&(_, volume)) = intervals.iter().find(|(at, _)| *at == start) else { continue };
            let shown = BlockDepth {
                side: entry.order.side,
                price,
                volume,
                block_start: intervals[0].0,
                intervals: intervals.len(),
            };
            sides[usize::from(entry.order.side == Side::Sell)].push((entry.order.id, shown));
        }
        let [mut bids, mut asks] = sides;
        bids.sort_by(|(a, x), (b, y)| y.price.cmp(&x.price).then(a.cmp(b)));
        asks.sort_by(|(a, x), (b, y)| x.price.cmp(&y.price).then(a.cmp(b)));
        let shown = |side: Vec<(OrderId, BlockDepth)>| side.into_iter().take(levels).map(|(_, d)| d).collect();
        (shown(bids), shown(asks))
    }
}

/// A resting block order as a product's book shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDepth {
    /// Buy or sell.
    pub side: Side,
    /// Its limit, per kWh over the whole block.
    pub price: Price,
    /// Its energy in this product, Wh.
    pub volume: Energy,
    /// The start of its first interval.
    pub block_start: Timestamp,
    /// How many intervals it spans.
    pub intervals: usize,
}

/// The orders of one clearing under numbers of its own, so that a curve
/// can bid a step at a time: each step is numbered apart, and what the
/// clearing finds for a number goes to the order that owns it.
#[derive(Debug, Default)]
struct Numbering {
    owners: Vec<OrderId>,
    /// Whether an order owns more than one number.
    shared: bool,
}

impl Numbering {
    /// The next number, owned by order `id` (an order's numbers are taken
    /// one after the other).
    fn next(&mut self, id: OrderId) -> OrderId {
        self.shared |= self.owners.last() == Some(&id);
        self.owners.push(id);
        (self.owners.len() - 1) as OrderId
    }

    /// The order that owns `number`.
    fn order_of(&self, number: OrderId) -> OrderId {
        usize::try_from(number).ok().and_then(|i| self.owners.get(i)).copied().unwrap_or(number)
    }

    /// `trades` between numbers as trades between their orders, the steps
    /// of a curve that traded with one order at the same prices as one
    /// trade, in the order of their first.
    fn trades(&self, trades: Vec<Trade>) -> Vec<Trade> {
        let mut out: Vec<Trade> = Vec::with_capacity(trades.len());
        let mut at: HashMap<(ProductId, OrderId, OrderId, Price, Price), usize> = HashMap::new();
        for mut trade in trades {
            trade.buy = self.order_of(trade.buy);
            trade.sell = self.order_of(trade.sell);
            if !self.shared {
                out.push(trade);
                continue;
            }
            let key = (trade.product.clone(), trade.buy, trade.sell, trade.buyer_price, trade.seller_price);
            match at.entry(key) {
                Slot::Occupied(first) => out[*first.get()].quantity += trade.quantity,
                Slot::Vacant(slot) => {
                    slot.insert(out.len());
                    out.push(trade);
                }
            }
        }
        out
    }
}

/// What a welfare clearing found, by product: nodal prices, flows and
/// welfare, each looked up once.
struct Found {
    prices: HashMap<(ProductId, NodeId), Price>,
    flows: HashMap<ProductId, Vec<LineFlow>>,
    welfare: HashMap<ProductId, Decimal>,
    /// Blocks by their first interval.
    blocks: HashMap<ProductId, Vec<BlockOutcome>>,
}

impl Found {
    /// The findings of `w`, the clearing of `book` over `network` under
    /// grid fee `fee`. A product's welfare is what its accepted buyers
    /// would pay less the fee, less what its accepted sellers ask, less the
    /// lines' fees on its flows, exact from the fills rounded to the Wh;
    /// the products' welfares add up to the clearing's objective (to that
    /// rounding). The book's orders are numbered by `numbers`.
    fn of(network: &Network, book: &welfare::Book, w: &welfare::Welfare, fee: Price, numbers: &Numbering) -> Self {
        let worth = |side: Side, price: Price, e: Energy| match side {
            Side::Buy => crate::price::amount(e, price - fee),
            Side::Sell => -crate::price::amount(e, price),
        };
        let mut welfare: HashMap<ProductId, Decimal> = HashMap::new();
        for (step, (_, e)) in book.steps.iter().zip(&w.steps) {
            *welfare.entry(step.product.clone()).or_default() += worth(step.side, step.price, *e);
        }
        for (block, _) in book.blocks.iter().zip(&w.blocks).filter(|(_, r)| r.accepted) {
            for (product, e) in &block.profile {
                *welfare.entry(product.clone()).or_default() += worth(block.side, block.price, *e);
            }
        }
        let line_fee: HashMap<&str, Price> = network.lines.iter().map(|l| (l.id.as_str(), l.fee)).collect();
        let mut flows: HashMap<ProductId, Vec<LineFlow>> = HashMap::new();
        for f in &w.flows {
            let fee = line_fee.get(f.line.as_str()).copied().unwrap_or(Price::ZERO);
            *welfare.entry(f.product.clone()).or_default() -= crate::price::amount(f.energy.abs(), fee);
            flows.entry(f.product.clone()).or_default().push(LineFlow {
                line: f.line.clone(),
                energy: f.energy,
                congested: f.congested,
            });
        }
        let mut blocks: HashMap<ProductId, Vec<BlockOutcome>> = HashMap::new();
        for (block, r) in book.blocks.iter().zip(&w.blocks) {
            let Some((first, _)) = block.profile.first() else { continue };
            blocks.entry(first.clone()).or_default().push(BlockOutcome {
                order: numbers.order_of(r.id),
                accepted: r.accepted,
                surplus: r.surplus.normalize(),
                paradoxically_accepted: r.paradoxically_accepted,
                paradoxically_rejected: r.paradoxically_rejected,
            });
        }
        Self {
            prices: w.prices.iter().map(|p| ((p.product.clone(), p.node.clone()), p.price)).collect(),
            flows,
            welfare,
            blocks,
        }
    }

    /// The outcome of `product`: its nodes' prices in the network's order,
    /// its flows in the lines' order, its welfare to the millionth.
    fn outcome(&self, network: &Network, product: &ProductId) -> NetworkClearing {
        NetworkClearing {
            prices: network
                .nodes
                .iter()
                .map(|n| {
                    let price = self.prices.get(&(product.clone(), n.clone())).copied().unwrap_or(Price::ZERO);
                    (n.clone(), price)
                })
                .collect(),
            flows: self.flows.get(product).cloned().unwrap_or_default(),
            welfare: self.welfare.get(product).copied().unwrap_or_default().round_dp(6).normalize(),
            failure: None,
            blocks: self.blocks.get(product).cloned().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::auction::Pricing;

    fn rules() -> MarketRules {
        MarketRules {
            time_zone: "Europe/Berlin".into(),
            interval_minutes: 15,
            gate_opens_before: SignedDuration::from_hours(48),
            gate_closes_before: SignedDuration::from_mins(5),
            min_price: "-0.5".parse().expect("price"),
            max_price: "4".parse().expect("price"),
            matching: Matching::Continuous,
            grid_fee: Price::ZERO,
            network: None,
            day_ahead_gate: None,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("instant")
    }

    fn limit(client: &str, who: &str, side: Side, wh: i64, price: &str, tif: TimeInForce) -> NewOrder {
        NewOrder {
            client_order_id: client.into(),
            participant: PartyId::new(who).expect("id"),
            delivery_start: at("2024-06-01T10:00:00Z"),
            side,
            kind: Kind::Limit { price: price.parse::<Price>().expect("price"), time_in_force: tif },
            quantity: Energy::from_wh(wh),
            node: None,
            shape: None,
        }
    }

    fn at_node(node: &str, order: NewOrder) -> NewOrder {
        NewOrder { node: Some(node.to_owned()), ..order }
    }

    #[test]
    fn orders_keep_their_record_through_trades_reductions_cancels_and_expiry() {
        let now = at("2024-06-01T08:00:00Z");
        let mut market = Market::new(rules(), 0, 0).expect("market");
        let a = market.submit(limit("a1", "alice", Side::Sell, 3_000, "0.20", TimeInForce::Gtc), now).expect("a");
        assert_eq!(a.orders.len(), 1);
        assert_eq!(a.orders[0].state, OrderState::Resting);
        let b = market.submit(limit("b1", "bob", Side::Sell, 2_000, "0.21", TimeInForce::Gtc), now).expect("b");
        assert_eq!(b.orders[0].order.id, 2);
        // Carol buys 4 kWh up to 0.25: all of alice's at 0.20, 1 kWh of bob's at 0.21.
        let c = market.submit(limit("c1", "carol", Side::Buy, 4_000, "0.25", TimeInForce::Ioc), now).expect("c");
        assert_eq!(c.trades.len(), 2);
        assert_eq!((c.trades[0].id, c.trades[1].id), (1, 2));
        assert_eq!(c.trades[1].trade.buyer_price, "0.21".parse().expect("price"));
        let states: Vec<_> = c.orders.iter().map(|e| (e.order.id, e.state, e.filled.wh())).collect();
        assert_eq!(
            states,
            [(3, OrderState::Filled, 4_000), (1, OrderState::Filled, 3_000), (2, OrderState::Resting, 1_000)]
        );
        assert_eq!(market.resting(), 1);
        assert_eq!(market.resting_of(&PartyId::new("bob").expect("id")), 1);
        assert_eq!(market.resting_of(&PartyId::new("alice").expect("id")), 0);
        // Bob reduces to 1.5 kWh in all (1 traded, 0.5 resting), keeping his place.
        assert!(market.reduce(2, Energy::from_wh(1_000)).is_err(), "not above what traded");
        let reduced = market.reduce(2, Energy::from_wh(1_500)).expect("reduce");
        assert_eq!(reduced.resting().wh(), 500);
        assert_eq!(market.depth(at("2024-06-01T10:00:00Z"), 5).1[0].volume.wh(), 500);
        // An IOC that finds nothing is cancelled with its rule.
        let d = market.submit(limit("d1", "dave", Side::Buy, 1_000, "0.10", TimeInForce::Ioc), now).expect("d");
        assert_eq!(d.orders[0].cancel_reason, Some(CancelReason::Rule(Cancelled::ImmediateOrCancel)));
        // A resting buy, cancelled by its participant.
        market.submit(limit("e1", "erin", Side::Buy, 1_000, "0.10", TimeInForce::Gtc), now).expect("e");
        let cancelled = market.cancel(5).expect("cancel");
        assert_eq!(
            (cancelled.state, cancelled.cancel_reason),
            (OrderState::Cancelled, Some(CancelReason::Participant))
        );
        assert!(market.cancel(5).is_err());
        // Bob's remainder expires when the gate closes (09:55 UTC).
        assert!(market.close(at("2024-06-01T09:54:59Z")).is_empty());
        let expired = market.close(at("2024-06-01T09:55:00Z")).orders;
        assert_eq!(expired.len(), 1);
        assert_eq!((expired[0].order.id, expired[0].state), (2, OrderState::Expired));
        assert_eq!(market.resting(), 0);
    }

    #[test]
    fn a_rebuilt_market_matches_as_the_one_that_ran() {
        let now = at("2024-06-01T08:00:00Z");
        let mut live = Market::new(rules(), 0, 0).expect("market");
        let mut stored: HashMap<OrderId, Entry> = HashMap::new();
        let orders = [
            limit("1", "p1", Side::Sell, 2_000, "0.30", TimeInForce::Gtc),
            limit("2", "p2", Side::Sell, 1_000, "0.28", TimeInForce::Gtc),
            limit("3", "p3", Side::Buy, 1_500, "0.29", TimeInForce::Gtc),
            limit("4", "p4", Side::Buy, 700, "0.27", TimeInForce::Gtc),
        ];
        for order in orders {
            for entry in live.submit(order, now).expect("submit").orders {
                stored.insert(entry.order.id, entry);
            }
        }
        let mut rebuilt = Market::new(rules(), 4, 1).expect("market");
        let mut resting: Vec<Entry> = stored.into_values().filter(|e| e.state == OrderState::Resting).collect();
        resting.sort_by_key(|e| e.order.id);
        for entry in resting {
            rebuilt.restore(entry).expect("restore");
        }
        let taker = limit("5", "p5", Side::Sell, 3_000, "0.0", TimeInForce::Ioc);
        let a = live.submit(taker.clone(), now).expect("live");
        let b = rebuilt.submit(taker, now).expect("rebuilt");
        assert_eq!(a, b);
    }

    #[test]
    fn a_call_market_collects_until_the_gate_closes_then_clears_once() {
        let now = at("2024-06-01T08:00:00Z");
        let orders = || {
            [
                limit("a", "alice", Side::Sell, 3_000, "0.20", TimeInForce::Gtc),
                limit("b", "bob", Side::Sell, 2_000, "0.25", TimeInForce::Gtc),
                limit("c", "carol", Side::Buy, 4_000, "0.30", TimeInForce::Gtc),
                limit("d", "dave", Side::Buy, 2_000, "0.22", TimeInForce::Gtc),
            ]
        };
        for (pricing, paid, received) in [(Pricing::PayAsClear, "1", "1"), (Pricing::PayAsBid, "1.2", "0.85")] {
            let call = MarketRules { matching: Matching::Call(pricing), ..rules() };
            let mut market = Market::new(call.clone(), 0, 0).expect("market");
            for order in orders() {
                let made = market.submit(order, now).expect("submit");
                assert!(made.trades.is_empty(), "nothing trades before the gate closes");
                assert_eq!(made.orders[0].state, OrderState::Resting);
            }
            let ioc = market.submit(limit("e", "erin", Side::Buy, 1, "0.3", TimeInForce::Ioc), now).expect_err("ioc");
            assert!(ioc.to_string().starts_with("time_in_force"), "{ioc}");
            // The book shows the crossed collection as it stands.
            let (bids, asks) = market.depth(at("2024-06-01T10:00:00Z"), 10);
            let shown = |d: &[Depth]| d.iter().map(|l| (l.price.to_string(), l.volume.wh())).collect::<Vec<_>>();
            assert_eq!(shown(&bids), [("0.3".to_owned(), 4_000), ("0.22".to_owned(), 2_000)]);
            assert_eq!(shown(&asks), [("0.2".to_owned(), 3_000), ("0.25".to_owned(), 2_000)]);

            // A market rebuilt from the resting records clears the same.
            let mut rebuilt = Market::new(call, 4, 0).expect("market");
            let mut resting: Vec<Entry> = (1..=4).filter_map(|id| market.open(id).cloned()).collect();
            resting.sort_by_key(|e| e.order.id);
            for entry in resting {
                rebuilt.restore(entry).expect("restore");
            }
            assert!(market.close(at("2024-06-01T09:54:59Z")).is_empty());
            let gate = at("2024-06-01T09:55:00Z");
            let closed = market.close(gate);
            assert_eq!(closed, rebuilt.close(gate));
            // Supply 5 kWh meets demand 4 kWh on bob's step at 0.25: carol
            // is filled, alice in full, bob rationed to 1 kWh, dave rejected.
            let auction = &closed.auctions[0];
            assert_eq!(auction.price, Some("0.25".parse().expect("price")));
            assert_eq!((auction.volume.wh(), auction.demand.wh(), auction.supply.wh()), (4_000, 4_000, 5_000));
            assert_eq!(
                (auction.paid.to_string(), auction.received.to_string()),
                (paid.to_owned(), received.to_owned())
            );
            assert_eq!(auction.orders, 4);
            let states: Vec<_> = closed.orders.iter().map(|e| (e.order.id, e.state, e.filled.wh())).collect();
            assert_eq!(
                states,
                [
                    (1, OrderState::Filled, 3_000),
                    (2, OrderState::Expired, 1_000),
                    (3, OrderState::Filled, 4_000),
                    (4, OrderState::Expired, 0)
                ]
            );
            let trades: Vec<_> = closed
                .trades
                .iter()
                .map(|t| (t.id, t.trade.buy, t.trade.sell, t.trade.quantity.wh(), t.aggressor))
                .collect();
            assert_eq!(trades, [(1, 3, 1, 3_000, None), (2, 3, 2, 1_000, None)]);
            assert_eq!(market.resting(), 0);
            assert!(market.close(at("2024-06-01T10:00:00Z")).is_empty(), "an auction clears once");
        }
    }

    /// Two nodes and a 2 kWh line between them, worked by hand: alice's
    /// 0.10 at `a` is the cheapest energy, but only 2 kWh of it reach
    /// carol at `b` over the congested line, so bob's 0.20 at `b` sets
    /// `b`'s price and alice's sets `a`'s.
    #[test]
    fn a_welfare_market_clears_each_product_over_its_network_at_nodal_prices() {
        use crate::network::{Line, Network};
        let now = at("2024-06-01T08:00:00Z");
        let network = Network {
            nodes: vec!["a".into(), "b".into()],
            lines: vec![Line::new("ab", "a", "b", Energy::from_wh(2_000))],
        };
        let rules = MarketRules { matching: Matching::Welfare, network: Some(network), ..rules() };
        let mut market = Market::new(rules.clone(), 0, 0).expect("market");
        let orders = [
            at_node("a", limit("a", "alice", Side::Sell, 5_000, "0.10", TimeInForce::Gtc)),
            at_node("b", limit("b", "bob", Side::Sell, 5_000, "0.20", TimeInForce::Gtc)),
            at_node("b", limit("c", "carol", Side::Buy, 4_000, "0.30", TimeInForce::Gtc)),
            at_node("a", limit("d", "dave", Side::Buy, 1_000, "0.25", TimeInForce::Gtc)),
        ];
        for order in orders {
            let made = market.submit(order, now).expect("submit");
            assert!(made.trades.is_empty(), "nothing trades before the gate closes");
        }
        // Every order names a node of the network, and only here.
        let none = market.submit(limit("e", "erin", Side::Buy, 1_000, "0.3", TimeInForce::Gtc), now).expect_err("none");
        assert!(none.to_string().starts_with("node: a welfare market"), "{none}");
        let unknown = at_node("z", limit("e", "erin", Side::Buy, 1_000, "0.3", TimeInForce::Gtc));
        let unknown = market.submit(unknown, now).expect_err("unknown");
        assert!(unknown.to_string().starts_with("node: \"z\" is not a node"), "{unknown}");
        let mut continuous = Market::new(self::rules(), 0, 0).expect("market");
        let elsewhere = at_node("a", limit("e", "erin", Side::Buy, 1_000, "0.3", TimeInForce::Gtc));
        assert!(continuous.submit(elsewhere, now).expect_err("no nodes").to_string().starts_with("node:"));

        let mut rebuilt = Market::new(rules, 4, 0).expect("market");
        for id in 1..=4 {
            rebuilt.restore(market.open(id).cloned().expect("resting")).expect("restore");
        }
        let gate = at("2024-06-01T09:55:00Z");
        let closed = market.close(gate);
        assert_eq!(closed, rebuilt.close(gate), "a market rebuilt from its records clears the same");

        let auction = &closed.auctions[0];
        let outcome = auction.network.as_ref().expect("a network outcome");
        assert_eq!(outcome.failure, None);
        let prices: Vec<_> = outcome.prices.iter().map(|(n, p)| (n.as_str(), p.to_string())).collect();
        assert_eq!(prices, [("a", "0.1".to_owned()), ("b", "0.2".to_owned())]);
        assert_eq!(auction.price, None, "the congested line splits the prices");
        assert_eq!(outcome.flows, [LineFlow { line: "ab".into(), energy: Energy::from_wh(2_000), congested: true }]);
        // Buyers value 4 × 0.30 + 1 × 0.25, sellers ask 3 × 0.10 + 2 × 0.20.
        assert_eq!(outcome.welfare.to_string(), "0.75");
        assert_eq!(auction.volume.wh(), 5_000);
        // Carol pays b's price for all 4 kWh, dave a's; alice receives a's, bob b's;
        // the congestion rent, 2 kWh × 0.10, is the operator's.
        assert_eq!((auction.paid.to_string(), auction.received.to_string()), ("0.9".to_owned(), "0.7".to_owned()));
        let trades: Vec<_> = closed
            .trades
            .iter()
            .map(|t| {
                (
                    t.trade.buy,
                    t.trade.sell,
                    t.trade.quantity.wh(),
                    t.trade.buyer_price.to_string(),
                    t.trade.seller_price.to_string(),
                )
            })
            .collect();
        let p = |x: &str| x.to_owned();
        assert_eq!(
            trades,
            [(4, 1, 1_000, p("0.1"), p("0.1")), (3, 2, 2_000, p("0.2"), p("0.2")), (3, 1, 2_000, p("0.2"), p("0.1")),],
            "same node first, then over the line"
        );
        let states: Vec<_> = closed.orders.iter().map(|e| (e.order.id, e.state, e.filled.wh())).collect();
        assert_eq!(
            states,
            [
                (1, OrderState::Expired, 3_000),
                (2, OrderState::Expired, 2_000),
                (3, OrderState::Filled, 4_000),
                (4, OrderState::Filled, 1_000)
            ]
        );
        assert_eq!(market.resting(), 0);
    }

    #[test]
    fn products_are_found_on_the_grid_only() {
        let market = Market::new(rules(), 0, 0).expect("market");
        assert!(market.product(at("2024-10-27T00:45:00Z")).is_ok(), "the repeated hour of the autumn change");
        assert!(market.product(at("2024-10-27T01:00:00Z")).is_ok());
        let off = market.product(at("2024-06-01T10:07:00Z")).expect_err("off the grid");
        assert!(off.to_string().starts_with("delivery_start"), "{off}");
    }
}
