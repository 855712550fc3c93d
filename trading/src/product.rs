//! Products: delivery intervals of a market, each tradable between its
//! gate opening and its gate closure.
//!
//! A market defines its products as data: the zone its days are read in,
//! the length of a delivery interval, and how long before delivery each
//! gate opens and closes. A local day has 92, 96 or 100 quarter-hour
//! products across the clock changes.

use std::fmt;
use std::sync::Arc;

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::TradingError;
use crate::network::Network;
use crate::price::{Price, Pricing};

/// Identifies a product: its delivery start (UTC) and length in minutes,
/// `2024-04-06T16:00:00Z/15`.
///
/// Shared text: a product's id is cloned into every order and trade, and a
/// clone of an `Arc<str>` allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct ProductId(Arc<str>);

impl ProductId {
    /// The id of the product delivering from `start` for `minutes`.
    #[must_use]
    pub fn of(start: Timestamp, minutes: i64) -> Self {
        Self(Arc::from(format!("{start}/{minutes}")))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for ProductId {
    fn from(id: String) -> Self {
        Self(Arc::from(id))
    }
}

impl From<ProductId> for String {
    fn from(id: ProductId) -> Self {
        id.0.as_ref().to_owned()
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One delivery interval and its trading window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: ProductId,
    /// Delivery starts.
    pub delivery_start: Timestamp,
    /// Delivery ends (exclusive).
    pub delivery_end: Timestamp,
    /// Orders are accepted from here...
    pub gate_open: Timestamp,
    /// ...until here (exclusive).
    pub gate_close: Timestamp,
    /// The lowest limit price accepted.
    pub min_price: Price,
    /// The highest limit price accepted.
    pub max_price: Price,
    /// The grid fee per kWh traded, which the buyer pays on top of what
    /// the seller receives (the market's [`MarketRules::grid_fee`]).
    #[serde(default)]
    pub grid_fee: Price,
}

impl Product {
    /// Refuses an order at `at` outside the gate.
    ///
    /// # Errors
    /// [`TradingError::GateClosed`].
    pub fn check_gate(&self, at: Timestamp) -> Result<(), TradingError> {
        let state = if at < self.gate_open {
            "not open yet"
        } else if at >= self.gate_close {
            "closed"
        } else {
            return Ok(());
        };
        Err(TradingError::GateClosed {
            product: self.id.to_string(),
            state,
            at,
            open: self.gate_open,
            close: self.gate_close,
        })
    }

    /// Refuses a limit price outside the product's bounds.
    ///
    /// # Errors
    /// [`TradingError::Invalid`] on `field`.
    pub fn check_price(&self, price: Price, field: &str) -> Result<(), TradingError> {
        if price < self.min_price || price > self.max_price {
            return Err(TradingError::invalid(
                field,
                format!("{price} is outside the product's bounds [{}, {}]", self.min_price, self.max_price),
            ));
        }
        Ok(())
    }
}

/// How a market matches the orders of a product.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Matching {
    /// A continuous double auction: an order trades as it arrives, against
    /// the best resting orders in price-time priority ([`crate::book`]).
    #[default]
    Continuous,
    /// A call auction: orders are collected, unmatched, while the gate is
    /// open, and the product clears at once when it closes
    /// ([`crate::auction`]), paid as stated.
    Call(Pricing),
    /// A call auction over the market's network: orders are collected at
    /// their nodes while the gate is open, and the product clears when it
    /// closes by maximising welfare ([`crate::welfare`]), each node at its
    /// own price where a line is congested.
    Welfare,
}

impl Matching {
    /// The matching as stored and shown: `continuous`, `pay_as_clear`,
    /// `pay_as_bid`, `welfare`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Continuous => "continuous",
            Self::Call(Pricing::PayAsClear) => "pay_as_clear",
            Self::Call(Pricing::PayAsBid) => "pay_as_bid",
            Self::Welfare => "welfare",
        }
    }
}

/// How a market makes its products.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketRules {
    /// The zone its days are read in (IANA).
    pub time_zone: String,
    /// Minutes of a delivery interval: 5, 10, 15, 30 or 60.
    pub interval_minutes: i64,
    /// The gate opens this long before delivery (with a day-ahead gate:
    /// before the delivery day begins).
    pub gate_opens_before: SignedDuration,
    /// The gate closes this long before delivery (zero: at delivery; zero
    /// with a day-ahead gate).
    pub gate_closes_before: SignedDuration,
    /// A day-ahead gate: every product of a local delivery day closes at
    /// this local time of the day before (an hour that the clocks skip
    /// reads as the hour after), and opens `gate_opens_before` before the
    /// day begins. All of a day's products then clear together, and a
    /// block order may span them. None: each product has its own gate,
    /// `gate_closes_before` before its delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_ahead_gate: Option<Time>,
    /// The lowest limit price.
    pub min_price: Price,
    /// The highest limit price.
    pub max_price: Price,
    /// How orders are matched (continuous when rules stored before it
    /// existed are read).
    #[serde(default)]
    pub matching: Matching,
    /// The grid fee per kWh traded (zero: none; rules stored before it
    /// existed read as none): a flat network charge on every kWh that
    /// changes hands, whoever the parties and wherever they are. The buyer
    /// pays it on top of what the seller receives, so an order trades only
    /// where a bid covers an ask and the fee; each mechanism states how
    /// ([`crate::book`], [`crate::auction`]).
    #[serde(default)]
    pub grid_fee: Price,
    /// The network a welfare market clears over (its orders name their
    /// node); none for the other matchings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
}

