//! Replacing the uncertain series of a checked case: a load's demand, a
//! renewable's availability, a grid's prices.
//!
//! These are the series an operator does not know in advance. A plan made
//! from a forecast, or one scenario of a stochastic plan, is the same case
//! with some of them replaced; [`Case::with_series`] does that and checks
//! the new values by the rule the case file's field has, so the result is
//! as sound as a case read from a file.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Case, MAX_MAGNITUDE};
use crate::asset::AssetKind;
use crate::ids::AssetId;
use crate::profile::Profile;

/// A series of an asset that can be replaced, named as in a case file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesField {
    /// A load's `demand_kw` (kW, at least 0).
    DemandKw,
    /// A renewable's `availability` (a fraction of its capacity, 0 to 1).
    Availability,
    /// A grid's `import_price` (currency per kWh).
    ImportPrice,
    /// A grid's `export_price` (currency per kWh).
    ExportPrice,
}

impl SeriesField {
    /// Every field, in the order of the case format.
    pub const ALL: [Self; 4] = [Self::DemandKw, Self::Availability, Self::ImportPrice, Self::ExportPrice];

    /// The field's name in a case file.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::DemandKw => "demand_kw",
            Self::Availability => "availability",
            Self::ImportPrice => "import_price",
            Self::ExportPrice => "export_price",
        }
    }

    /// The field called `name` in a case file.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The asset type that has this field.
    #[must_use]
    pub fn asset_type(self) -> &'static str {
        match self {
            Self::DemandKw => "load",
            Self::Availability => "renewable",
            Self::ImportPrice | Self::ExportPrice => "grid",
        }
    }

    /// Whether `v` is an allowed value, and if not, the rule in words.
    fn check(self, v: f64) -> Result<(), &'static str> {
        if !v.is_finite() {
            return Err("a finite number");
        }
        if v.abs() > MAX_MAGNITUDE {
            return Err("within ±1e9");
        }
        match self {
            Self::DemandKw if v < 0.0 => Err("at least 0"),
            Self::Availability if !(0.0..=1.0).contains(&v) => Err("between 0 and 1"),
            Self::DemandKw | Self::Availability | Self::ImportPrice | Self::ExportPrice => Ok(()),
        }
    }
}

impl fmt::Display for SeriesField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One replaceable series of a case: `asset.field`, e.g. `campus_electric.demand_kw`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesRef {
    /// The asset.
    pub asset: AssetId,
    /// Which of its series.
    pub field: SeriesField,
}

impl SeriesRef {
    /// `asset.field`.
    #[must_use]
    pub fn new(asset: impl Into<String>, field: SeriesField) -> Self {
        Self { asset: AssetId::new(asset), field }
    }

    /// Parses `asset.field` (the field after the last dot).
    ///
    /// # Errors
    /// A message naming what is wrong, for a missing dot or an unknown field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let Some((asset, field)) = text.rsplit_once('.') else {
            return Err(format!("{text:?} is not asset.field (e.g. campus_electric.demand_kw)"));
        };
        let field = SeriesField::from_name(field).ok_or_else(|| {
            let names: Vec<&str> = SeriesField::ALL.iter().map(|f| f.name()).collect();
            format!("{text:?}: {field:?} is not a replaceable series; one of {}", names.join(", "))
        })?;
        Ok(Self::new(asset, field))
    }
}

impl fmt::Display for SeriesRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.asset, self.field)
    }
}

/// Why a series could not be read or replaced.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplaceError {
    /// No asset has that id.
    #[error("{0}: the case has no asset {asset:?}", asset = .0.asset.as_str())]
    UnknownAsset(SeriesRef),
    /// The asset is of a type without that series.
    #[error("{series}: {asset} is a {actual}, and only a {expected} has {field}", asset = series.asset, field = series.field)]
    WrongType {
        /// The series asked for.
        series: SeriesRef,
        /// The asset's type.
        actual: &'static str,
        /// The type that has the field.
        expected: &'static str,
    },
    /// The new values are not one per step of the case.
    #[error("{series}: {got} values for a case of {steps} steps")]
    Length {
        /// The series being replaced.
        series: SeriesRef,
        /// Values given.
        got: usize,
        /// Steps of the case's grid.
        steps: usize,
    },
    /// A value breaks the field's rule.
    #[error("{series}: step {step} is {value}, but must be {rule}")]
    Value {
        /// The series being replaced.
        series: SeriesRef,
        /// The first offending step.
        step: usize,
        /// Its value.
        value: f64,
        /// What it must be.
        rule: &'static str,
    },
}

impl Case {
    /// The profile named by `series`.
    ///
    /// # Errors
    /// [`ReplaceError::UnknownAsset`] or [`ReplaceError::WrongType`].
    pub fn series(&self, series: &SeriesRef) -> Result<&Profile, ReplaceError> {
        let position = self.position_of_asset(series)?;
        let kind = &self.assets[position].kind;
        slot(kind, series.field).ok_or_else(|| wrong_type(series, kind))
    }

