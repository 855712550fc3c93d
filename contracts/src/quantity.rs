//! Exact quantities: energy in whole watt-hours, prices and money in decimal.
//!
//! Energy is counted in integer Wh, so 0.001 kWh is its stated precision and
//! every sum of readings is exact whatever order it is added in (the rollup
//! and the plain scan of the readings agree to the watt-hour, by
//! construction). Prices are decimal currency per kWh and amounts decimal
//! currency, never binary floating point: 0.1 + 0.2 is 0.3 here.

use std::fmt;
use std::iter::Sum;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ContractError;

/// Watt-hours in a kilowatt-hour.
const WH_PER_KWH: i64 = 1000;

/// An amount of energy, exact to the watt-hour; negative for a flow the
/// other way (export, a downward deviation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Energy(i64);

impl Energy {
    /// No energy.
    pub const ZERO: Self = Self(0);

    /// `wh` watt-hours.
    #[must_use]
    pub const fn from_wh(wh: i64) -> Self {
        Self(wh)
    }

    /// Whole kilowatt-hours.
    #[must_use]
    pub const fn from_kwh(kwh: i64) -> Self {
        Self(kwh * WH_PER_KWH)
    }

    /// The energy in watt-hours.
    #[must_use]
    pub const fn wh(self) -> i64 {
        self.0
    }

    /// The energy in kWh, exactly.
    #[must_use]
    pub fn kwh(self) -> Decimal {
        Decimal::new(self.0, 3)
    }

    /// `kwh` kilowatt-hours, refused when finer than a watt-hour.
    ///
    /// # Errors
    /// [`ContractError::Precision`] for more than three decimals.
    pub fn try_from_kwh(kwh: Decimal) -> Result<Self, ContractError> {
        let wh = kwh * Decimal::from(WH_PER_KWH);
        if wh.fract() != Decimal::ZERO {
            return Err(ContractError::Precision { value: kwh.to_string() });
        }
        i64::try_from(wh).map(Self).map_err(|_| ContractError::Precision { value: kwh.to_string() })
    }

    /// The larger of zero and this.
    #[must_use]
    pub fn positive_part(self) -> Self {
        Self(self.0.max(0))
    }

    /// The absolute value.
    #[must_use]
    pub fn abs(self) -> Self {
        Self(self.0.abs())
    }

    /// Whether this is zero.
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The money this energy is worth at `price` per kWh, exactly.
    #[must_use]
    pub fn at(self, price: Price) -> Decimal {
        self.kwh() * price.per_kwh()
    }
}

impl fmt::Display for Energy {
    /// kWh with its three decimals: `1234.500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.kwh().to_string())
    }
}

impl FromStr for Energy {
    type Err = ContractError;

    /// kWh as decimal text: `12`, `12.5`, `-0.125`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let kwh = Decimal::from_str(text.trim()).map_err(|_| ContractError::Number { value: text.to_owned() })?;
        Self::try_from_kwh(kwh)
    }
}

impl Serialize for Energy {
    /// As kWh text, so that no reader ever sees a binary float.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Energy {
    /// From kWh as text or as a number (a number's shortest decimal form).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kwh = <Decimal as Deserialize>::deserialize(deserializer)?;
        Self::try_from_kwh(kwh).map_err(serde::de::Error::custom)
    }
}

impl Add for Energy {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self(self.0 + other.0)
    }
}

impl AddAssign for Energy {
    fn add_assign(&mut self, other: Self) {
        self.0 += other.0;
    }
}

impl Sub for Energy {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Self(self.0 - other.0)
    }
}

impl SubAssign for Energy {
    fn sub_assign(&mut self, other: Self) {
        self.0 -= other.0;
    }
}

impl Neg for Energy {
    type Output = Self;
    fn neg(self) -> Self {
        Self(-self.0)
    }
}

impl Sum for Energy {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self(iter.map(|e| e.0).sum())
    }
}

