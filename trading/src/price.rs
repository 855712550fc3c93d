//! Prices as integer millionths of the currency unit per kWh.
//!
//! A matching engine compares prices millions of times a second and must
//! never round: integers do both. A price has at most six decimals
//! (0.000001 per kWh, a thousandth of a cent per MWh), and what a trade is
//! worth is energy (integer Wh) times price, exact in `i128`, handed out as
//! a [`Decimal`].

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use volta_contracts::Energy;

use crate::error::TradingError;

/// Decimals of a price.
pub const DECIMALS: u32 = 6;

/// A price per kWh, in millionths of the currency unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Price(i64);

impl Price {
    /// The largest magnitude of any price: 1,000 per kWh (a million per
    /// MWh, far beyond any market's cap; each market sets its own bounds).
    pub const LIMIT: Self = Self(1_000 * 1_000_000);

    /// Zero.
    pub const ZERO: Self = Self(0);

    /// A price of `micros` millionths per kWh.
    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// The price in millionths per kWh.
    #[must_use]
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The price as a decimal per kWh.
    #[must_use]
    pub fn to_decimal(self) -> Decimal {
        Decimal::new(self.0, DECIMALS).normalize()
    }

    /// A decimal price per kWh, exact: at most six decimals, within
    /// [`Price::LIMIT`].
    ///
    /// # Errors
    /// [`TradingError::Invalid`] on `price`.
    pub fn from_decimal(value: Decimal) -> Result<Self, TradingError> {
        let scaled = value * Decimal::new(1_000_000, 0);
        if scaled.fract() != Decimal::ZERO {
            return Err(TradingError::invalid("price", format!("{value} has more than {DECIMALS} decimals")));
        }
        let micros =
            i64::try_from(scaled).map_err(|_| TradingError::invalid("price", format!("{value} is out of range")))?;
        let price = Self(micros);
        if price.0.abs() > Self::LIMIT.0 {
            return Err(TradingError::invalid("price", format!("{value} is beyond ±{} per kWh", Self::LIMIT)));
        }
        Ok(price)
    }

    /// The midpoint of two prices, rounded down to the tick.
    #[must_use]
    pub const fn midpoint(self, other: Self) -> Self {
        Self((self.0 + other.0).div_euclid(2))
    }
}

/// Checks a grid fee per kWh: at least zero, at most [`Price::LIMIT`].
///
/// # Errors
/// [`TradingError::Invalid`] on `grid_fee`.
pub fn check_fee(fee: Price) -> Result<Price, TradingError> {
    if fee < Price::ZERO || fee > Price::LIMIT {
        return Err(TradingError::invalid(
            "grid_fee",
            format!("{fee} per kWh; at least 0 and at most {}", Price::LIMIT),
        ));
    }
    Ok(fee)
}

impl std::ops::Add for Price {
    type Output = Self;

    /// The sum (saturating: prices checked at the boundary are within a
    /// thousand per kWh of zero, far from it).
    fn add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl std::ops::Sub for Price {
    type Output = Self;

    /// The difference (saturating, as the sum).
    fn sub(self, other: Self) -> Self {
        Self(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_decimal())
    }
}

impl FromStr for Price {
    type Err = TradingError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = Decimal::from_str(text.trim())
            .map_err(|_| TradingError::invalid("price", format!("{text:?} is not a decimal number")))?;
        Self::from_decimal(value)
    }
}

impl TryFrom<String> for Price {
    type Error = TradingError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Price> for String {
    fn from(price: Price) -> Self {
        price.to_string()
    }
}

/// What `energy` is worth at `price`, exact.
#[must_use]
pub fn amount(energy: Energy, price: Price) -> Decimal {
    // Wh x millionths per kWh = 1e-9 of the currency unit.
    Decimal::from_i128_with_scale(i128::from(energy.wh()) * i128::from(price.micros()), 9).normalize()
}

/// How the accepted orders of a call auction pay ([`crate::auction`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pricing {
    /// Everyone at the clearing price.
    PayAsClear,
    /// Everyone at their own limit.
    PayAsBid,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_exact_to_six_decimals_and_bounded() {
        assert_eq!("0.123456".parse::<Price>().expect("price").micros(), 123_456);
        assert_eq!("-0.5".parse::<Price>().expect("price").micros(), -500_000);
        assert_eq!("0.1".parse::<Price>().expect("price").to_string(), "0.1");
        assert!("0.1234567".parse::<Price>().is_err());
        assert!("1000.000001".parse::<Price>().is_err());
        assert!("1e4".parse::<Price>().is_err());
        assert!("NaN".parse::<Price>().is_err());
        assert_eq!(Price::from_micros(3).midpoint(Price::from_micros(4)), Price::from_micros(3));
        assert_eq!(Price::from_micros(-3).midpoint(Price::from_micros(-4)), Price::from_micros(-4));
    }

    #[test]
    fn amounts_are_exact() {
        // 1.5 kWh at 0.123457 = 0.1851855.
        assert_eq!(amount(Energy::from_wh(1_500), Price::from_micros(123_457)).to_string(), "0.1851855");
        let big = amount(Energy::from_wh(i64::MAX / 2), Price::LIMIT);
        assert!(big > Decimal::ZERO);
    }
}
