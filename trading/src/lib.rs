//! A local energy market as data and rules: products with their gates,
//! orders, and the mechanisms that match them.
//!
//! - [`price`]: prices as integer millionths per kWh, exact and fast;
//! - [`product`]: delivery intervals and their trading windows, made by a
//!   market's rules per local day (DST days have 92 or 100 quarter hours);
//! - [`order`]: orders, trades;
//! - [`book`]: the continuous double auction, price-time priority;
//! - [`market`]: a market as a service runs it, continuous or a call
//!   auction per product (uniform or over a network): books per product, order records and their
//!   states, expiry or clearing at gate closure, and the rebuild from
//!   stored records;
//! - [`auction`]: call auctions, pay-as-clear and pay-as-bid;
//! - [`network`]: the nodes and lines a market clears over;
//! - [`welfare`]: welfare-maximising clearing over a network on HiGHS, with
//!   block orders and nodal prices;
//! - [`bids`]: a site's bid curves from its dispatch case at price levels;
//! - [`netting`]: contract positions netted before the market, and what is
//!   covered by contract and by the market.
//!
//! Energy is integer watt-hours (the contract model's
//! [`Energy`](volta_contracts::Energy)), participants are the contract
//! model's parties, and every mechanism states its tie-breaking and
//! rationing in its module. This crate knows no database and no gRPC.

pub mod auction;
pub mod bids;
pub mod book;
mod error;
pub mod market;
pub mod netting;
pub mod network;
pub mod order;
pub mod price;
pub mod product;
pub mod welfare;

pub use auction::{Bid, Clearing, Fill, Pricing, clear};
pub use book::{Book, Cancelled, Depth, Execution};
pub use error::TradingError;
pub use market::{
    AuctionRecord, BlockDepth, BlockOutcome, CancelReason, Changes, Entry, Market, NewOrder, OrderState, TradeId,
    TradeRecord,
};
pub use order::{Kind, Order, OrderId, Side, TimeInForce, Trade};
pub use price::Price;
pub use product::{MarketRules, Matching, Product, ProductId};

/// Refuses a list at `field` longer than `max`.
pub(crate) fn at_most(field: &str, len: usize, max: usize) -> Result<(), TradingError> {
    if len > max {
        return Err(TradingError::invalid(field, format!("{len} entries; at most {max}")));
    }
    Ok(())
}
