//! Training, and what it produces: a trained model that forecasts from an
//! issue time, and is saved to and loaded from a model file (JSON, with its
//! format name and version).

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use volta_engine::Cancel;

use crate::calibration::{Calibration, ErrorPath, calibrate, fit_quantile_trees, paths_of, raw_quantiles};
use crate::data::ReadOptions;
use crate::error::{ForecastError, Result};
use crate::features::{self, Context};
use crate::gbdt::Gbdt;
use crate::history::History;
use crate::models::{self, Fitted};
use crate::quality::Cleaning;
use crate::spec::ForecastSpec;

/// The name and version written into every model file.
pub const MODEL_FORMAT: &str = "volta-forecast-model";
/// Current model-file version.
pub const MODEL_VERSION: u32 = 1;

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
    /// The time column of the training data when the trainer named it, so
    /// that forecasting finds it again without being told (otherwise the
    /// data reader's guess).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// How the training data was cleaned, so that forecasting reads its
    /// data alike (older files: the defaults).
    #[serde(default)]
    pub cleaning: Cleaning,
    /// The out-of-sample error path of every held-out issue of the
    /// calibration, for joint scenarios (older files: none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_paths: Vec<ErrorPath>,
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

pub(crate) fn train_with(
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
    let error_paths = calibration.as_ref().map_or_else(Vec::new, |c| paths_of(c, series, spec.features.horizon));
    let quantile_models =
        if spec.quantile_trees { fit_quantile_trees(series, spec, ctx, &issues, end, cancel)? } else { Vec::new() };
    let y: Vec<f64> = (0..end).map(|i| series.label(i)).collect();
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
        time_column: None,
        cleaning: Cleaning::default(),
        error_paths,
    })
}

impl TrainedModel {
    /// Forecast issued at step `i0` of `series` (which must extend over the
    /// horizon; use [`History::extend`] for the future).
    #[must_use]
    pub fn forecast_at(&self, series: &History, ctx: &Context, i0: usize) -> Forecast {
        self.forecast_calibrated(series, ctx, i0, self.calibration.as_ref())
    }

    pub(crate) fn forecast_calibrated(
        &self,
        series: &History,
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
        self.check_history(series, i0, h)?;
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

    /// A forecast issued at step `i0` needs the target observed up to the
    /// last day before it (its lags would otherwise read nothing), and every
    /// known-ahead column over the whole horizon.
    fn check_history(&self, series: &History, i0: usize, h: usize) -> Result<()> {
        let spd = series.steps_per_day();
        let known = series.target[..i0.min(series.len())].iter().rposition(|v| v.is_finite());
        match known {
            Some(last) if last + spd >= i0 => {}
            Some(last) => {
                return Err(ForecastError::option(
                    "issue_time",
                    format!(
                        "{} was last observed at {}, more than a day before the issue time {}; \
                         a forecast needs the history up to its issue time",
                        self.target,
                        series.stamp(last),
                        series.stamp(i0)
                    ),
                ));
            }
            None => {
                return Err(ForecastError::column(&self.target, "has no observation before the issue time"));
            }
        }
        let features = self.spec.model.reads_features();
        for e in series.exog.iter().filter(|e| e.known_ahead && features) {
            let missing = (i0..i0 + h).find(|&i| !e.values.get(i).is_some_and(|v| v.is_finite()));
            if let Some(i) = missing {
                let last = e.values.iter().rposition(|v| v.is_finite());
                return Err(ForecastError::column(
                    &e.name,
                    format!(
                        "is known ahead but has no value for step {} of the horizon ({}); its last value is at {}",
                        i - i0 + 1,
                        series.stamp(i),
                        last.map_or_else(|| "nowhere".to_owned(), |l| series.stamp(l)),
                    ),
                ));
            }
        }
        Ok(())
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
        options.time_column.clone_from(&self.time_column);
        options.cleaning = self.cleaning;
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