    /// This case with `series` replaced by `values`, one per step of its
    /// grid, each checked by the field's rule (demand at least 0,
    /// availability in [0, 1], every value finite).
    ///
    /// # Errors
    /// A [`ReplaceError`] naming the series, and for a bad value its step.
    pub fn with_series(&self, series: &SeriesRef, values: Vec<f64>) -> Result<Self, ReplaceError> {
        let position = self.position_of_asset(series)?;
        if slot(&self.assets[position].kind, series.field).is_none() {
            return Err(wrong_type(series, &self.assets[position].kind));
        }
        let steps = self.grid.len();
        if values.len() != steps {
            return Err(ReplaceError::Length { series: series.clone(), got: values.len(), steps });
        }
        for (step, &value) in values.iter().enumerate() {
            series.field.check(value).map_err(|rule| ReplaceError::Value {
                series: series.clone(),
                step,
                value,
                rule,
            })?;
        }
        let mut case = self.clone();
        if let Some(profile) = slot_mut(&mut case.assets[position].kind, series.field) {
            *profile = Profile::Series(Arc::from(values));
        }
        Ok(case)
    }

    fn position_of_asset(&self, series: &SeriesRef) -> Result<usize, ReplaceError> {
        self.assets.iter().position(|a| a.id == series.asset).ok_or_else(|| ReplaceError::UnknownAsset(series.clone()))
    }
}

fn wrong_type(series: &SeriesRef, kind: &AssetKind) -> ReplaceError {
    ReplaceError::WrongType { series: series.clone(), actual: kind.type_name(), expected: series.field.asset_type() }
}

fn slot(kind: &AssetKind, field: SeriesField) -> Option<&Profile> {
    match (kind, field) {
        (AssetKind::Load(load), SeriesField::DemandKw) => Some(&load.demand_kw),
        (AssetKind::Renewable(r), SeriesField::Availability) => Some(&r.availability),
        (AssetKind::Grid(g), SeriesField::ImportPrice) => Some(&g.import_price),
        (AssetKind::Grid(g), SeriesField::ExportPrice) => Some(&g.export_price),
        _ => None,
    }
}

fn slot_mut(kind: &mut AssetKind, field: SeriesField) -> Option<&mut Profile> {
    match (kind, field) {
        (AssetKind::Load(load), SeriesField::DemandKw) => Some(&mut load.demand_kw),
        (AssetKind::Renewable(r), SeriesField::Availability) => Some(&mut r.availability),
        (AssetKind::Grid(g), SeriesField::ImportPrice) => Some(&mut g.import_price),
        (AssetKind::Grid(g), SeriesField::ExportPrice) => Some(&mut g.export_price),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::Format;

    fn case() -> Case {
        let text = r#"
            name = "t"
            [time]
            start = "2024-03-31T00:00"
            timezone = "Europe/Berlin"
            step = "1h"
            steps = 4
            [[buses]]
            id = "elec"
            carrier = "electricity"
            [[assets]]
            id = "load"
            type = "load"
            bus = "elec"
            demand_kw = 10
            [[assets]]
            id = "pv"
            type = "renewable"
            bus = "elec"
            capacity_kw = 5
            availability = [0.0, 0.5, 1.0, 0.2]
            [[assets]]
            id = "grid"
            type = "grid"
            bus = "elec"
            import_price = 0.3
        "#;
        Case::from_str(text, Format::Toml).expect("case")
    }

    #[test]
    fn a_replaced_series_is_read_back_and_the_rest_is_unchanged() {
        let case = case();
        let demand = SeriesRef::parse("load.demand_kw").expect("ref");
        let replaced = case.with_series(&demand, vec![1.0, 2.0, 3.0, 4.0]).expect("replace");
        assert_eq!(replaced.series(&demand).expect("series").to_vec(4), vec![1.0, 2.0, 3.0, 4.0]);
        assert_eq!(case.series(&demand).expect("series").to_vec(4), vec![10.0; 4]);
        let pv = SeriesRef::new("pv", SeriesField::Availability);
        assert_eq!(replaced.series(&pv), case.series(&pv));
        assert_eq!(replaced.grid(), case.grid());
    }

    #[test]
    fn bad_replacements_name_the_series_and_the_step() {
        let case = case();
        let pv = SeriesRef::new("pv", SeriesField::Availability);
        let err = case.with_series(&pv, vec![0.0, 0.5, 1.2, 0.0]).expect_err("above 1");
        assert_eq!(err.to_string(), "pv.availability: step 2 is 1.2, but must be between 0 and 1");
        let err = case.with_series(&pv, vec![0.0; 3]).expect_err("short");
        assert_eq!(err.to_string(), "pv.availability: 3 values for a case of 4 steps");
        let demand = SeriesRef::new("load", SeriesField::DemandKw);
        let err = case.with_series(&demand, vec![1.0, f64::NAN, 1.0, 1.0]).expect_err("nan");
        assert!(err.to_string().contains("step 1 is NaN, but must be a finite number"), "{err}");
        let err = case.with_series(&demand, vec![1.0, -1.0, 1.0, 1.0]).expect_err("negative");
        assert!(err.to_string().contains("at least 0"), "{err}");
        let err = case.series(&SeriesRef::new("pv", SeriesField::ImportPrice)).expect_err("type");
        assert_eq!(err.to_string(), "pv.import_price: pv is a renewable, and only a grid has import_price");
        let err = case.series(&SeriesRef::new("nope", SeriesField::DemandKw)).expect_err("unknown");
        assert_eq!(err.to_string(), "nope.demand_kw: the case has no asset \"nope\"");
        assert!(SeriesRef::parse("load").is_err());
        assert!(SeriesRef::parse("load.demand").expect_err("field").contains("one of demand_kw"));
    }
}
