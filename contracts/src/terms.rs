//! A contract's terms as data: its kind, price rule, volume and the shape
//! that spreads it over intervals, tolerance band and penalty rule,
//! currency and rounding. Provincial rules differ (3 % or 5 % tolerance,
//! a penalty of 5 % of the price or 3 times the spread to the market), so
//! every number of them is a field here, none is code.

use jiff::civil::Date;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::calendar::Period;
use crate::error::ContractError;
use crate::parties::Technology;
use crate::quantity::{Energy, Percent, Price, Rounding};
use crate::tou::TouTable;

/// What sort of contract it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A bilateral contract at a fixed price.
    FixedPrice,
    /// A retail contract priced by a time-of-use table.
    TimeOfUse,
    /// A power purchase agreement with physical delivery.
    PpaPhysical,
    /// A virtual (financial) PPA: settled as a difference to an index.
    PpaVirtual,
    /// A contract for difference against an index.
    ContractForDifference,
    /// The buyer pays for a minimum volume whether it takes it or not.
    TakeOrPay,
}

impl Kind {
    /// The kind's name as written in files.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::FixedPrice => "fixed_price",
            Self::TimeOfUse => "time_of_use",
            Self::PpaPhysical => "ppa_physical",
            Self::PpaVirtual => "ppa_virtual",
            Self::ContractForDifference => "contract_for_difference",
            Self::TakeOrPay => "take_or_pay",
        }
    }
}

/// How the energy is priced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum PriceRule {
    /// One price for every kWh.
    Fixed {
        /// Per kWh.
        price: Price,
    },
    /// A time-of-use table.
    Tou {
        /// The table.
        table: TouTable,
    },
    /// A market index plus an adder, interval by interval.
    IndexPlus {
        /// The index's name (`spot_east`).
        index: String,
        /// Added to the index, per kWh.
        adder: Price,
    },
    /// A contract for difference: the seller receives `strike - index` per
    /// kWh delivered (pays it when negative).
    CfdStrike {
        /// The index's name.
        index: String,
        /// The strike price per kWh.
        strike: Price,
    },
}

/// How much energy the contract covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case", deny_unknown_fields)]
pub enum Quantity {
    /// One volume for the whole delivery period.
    Total {
        /// The volume.
        energy: Energy,
    },
    /// A volume per calendar month (months not listed: none).
    Monthly {
        /// Each month's volume.
        months: Vec<MonthVolume>,
    },
    /// The same volume every day.
    Daily {
        /// Each day's volume.
        energy: Energy,
    },
}

/// A month's contracted volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MonthVolume {
    /// The month's first day (`2025-03-01`).
    pub month: Date,
    /// Its volume.
    pub energy: Energy,
}

/// How a volume is spread over its intervals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "shape", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// The same energy in every interval.
    Flat,
    /// By weights over the local day: 24 (hourly) or 96 (quarter-hourly)
    /// non-negative weights, applied to each interval by its local start.
    Profile {
        /// The day's weights.
        weights: Vec<u32>,
    },
    /// A share of the volume per time-of-use period, flat within it.
    ByTouPeriod {
        /// Each period's share; they add up to 100 %.
        shares: Vec<PeriodShare>,
    },
}

/// A TOU period's share of the volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodShare {
    /// The period's name in the TOU table.
    pub period: String,
    /// Its share.
    pub share: Percent,
}

/// Where tolerance bands are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BandGranularity {
    /// Each calendar month's total.
    Month,
    /// Each local day's total.
    Day,
    /// Each meter interval.
    Interval,
}

/// The tolerance band: delivered within `contracted × (1 - lower)` and
/// `contracted × (1 + upper)` is within the band.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Where it is checked.
    pub granularity: BandGranularity,
    /// How far below the contracted volume is tolerated.
    pub lower: Percent,
    /// How far above.
    pub upper: Percent,
}

/// The price a deviation beyond the band pays, per kWh, before the multiplier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PenaltyBase {
    /// The contract's own price (its volume-weighted average over the band's bucket).
    ContractPrice,
    /// A market index (its contracted-volume-weighted average over the bucket).
    Index {
        /// The index's name.
        index: String,
    },
    /// The spread between the contract price and a market index, in absolute value.
    Spread {
        /// The index's name.
        index: String,
    },
}

/// Which deviations pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Above and below the band.
    Both,
    /// Only a shortfall below the band (take-or-pay).
    Under,
    /// Only an excess above it.
    Over,
}

