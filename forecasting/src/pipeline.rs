//! Training with calibrated quantiles, saved models, forecasts and
//! rolling-origin backtests.
//!
//! Probabilistic forecasts are the point forecast plus quantiles of the
//! model's own out-of-sample errors (conformal prediction). By default the
//! errors come from cross-fitting: the training issues are split into
//! consecutive folds, and each fold is forecast, exactly as in operation
//! (same issue time, same horizon), by a model fitted on the other folds
//! without the issues whose targets overlap it. The errors of the whole
//! training period thus calibrate the final model, which is fitted on all
//! of it. Alternatively the last `calibration_days` are held out (split
//! conformal). Offsets are kept per block of lead times and, optionally,
//! per regime of a known-ahead variable such as the temperature (Mondrian
//! conformal), so that hot days take their intervals from hot days' errors.
//! Quantiles are monotone in the level, so they never cross; a target that
//! was never negative in training is clipped at 0.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;
use volta_engine::Cancel;

use jiff::Timestamp;
use jiff::civil::Time;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Exog, History, ReadOptions};
use crate::error::{ForecastError, Result};
use crate::features::{self, Context, FeatureSpec};
use crate::gbdt::{Gbdt, GbdtParams, Loss, quantile};
use crate::metrics::{self, Metrics, Scored};
use crate::models::{self, Fitted, ModelSpec};

/// The name and version written into every model file.
pub const MODEL_FORMAT: &str = "volta-forecast-model";
/// Current model-file version.
pub const MODEL_VERSION: u32 = 1;

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
    fn value(self, series: &History, features: &FeatureSpec, step: usize, point: f64) -> f64 {
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

/// Error quantiles per block of lead times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Leads per block.
    pub block: usize,
    /// `offsets[block][q]`: the level-q quantile of (actual − forecast),
    /// divided by the forecast when `relative`.
    pub offsets: Vec<Vec<f64>>,
    /// Inner edges of the regime bins, increasing (none: one regime).
    #[serde(default)]
    pub edges: Vec<f64>,
    /// `regimes[bin][block][q]`: the offsets of each regime bin.
    #[serde(default)]
    pub regimes: Vec<Vec<Vec<f64>>>,
    /// Whether offsets are relative to the forecast (a positive target).
    #[serde(default)]
    pub relative: bool,
    /// Held-out errors used.
    pub residuals: usize,
    /// Those errors (not saved: a backtest recalibrates from them).
    #[serde(skip)]
    held_out: Vec<Residual>,
}

/// A trained model, as saved to and loaded from a model file (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainedModel {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// The file version ([`MODEL_VERSION`]).
    pub version: u32,
    /// What was trained.
    pub spec: ForecastSpec,
    /// The target column.
    pub target: String,
    /// Exogenous columns the model reads, with their known-ahead flags.
    pub exog: Vec<(String, bool)>,
    /// Step of the training data, seconds.
    pub step_seconds: i64,
    /// Time zone of the calendar.
    pub timezone: String,
    /// End of the training data (exclusive).
    pub trained_until: Timestamp,
    /// Clip forecasts at zero (the target was never negative in training).
    pub nonnegative: bool,
    /// In-sample MAE of the one-day seasonal naive (the MASE scale).
    pub naive_scale: f64,
    /// The fitted point model.
    pub fitted: Fitted,
    /// Quantile calibration, when quantiles were asked for.
    pub calibration: Option<Calibration>,
    /// Pinball-loss trees, one per quantile level (with `quantile_trees`).
    #[serde(default)]
    pub quantile_models: Vec<Gbdt>,
}

/// One issued forecast.
#[derive(Debug, Clone, Serialize)]
pub struct Forecast {
    /// Issue time.
    pub issue: Timestamp,
    /// Index of the issue step in the series.
    pub issue_step: usize,
    /// Point forecast per lead.
    pub point: Vec<f64>,
    /// `quantiles[lead][q]`, levels as in the spec.
    pub quantiles: Vec<Vec<f64>>,
}

fn issues_before(series: &History, spec: &ForecastSpec, ctx: &Context, end: usize) -> Vec<usize> {
    let first = spec.features.history_days(ctx.steps_per_day) * ctx.steps_per_day;
    let from = spec.train_days.map_or(0, |d| end.saturating_sub(d * ctx.steps_per_day));
    features::issue_steps(series, spec.issue_time).into_iter().filter(|&i| i >= first && i >= from && i < end).collect()
}

/// Trains on the data of `series` before step `end`.
///
/// # Errors
/// Invalid options, too little data, or a failed fit.
pub fn train(series: &History, spec: &ForecastSpec, end: usize) -> Result<TrainedModel> {
    train_cancellable(series, spec, end, &Cancel::new())
}

/// [`train`], stopping with [`ForecastError::Cancelled`] soon after `cancel`
/// is cancelled: checked before every model fit and every boosted tree.
///
/// # Errors
/// As [`train`], and `Cancelled`.
pub fn train_cancellable(series: &History, spec: &ForecastSpec, end: usize, cancel: &Cancel) -> Result<TrainedModel> {
    let ctx = Context::new(series, &spec.features);
    train_with(series, spec, &ctx, end, cancel)
}