impl<'a> Sum<&'a Energy> for Energy {
    fn sum<I: Iterator<Item = &'a Self>>(iter: I) -> Self {
        Self(iter.map(|e| e.0).sum())
    }
}

/// A price in currency per kWh, exact.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(Decimal);

impl Price {
    /// `per_kwh` currency per kWh.
    #[must_use]
    pub const fn new(per_kwh: Decimal) -> Self {
        Self(per_kwh)
    }

    /// The price per kWh.
    #[must_use]
    pub const fn per_kwh(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0.to_string())
    }
}

impl FromStr for Price {
    type Err = ContractError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Decimal::from_str(text.trim()).map(Self).map_err(|_| ContractError::Number { value: text.to_owned() })
    }
}

impl Add for Price {
    type Output = Self;
    fn add(self, other: Self) -> Self {
        Self(self.0 + other.0)
    }
}

impl Sub for Price {
    type Output = Self;
    fn sub(self, other: Self) -> Self {
        Self(self.0 - other.0)
    }
}

/// A percentage, exact: `3` is 3 %.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Percent(Decimal);

impl Percent {
    /// `value` percent.
    #[must_use]
    pub const fn new(value: Decimal) -> Self {
        Self(value)
    }

    /// The percentage (`3` for 3 %).
    #[must_use]
    pub const fn value(self) -> Decimal {
        self.0
    }

    /// The fraction (`0.03` for 3 %).
    #[must_use]
    pub fn fraction(self) -> Decimal {
        self.0 / Decimal::ONE_HUNDRED
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} %", self.0)
    }
}

/// How an amount is rounded to the currency's minor unit, once, on the
/// statement (every intermediate amount stays exact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Halves away from zero (commercial rounding), the usual rule on bills.
    #[default]
    HalfUp,
    /// Halves to the even neighbour (banker's rounding).
    HalfEven,
}

impl Rounding {
    /// `amount` rounded to `decimals` places by this rule.
    #[must_use]
    pub fn apply(self, amount: Decimal, decimals: u32) -> Decimal {
        let strategy = match self {
            Self::HalfUp => rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            Self::HalfEven => rust_decimal::RoundingStrategy::MidpointNearestEven,
        };
        amount.round_dp_with_strategy(decimals, strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).expect("decimal")
    }

    #[test]
    fn energy_reads_and_writes_kwh_to_the_watt_hour() {
        let e: Energy = "1234.5".parse().expect("parses");
        assert_eq!(e.wh(), 1_234_500);
        assert_eq!(e.to_string(), "1234.500");
        assert_eq!("-0.125".parse::<Energy>().expect("parses").wh(), -125);
        let error = "0.0001".parse::<Energy>().expect_err("finer than a Wh");
        assert!(error.to_string().contains("0.0001"), "{error}");
        assert!("twelve".parse::<Energy>().is_err());
    }

    #[test]
    fn money_is_exact() {
        let price = Price::new(dec("0.1"));
        let a = Energy::from_kwh(1).at(price) + Energy::from_kwh(2).at(price);
        assert_eq!(a, dec("0.3"));
        assert_eq!(Energy::from_wh(1).at(Price::new(dec("0.38125"))), dec("0.00038125"));
    }

    #[test]
    fn rounding_is_stated() {
        assert_eq!(Rounding::HalfUp.apply(dec("2.345"), 2), dec("2.35"));
        assert_eq!(Rounding::HalfEven.apply(dec("2.345"), 2), dec("2.34"));
        assert_eq!(Rounding::HalfUp.apply(dec("-2.345"), 2), dec("-2.35"));
    }

    #[test]
    fn serde_keeps_energy_as_text() {
        let json = serde_json::to_string(&Energy::from_wh(1500)).expect("json");
        assert_eq!(json, "\"1.500\"");
        let back: Energy = serde_json::from_str("1.5").expect("a number reads too");
        assert_eq!(back, Energy::from_wh(1500));
        assert!(serde_json::from_str::<Energy>("\"1.0005\"").is_err());
    }
}
