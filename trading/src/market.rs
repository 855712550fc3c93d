//! A continuous market: the books of its products and the life of every
//! order in them, as a service runs it.
//!
//! [`Book`] matches; a [`Market`] adds what a market service needs around
//! it: products looked up on the market's grid, order ids and trade ids
//! handed out in sequence, the record of every order ([`Entry`]: quantity,
//! what traded, its state and why it was cancelled), the resting orders by
//! id (so that a cancel names only the order), expiry when a product's gate
//! closes, and a rebuild from stored records after a restart.
//!
//! Every call returns what it changed ([`Changes`]), which is what a store
//! must write before the caller is told; if writing fails, the market is
//! rebuilt from the store, so memory never runs ahead of what was kept.

use std::collections::{BTreeMap, HashMap};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use volta_contracts::{Energy, PartyId};

use crate::book::{Book, Cancelled, Depth};
use crate::error::TradingError;
use crate::order::{Kind, Order, OrderId, Side, Trade};
use crate::product::{MarketRules, Product};

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
}

impl Entry {
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
    /// The side of the incoming order that took the resting one.
    pub aggressor: Side,
    /// When it happened.
    pub at: Timestamp,
}

/// What a call changed: orders as they are now (new or changed) and new
/// trades, in the order they happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// Orders as they are now.
    pub orders: Vec<Entry>,
    /// New trades.
    pub trades: Vec<TradeRecord>,
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
}

/// A continuous market.
#[derive(Debug, Clone)]
pub struct Market {
    rules: MarketRules,
    zone: TimeZone,
    /// Books by delivery start, made at a product's first order.
    books: BTreeMap<Timestamp, Book>,
    /// Resting orders by id.
    open: HashMap<OrderId, Entry>,
    /// Resting orders per participant.
    counts: HashMap<PartyId, usize>,
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
        self.open.insert(entry.order.id, entry);
    }

    fn unrest(&mut self, id: OrderId) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
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
        if let Some(book) = self.books.get(&start) {
            return Ok(book.product().clone());
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
        let book = self.books.entry(product.delivery_start).or_insert_with(|| Book::new(product.clone()));
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
            self.last_trade += 1;
            changes.trades.push(TradeRecord {
                id: self.last_trade,
                trade,
                delivery_start: product.delivery_start,
                delivery_end: product.delivery_end,
                aggressor: order.side,
                at: now,
            });
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
                Side::Buy => t.trade.sell,
                Side::Sell => t.trade.buy,
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

    /// Cancels resting order `id` (as its participant or the operator).
    ///
    /// # Errors
    /// [`TradingError::UnknownOrder`] when it does not rest.
    pub fn cancel(&mut self, id: OrderId) -> Result<Entry, TradingError> {
        let mut entry = self.unrest(id).ok_or(TradingError::UnknownOrder { id })?;
        if let Some(book) = self.books.get_mut(&entry.delivery_start) {
            book.cancel(id)?;
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
        if let Some(book) = self.books.get_mut(&entry.delivery_start) {
            book.reduce(id, quantity - entry.filled)?;
        }
        entry.order.quantity = quantity;
        Ok(entry.clone())
    }

    /// Closes the books whose gate has closed by `now`: their resting
    /// orders expire, returned as they are now.
    pub fn expire(&mut self, now: Timestamp) -> Vec<Entry> {
        let closed: Vec<Timestamp> =
            self.books.iter().filter(|(_, b)| b.product().gate_close <= now).map(|(t, _)| *t).collect();
        let mut expired = Vec::new();
        if closed.is_empty() {
            // The sequencer asks every second: no scan of the resting orders
            // unless a book closed.
            return expired;
        }
        for start in closed {
            self.books.remove(&start);
        }
        let gone: Vec<OrderId> =
            self.open.values().filter(|e| !self.books.contains_key(&e.delivery_start)).map(|e| e.order.id).collect();
        for id in gone {
            if let Some(mut entry) = self.unrest(id) {
                entry.state = OrderState::Expired;
                expired.push(entry);
            }
        }
        expired.sort_by_key(|e| e.order.id);
        expired
    }

    /// Puts a stored resting order back, in id order, after a restart.
    ///
    /// # Errors
    /// An entry that is not resting, off the grid, or that would cross its
    /// book (the store is corrupt).
    pub fn restore(&mut self, entry: Entry) -> Result<(), TradingError> {
        if entry.state != OrderState::Resting {
            return Err(TradingError::invalid("state", format!("order {} is not resting", entry.order.id)));
        }
        let product = self.product(entry.delivery_start)?;
        let book = self.books.entry(product.delivery_start).or_insert_with(|| Book::new(product));
        book.restore(&entry.order, entry.resting())?;
        self.last_order = self.last_order.max(entry.order.id);
        self.rest(entry);
        Ok(())
    }

    /// The best `levels` levels of each side of the book of the product
    /// delivering from `start` (empty sides if nothing rests there).
    #[must_use]
    pub fn depth(&self, start: Timestamp, levels: usize) -> (Vec<Depth>, Vec<Depth>) {
        self.books.get(&start).map(|b| (b.depth(Side::Buy, levels), b.depth(Side::Sell, levels))).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;
    use crate::order::TimeInForce;
    use crate::price::Price;

    fn rules() -> MarketRules {
        MarketRules {
            time_zone: "Europe/Berlin".into(),
            interval_minutes: 15,
            gate_opens_before: SignedDuration::from_hours(48),
            gate_closes_before: SignedDuration::from_mins(5),
            min_price: "-0.5".parse().expect("price"),
            max_price: "4".parse().expect("price"),
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
        }
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
        assert!(market.expire(at("2024-06-01T09:54:59Z")).is_empty());
        let expired = market.expire(at("2024-06-01T09:55:00Z"));
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
    fn products_are_found_on_the_grid_only() {
        let market = Market::new(rules(), 0, 0).expect("market");
        assert!(market.product(at("2024-10-27T00:45:00Z")).is_ok(), "the repeated hour of the autumn change");
        assert!(market.product(at("2024-10-27T01:00:00Z")).is_ok());
        let off = market.product(at("2024-06-01T10:07:00Z")).expect_err("off the grid");
        assert!(off.to_string().starts_with("delivery_start"), "{off}");
    }
}