fn train_with(
    series: &History,
    spec: &ForecastSpec,
    ctx: &Context,
    end: usize,
    cancel: &Cancel,
) -> Result<TrainedModel> {
    spec.check()?;
    cancel.check()?;
    let end = end.min(series.len());
    let spd = ctx.steps_per_day;
    let issues = issues_before(series, spec, ctx, end);
    if issues.is_empty() {
        return Err(ForecastError::option(
            "train_until",
            format!(
                "no issue time {} with {} days of history before the end of training",
                spec.issue_time,
                spec.features.history_days(spd)
            ),
        ));
    }
    // The calibration fit (on all but the last `calibration_days`) and the
    // final fit are independent: run them side by side.
    let (calibration, fitted) = rayon::join(
        || {
            if spec.quantiles.is_empty() {
                Ok(None)
            } else {
                calibrate(series, spec, ctx, &issues, end, cancel).map(Some)
            }
        },
        || models::fit(&spec.model, series, &spec.features, ctx, &issues, end, cancel),
    );
    let (calibration, fitted) = (calibration?, fitted?);
    let quantile_models =
        if spec.quantile_trees { fit_quantile_trees(series, spec, ctx, &issues, end, cancel)? } else { Vec::new() };
    let y = &series.target[..end];
    let nonnegative = y.iter().all(|v| v.is_nan() || *v >= 0.0);
    let (sum, n) = (spd..end)
        .filter_map(|i| {
            let d = y[i] - y[i - spd];
            (!d.is_nan()).then_some(d.abs())
        })
        .fold((0.0, 0usize), |(s, n), d| (s + d, n + 1));
    Ok(TrainedModel {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        spec: spec.clone(),
        target: series.target_name.clone(),
        exog: series.exog.iter().map(|e| (e.name.clone(), e.known_ahead)).collect(),
        step_seconds: series.step_s(),
        timezone: series.tz().iana_name().unwrap_or("UTC").to_owned(),
        trained_until: series.time(end),
        nonnegative,
        naive_scale: if n > 0 { sum / n as f64 } else { f64::NAN },
        fitted,
        calibration,
        quantile_models,
    })
}

/// One pinball-loss GBDT per quantile level, fitted in parallel.
fn fit_quantile_trees(
    series: &History,
    spec: &ForecastSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
    cancel: &Cancel,
) -> Result<Vec<Gbdt>> {
    let ModelSpec::Gbdt(params) = &spec.model else {
        return Err(ForecastError::option("intervals", "quantile trees need the gbdt model"));
    };
    let samples = features::Samples::build(series, &spec.features, ctx, issues, end);
    spec.quantiles
        .par_iter()
        .map(|&alpha| {
            let p = GbdtParams { loss: Loss::Quantile { alpha }, ..params.clone() };
            Gbdt::fit_cancellable(&samples.x, samples.width, &samples.y, &p, cancel).map_err(|reason| {
                if cancel.is_cancelled() {
                    ForecastError::from(volta_engine::Cancelled)
                } else {
                    ForecastError::Fit { model: format!("gbdt q{alpha}"), reason }
                }
            })
        })
        .collect()
}

/// Raw quantile-tree forecasts `[lead][level]` from issue step `i0`.
fn raw_quantiles(models: &[Gbdt], series: &History, spec: &FeatureSpec, ctx: &Context, i0: usize) -> Vec<Vec<f64>> {
    let mut row = Vec::new();
    (0..spec.horizon)
        .map(|k| {
            if i0 + k >= series.len() {
                return vec![f64::NAN; models.len()];
            }
            features::row(series, spec, ctx, i0, k, &mut row);
            models.iter().map(|m| m.predict_row(&row)).collect()
        })
        .collect()
}