/// What a deviation beyond the band costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PenaltySpec", into = "PenaltySpec")]
pub struct Penalty {
    /// The price it is based on.
    pub base: PenaltyBase,
    /// Times the base (`0.05` for 5 % of the price, `3` for 3x the spread).
    pub multiplier: Decimal,
    /// Which deviations pay.
    pub applies_to: Direction,
    /// Metering points of these technologies pay no penalty.
    pub exempt: Vec<Technology>,
}

/// A penalty as files write it: `base = "spread", index = "spot"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PenaltySpec {
    base: BaseName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<String>,
    multiplier: Decimal,
    applies_to: Direction,
    #[serde(default)]
    exempt: Vec<Technology>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum BaseName {
    ContractPrice,
    Index,
    Spread,
}

impl TryFrom<PenaltySpec> for Penalty {
    type Error = String;

    fn try_from(spec: PenaltySpec) -> Result<Self, String> {
        let base = match (spec.base, spec.index) {
            (BaseName::ContractPrice, None) => PenaltyBase::ContractPrice,
            (BaseName::ContractPrice, Some(_)) => return Err("index: the contract price needs no index".into()),
            (BaseName::Index, Some(index)) => PenaltyBase::Index { index },
            (BaseName::Spread, Some(index)) => PenaltyBase::Spread { index },
            (BaseName::Index | BaseName::Spread, None) => return Err("index: name the market index".into()),
        };
        Ok(Self { base, multiplier: spec.multiplier, applies_to: spec.applies_to, exempt: spec.exempt })
    }
}

impl From<Penalty> for PenaltySpec {
    fn from(penalty: Penalty) -> Self {
        let (base, index) = match penalty.base {
            PenaltyBase::ContractPrice => (BaseName::ContractPrice, None),
            PenaltyBase::Index { index } => (BaseName::Index, Some(index)),
            PenaltyBase::Spread { index } => (BaseName::Spread, Some(index)),
        };
        Self { base, index, multiplier: penalty.multiplier, applies_to: penalty.applies_to, exempt: penalty.exempt }
    }
}

/// The terms of one version of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// Its kind.
    pub kind: Kind,
    /// The local dates of delivery, first to last.
    pub delivery_first: Date,
    /// The last date of delivery.
    pub delivery_last: Date,
    /// How energy is priced.
    pub price: PriceRule,
    /// How much energy is contracted.
    pub quantity: Quantity,
    /// How the volume is spread over intervals.
    pub shape: Shape,
    /// The tolerance band, if any.
    #[serde(default)]
    pub band: Option<Band>,
    /// The penalty beyond the band, if any.
    #[serde(default)]
    pub penalty: Option<Penalty>,
    /// ISO 4217 currency code.
    pub currency: String,
    /// Decimal places of the currency's minor unit on statements.
    pub decimals: u32,
    /// How statement amounts are rounded.
    #[serde(default)]
    pub rounding: Rounding,
}

impl Terms {
    /// The delivery period.
    #[must_use]
    pub fn delivery(&self) -> Period {
        Period::new(self.delivery_first, self.delivery_last.tomorrow().unwrap_or(self.delivery_last))
            .unwrap_or_else(|_| Period::day(self.delivery_first))
    }

    /// The TOU table of the price rule, if it is one.
    #[must_use]
    pub fn tou(&self) -> Option<&TouTable> {
        match &self.price {
            PriceRule::Tou { table } => Some(table),
            PriceRule::Fixed { .. } | PriceRule::IndexPlus { .. } | PriceRule::CfdStrike { .. } => None,
        }
    }

    /// The market indices the terms need prices of.
    #[must_use]
    pub fn indices(&self) -> Vec<&str> {
        let mut out = Vec::new();
        match &self.price {
            PriceRule::IndexPlus { index, .. } | PriceRule::CfdStrike { index, .. } => out.push(index.as_str()),
            PriceRule::Fixed { .. } | PriceRule::Tou { .. } => {}
        }
        if let Some(penalty) = &self.penalty {
            match &penalty.base {
                PenaltyBase::Index { index } | PenaltyBase::Spread { index } => out.push(index.as_str()),
                PenaltyBase::ContractPrice => {}
            }
        }
        out.dedup();
        out
    }

