//! What to train: the model, its features, when forecasts are issued,
//! which quantiles to calibrate and how, and the bounds every such spec is
//! held to whoever calls.

use jiff::civil::Time;
use serde::{Deserialize, Serialize};

use crate::error::{ForecastError, Result};
use crate::features::FeatureSpec;
use crate::history::History;
use crate::models::ModelSpec;

/// The bounds every [`ForecastSpec`] is held to, whoever calls: beyond them
/// an option is a mistake (or an attack), not a model. Services set tighter
/// budgets of their own.
pub mod bounds {
    /// Steps of one forecast (a week of one-minute steps and more).
    pub const MAX_HORIZON: usize = 20_000;
    /// Same-time lags, in days (a year and a month back).
    pub const MAX_LAG_DAYS: usize = 400;
    /// Number of lags.
    pub const MAX_LAGS: usize = 32;
    /// Quantile levels.
    pub const MAX_QUANTILES: usize = 99;
    /// Calibration regimes.
    pub const MAX_REGIME_BINS: usize = 20;
    /// Cross-fitting folds.
    pub const MAX_CALIBRATION_FOLDS: usize = 20;
    /// Days of held-out calibration, and of a training window.
    pub const MAX_DAYS: usize = 36_600;
    /// Trees of a gradient-boosted model.
    pub const MAX_TREES: usize = 100_000;
}

/// What to train: the model, its features, when forecasts are issued, and
/// which quantiles to calibrate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForecastSpec {
    /// The point model.
    pub model: ModelSpec,
    /// The features (horizon included).
    pub features: FeatureSpec,
    /// Local time of day at which forecasts are issued.
    pub issue_time: Time,
    /// Quantile levels, in (0, 1), increasing.
    pub quantiles: Vec<f64>,
    /// Days held out at the end of training to calibrate the quantiles when
    /// `calibration_folds` is 0; the window of recent errors a backtest
    /// recalibrates on in that case.
    pub calibration_days: usize,
    /// Train on at most this many days before the cut (all when `None`).
    pub train_days: Option<usize>,
    /// GBDT only: forecast each quantile with its own pinball-loss trees,
    /// then correct each by its held-out errors (conformalised quantile
    /// regression), instead of adding error quantiles to the point forecast.
    #[serde(default)]
    pub quantile_trees: bool,
    /// Calibrate on the out-of-fold errors of this many cross-fitted models
    /// over the whole training period (blocked folds), instead of on the
    /// last `calibration_days` only (0).
    #[serde(default)]
    pub calibration_folds: usize,
    /// Calibrate separately in `regime_bins` regimes of this variable.
    #[serde(default)]
    pub regime: Regime,
    /// Number of regimes (equal shares of the calibration errors).
    #[serde(default)]
    pub regime_bins: usize,
}

/// What the quantile calibration conditions on besides the lead time
/// (Mondrian conformal prediction): errors are grouped in bins of this
/// variable, and a forecast takes its offsets from its own bin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regime {
    /// One set of offsets per block of leads.
    #[default]
    None,
    /// The temperature at the target step (a known-ahead column).
    Temperature,
    /// The point forecast.
    Level,
}

impl Regime {
    /// Parses a front end's name.
    ///
    /// # Errors
    /// An unknown name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "none" => Ok(Self::None),
            "temperature" => Ok(Self::Temperature),
            "level" => Ok(Self::Level),
            other => Err(ForecastError::option(
                "calibrate_by",
                format!("{other:?}; expected auto, none, temperature or level"),
            )),
        }
    }

    /// The variable's value at `step` of `series` for a forecast `point`
    /// (NaN where unknown).
    pub(crate) fn value(self, series: &History, features: &FeatureSpec, step: usize, point: f64) -> f64 {
        match self {
            Self::None => f64::NAN,
            Self::Level => point,
            Self::Temperature => features
                .temperature
                .as_deref()
                .and_then(|t| series.exog(t))
                .and_then(|e| e.values.get(step).copied())
                .unwrap_or(f64::NAN),
        }
    }
}

impl ForecastSpec {
    /// A spec with the default calibration (three cross-fitted folds, one
    /// regime) and training window (all).
    #[must_use]
    pub fn new(model: ModelSpec, features: FeatureSpec, issue_time: Time, quantiles: Vec<f64>) -> Self {
        Self {
            model,
            features,
            issue_time,
            quantiles,
            calibration_days: 28,
            train_days: None,
            quantile_trees: false,
            calibration_folds: 3,
            regime: Regime::None,
            regime_bins: 3,
        }
    }

    /// Checks the options; errors name the option.
    ///
    /// # Errors
    /// A zero horizon, quantiles outside (0, 1) or not increasing, and any
    /// option beyond its [`bounds`].
    pub fn check(&self) -> Result<()> {
        let within = |option: &str, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ForecastError::option(option, format!("must be in {min}..={max}, not {value}")))
            }
        };
        within("horizon", self.features.horizon, 1, bounds::MAX_HORIZON)?;
        within("lags", self.features.lag_days.len(), 0, bounds::MAX_LAGS)
            .map_err(|_| ForecastError::option("lags", format!("at most {} lags", bounds::MAX_LAGS)))?;
        for (i, &lag) in self.features.lag_days.iter().enumerate() {
            within(&format!("lags[{i}]"), lag, 1, bounds::MAX_LAG_DAYS)?;
        }
        if self.quantiles.len() > bounds::MAX_QUANTILES {
            return Err(ForecastError::option("quantiles", format!("at most {} levels", bounds::MAX_QUANTILES)));
        }
        within("regime_bins", self.regime_bins, 1, bounds::MAX_REGIME_BINS)?;
        within("calibration_folds", self.calibration_folds, 0, bounds::MAX_CALIBRATION_FOLDS)?;
        within("calibration_days", self.calibration_days, 0, bounds::MAX_DAYS)?;
        if let Some(days) = self.train_days {
            within("train_days", days, 1, bounds::MAX_DAYS)?;
        }
        if let ModelSpec::Gbdt(p) = &self.model {
            within("trees", p.trees, 1, bounds::MAX_TREES)?;
        }
        for w in self.quantiles.windows(2) {
            if w[1] <= w[0] {
                return Err(ForecastError::option("quantiles", "must be strictly increasing"));
            }
        }
        if let Some(q) = self.quantiles.iter().find(|q| !(**q > 0.0 && **q < 1.0)) {
            return Err(ForecastError::option("quantiles", format!("{q} is outside (0, 1)")));
        }
        if let ModelSpec::Gbdt(p) = &self.model {
            p.check().map_err(|e| ForecastError::option("gbdt", e))?;
        }
        if self.quantile_trees && (!matches!(self.model, ModelSpec::Gbdt(_)) || self.quantiles.is_empty()) {
            return Err(ForecastError::option("intervals", "quantile trees need the gbdt model and --quantiles"));
        }
        if let ModelSpec::Linear { penalty, l1_ratio } = &self.model
            && !(penalty.is_finite() && *penalty >= 0.0 && (0.0..=1.0).contains(l1_ratio))
        {
            return Err(ForecastError::option("linear", "penalty must be >= 0 and l1_ratio in [0, 1]"));
        }
        Ok(())
    }
}