fn calibrate(
    series: &History,
    spec: &ForecastSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
    cancel: &Cancel,
) -> Result<Calibration> {
    let spd = ctx.steps_per_day;
    let h = spec.features.horizon;
    if spec.regime == Regime::Temperature && !spec.features.temperature_known_ahead(series) {
        return Err(ForecastError::option(
            "calibrate_by",
            "temperature needs a temperature column that is known ahead (a forecast)",
        ));
    }
    // Each part: the issues a model is fitted on, the data end it may use,
    // and the issues it forecasts out of sample.
    let parts: Vec<(Vec<usize>, usize, Vec<usize>)> = if spec.calibration_folds >= 2 {
        cross_fit_folds(issues, spec.calibration_folds, h, end)
            .into_iter()
            .map(|(fit, held)| (fit, end, held))
            .collect()
    } else {
        let cut = end.saturating_sub(spec.calibration_days * spd);
        let fit: Vec<usize> = issues.iter().copied().filter(|&i| i < cut).collect();
        let held: Vec<usize> = issues.iter().copied().filter(|&i| i >= cut && i + h <= end).collect();
        if spec.calibration_days == 0 { Vec::new() } else { vec![(fit, cut, held)] }
    };
    if parts.iter().any(|(fit, _, held)| fit.is_empty() || held.is_empty()) || parts.is_empty() {
        let (option, what) = if spec.calibration_folds >= 2 {
            ("calibration_folds", format!("{} folds", spec.calibration_folds))
        } else {
            ("calibration_days", format!("{} days", spec.calibration_days))
        };
        return Err(ForecastError::option(
            option,
            format!(
                "{what} leave no forecasts to calibrate the quantiles on (training has {} issue times)",
                issues.len()
            ),
        ));
    }
    let held_out: Vec<Vec<Residual>> = parts
        .par_iter()
        .map(|(fit_issues, cut, held)| {
            let fitted = models::fit(&spec.model, series, &spec.features, ctx, fit_issues, *cut, cancel)?;
            let trees = if spec.quantile_trees {
                fit_quantile_trees(series, spec, ctx, fit_issues, *cut, cancel)?
            } else {
                Vec::new()
            };
            let mut out = Vec::new();
            for &i0 in held {
                let point = fitted.predict(series, &spec.features, ctx, i0);
                let raw =
                    if trees.is_empty() { Vec::new() } else { raw_quantiles(&trees, series, &spec.features, ctx, i0) };
                for (k, p) in point.iter().enumerate() {
                    let levels = raw.get(k).map_or(&[][..], Vec::as_slice);
                    out.extend(Residual::new(series, spec, i0, k, *p, levels));
                }
            }
            Ok(out)
        })
        .collect::<Result<_>>()?;
    let held_out: Vec<Residual> = held_out.into_iter().flatten().collect();
    // A strictly positive target (a load) has errors that grow with its
    // level: calibrate relative errors. Otherwise (PV, with its zeros at
    // night) absolute ones. Quantile trees are corrected additively.
    let relative = !spec.quantile_trees && series.target[..end].iter().all(|v| v.is_nan() || *v > 0.0);
    let edges = if spec.regime == Regime::None || spec.regime_bins < 2 {
        Vec::new()
    } else {
        let mut values: Vec<f64> = held_out.iter().map(|r| r.regime).filter(|v| v.is_finite()).collect();
        let mut edges: Vec<f64> =
            (1..spec.regime_bins).map(|j| quantile(&mut values, j as f64 / spec.regime_bins as f64)).collect();
        edges.dedup();
        edges
    };
    let mut calibration = Calibration {
        block: h.div_ceil(8).max(1),
        edges,
        offsets: Vec::new(),
        regimes: Vec::new(),
        relative,
        residuals: 0,
        held_out: Vec::new(),
    };
    calibration.refit(&held_out, h, &spec.quantiles);
    calibration.held_out = held_out;
    Ok(calibration)
}

/// Blocked cross-fitting: the issues split into `folds` consecutive
/// folds; each fold's issues (those whose horizon ends by `end`) are to be
/// forecast by a model fitted on the other folds' issues, less those whose
/// target windows of `horizon` steps overlap the fold's. Returns
/// `(fit, held)` per fold.
fn cross_fit_folds(issues: &[usize], folds: usize, horizon: usize, end: usize) -> Vec<(Vec<usize>, Vec<usize>)> {
    let chunk = issues.len().div_ceil(folds.max(1)).max(1);
    issues
        .chunks(chunk)
        .map(|held| {
            let (first, last) = (held[0], held[held.len() - 1]);
            let fit = issues.iter().copied().filter(|&i| i + horizon <= first || i >= last + horizon).collect();
            (fit, held.iter().copied().filter(|&i| i + horizon <= end).collect())
        })
        .collect()
}

/// An out-of-sample forecast error.
#[derive(Debug, Clone, PartialEq)]
pub struct Residual {
    /// The target step.
    pub step: usize,
    /// Its lead.
    pub lead: usize,
    /// Actual minus forecast.
    pub error: f64,
    /// The forecast.
    pub point: f64,
    /// With quantile trees: actual minus each level's raw tree forecast.
    pub levels: Vec<f64>,
    /// The value of the calibration's regime variable (NaN without one).
    pub regime: f64,
}

impl Residual {
    /// The error of forecast `point` issued at `i0` for lead `k` (with the
    /// raw quantile-tree forecasts `raw`), once its actual is known.
    fn new(series: &History, spec: &ForecastSpec, i0: usize, k: usize, point: f64, raw: &[f64]) -> Option<Self> {
        let step = i0 + k;
        let y = series.target[step];
        let error = y - point;
        (!error.is_nan()).then(|| Self {
            step,
            lead: k,
            error,
            point,
            levels: raw.iter().map(|v| y - v).collect(),
            regime: spec.regime.value(series, &spec.features, step, point),
        })
    }
}

