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
//!   inputs;
//! - [`projection`]: where a period will end, settled under scenarios of
//!   the rest of it.
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
pub mod projection;
pub mod quantity;
pub mod readings;
pub mod rollup;
pub mod settlement;
pub mod statistics;
pub mod terms;
pub mod tou;

#[cfg(test)]
mod testing;

/// The most of each list a contract may hold, checked before any work
/// (every check is then quadratic at worst in these small numbers).
pub mod bounds {
    /// Metering points of a contract.
    pub const METERS: usize = 64;
    /// Claims on one shared meter.
    pub const CLAIMS: usize = 64;
    /// Periods of a TOU table.
    pub const TOU_PERIODS: usize = 32;
    /// Rules of a TOU table.
    pub const TOU_RULES: usize = 256;
    /// Consumption tiers of a TOU table.
    pub const TIERS: usize = 16;
    /// Monthly volumes of a contract (ten years).
    pub const MONTHS: usize = 120;
    /// Period shares of a shape.
    pub const SHARES: usize = 32;
}

/// Refuses a list at `field` longer than `max`.
pub(crate) fn at_most(field: &str, len: usize, max: usize) -> Result<(), ContractError> {
    if len > max {
        return Err(ContractError::invalid(field, format!("{len} entries; at most {max}")));
    }
    Ok(())
}

pub use calendar::{Granularity, Period};
pub use contract::{Contract, State, TermVersion};
pub use error::ContractError;
pub use parties::{ContractId, Location, MeterId, MeteringPoint, Party, PartyId, Role, Technology};
pub use quantity::{Energy, Percent, Price, Rounding};
pub use readings::{Quality, Reading, ReadingLog};
pub use terms::Terms;
