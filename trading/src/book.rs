//! The continuous double auction: an order book per product, matched with
//! price-time priority.
//!
//! The rules, each stated:
//! - **Priority.** A better price first (a higher bid, a lower ask); at one
//!   price, the earlier order (the lower id) first.
//! - **Price.** A trade is at the resting order's price: the incoming order
//!   takes what the book offers, at that price or better than its limit.
//! - **Grid fee.** The product's fee per kWh lies between the two sides:
//!   an incoming bid takes an ask only where the ask plus the fee is within
//!   its limit, and pays both (the seller receives its ask); an incoming
//!   ask takes a bid only where the bid less the fee is within its limit,
//!   and receives that (the buyer pays its bid). So a bid and an ask closer
//!   than the fee both rest, and no trade is worth less than its fee.
//! - **Remainders.** A good-till-cancelled limit order's remainder rests; an
//!   immediate-or-cancel order's and a market order's is cancelled; a
//!   fill-or-kill order trades all of its quantity at once or nothing.
//! - **Self-trades.** An order never trades with its own participant's
//!   resting orders: when it reaches one, the incoming order's remainder is
//!   cancelled (cancel newest); the resting order keeps its place, and what
//!   traded before stands. A fill-or-kill order counts only the volume
//!   before its own first resting order.
//! - **Amendments.** Reducing a resting order's quantity keeps its place;
//!   any other change is a cancellation and a new order (a new id, the back
//!   of the queue).
//!
//! Cancellations are lazy: a cancelled order leaves its level's count and
//! volume at once and its queue slot when the matcher next passes it, so
//! that cancelling is O(log levels) and matching never searches a queue.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use volta_contracts::{Energy, PartyId};

use crate::error::TradingError;
use crate::order::{Kind, Order, OrderId, Side, TimeInForce, Trade};
use crate::price::Price;
use crate::product::Product;

/// Why the rest of an order did not rest in the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cancelled {
    /// Immediate or cancel: the rest was cancelled.
    ImmediateOrCancel,
    /// Fill or kill: the book could not fill all of it, so nothing traded.
    FillOrKill,
    /// A market order: the rest found no counterparty.
    MarketRemainder,
    /// It reached its own participant's resting order (cancel newest).
    SelfTrade,
}

/// What became of a submitted order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The trades it made, in order.
    pub trades: Vec<Trade>,
    /// What rests in the book, Wh.
    pub resting: Energy,
    /// What was cancelled, Wh, and why.
    pub cancelled: Option<(Energy, Cancelled)>,
}

/// A resting order.
#[derive(Debug, Clone)]
struct Resting {
    participant: PartyId,
    side: Side,
    price: Price,
    remaining: Energy,
}

/// The orders at one price, in time priority.
#[derive(Debug, Clone, Default)]
struct Level {
    price: Price,
    /// Order ids in arrival order; some may be cancelled (no longer resting).
    queue: VecDeque<OrderId>,
    /// Resting orders in the queue.
    live: usize,
    /// Their remaining energy.
    volume: Energy,
}

/// One level of the book's depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Depth {
    /// The price.
    pub price: Price,
    /// The energy resting at it, Wh.
    pub volume: Energy,
    /// The orders resting at it.
    pub orders: usize,
}

/// The order book of one product.
#[derive(Debug, Clone)]
pub struct Book {
    product: Product,
    /// Bids keyed by minus their price, asks by their price: the best
    /// level of each side is its first key.
    sides: [BTreeMap<i64, Level>; 2],
    resting: HashMap<OrderId, Resting>,
}

const fn index(side: Side) -> usize {
    match side {
        Side::Buy => 0,
        Side::Sell => 1,
    }
}

const fn key(side: Side, price: Price) -> i64 {
    match side {
        Side::Buy => -price.micros(),
        Side::Sell => price.micros(),
    }
}

/// What an incoming order of `side` pays (a buy) or receives (a sell)
/// per kWh when it takes a resting order at `price`, under `fee`.
fn taker_price(side: Side, price: Price, fee: Price) -> Price {
    match side {
        Side::Buy => price + fee,
        Side::Sell => price - fee,
    }
}

/// Whether an incoming order of `side` with `limit` accepts a resting
/// order at `price` under grid fee `fee`.
fn accepts(side: Side, limit: Option<Price>, price: Price, fee: Price) -> bool {
    let taken = taker_price(side, price, fee);
    match (side, limit) {
        (_, None) => true,
        (Side::Buy, Some(limit)) => taken <= limit,
        (Side::Sell, Some(limit)) => taken >= limit,
    }
}