/// The split-conformal offset at `level` from `n` held-out errors: the
/// order statistic with the finite-sample correction, `⌈(n+1)·level⌉`-th
/// smallest for an upper level and `⌊(n+1)·level⌋`-th for a lower one, so
/// that a new error falls beyond it with probability at most the nominal
/// share (the plain empirical quantile covers slightly less than asked).
fn conformal_quantile(values: &mut [f64], level: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    if (level - 0.5).abs() < 1e-12 {
        return quantile(values, level);
    }
    let n = values.len();
    let rank = (n + 1) as f64 * level;
    let k = if level > 0.5 { rank.ceil() as usize } else { rank.floor() as usize };
    *values.select_nth_unstable_by(k.clamp(1, n) - 1, f64::total_cmp).1
}

/// Fewest errors a calibration cell needs; sparser cells borrow a wider pool.
const MIN_CELL: usize = 20;

impl Calibration {
    /// The width of its widest interval in offset units (relative or
    /// absolute), averaged over the lead blocks.
    fn spread(&self) -> f64 {
        let widths = self.offsets.iter().map(|o| o.last().copied().unwrap_or(0.0) - o.first().copied().unwrap_or(0.0));
        widths.sum::<f64>() / self.offsets.len().max(1) as f64
    }

    /// Its block, regimes and error scale, without offsets or errors.
    fn clone_settings(&self) -> Self {
        Self {
            block: self.block,
            offsets: Vec::new(),
            edges: self.edges.clone(),
            regimes: Vec::new(),
            relative: self.relative,
            residuals: 0,
            held_out: Vec::new(),
        }
    }

    /// Adds a shift to each level's offsets, keeping them ordered.
    fn shift(&mut self, shifts: &[f64]) {
        for block in self.offsets.iter_mut().chain(self.regimes.iter_mut().flatten()) {
            for (offset, shift) in block.iter_mut().zip(shifts) {
                *offset += shift;
            }
            block.sort_by(f64::total_cmp);
        }
    }

    /// The offsets of a forecast at `lead` whose regime variable is `regime`.
    fn offsets_for(&self, lead: usize, regime: f64) -> &[f64] {
        let b = (lead / self.block).min(self.offsets.len().saturating_sub(1));
        let table = if self.regimes.is_empty() || regime.is_nan() {
            &self.offsets
        } else {
            &self.regimes[self.edges.partition_point(|e| *e <= regime)]
        };
        table.get(b).map_or(&[][..], Vec::as_slice)
    }

    /// Recomputes the offsets from `residuals`, keeping the blocks, regimes
    /// and error scale: per block of leads, and per regime and block when
    /// there are regimes. A block with too few errors borrows all leads' of
    /// its table; a regime with too few errors takes the pooled offsets.
    fn refit(&mut self, residuals: &[Residual], horizon: usize, levels: &[f64]) {
        let blocks = horizon.div_ceil(self.block).max(1);
        let bins = if self.edges.is_empty() { 0 } else { self.edges.len() + 1 };
        // cells[level][table][block]: table 0 pools every error, table
        // 1 + i holds regime i's. Grouped in one pass over the errors.
        let mut cells = vec![vec![vec![Vec::new(); blocks]; 1 + bins]; levels.len()];
        let mut in_bin = vec![0usize; 1 + bins];
        for r in residuals {
            let b = (r.lead / self.block).min(blocks - 1);
            let table =
                if bins > 0 && !r.regime.is_nan() { 1 + self.edges.partition_point(|e| *e <= r.regime) } else { 0 };
            in_bin[table] += 1;
            for (qi, level_cells) in cells.iter_mut().enumerate() {
                let e = r.levels.get(qi).copied().unwrap_or(r.error);
                let v = if self.relative { e / r.point } else { e };
                if v.is_finite() {
                    level_cells[0][b].push(v);
                    if table > 0 {
                        level_cells[table][b].push(v);
                    }
                }
            }
        }
        let offsets = |table: usize, cells: &mut [Vec<Vec<Vec<f64>>>]| -> Vec<Vec<f64>> {
            (0..blocks)
                .map(|b| {
                    levels
                        .iter()
                        .zip(cells.iter_mut())
                        .map(|(&q, level_cells)| {
                            let own = &mut level_cells[table];
                            if own[b].len() >= MIN_CELL {
                                conformal_quantile(&mut own[b], q)
                            } else {
                                let mut all: Vec<f64> = own.iter().flatten().copied().collect();
                                conformal_quantile(&mut all, q)
                            }
                        })
                        .collect()
                })
                .collect()
        };
        self.offsets = offsets(0, &mut cells);
        self.regimes = (1..=bins)
            .map(|t| if in_bin[t] < MIN_CELL { self.offsets.clone() } else { offsets(t, &mut cells) })
            .collect();
        self.residuals = residuals.len();
    }
}

impl TrainedModel {
    /// Forecast issued at step `i0` of `series` (which must extend over the
    /// horizon; use [`extend`] for the future).
    #[must_use]
    pub fn forecast_at(&self, series: &History, ctx: &Context, i0: usize) -> Forecast {
        self.forecast_calibrated(series, ctx, i0, self.calibration.as_ref())
    }