impl MarketRules {
    /// Checks the rules.
    ///
    /// # Errors
    /// [`TradingError::Invalid`] naming the field.
    pub fn check(&self) -> Result<TimeZone, TradingError> {
        let zone = TimeZone::get(&self.time_zone).map_err(|_| {
            TradingError::invalid("time_zone", format!("{:?} is not an IANA time zone", self.time_zone))
        })?;
        if ![5, 10, 15, 30, 60].contains(&self.interval_minutes) {
            return Err(TradingError::invalid(
                "interval_minutes",
                format!("{}; one of 5, 10, 15, 30, 60", self.interval_minutes),
            ));
        }
        match self.day_ahead_gate {
            None if self.gate_closes_before.is_negative() || self.gate_opens_before <= self.gate_closes_before => {
                return Err(TradingError::invalid(
                    "gate_opens_before",
                    "the gate must open before it closes, and close at or before delivery",
                ));
            }
            None => {}
            Some(_) if !self.gate_closes_before.is_zero() => {
                return Err(TradingError::invalid(
                    "gate_closes_before",
                    "a day-ahead gate closes at its time of the day before delivery; leave this zero",
                ));
            }
            Some(at) => {
                // From the gate to midnight is 24 h less the time of day,
                // an hour more on the day the clocks go back.
                let since_midnight = SignedDuration::from_secs(
                    i64::from(at.hour()) * 3600 + i64::from(at.minute()) * 60 + i64::from(at.second()),
                );
                let longest = SignedDuration::from_hours(25) - since_midnight;
                if self.gate_opens_before <= longest {
                    return Err(TradingError::invalid(
                        "gate_opens_before",
                        format!(
                            "a day-ahead gate closing at {at} must open more than {longest:#} before the delivery \
                             day, so that it opens before it closes on every day"
                        ),
                    ));
                }
            }
        }
        if self.min_price > self.max_price
            || self.min_price < Price::from_micros(-Price::LIMIT.micros())
            || self.max_price > Price::LIMIT
        {
            return Err(TradingError::invalid(
                "max_price",
                format!("[{}, {}] is not a price range within ±{}", self.min_price, self.max_price, Price::LIMIT),
            ));
        }
        crate::price::check_fee(self.grid_fee)?;
        match (self.matching, &self.network) {
            (Matching::Welfare, Some(network)) => {
                network.check()?;
            }
            (Matching::Welfare, None) => {
                return Err(TradingError::invalid(
                    "network",
                    "a welfare market clears over a network: give its nodes (and lines, if any)",
                ));
            }
            (Matching::Continuous | Matching::Call(_), Some(_)) => {
                return Err(TradingError::invalid(
                    "network",
                    format!("only a welfare market clears over a network; this one is {}", self.matching.as_str()),
                ));
            }
            (Matching::Continuous | Matching::Call(_), None) => {}
        }
        Ok(zone)
    }