impl Book {
    /// An empty book for `product`.
    #[must_use]
    pub fn new(product: Product) -> Self {
        Self { product, sides: [BTreeMap::new(), BTreeMap::new()], resting: HashMap::new() }
    }

    /// The product.
    #[must_use]
    pub fn product(&self) -> &Product {
        &self.product
    }

    /// Resting orders.
    #[must_use]
    pub fn len(&self) -> usize {
        self.resting.len()
    }

    /// Whether no order rests.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.resting.is_empty()
    }

    /// The best price of `side`, if any order rests there.
    #[must_use]
    pub fn best(&self, side: Side) -> Option<Price> {
        self.sides[index(side)].first_key_value().map(|(_, l)| l.price)
    }

    /// The remaining energy of resting order `id`.
    #[must_use]
    pub fn remaining(&self, id: OrderId) -> Option<Energy> {
        self.resting.get(&id).map(|r| r.remaining)
    }

    /// The best `levels` levels of `side`, best first.
    #[must_use]
    pub fn depth(&self, side: Side, levels: usize) -> Vec<Depth> {
        self.sides[index(side)]
            .values()
            .take(levels)
            .map(|l| Depth { price: l.price, volume: l.volume, orders: l.live })
            .collect()
    }

    /// Matches `order` against the book and rests its remainder as its
    /// kind says.
    ///
    /// # Errors
    /// An order that fails [`Order::check`] against the book's product, or
    /// an id the book holds already; the book is unchanged.
    pub fn submit(&mut self, order: &Order) -> Result<Execution, TradingError> {
        order.check(&self.product)?;
        if self.resting.contains_key(&order.id) {
            return Err(TradingError::DuplicateOrder { id: order.id });
        }
        let limit = order.limit();
        if matches!(order.kind, Kind::Limit { time_in_force: TimeInForce::Fok, .. })
            && self.fillable(order.side, limit, &order.participant, order.quantity) < order.quantity
        {
            return Ok(Execution {
                trades: Vec::new(),
                resting: Energy::ZERO,
                cancelled: Some((order.quantity, Cancelled::FillOrKill)),
            });
        }
        let mut trades = Vec::new();
        let (remaining, self_trade) = self.take(order, limit, &mut trades);
        let cancelled = if remaining.is_zero() {
            None
        } else if self_trade {
            Some((remaining, Cancelled::SelfTrade))
        } else {
            match order.kind {
                Kind::Market => Some((remaining, Cancelled::MarketRemainder)),
                Kind::Limit { time_in_force: TimeInForce::Ioc | TimeInForce::Fok, .. } => {
                    Some((remaining, Cancelled::ImmediateOrCancel))
                }
                Kind::Limit { price, time_in_force: TimeInForce::Gtc } => {
                    self.insert(order.id, order.participant.clone(), order.side, price, remaining);
                    None
                }
            }
        };
        let resting = if cancelled.is_none() { remaining } else { Energy::ZERO };
        Ok(Execution { trades, resting, cancelled })
    }

    /// Volume an order could take before its limit or its own first order.
    fn fillable(&self, side: Side, limit: Option<Price>, participant: &PartyId, wanted: Energy) -> Energy {
        let mut total = Energy::ZERO;
        for level in self.sides[index(side.opposite())].values() {
            if !accepts(side, limit, level.price, self.product.grid_fee) {
                break;
            }
            for id in &level.queue {
                let Some(r) = self.resting.get(id) else { continue };
                if &r.participant == participant {
                    return total;
                }
                total += r.remaining;
                if total >= wanted {
                    return total;
                }
            }
        }
        total
    }

    /// Takes from the opposite side; returns what is left and whether a
    /// self-trade stopped it.
    fn take(&mut self, order: &Order, limit: Option<Price>, trades: &mut Vec<Trade>) -> (Energy, bool) {
        let Self { product, sides, resting } = self;
        let fee = product.grid_fee;
        let book = &mut sides[index(order.side.opposite())];
        let mut remaining = order.quantity;
        while !remaining.is_zero() {
            let Some(mut entry) = book.first_entry() else { break };
            let level = entry.get_mut();
            if !accepts(order.side, limit, level.price, fee) {
                break;
            }
            while !remaining.is_zero() {
                let Some(&maker_id) = level.queue.front() else { break };
                let Some(maker) = resting.get_mut(&maker_id) else {
                    // Cancelled earlier: its slot goes now.
                    level.queue.pop_front();
                    continue;
                };
                if maker.participant == order.participant {
                    return (remaining, true);
                }
                let quantity = if maker.remaining < remaining { maker.remaining } else { remaining };
                let taken = taker_price(order.side, level.price, fee);
                let (buy, sell, buyer, seller, buyer_price, seller_price) = match order.side {
                    Side::Buy => {
                        (order.id, maker_id, order.participant.clone(), maker.participant.clone(), taken, level.price)
                    }
                    Side::Sell => {
                        (maker_id, order.id, maker.participant.clone(), order.participant.clone(), level.price, taken)
                    }
                };
                trades.push(Trade {
                    product: product.id.clone(),
                    buy,
                    sell,
                    buyer,
                    seller,
                    quantity,
                    buyer_price,
                    seller_price,
                    grid_fee: fee,
                });
                maker.remaining -= quantity;
                remaining -= quantity;
                level.volume -= quantity;
                if maker.remaining.is_zero() {
                    resting.remove(&maker_id);
                    level.queue.pop_front();
                    level.live -= 1;
                }
            }
            if level.live == 0 {
                entry.remove();
            }
        }
        (remaining, false)
    }

    fn insert(&mut self, id: OrderId, participant: PartyId, side: Side, price: Price, remaining: Energy) {
        let level =
            self.sides[index(side)].entry(key(side, price)).or_insert_with(|| Level { price, ..Level::default() });
        level.queue.push_back(id);
        level.live += 1;
        level.volume += remaining;
        self.resting.insert(id, Resting { participant, side, price, remaining });
    }

    /// Cancels resting order `id`; returns what it had left.
    ///
    /// # Errors
    /// [`TradingError::UnknownOrder`] when it does not rest here.
    pub fn cancel(&mut self, id: OrderId) -> Result<Energy, TradingError> {
        let r = self.resting.remove(&id).ok_or(TradingError::UnknownOrder { id })?;
        let book = &mut self.sides[index(r.side)];
        let k = key(r.side, r.price);
        if let Some(level) = book.get_mut(&k) {
            level.live -= 1;
            level.volume -= r.remaining;
            if level.live == 0 {
                book.remove(&k);
            } else if level.queue.len() > 2 * level.live + 32 {
                // Many cancelled slots: compact the queue.
                let resting = &self.resting;
                level.queue.retain(|id| resting.contains_key(id));
            }
        }
        Ok(r.remaining)
    }

    /// Reduces resting order `id` to `quantity` (its place is kept).
    ///
    /// # Errors
    /// An unknown order, or a quantity that is not positive or not below
    /// what remains (an increase is a new order).
    pub fn reduce(&mut self, id: OrderId, quantity: Energy) -> Result<(), TradingError> {
        let r = self.resting.get_mut(&id).ok_or(TradingError::UnknownOrder { id })?;
        if quantity <= Energy::ZERO || quantity >= r.remaining {
            return Err(TradingError::invalid(
                "quantity",
                format!("{quantity} kWh; a reduction is positive and below the {} kWh remaining", r.remaining),
            ));
        }
        let cut = r.remaining - quantity;
        r.remaining = quantity;
        if let Some(level) = self.sides[index(r.side)].get_mut(&key(r.side, r.price)) {
            level.volume -= cut;
        }
        Ok(())
    }

    /// Puts a stored resting order back (rebuilding the book after a
    /// restart, in id order): no matching, no gate check.
    ///
    /// # Errors
    /// A duplicate id, a market order, or one that would cross the book
    /// (a stored book never crosses: the store is corrupt).
    pub fn restore(&mut self, order: &Order, remaining: Energy) -> Result<(), TradingError> {
        let Some(price) = order.limit() else {
            return Err(TradingError::invalid("kind", "a market order never rests"));
        };
        if self.resting.contains_key(&order.id) {
            return Err(TradingError::DuplicateOrder { id: order.id });
        }
        let fee = self.product.grid_fee;
        if self.best(order.side.opposite()).is_some_and(|best| accepts(order.side, Some(price), best, fee)) {
            return Err(TradingError::invalid("price", format!("order {} at {price} would cross the book", order.id)));
        }
        self.insert(order.id, order.participant.clone(), order.side, price, remaining);
        Ok(())
    }
}