    fn forecast_calibrated(&self, series: &History, ctx: &Context, i0: usize, cal: Option<&Calibration>) -> Forecast {
        let mut point = self.fitted.predict(series, &self.spec.features, ctx, i0);
        let clip = |v: f64| if self.nonnegative { v.max(0.0) } else { v };
        let quantiles = match cal {
            Some(cal) if !self.quantile_models.is_empty() => {
                raw_quantiles(&self.quantile_models, series, &self.spec.features, ctx, i0)
                    .into_iter()
                    .enumerate()
                    .map(|(k, raw)| {
                        let offs = cal.offsets_for(k, self.regime_value(series, i0 + k, point[k]));
                        let mut q: Vec<f64> = raw.iter().zip(offs).map(|(r, o)| clip(r + o)).collect();
                        // Separately fitted levels may cross: sort them.
                        q.sort_by(f64::total_cmp);
                        q
                    })
                    .collect()
            }
            Some(cal) => point
                .iter()
                .enumerate()
                .map(|(k, &p)| {
                    let offs = cal.offsets_for(k, self.regime_value(series, i0 + k, p));
                    let relative = cal.relative;
                    offs.iter().map(|o| clip(if relative { p * (1.0 + o) } else { p + o })).collect()
                })
                .collect(),
            None => Vec::new(),
        };
        for p in &mut point {
            *p = clip(*p);
        }
        Forecast { issue: series.time(i0), issue_step: i0, point, quantiles }
    }

    fn regime_value(&self, series: &History, step: usize, point: f64) -> f64 {
        self.spec.regime.value(series, &self.spec.features, step, point)
    }

    /// Forecast of the horizon from `issue`, using the data of `series`
    /// before it (and known-ahead columns over the horizon).
    ///
    /// # Errors
    /// When the series does not match the model (columns, step) or the issue
    /// time is not on its grid.
    pub fn forecast(&self, series: &History, issue: Timestamp) -> Result<Forecast> {
        self.check_series(series)?;
        let offset = issue.duration_since(series.start()).as_secs();
        if offset < 0 || offset % series.step_s() != 0 {
            return Err(ForecastError::option("issue_time", format!("{issue} is not a step of the data")));
        }
        // The history up to the issue time must be in the data: an issue time
        // past its end would forecast from nothing known (and a far one
        // would make the grid as long as the gap).
        let i0 = usize::try_from(offset / series.step_s()).unwrap_or(usize::MAX);
        if i0 > series.len() {
            return Err(ForecastError::option(
                "issue_time",
                format!(
                    "{issue} is after the end of the data ({}); a forecast needs the history up to its issue time",
                    series.stamp(series.len().saturating_sub(1))
                ),
            ));
        }
        let h = self.spec.features.horizon;
        let spd = series.steps_per_day();
        if i0 < spd {
            return Err(ForecastError::option("issue_time", "needs at least a day of data before it"));
        }
        let extended = series.extend(i0 + h)?;
        let ctx = Context::new(&extended, &self.spec.features);
        // Nothing at or after the issue time is used except known-ahead columns.
        let mut masked = extended;
        for v in &mut masked.target[i0.min(series.len())..] {
            *v = f64::NAN;
        }
        for e in &mut masked.exog {
            if !e.known_ahead {
                for v in &mut e.values[i0.min(series.len())..] {
                    *v = f64::NAN;
                }
            }
        }
        Ok(self.forecast_at(&masked, &ctx, i0))
    }

