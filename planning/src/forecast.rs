//! A case's uncertain series from a forecast: the point forecast, its
//! calibrated quantiles and its scenario paths, on the case's own grid.
//!
//! A forecast runs on its data's step (Victoria's demand: 30 min) from its
//! issue time; a case on its own step from its start. The case step must
//! be a whole number of forecast steps, and the case must start on a
//! forecast step at or after the issue time, within the horizon: each case
//! step takes the mean of the forecast steps it covers. The forecast is in
//! the units of its data; `scale` turns it into the case's (a demand in GW
//! scaled to a site's kW, a PV output per unit of its peak). Values are
//! then held in the field's range: a demand at least 0, an availability
//! between 0 and 1. A model trained on data after the issue time is
//! refused: its forecast would have seen the day it plans.

use jiff::Timestamp;
use serde::Serialize;
use volta_engine::{Case, SeriesField, SeriesRef};
use volta_forecasting::{History, TrainedModel};

use crate::error::PlanError;

/// A series of a case that comes from a forecast.
#[derive(Debug, Clone)]
pub struct ForecastSource {
    /// The series it replaces.
    pub series: SeriesRef,
    /// The trained model (with quantiles, for scenarios).
    pub model: TrainedModel,
    /// The data the model reads: its target up to the issue time, and its
    /// known-ahead columns over the horizon.
    pub history: History,
    /// Case value = `scale` × forecast value.
    pub scale: f64,
}

/// One series forecast, on the case's grid.
#[derive(Debug, Clone, Serialize)]
pub struct SeriesForecast {
    /// The series.
    pub series: SeriesRef,
    /// When it was issued.
    pub issue: Timestamp,
    /// Point forecast per case step.
    pub point: Vec<f64>,
    /// The quantile levels of [`SeriesForecast::quantiles`].
    pub levels: Vec<f64>,
    /// `quantiles[step][level]`: the mean of the covered forecast steps'
    /// quantiles (for a case step of one forecast step, the quantile itself).
    pub quantiles: Vec<Vec<f64>>,
    /// Per past issue of the model's calibration, the forecast with that
    /// issue's out-of-sample errors replayed on it, per case step.
    pub paths: Vec<(Timestamp, Vec<f64>)>,
}

/// Forecasts `source` from `issue` onto `case`'s grid.
///
/// # Errors
/// [`PlanError::Forecast`] when the model cannot forecast from its data at
/// `issue`, [`PlanError::Align`] when the forecast does not cover the case
/// or the model was trained past `issue`.
pub fn forecast(case: &Case, source: &ForecastSource, issue: Timestamp) -> Result<SeriesForecast, PlanError> {
    let series = &source.series;
    // The series must exist in the case before any work.
    case.series(series)?;
    if !(source.scale.is_finite() && source.scale > 0.0) {
        return Err(PlanError::align(series, format!("scale must be a positive number, not {}", source.scale)));
    }
    let model = &source.model;
    // A model fitted on targets at or after the issue time has seen the day
    // it would plan: its forecast (and its backtest, and any evaluation of
    // the plan) would use the future.
    if issue < model.trained_until {
        return Err(PlanError::align(
            series,
            format!(
                "the model was trained on data up to {}, after the issue time {issue}: its forecast would \
                 have seen the day it plans; train it on data before the issue time",
                model.trained_until
            ),
        ));
    }
    let f_step = model.step_seconds;
    let c_step = case.grid().step().as_secs();
    if f_step <= 0 || c_step % f_step != 0 {
        return Err(PlanError::align(
            series,
            format!("the case's step ({c_step} s) is not a whole number of the forecast's steps ({f_step} s)"),
        ));
    }
    let per = usize::try_from(c_step / f_step).unwrap_or(1);
    let offset = case.grid().instant(0).duration_since(issue).as_secs();
    if offset < 0 || offset % f_step != 0 {
        return Err(PlanError::align(
            series,
            format!(
                "the case starts at {}, not on a forecast step at or after the issue time {issue}",
                case.grid().stamp(0)
            ),
        ));
    }
    let first = usize::try_from(offset / f_step).unwrap_or(usize::MAX);
    let n = case.grid().len();
    let horizon = model.spec.features.horizon;
    if first.saturating_add(n.saturating_mul(per)) > horizon {
        return Err(PlanError::align(
            series,
            format!(
                "a horizon of {horizon} forecast steps from {issue} does not reach the case's end ({}); \
                 train the model with a longer horizon or issue it later",
                case.grid().end()
            ),
        ));
    }
    let forecast = model
        .forecast(&source.history, issue)
        .map_err(|error| PlanError::Forecast { series: series.clone(), error })?;
    let field = series.field;
    let to_case = |values: &[f64]| -> Vec<f64> {
        (0..n)
            .map(|k| {
                let covered = &values[first + k * per..first + (k + 1) * per];
                clamp(field, source.scale * covered.iter().sum::<f64>() / per as f64)
            })
            .collect()
    };
    let point = to_case(&forecast.point);
    let levels = model.spec.quantiles.clone();
    let quantiles = if forecast.quantiles.is_empty() {
        Vec::new()
    } else {
        let by_level: Vec<Vec<f64>> = (0..levels.len())
            .map(|q| to_case(&forecast.quantiles.iter().map(|row| row[q]).collect::<Vec<_>>()))
            .collect();
        (0..n).map(|k| by_level.iter().map(|level| level[k]).collect()).collect()
    };
    let paths = model
        .scenarios(&forecast, model.error_paths())
        .into_iter()
        .map(|scenario| (scenario.analog, to_case(&scenario.values)))
        .collect();
    Ok(SeriesForecast { series: series.clone(), issue, point, levels, quantiles, paths })
}

/// `v` held in the range of `field`.
fn clamp(field: SeriesField, v: f64) -> f64 {
    match field {
        SeriesField::DemandKw => v.max(0.0),
        SeriesField::Availability => v.clamp(0.0, 1.0),
        SeriesField::ImportPrice | SeriesField::ExportPrice => v,
    }
}