    /// Checks every rule of the terms, naming the field that breaks one.
    ///
    /// # Errors
    /// [`ContractError::Invalid`] with the field's path.
    pub fn check(&self) -> Result<(), ContractError> {
        if self.delivery_last < self.delivery_first {
            return Err(ContractError::invalid("delivery_last", "before delivery_first"));
        }
        let price_fits = match self.kind {
            Kind::FixedPrice => matches!(self.price, PriceRule::Fixed { .. }),
            Kind::TimeOfUse => matches!(self.price, PriceRule::Tou { .. }),
            Kind::PpaPhysical | Kind::TakeOrPay => {
                matches!(self.price, PriceRule::Fixed { .. } | PriceRule::Tou { .. } | PriceRule::IndexPlus { .. })
            }
            Kind::PpaVirtual | Kind::ContractForDifference => matches!(self.price, PriceRule::CfdStrike { .. }),
        };
        if !price_fits {
            return Err(ContractError::invalid(
                "price.rule",
                format!("a {} contract cannot be priced this way", self.kind.name()),
            ));
        }
        if let PriceRule::Tou { table } = &self.price {
            table.check().map_err(|e| e.within("price.table"))?;
        }
        if let PriceRule::IndexPlus { index, .. } | PriceRule::CfdStrike { index, .. } = &self.price
            && index.is_empty()
        {
            return Err(ContractError::invalid("price.index", "name the market index"));
        }
        if let Some(Penalty { base: PenaltyBase::Index { index } | PenaltyBase::Spread { index }, .. }) = &self.penalty
            && index.is_empty()
        {
            return Err(ContractError::invalid("penalty.index", "name the market index"));
        }
        self.check_quantity()?;
        self.check_shape()?;
        if let Some(band) = &self.band {
            for (name, pct) in [("band.lower", band.lower), ("band.upper", band.upper)] {
                if pct.value() < Decimal::ZERO || pct.value() > Decimal::ONE_HUNDRED {
                    return Err(ContractError::invalid(name, format!("{pct} is not between 0 and 100 %")));
                }
            }
        }
        if let Some(penalty) = &self.penalty {
            if self.band.is_none() {
                return Err(ContractError::invalid("penalty", "a penalty needs a band to deviate from"));
            }
            if penalty.multiplier < Decimal::ZERO {
                return Err(ContractError::invalid("penalty.multiplier", "negative"));
            }
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(ContractError::invalid("currency", format!("{:?} is not an ISO 4217 code", self.currency)));
        }
        if self.decimals > 6 {
            return Err(ContractError::invalid("decimals", "at most 6"));
        }
        Ok(())
    }

    fn check_quantity(&self) -> Result<(), ContractError> {
        let delivery = self.delivery();
        match &self.quantity {
            Quantity::Total { energy } | Quantity::Daily { energy } => {
                if *energy < Energy::ZERO {
                    return Err(ContractError::invalid("quantity.energy", "negative"));
                }
            }
            Quantity::Monthly { months } => {
                crate::at_most("quantity.months", months.len(), crate::bounds::MONTHS)?;
                for (i, month) in months.iter().enumerate() {
                    let field = format!("quantity.months[{i}]");
                    if month.month.day() != 1 {
                        return Err(ContractError::invalid(format!("{field}.month"), "give the month's first day"));
                    }
                    if months[..i].iter().any(|m| m.month == month.month) {
                        return Err(ContractError::invalid(format!("{field}.month"), "repeated"));
                    }
                    if Period::month_of(month.month).intersect(&delivery).is_none() {
                        return Err(ContractError::invalid(format!("{field}.month"), "outside the delivery period"));
                    }
                    if month.energy < Energy::ZERO {
                        return Err(ContractError::invalid(format!("{field}.energy"), "negative"));
                    }
                }
            }
        }
        Ok(())
    }

    fn check_shape(&self) -> Result<(), ContractError> {
        match &self.shape {
            Shape::Flat => Ok(()),
            Shape::Profile { weights } => {
                if weights.len() != 24 && weights.len() != 96 {
                    return Err(ContractError::invalid("shape.weights", "give 24 hourly or 96 quarter-hourly weights"));
                }
                if weights.iter().all(|w| *w == 0) {
                    return Err(ContractError::invalid("shape.weights", "all zero"));
                }
                Ok(())
            }
            Shape::ByTouPeriod { shares } => {
                let Some(table) = self.tou() else {
                    return Err(ContractError::invalid("shape", "by_tou_period needs a TOU price table"));
                };
                crate::at_most("shape.shares", shares.len(), crate::bounds::SHARES)?;
                for (i, share) in shares.iter().enumerate() {
                    if !table.periods.iter().any(|p| p.name == share.period) {
                        return Err(ContractError::invalid(
                            format!("shape.shares[{i}].period"),
                            format!("no period {:?}", share.period),
                        ));
                    }
                    if share.share.value() < Decimal::ZERO {
                        return Err(ContractError::invalid(format!("shape.shares[{i}].share"), "negative"));
                    }
                }
                let total: Decimal = shares.iter().map(|s| s.share.value()).sum();
                if total != Decimal::ONE_HUNDRED {
                    return Err(ContractError::invalid("shape.shares", format!("they add up to {total} %, not 100 %")));
                }
                Ok(())
            }
        }
    }
}