    /// The products delivering on local day `day`: 24 hours' worth, or 23
    /// or 25 on the days the clocks change.
    ///
    /// # Errors
    /// Invalid rules.
    pub fn products(&self, day: Date) -> Result<Vec<Product>, TradingError> {
        let zone = self.check()?;
        let midnight = |d: Date| {
            volta_contracts::calendar::local_midnight(d, &zone)
                .map(|z| z.timestamp())
                .map_err(|e| TradingError::invalid("day", e.to_string()))
        };
        let start = midnight(day)?;
        let end = midnight(day.tomorrow().map_err(|e| TradingError::invalid("day", e.to_string()))?)?;
        let step = SignedDuration::from_mins(self.interval_minutes);
        let day_ahead = match self.day_ahead_gate {
            Some(at) => {
                let eve = day.yesterday().map_err(|e| TradingError::invalid("day", e.to_string()))?;
                let close = eve
                    .to_datetime(at)
                    .to_zoned_datetime(zone.clone())
                    .map_err(|e| TradingError::invalid("day", e.to_string()))?;
                Some((start - self.gate_opens_before, close.timestamp()))
            }
            None => None,
        };
        let mut out = Vec::new();
        let mut t = start;
        while t < end {
            let (gate_open, gate_close) =
                day_ahead.unwrap_or((t - self.gate_opens_before, t - self.gate_closes_before));
            out.push(Product {
                id: ProductId::of(t, self.interval_minutes),
                delivery_start: t,
                delivery_end: t + step,
                gate_open,
                gate_close,
                min_price: self.min_price,
                max_price: self.max_price,
                grid_fee: self.grid_fee,
            });
            t += step;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    fn rules() -> MarketRules {
        MarketRules {
            time_zone: "Europe/Berlin".into(),
            interval_minutes: 15,
            gate_opens_before: SignedDuration::from_hours(24),
            gate_closes_before: SignedDuration::from_mins(5),
            min_price: "-0.5".parse().expect("price"),
            max_price: "4".parse().expect("price"),
            matching: Matching::Continuous,
            grid_fee: Price::ZERO,
            network: None,
            day_ahead_gate: None,
        }
    }

    #[test]
    fn a_day_has_its_local_quarter_hours_and_each_its_gate() {
        assert_eq!(rules().products(date(2024, 3, 30)).expect("products").len(), 96);
        assert_eq!(rules().products(date(2024, 3, 31)).expect("products").len(), 92);
        let autumn = rules().products(date(2024, 10, 27)).expect("products");
        assert_eq!(autumn.len(), 100);
        let first = &autumn[0];
        assert_eq!(first.id.as_str(), "2024-10-26T22:00:00Z/15");
        assert_eq!(first.gate_close, "2024-10-26T21:55:00Z".parse::<Timestamp>().expect("instant"));
        assert!(first.check_gate("2024-10-26T21:54:59Z".parse().expect("instant")).is_ok());
        let closed = first.check_gate("2024-10-26T21:55:00Z".parse().expect("instant")).expect_err("closed");
        assert!(closed.to_string().contains("closed"), "{closed}");
        let early = first.check_gate("2024-10-25T21:59:59Z".parse().expect("instant")).expect_err("early");
        assert!(early.to_string().contains("not open yet"), "{early}");
        assert!(first.check_price("4.000001".parse().expect("price"), "price").is_err());
    }

    #[test]
    fn a_day_ahead_gate_closes_every_product_of_a_day_at_noon_the_day_before() {
        let noon = MarketRules {
            gate_opens_before: SignedDuration::from_hours(48),
            gate_closes_before: SignedDuration::ZERO,
            day_ahead_gate: Some(Time::constant(12, 0, 0, 0)),
            ..rules()
        };
        // The spring day (92 quarter hours) closes at noon CET on the 30th,
        // the autumn day (100) at noon CEST on the 26th.
        for (day, count, close) in
            [(date(2024, 3, 31), 92, "2024-03-30T11:00:00Z"), (date(2024, 10, 27), 100, "2024-10-26T10:00:00Z")]
        {
            let products = noon.products(day).expect("products");
            assert_eq!(products.len(), count);
            let close: Timestamp = close.parse().expect("instant");
            assert!(products.iter().all(|p| p.gate_close == close && p.gate_open == products[0].gate_open));
            assert_eq!(products[0].gate_open, products[0].delivery_start - SignedDuration::from_hours(48));
        }
        let late = MarketRules { gate_closes_before: SignedDuration::from_mins(5), ..noon.clone() };
        assert!(late.check().expect_err("both").to_string().starts_with("gate_closes_before"));
        // Open 12 h before the day and closed at noon the day before: never open.
        let never = MarketRules { gate_opens_before: SignedDuration::from_hours(13), ..noon };
        assert!(never.check().expect_err("never open").to_string().starts_with("gate_opens_before"), "13 h");
    }

    #[test]
    fn bad_rules_are_named() {
        let bad = MarketRules { interval_minutes: 7, ..rules() };
        assert!(bad.check().expect_err("7").to_string().starts_with("interval_minutes"));
        let bad = MarketRules { gate_closes_before: SignedDuration::from_hours(25), ..rules() };
        assert!(bad.check().expect_err("gate").to_string().starts_with("gate_opens_before"));
        let bad = MarketRules { time_zone: "Mars/Base".into(), ..rules() };
        assert!(bad.check().expect_err("zone").to_string().starts_with("time_zone"));
        let bad = MarketRules { grid_fee: Price::from_micros(-1), ..rules() };
        assert!(bad.check().expect_err("fee").to_string().starts_with("grid_fee"));
        let bad = MarketRules { matching: Matching::Welfare, ..rules() };
        assert!(bad.check().expect_err("no network").to_string().starts_with("network"));
        let bad = MarketRules { network: Some(Network::single("a")), ..rules() };
        assert!(bad.check().expect_err("not welfare").to_string().starts_with("network"));
        let bad = MarketRules { matching: Matching::Welfare, network: Some(Network::single("")), ..rules() };
        assert!(bad.check().expect_err("unnamed").to_string().starts_with("network.nodes[0]"));
        let good = MarketRules { matching: Matching::Welfare, network: Some(Network::single("a")), ..rules() };
        assert!(good.check().is_ok());
    }
}
