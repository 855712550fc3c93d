//! Rolling-origin backtests: train once, then forecast every issue time of
//! the test period as in operation, score each forecast against what
//! happened and against the benchmark, and track the quantiles online.

use std::ops::ControlFlow;
use std::time::Instant;

use jiff::Timestamp;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use volta_engine::Cancel;

use crate::calibration::{Calibration, Residual, raw_quantiles};
use crate::error::{ForecastError, Result};
use crate::features::{self, Context};
use crate::history::{Exog, History};
use crate::metrics::{self, Metrics, Scored};
use crate::models::Fitted;
use crate::spec::ForecastSpec;
use crate::trained::{Forecast, TrainedModel, train_with};

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
    /// Actual values per lead (NaN where missing, or flagged by the quality
    /// check and excluded: such a step is not scored).
    pub actual: Vec<f64>,
    /// Per lead, whether the actual was flagged and excluded.
    pub flagged: Vec<bool>,
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
                    hits.push((i0 + k, qs.iter().map(|q| series.label(i0 + k) <= *q).collect()));
                }
            }
        }
        predict_s += t.elapsed().as_secs_f64();
        forecasts.push(ScoredForecast {
            actual: (i0..i0 + h).map(|j| series.label(j)).collect(),
            flagged: (i0..i0 + h).map(|j| series.is_excluded(j)).collect(),
            naive: naive.predict(series, &fs.features, &ctx, i0),
            forecast,
        });
    }
    if progress(issues.len(), issues.len()).is_break() {
        let n = issues.len();
        return Err(ForecastError::Cancelled { progress: format!("after {n} of {n} forecasts") });
    }
    let scale = model.as_ref().map_or(f64::NAN, |m| m.naive_scale);
    let mut metrics = metrics::score(
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
    metrics.flagged = forecasts.iter().flat_map(|f| &f.flagged).filter(|f| **f).count();
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
