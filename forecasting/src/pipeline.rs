//! Training with calibrated quantiles, saved models, forecasts and
//! rolling-origin backtests.
//!
//! Probabilistic forecasts are the point forecast plus quantiles of the
//! model's own out-of-sample errors (split conformal): training holds out
//! its last `calibration_days`, fits on the rest, forecasts the held-out
//! days exactly as in operation (same issue time, same horizon), and keeps
//! the error quantiles per block of lead times. The model is then refitted
//! on all the training data. Quantiles are monotone in the level, so they
//! never cross; a target that was never negative in training is clipped at 0.

use std::path::Path;
use std::time::Instant;

use jiff::Timestamp;
use jiff::civil::Time;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Exog, ReadOptions, TimeSeries};
use crate::error::{ForecastError, Result};
use crate::features::{self, Context, FeatureSpec};
use crate::gbdt::{Gbdt, GbdtParams, Loss, quantile};
use crate::metrics::{self, Metrics, Scored};
use crate::models::{self, Fitted, ModelSpec};

/// The name and version written into every model file.
pub const MODEL_FORMAT: &str = "volta-forecast-model";
/// Current model-file version.
pub const MODEL_VERSION: u32 = 1;

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
    /// Days held out at the end of training to calibrate the quantiles.
    pub calibration_days: usize,
    /// Train on at most this many days before the cut (all when `None`).
    pub train_days: Option<usize>,
    /// GBDT only: forecast each quantile with its own pinball-loss trees,
    /// then correct each by its held-out errors (conformalised quantile
    /// regression), instead of adding error quantiles to the point forecast.
    #[serde(default)]
    pub quantile_trees: bool,
}

impl ForecastSpec {
    /// A spec with the default calibration (28 days) and training window (all).
    #[must_use]
    pub fn new(model: ModelSpec, features: FeatureSpec, issue_time: Time, quantiles: Vec<f64>) -> Self {
        Self { model, features, issue_time, quantiles, calibration_days: 28, train_days: None, quantile_trees: false }
    }

