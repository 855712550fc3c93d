//! Orders and what becomes of them: trades and fills.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use volta_contracts::{Energy, PartyId};

use crate::error::TradingError;
use crate::price::Price;
use crate::product::{Product, ProductId};

/// An order's number, unique in its market (the store assigns it; its
/// order is the time priority).
pub type OrderId = u64;

/// Buying or selling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buys energy.
    Buy,
    /// Sells energy.
    Sell,
}

impl Side {
    /// The other side.
    #[must_use]
    pub const fn opposite(self) -> Self {
        match self {
            Self::Buy => Self::Sell,
            Self::Sell => Self::Buy,
        }
    }
}

/// How long a limit order's remainder stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeInForce {
    /// Good till cancelled (or the gate closes): the remainder rests.
    Gtc,
    /// Immediate or cancel: what does not match at once is cancelled.
    Ioc,
    /// Fill or kill: all of it at once, or none.
    Fok,
}

/// What an order asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Kind {
    /// At its limit price or better.
    Limit {
        /// The worst price it accepts (a buyer's highest, a seller's lowest).
        price: Price,
        /// How long its remainder stays.
        time_in_force: TimeInForce,
    },
    /// At any price, at once; the remainder is cancelled.
    Market,
}

/// The form of an order beyond one quantity at one limit in one interval,
/// for the call markets that clear many orders at once.
///
/// - A **block** is all or nothing: its energy in each of several
///   intervals, at one limit per kWh over all of them. Only a welfare
///   market clears blocks (one binary each, [`crate::welfare`]), and every
///   interval of a block closes at one gate, so a block of more than one
///   interval needs a market with a day-ahead gate
///   ([`crate::MarketRules::day_ahead_gate`]). The order's product is the
///   block's first interval and its quantity the block's energy.
/// - A **curve** is a participant's steps in one interval, each divisible
///   at its own limit: how much it buys (or sells) at each price. A call
///   market clears a curve as that many limit orders with the order's time
///   priority; the order's limit is its most willing step's (a buyer's
///   highest, a seller's lowest) and its quantity the steps' energy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Energy (Wh, positive) by delivery start, ascending.
    Block(Vec<(Timestamp, Energy)>),
    /// Limit per kWh and energy (Wh, positive) of each step.
    Curve(Vec<(Price, Energy)>),
}

/// The most steps of a curve order.
pub const MAX_CURVE_STEPS: usize = 256;

impl Shape {
    /// The energy of all its intervals or steps, Wh.
    #[must_use]
    pub fn energy(&self) -> Energy {
        match self {
            Self::Block(profile) => profile.iter().map(|(_, e)| *e).sum(),
            Self::Curve(steps) => steps.iter().map(|(_, e)| *e).sum(),
        }
    }

    /// A curve's most willing step's limit on `side` (a buyer's highest,
    /// a seller's lowest): the order's limit; none for a block or an empty
    /// curve.
    #[must_use]
    pub fn limit(&self, side: Side) -> Option<Price> {
        let Self::Curve(steps) = self else { return None };
        let prices = steps.iter().map(|(p, _)| *p);
        match side {
            Side::Buy => prices.max(),
            Side::Sell => prices.min(),
        }
    }

    /// Which form, as stored and shown: `block` or `curve`.
    #[must_use]
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Block(_) => "block",
            Self::Curve(_) => "curve",
        }
    }
}

/// An order of a continuous market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Its number (time priority).
    pub id: OrderId,
    /// Who places it.
    pub participant: PartyId,
    /// The product.
    pub product: ProductId,
    /// Buy or sell.
    pub side: Side,
    /// Limit or market.
    pub kind: Kind,
    /// The energy, Wh, positive.
    pub quantity: Energy,
    /// When it was placed.
    pub placed: Timestamp,
}

impl Order {
    /// The limit price, if any.
    #[must_use]
    pub fn limit(&self) -> Option<Price> {
        match self.kind {
            Kind::Limit { price, .. } => Some(price),
            Kind::Market => None,
        }
    }

    /// Checks the order against `product`: the same product, a positive
    /// quantity, a limit price within the product's bounds, inside the gate.
    ///
    /// # Errors
    /// [`TradingError::Invalid`] naming the field, or
    /// [`TradingError::GateClosed`].
    pub fn check(&self, product: &Product) -> Result<(), TradingError> {
        if self.product != product.id {
            return Err(TradingError::invalid("product", format!("{} is not {}", self.product, product.id)));
        }
        check_energy("quantity", self.quantity)?;
        if let Some(price) = self.limit() {
            product.check_price(price, "price")?;
        }
        product.check_gate(self.placed)
    }
}

/// Refuses energy at `field` that is not positive or is above
/// [`MAX_QUANTITY`] (an order's, a block interval's, a curve step's).
///
/// # Errors
/// [`TradingError::Invalid`] on `field`.
pub fn check_energy(field: &str, e: Energy) -> Result<(), TradingError> {
    if e <= Energy::ZERO {
        return Err(TradingError::invalid(field, format!("{e} kWh is not positive")));
    }
    if e > MAX_QUANTITY {
        return Err(TradingError::invalid(field, format!("{e} kWh is more than {MAX_QUANTITY} kWh")));
    }
    Ok(())
}

/// The most energy of one order: 1 TWh (1e12 Wh), so that no sum of a
/// book's orders can overflow.
pub const MAX_QUANTITY: Energy = Energy::from_wh(1_000_000_000_000);

/// Energy changing hands between two orders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    /// The product.
    pub product: ProductId,
    /// The buying order.
    pub buy: OrderId,
    /// The selling order.
    pub sell: OrderId,
    /// The buyer.
    pub buyer: PartyId,
    /// The seller.
    pub seller: PartyId,
    /// The energy, Wh.
    pub quantity: Energy,
    /// What the buyer pays per kWh, the grid fee included.
    pub buyer_price: Price,
    /// What the seller receives per kWh: the buyer's price less the grid
    /// fee, except under pay-as-bid (the seller's own limit).
    pub seller_price: Price,
    /// The grid fee per kWh (the market's), part of what the buyer pays;
    /// trades stored before fees existed read as none.
    #[serde(default)]
    pub grid_fee: Price,
}

impl Trade {
    /// The grid fee of the trade, exact.
    #[must_use]
    pub fn fee_amount(&self) -> rust_decimal::Decimal {
        crate::price::amount(self.quantity, self.grid_fee)
    }
}

/// What a side settles at per kWh where buyers pay `price` under grid fee
/// `fee`: a buyer `price`, a seller `price` less the fee.
#[must_use]
pub fn settled(side: Side, price: Price, fee: Price) -> Price {
    match side {
        Side::Buy => price,
        Side::Sell => price - fee,
    }
}