    fn check_series(&self, series: &History) -> Result<()> {
        if series.step_s() != self.step_seconds {
            return Err(ForecastError::option(
                "data",
                format!("step of {} s; the model was trained on {} s", series.step_s(), self.step_seconds),
            ));
        }
        for (name, known) in &self.exog {
            match series.exog(name) {
                None => {
                    return Err(ForecastError::MissingColumn {
                        column: name.clone(),
                        available: series.exog.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", "),
                    });
                }
                Some(e) if e.known_ahead != *known => {
                    return Err(ForecastError::column(
                        name,
                        format!("known ahead is {}, the model was trained with {known}", e.known_ahead),
                    ));
                }
                Some(_) => {}
            }
        }
        if series.exog.len() != self.exog.len() {
            return Err(ForecastError::option(
                "exog",
                format!("the model uses {} exogenous columns, the data gives {}", self.exog.len(), series.exog.len()),
            ));
        }
        Ok(())
    }

    /// How to read data for this model: its target, the exogenous columns
    /// it was trained with (known-ahead ones marked) and its time zone.
    #[must_use]
    pub fn read_options(&self) -> ReadOptions {
        let mut options = ReadOptions::new(self.target.clone());
        options.exog = self.exog.iter().map(|(n, _)| n.clone()).collect();
        options.known_ahead = self.exog.iter().filter(|(_, k)| *k).map(|(n, _)| n.clone()).collect();
        options.timezone = Some(self.timezone.clone());
        options
    }

    /// The model as JSON text (what a model file holds).
    ///
    /// # Errors
    /// When a number cannot be written (never for a fitted model).
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| ForecastError::ModelFile(e.to_string()))
    }

    /// Reads a model from JSON text, checking its format and version;
    /// `source` names where the text came from, for messages.
    ///
    /// # Errors
    /// Other formats, newer versions, malformed models.
    pub fn from_json(text: &str, source: &str) -> Result<Self> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ForecastError::ModelFile(format!("{source}: {e}")))?;
        let format = value.get("format").and_then(|f| f.as_str()).unwrap_or("");
        if format != MODEL_FORMAT {
            return Err(ForecastError::ModelFile(format!("{source} is not a Volta forecast model")));
        }
        let version = value.get("version").and_then(serde_json::Value::as_u64).unwrap_or(0);
        if version != u64::from(MODEL_VERSION) {
            return Err(ForecastError::ModelFile(format!(
                "{source} has version {version}; this Volta reads version {MODEL_VERSION}"
            )));
        }
        serde_json::from_value(value).map_err(|e| ForecastError::ModelFile(format!("{source}: {e}")))
    }

    /// Writes the model as JSON.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_json()?)
            .map_err(|e| ForecastError::Read { path: path.to_owned(), reason: e.to_string() })
    }

    /// Reads a model file, checking its format and version.
    ///
    /// # Errors
    /// Unreadable files, other formats, newer versions.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ForecastError::Read { path: path.to_owned(), reason: e.to_string() })?;
        Self::from_json(&text, &path.display().to_string())
    }
}

/// Step of the online quantile tracking of backtests (the proportional
/// term of conformal PID control; Angelopoulos, Candès and Tibshirani,
/// 2023): after each known actual, a quantile's offset moves by this times
/// the calibrated interval's width times (nominal level − hit). The offsets
/// are not bounded, so coverage converges to the nominal level even through
/// a change of regime (a level-based update clamped to (0, 1) does not).
pub const ADAPT_RATE: f64 = 0.005;

/// How to backtest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BacktestSpec {
    /// What to train.
    pub forecast: ForecastSpec,
    /// Training data ends here (exclusive); forecasts are issued from here on.
    pub train_until: Timestamp,
    /// Refit every this many issues (0: train once).
    pub refit_every: usize,
    /// Stop issuing here (exclusive; default: the end of the data).
    pub test_until: Option<Timestamp>,
    /// Recalibrate the quantiles before each issue on the errors of the last
    /// `calibration_days` whose actuals are known by then, each shifted by
    /// the online tracking of its coverage so far ([`ADAPT_RATE`]), instead
    /// of keeping the training-time calibration.
    pub recalibrate: bool,
}

/// A forecast with the actuals it is scored against.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredForecast {
    /// The forecast.
    #[serde(flatten)]
    pub forecast: Forecast,
    /// Actual values per lead.
    pub actual: Vec<f64>,
    /// The benchmark's forecast per lead (rMAE and skill): clear-sky
    /// persistence for PV, else the one-day seasonal naive.
    pub naive: Vec<f64>,
}

/// The outcome of a backtest.
#[derive(Debug, Clone, Serialize)]
pub struct Backtest {
    /// The model name.
    pub model: String,
    /// The benchmark of rMAE and skill.
    pub benchmark: String,
    /// Every forecast issued.
    pub forecasts: Vec<ScoredForecast>,
    /// Their scores.
    pub metrics: Metrics,
    /// Number of fits (refits included).
    pub fits: usize,
    /// Time spent fitting, seconds.
    pub fit_seconds: f64,
    /// Time spent forecasting, seconds.
    pub predict_seconds: f64,
    /// The last trained model.
    #[serde(skip)]
    pub model_state: Option<TrainedModel>,
}

/// Runs a rolling-origin backtest: train before `train_until`, then issue a
/// forecast at every issue time whose horizon ends within the data (and
/// before `test_until`), refitting every `refit_every` issues on all data
/// before the issue. Forecasts only see what was known at their issue time.
///
/// # Errors
/// Invalid options (a horizon longer than the data, no issue times), or a failed fit.
pub fn backtest(series: &History, spec: &BacktestSpec) -> Result<Backtest> {
    backtest_with_progress(series, spec, &mut |_, _| ControlFlow::Continue(()))
}