    /// Checks the options; errors name the option.
    ///
    /// # Errors
    /// A zero horizon, quantiles outside (0, 1) or not increasing.
    pub fn check(&self) -> Result<()> {
        if self.features.horizon == 0 {
            return Err(ForecastError::option("horizon", "must be at least 1 step"));
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
            && (*penalty < 0.0 || !(0.0..=1.0).contains(l1_ratio))
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

fn issues_before(series: &TimeSeries, spec: &ForecastSpec, ctx: &Context, end: usize) -> Vec<usize> {
    let first = spec.features.history_days(ctx.steps_per_day) * ctx.steps_per_day;
    let from = spec.train_days.map_or(0, |d| end.saturating_sub(d * ctx.steps_per_day));
    features::issue_steps(series, spec.issue_time).into_iter().filter(|&i| i >= first && i >= from && i < end).collect()
}

/// Trains on the data of `series` before step `end`.
///
/// # Errors
/// Invalid options, too little data, or a failed fit.
pub fn train(series: &TimeSeries, spec: &ForecastSpec, end: usize) -> Result<TrainedModel> {
    let ctx = Context::new(series, &spec.features);
    train_with(series, spec, &ctx, end)
}

fn train_with(series: &TimeSeries, spec: &ForecastSpec, ctx: &Context, end: usize) -> Result<TrainedModel> {
    spec.check()?;
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
        || if spec.quantiles.is_empty() { Ok(None) } else { calibrate(series, spec, ctx, &issues, end).map(Some) },
        || models::fit(&spec.model, series, &spec.features, ctx, &issues, end),
    );
    let (calibration, fitted) = (calibration?, fitted?);
    let quantile_models =
        if spec.quantile_trees { fit_quantile_trees(series, spec, ctx, &issues, end)? } else { Vec::new() };
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
        step_seconds: series.step_s,
        timezone: series.tz.iana_name().unwrap_or("UTC").to_owned(),
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
    series: &TimeSeries,
    spec: &ForecastSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
) -> Result<Vec<Gbdt>> {
    let ModelSpec::Gbdt(params) = &spec.model else {
        return Err(ForecastError::option("intervals", "quantile trees need the gbdt model"));
    };
    let samples = features::Samples::build(series, &spec.features, ctx, issues, end);
    spec.quantiles
        .par_iter()
        .map(|&alpha| {
            let p = GbdtParams { loss: Loss::Quantile { alpha }, ..params.clone() };
            Gbdt::fit(&samples.x, samples.width, &samples.y, &p)
                .map_err(|reason| ForecastError::Fit { model: format!("gbdt q{alpha}"), reason })
        })
        .collect()
}

/// Raw quantile-tree forecasts `[lead][level]` from issue step `i0`.
fn raw_quantiles(models: &[Gbdt], series: &TimeSeries, spec: &FeatureSpec, ctx: &Context, i0: usize) -> Vec<Vec<f64>> {
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
    series: &TimeSeries,
    spec: &ForecastSpec,
    ctx: &Context,
    issues: &[usize],
    end: usize,
) -> Result<Calibration> {
    let spd = ctx.steps_per_day;
    let h = spec.features.horizon;
    let cut = end.saturating_sub(spec.calibration_days * spd);
    let fit_issues: Vec<usize> = issues.iter().copied().filter(|&i| i < cut).collect();
    let held: Vec<usize> = issues.iter().copied().filter(|&i| i >= cut && i + h <= end).collect();
    if spec.calibration_days == 0 || fit_issues.is_empty() || held.is_empty() {
        return Err(ForecastError::option(
            "calibration_days",
            format!(
                "{} days leave no forecasts to calibrate the quantiles on (training has {} issue times)",
                spec.calibration_days,
                issues.len()
            ),
        ));
    }
    let fitted = models::fit(&spec.model, series, &spec.features, ctx, &fit_issues, cut)?;
    let trees = if spec.quantile_trees { fit_quantile_trees(series, spec, ctx, &fit_issues, cut)? } else { Vec::new() };
    let mut held_out = Vec::new();
    for &i0 in &held {
        let point = fitted.predict(series, &spec.features, ctx, i0);
        let raw = if trees.is_empty() { Vec::new() } else { raw_quantiles(&trees, series, &spec.features, ctx, i0) };
        for (k, p) in point.iter().enumerate() {
            let y = series.target[i0 + k];
            let e = y - p;
            if !e.is_nan() {
                let levels = raw.get(k).map_or_else(Vec::new, |q| q.iter().map(|v| y - v).collect());
                held_out.push(Residual { step: i0 + k, lead: k, error: e, point: *p, levels });
            }
        }
    }
    // A strictly positive target (a load) has errors that grow with its
    // level: calibrate relative errors. Otherwise (PV, with its zeros at
    // night) absolute ones. Quantile trees are corrected additively.
    let relative = !spec.quantile_trees && series.target[..end].iter().all(|v| v.is_nan() || *v > 0.0);
    Ok(Calibration::from_residuals(&held_out, h, &spec.quantiles, relative, held_out.clone()))
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
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let rank = (n + 1) as f64 * level;
    let k = if level > 0.5 { rank.ceil() as usize } else { rank.floor() as usize };
    values[k.clamp(1, n) - 1]
}

impl Calibration {
    /// The width of its widest interval in offset units (relative or
    /// absolute), averaged over the lead blocks.
    fn spread(&self) -> f64 {
        let widths = self.offsets.iter().map(|o| o.last().copied().unwrap_or(0.0) - o.first().copied().unwrap_or(0.0));
        widths.sum::<f64>() / self.offsets.len().max(1) as f64
    }

    /// Adds a shift to each level's offsets, keeping them ordered.
    fn shift(&mut self, shifts: &[f64]) {
        for block in &mut self.offsets {
            for (offset, shift) in block.iter_mut().zip(shifts) {
                *offset += shift;
            }
            block.sort_by(f64::total_cmp);
        }
    }

    /// Error quantiles per block of `horizon / 8` leads from residuals.
    fn from_residuals(
        residuals: &[Residual],
        horizon: usize,
        levels: &[f64],
        relative: bool,
        keep: Vec<Residual>,
    ) -> Self {
        let block = horizon.div_ceil(8).max(1);
        let blocks = horizon.div_ceil(block);
        let offsets = (0..blocks)
            .map(|b| {
                levels
                    .iter()
                    .enumerate()
                    .map(|(qi, &q)| {
                        let value = |r: &Residual| {
                            let e = r.levels.get(qi).copied().unwrap_or(r.error);
                            if relative { e / r.point } else { e }
                        };
                        let mut own: Vec<f64> = residuals
                            .iter()
                            .filter(|r| (r.lead / block).min(blocks - 1) == b)
                            .map(value)
                            .filter(|e| e.is_finite())
                            .collect();
                        // A block with too few errors borrows everyone's.
                        if own.len() < 20 {
                            own = residuals.iter().map(value).filter(|e| e.is_finite()).collect();
                        }
                        conformal_quantile(&mut own, q)
                    })
                    .collect()
            })
            .collect();
        Self { block, offsets, relative, residuals: residuals.len(), held_out: keep }
    }
}

impl TrainedModel {
    /// Forecast issued at step `i0` of `series` (which must extend over the
    /// horizon; use [`extend`] for the future).
    #[must_use]
    pub fn forecast_at(&self, series: &TimeSeries, ctx: &Context, i0: usize) -> Forecast {
        self.forecast_calibrated(series, ctx, i0, self.calibration.as_ref())
    }

    fn forecast_calibrated(
        &self,
        series: &TimeSeries,
        ctx: &Context,
        i0: usize,
        cal: Option<&Calibration>,
    ) -> Forecast {
        let mut point = self.fitted.predict(series, &self.spec.features, ctx, i0);
        let clip = |v: f64| if self.nonnegative { v.max(0.0) } else { v };
        let quantiles = match cal {
            Some(cal) if !self.quantile_models.is_empty() => {
                raw_quantiles(&self.quantile_models, series, &self.spec.features, ctx, i0)
                    .into_iter()
                    .enumerate()
                    .map(|(k, raw)| {
                        let offs = &cal.offsets[(k / cal.block).min(cal.offsets.len() - 1)];
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
                    let offs = &cal.offsets[(k / cal.block).min(cal.offsets.len() - 1)];
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

    /// Forecast of the horizon from `issue`, using the data of `series`
    /// before it (and known-ahead columns over the horizon).
    ///
    /// # Errors
    /// When the series does not match the model (columns, step) or the issue
    /// time is not on its grid.
    pub fn forecast(&self, series: &TimeSeries, issue: Timestamp) -> Result<Forecast> {
        self.check_series(series)?;
        let offset = issue.duration_since(series.start).as_secs();
        if offset < 0 || offset % series.step_s != 0 {
            return Err(ForecastError::option("issue_time", format!("{issue} is not a step of the data")));
        }
        let i0 = (offset / series.step_s) as usize;
        let h = self.spec.features.horizon;
        let spd = series.steps_per_day();
        if i0 < spd {
            return Err(ForecastError::option("issue_time", "needs at least a day of data before it"));
        }
        let extended = extend(series, i0 + h);
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

    fn check_series(&self, series: &TimeSeries) -> Result<()> {
        if series.step_s != self.step_seconds {
            return Err(ForecastError::option(
                "data",
                format!("step of {} s; the model was trained on {} s", series.step_s, self.step_seconds),
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

/// The series padded with missing steps to `len` (for forecasts past its end).
#[must_use]
pub fn extend(series: &TimeSeries, len: usize) -> TimeSeries {
    let mut out = series.clone();
    if len > out.len() {
        out.target.resize(len, f64::NAN);
        for e in &mut out.exog {
            e.values.resize(len, f64::NAN);
        }
    }
    out
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
pub fn backtest(series: &TimeSeries, spec: &BacktestSpec) -> Result<Backtest> {
    backtest_with_progress(series, spec, &mut |_, _| {})
}

/// [`backtest`], calling `progress(done, total)` after every issued forecast.
///
/// # Errors
/// As [`backtest`].
pub fn backtest_with_progress(
    series: &TimeSeries,
    spec: &BacktestSpec,
    progress: &mut dyn FnMut(usize, usize),
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
    let keep_steps = fs.calibration_days * ctx.steps_per_day;
    for (n, &i0) in issues.iter().enumerate() {
        let refit = model.is_none() || (spec.refit_every > 0 && n % spec.refit_every == 0);
        if refit {
            let t = Instant::now();
            let cut = if model.is_none() { start } else { i0 };
            let trained = train_with(series, fs, &ctx, cut)?;
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
            Some(_) if spec.recalibrate => {
                window.extend(pending.iter().filter(|r| r.step < i0).cloned());
                pending.retain(|r| r.step >= i0);
                for (_, below) in hits.iter().filter(|(step, _)| *step < i0) {
                    for ((shift, &nominal), &b) in shifts.iter_mut().zip(&fs.quantiles).zip(below) {
                        *shift += step_size * (nominal - f64::from(u8::from(b)));
                    }
                }
                hits.retain(|(step, _)| *step >= i0);
                window.retain(|r| r.step + keep_steps >= i0);
                let relative = trained.calibration.as_ref().is_some_and(|c| c.relative);
                let mut calibration = Calibration::from_residuals(&window, h, &fs.quantiles, relative, Vec::new());
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
            let y = series.target[i0 + k];
            let error = y - p;
            if !error.is_nan() {
                let levels = raw.get(k).map_or_else(Vec::new, |q| q.iter().map(|v| y - v).collect());
                pending.push(Residual { step: i0 + k, lead: k, error, point: *p, levels });
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
        progress(n + 1, issues.len());
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
pub fn backtest_many(series: &[TimeSeries], spec: &BacktestSpec) -> Vec<Result<Backtest>> {
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
