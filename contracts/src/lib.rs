//! Energy contracts as data, and the numbers a contract service answers
//! with: what was contracted, what was delivered, where the deviation
//! stands and what it costs.
//!
//! - [`parties`]: parties, metering points and the ids of each;
//! - [`terms`] and [`tou`]: a contract's terms (kind, price rule, volume and
//!   shape, tolerance band, penalty), every number of them data;
//! - [`contract`]: the lifecycle, and terms as versions only ever added;
//! - [`readings`]: meter readings with quality flags and revisions;
//! - [`curve`]: a volume spread over meter intervals, exact to the Wh;
//! - [`allocation`]: one meter shared by several contracts, in order;
//! - [`ledger`]: a contract's intervals over a period: contracted,
//!   delivered, priced, each with the term version and revision it used;
//! - [`rollup`]: the daily rollups (per TOU period) that statistics read;
//! - [`statistics`]: volume statistics, TOU breakdowns and band checks,
//!   from rollups and, independently, from a plain scan of the intervals;
//! - [`settlement`]: a period's settlement, immutable, with the hash of its
//!   inputs.
//!
//! Energy is integer watt-hours ([`Energy`]), money is decimal
//! ([`rust_decimal::Decimal`]), and time is the engine's zoned grid: a local
//! day has 92, 96 or 100 quarter hours across the clock changes. This crate
//! knows no database and no gRPC; the service layer stores and serves it.

pub mod allocation;
pub mod calendar;
pub mod contract;
pub mod curve;
mod error;
pub mod ledger;
pub mod parties;
pub mod quantity;
pub mod readings;
pub mod rollup;
pub mod settlement;
pub mod statistics;
pub mod terms;
pub mod tou;

#[cfg(test)]
mod testing;

pub use calendar::{Granularity, Period};
pub use contract::{Contract, State, TermVersion};
pub use error::ContractError;
pub use parties::{ContractId, Location, MeterId, MeteringPoint, Party, PartyId, Role, Technology};
pub use quantity::{Energy, Percent, Price, Rounding};
pub use readings::{Quality, Reading, ReadingLog};
pub use terms::Terms;