/// [`backtest`], calling `progress(done, total)` before the first forecast
/// (`done` 0) and after every issued forecast; the backtest stops with
/// [`ForecastError::Cancelled`] when it returns `Break`, which is how a
/// server or Ctrl-C abandons a long run.
///
/// # Errors
/// As [`backtest`], and `Cancelled`.
pub fn backtest_with_progress(
    series: &History,
    spec: &BacktestSpec,
    progress: &mut dyn FnMut(usize, usize) -> ControlFlow<()>,
) -> Result<Backtest> {
    let fs = &spec.forecast;
    fs.check()?;
    let h = fs.features.horizon;
    if h > series.len() {
        return Err(ForecastError::option("horizon", format!("{h} steps is longer than the data ({})", series.len())));
    }
    let start = series.index_at_or_after(spec.train_until);
    if start >= series.len() {
        return Err(ForecastError::option(
            "train_until",
            format!("{} is at or after the end of the data ({})", spec.train_until, series.time(series.len() - 1)),
        ));
    }
    let stop = spec.test_until.map_or(series.len(), |t| series.index_at_or_after(t).min(series.len()));
    let ctx = Context::new(series, &fs.features);
    let issues: Vec<usize> =
        features::issue_steps(series, fs.issue_time).into_iter().filter(|&i| i >= start && i + h <= stop).collect();
    if issues.is_empty() {
        return Err(ForecastError::option(
            "train_until",
            format!("no issue time {} after it leaves a full horizon of {h} steps in the data", fs.issue_time),
        ));
    }
    // The benchmark of rMAE and of the skill score: clear-sky persistence
    // for PV (a site is set), the one-day seasonal naive otherwise.
    let naive = if fs.features.site.is_some() { Fitted::ClearSkyPersistence } else { Fitted::Naive { days: 1 } };
    let mut model: Option<TrainedModel> = None;
    let (mut fits, mut fit_s, mut predict_s) = (0, 0.0, 0.0);
    let mut forecasts = Vec::with_capacity(issues.len());
    // Errors of earlier forecasts, used for recalibration once their actuals are known.
    let mut pending: Vec<Residual> = Vec::new();
    let mut window: Vec<Residual> = Vec::new();
    // Quantile tracking: a shift of each quantile's offset, nudged after
    // every known actual towards the nominal coverage, in steps scaled by
    // the width of the fitted model's calibrated interval.
    let mut shifts = vec![0.0; fs.quantiles.len()];
    let mut step_size = 0.0;
    let mut hits: Vec<(usize, Vec<bool>)> = Vec::new();
    // Cross-fitted calibrations span the training period and keep every
    // error; held-out ones keep a sliding window of `calibration_days`.
    let keep_steps = if fs.calibration_folds >= 2 { usize::MAX } else { fs.calibration_days * ctx.steps_per_day };
    for (n, &i0) in issues.iter().enumerate() {
        if progress(n, issues.len()).is_break() {
            return Err(ForecastError::Cancelled { progress: format!("after {n} of {} forecasts", issues.len()) });
        }
        let refit = model.is_none() || (spec.refit_every > 0 && n % spec.refit_every == 0);
        if refit {
            let t = Instant::now();
            let cut = if model.is_none() { start } else { i0 };
            let trained = train_with(series, fs, &ctx, cut, &Cancel::new())?;
            window = trained.calibration.as_ref().map(|c| c.held_out.clone()).unwrap_or_default();
            pending.retain(|r| r.step >= cut);
            step_size = ADAPT_RATE * trained.calibration.as_ref().map_or(0.0, Calibration::spread);
            model = Some(trained);
            fit_s += t.elapsed().as_secs_f64();
            fits += 1;
        }
        let Some(trained) = &model else { continue };
        let t = Instant::now();
        let calibration = match &trained.calibration {
            Some(fitted) if spec.recalibrate => {
                window.extend(pending.iter().filter(|r| r.step < i0).cloned());
                pending.retain(|r| r.step >= i0);
                for (_, below) in hits.iter().filter(|(step, _)| *step < i0) {
                    for ((shift, &nominal), &b) in shifts.iter_mut().zip(&fs.quantiles).zip(below) {
                        *shift += step_size * (nominal - f64::from(u8::from(b)));
                    }
                }
                hits.retain(|(step, _)| *step >= i0);
                window.retain(|r| r.step.saturating_add(keep_steps) >= i0);
                let mut calibration = fitted.clone_settings();
                calibration.refit(&window, h, &fs.quantiles);
                calibration.shift(&shifts);
                Some(calibration)
            }
            Some(c) => Some(c.clone()),
            None => None,
        };
        let forecast = trained.forecast_calibrated(series, &ctx, i0, calibration.as_ref());
        let raw = if trained.quantile_models.is_empty() {
            Vec::new()
        } else {
            raw_quantiles(&trained.quantile_models, series, &fs.features, &ctx, i0)
        };
        for (k, p) in forecast.point.iter().enumerate() {
            let levels = raw.get(k).map_or(&[][..], Vec::as_slice);
            if let Some(residual) = Residual::new(series, fs, i0, k, *p, levels) {
                pending.push(residual);
                if let Some(qs) = forecast.quantiles.get(k) {
                    hits.push((i0 + k, qs.iter().map(|q| series.target[i0 + k] <= *q).collect()));
                }
            }
        }
        predict_s += t.elapsed().as_secs_f64();
        forecasts.push(ScoredForecast {
            actual: series.target[i0..i0 + h].to_vec(),
            naive: naive.predict(series, &fs.features, &ctx, i0),
            forecast,
        });
    }
    if progress(issues.len(), issues.len()).is_break() {
        let n = issues.len();
        return Err(ForecastError::Cancelled { progress: format!("after {n} of {n} forecasts") });
    }
    let scale = model.as_ref().map_or(f64::NAN, |m| m.naive_scale);
    let metrics = metrics::score(
        forecasts.iter().flat_map(|f| {
            (0..h).map(move |k| Scored {
                lead: k,
                actual: f.actual[k],
                point: f.forecast.point[k],
                naive: f.naive[k],
                quantiles: f.forecast.quantiles.get(k).map_or(&[][..], Vec::as_slice),
            })
        }),
        &fs.quantiles,
        scale,
    );
    Ok(Backtest {
        benchmark: if fs.features.site.is_some() { "clear_sky_persistence" } else { "naive_day" }.to_owned(),
        model: fs.model.name().to_owned(),
        forecasts,
        metrics,
        fits,
        fit_seconds: fit_s,
        predict_seconds: predict_s,
        model_state: model,
    })
}

/// Backtests many series at once, in parallel; one result per series.
#[must_use]
pub fn backtest_many(series: &[History], spec: &BacktestSpec) -> Vec<Result<Backtest>> {
    series.par_iter().map(|s| backtest(s, spec)).collect()
}

/// Checks that exogenous columns have what a forecast needs: marks which
/// are known ahead (a convenience for callers building series by hand).
#[must_use]
pub fn known_ahead(mut exog: Vec<Exog>, names: &[&str]) -> Vec<Exog> {
    for e in &mut exog {
        e.known_ahead = names.contains(&e.name.as_str());
    }
    exog
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_fitted_folds_hold_out_every_issue_once_and_never_train_on_its_targets() {
        // Daily issues of a 48-step horizon, one of them spanning two days.
        for horizon in [48, 96] {
            let issues: Vec<usize> = (0..100).map(|d| d * 48).collect();
            let end = 100 * 48;
            let folds = cross_fit_folds(&issues, 4, horizon, end);
            assert_eq!(folds.len(), 4);
            let held: Vec<usize> = folds.iter().flat_map(|(_, held)| held.iter().copied()).collect();
            let expected: Vec<usize> = issues.iter().copied().filter(|&i| i + horizon <= end).collect();
            assert_eq!(held, expected);
            for (fit, held) in &folds {
                assert!(!fit.is_empty());
                for &f in fit {
                    for &h in held {
                        let disjoint = f + horizon <= h || h + horizon <= f;
                        assert!(disjoint, "horizon {horizon}: fit issue {f} overlaps held-out issue {h}");
                    }
                }
            }
        }
    }

    fn residual(lead: usize, error: f64, regime: f64) -> Residual {
        Residual { step: lead, lead, error, point: 1.0, levels: Vec::new(), regime }
    }

    /// Absolute offsets per lead, in regimes below and above 20.
    fn two_regimes() -> Calibration {
        Calibration {
            block: 1,
            offsets: Vec::new(),
            edges: vec![20.0],
            regimes: Vec::new(),
            relative: false,
            residuals: 0,
            held_out: Vec::new(),
        }
    }

    #[test]
    fn regimes_get_their_own_offsets_and_unknown_regimes_the_pooled_ones() {
        // Errors spread over ±1 in the cold regime and ±3 in the hot one, at every lead.
        let mut residuals = Vec::new();
        for i in 0..440 {
            let base = ((i * 7) % 11) as f64 / 5.0 - 1.0;
            residuals.push(residual(i % 8, base, 10.0));
            residuals.push(residual(i % 8, 3.0 * base, 30.0));
        }
        let mut cal = two_regimes();
        cal.refit(&residuals, 8, &[0.1, 0.9]);
        let width = |o: &[f64]| o[1] - o[0];
        let cold = width(cal.offsets_for(3, 12.0));
        let hot = width(cal.offsets_for(3, 31.0));
        let pooled = width(cal.offsets_for(3, f64::NAN));
        assert!((hot - 3.0 * cold).abs() < 1e-9, "cold {cold} hot {hot}");
        assert!(cold < pooled && pooled < hot, "cold {cold} pooled {pooled} hot {hot}");
        // A shift moves every table alike.
        cal.shift(&[-0.5, 0.5]);
        assert!((width(cal.offsets_for(3, 12.0)) - cold - 1.0).abs() < 1e-9);
        assert!((width(cal.offsets_for(3, 31.0)) - hot - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_sparse_regime_borrows_the_pooled_offsets() {
        let mut residuals: Vec<Residual> = (0..200).map(|i| residual(i % 4, (i % 7) as f64 - 3.0, 10.0)).collect();
        residuals.extend((0..5).map(|i| residual(i, 50.0, 40.0)));
        let mut cal = two_regimes();
        cal.refit(&residuals, 4, &[0.1, 0.9]);
        assert_eq!(cal.offsets_for(2, 41.0), cal.offsets_for(2, f64::NAN));
        assert_eq!(cal.residuals, 205);
    }
}
