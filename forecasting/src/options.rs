//! Forecasting options as front ends spell them (CLI flags, Python keyword
//! arguments, service requests), turned into a checked [`ForecastSpec`].

use std::path::Path;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use serde::Deserialize;

use crate::calendar::{self, Holidays};
use crate::error::{ForecastError, Result};
use crate::features::FeatureSpec;
use crate::gbdt::GbdtParams;
use crate::history::History;
use crate::models::ModelSpec;
use crate::solar::Site;
use crate::spec::{ForecastSpec, Regime};

/// Model and feature options with their front-end defaults.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {
    /// Steps per forecast.
    pub horizon: usize,
    /// Local issue time, `HH:MM`.
    pub issue_time: String,
    /// Model name (see [`ModelSpec::from_name`]).
    pub model: String,
    /// Quantile levels.
    pub quantiles: Vec<f64>,
    /// `conformal` or `quantile-trees`.
    pub intervals: String,
    /// Days held out to calibrate quantiles.
    pub calibration_days: usize,
    /// Cross-fitting folds for the calibration (0: hold out the last days).
    pub calibration_folds: usize,
    /// `auto`, `none`, `temperature` or `level`: what calibration conditions
    /// on (`auto`: the temperature when it is a known-ahead column).
    pub calibrate_by: String,
    /// Number of regimes of `calibrate_by`.
    pub regime_bins: usize,
    /// Training window in days (all when `None`).
    pub train_days: Option<usize>,
    /// The temperature column.
    pub temperature: Option<String>,
    /// A built-in holiday table (`AU-VIC`, `DE`, `US`) or, where the front
    /// door reads local files ([`Files::Local`]), a file of dates.
    pub holidays: Option<String>,
    /// Holiday dates given inline, `YYYY-MM-DD` (added to `holidays`).
    pub holiday_dates: Vec<String>,
    /// Same-time lags in days.
    pub lags: Vec<usize>,
    /// PV site latitude.
    pub latitude: Option<f64>,
    /// PV site longitude.
    pub longitude: Option<f64>,
    /// GBDT trees.
    pub trees: usize,
    /// GBDT learning rate.
    pub learning_rate: f64,
    /// GBDT depth.
    pub max_depth: usize,
    /// Linear penalty (model default when `None`).
    pub penalty: Option<f64>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        let gbdt = GbdtParams::default();
        Self {
            horizon: 48,
            issue_time: "00:00".into(),
            model: "gbdt".into(),
            quantiles: Vec::new(),
            intervals: "conformal".into(),
            calibration_days: 28,
            calibration_folds: 3,
            calibrate_by: "auto".into(),
            regime_bins: 3,
            train_days: None,
            temperature: None,
            holidays: None,
            holiday_dates: Vec::new(),
            lags: vec![1, 2, 7],
            latitude: None,
            longitude: None,
            trees: gbdt.trees,
            learning_rate: gbdt.learning_rate,
            max_depth: gbdt.max_depth,
            penalty: None,
        }
    }
}

/// Whether options may name files on the machine that runs the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Files {
    /// The caller's own machine (the CLI, Python): `holidays` may be a file.
    Local,
    /// A remote caller (a service): options never name a file, and nothing
    /// about the filesystem is looked at or reported.
    Refused,
}

impl ModelOptions {
    /// The checked spec for `series` (holiday tables cover its years), for a
    /// local caller: `holidays` may name a file.
    ///
    /// # Errors
    /// Any invalid option, named.
    pub fn to_spec(&self, series: &History) -> Result<ForecastSpec> {
        self.to_spec_with(series, Files::Local)
    }

    /// The checked spec for `series`, with `files` saying whether `holidays`
    /// may name a file.
    ///
    /// # Errors
    /// Any invalid option, named.
    pub fn to_spec_with(&self, series: &History, files: Files) -> Result<ForecastSpec> {
        let issue_time: Time = self.issue_time.parse().map_err(|_| {
            ForecastError::option("issue_time", format!("{:?} is not a time of day (HH:MM)", self.issue_time))
        })?;
        let mut model = ModelSpec::from_name(&self.model)?;
        match &mut model {
            ModelSpec::Gbdt(p) => {
                p.trees = self.trees;
                p.learning_rate = self.learning_rate;
                p.max_depth = self.max_depth;
            }
            ModelSpec::Linear { penalty, .. } => {
                if let Some(v) = self.penalty {
                    *penalty = v;
                }
            }
            ModelSpec::NaiveDay | ModelSpec::NaiveWeek | ModelSpec::ClearSkyPersistence | ModelSpec::Vanilla => {}
        }
        let mut features = FeatureSpec::new(self.horizon);
        features.lag_days.clone_from(&self.lags);
        if let Some(t) = &self.temperature {
            if series.exog(t).is_none() {
                return Err(ForecastError::option("temperature", format!("{t:?} is not one of the exogenous columns")));
            }
            features.temperature = Some(t.clone());
        }
        if let Some(h) = &self.holidays {
            let first = series.local(0).year();
            let last = series.local(series.len().saturating_sub(1)).year().saturating_add(1);
            let is_builtin = calendar::is_builtin(h);
            features.holidays = match files {
                Files::Local if !is_builtin && Path::new(h).exists() => Holidays::from_file(Path::new(h))?,
                Files::Local | Files::Refused => Holidays::builtin(h, first, last)?,
            };
        }
        if !self.holiday_dates.is_empty() {
            let inline = Holidays::from_dates(&self.holiday_dates)?;
            features.holidays = std::mem::replace(&mut features.holidays, Holidays::none()).union(inline);
        }
        match (self.latitude, self.longitude) {
            (Some(lat), Some(lon)) => features.site = Some(Site::new(lat, lon)?),
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(ForecastError::option("latitude", "latitude and longitude go together"));
            }
        }
        let mut spec = ForecastSpec::new(model, features, issue_time, self.quantiles.clone());
        spec.calibration_days = self.calibration_days;
        spec.calibration_folds = self.calibration_folds;
        spec.regime = match self.calibrate_by.as_str() {
            "auto" if spec.features.temperature_known_ahead(series) => Regime::Temperature,
            "auto" => Regime::None,
            name => Regime::from_name(name)?,
        };
        spec.regime_bins = self.regime_bins;
        spec.train_days = self.train_days;
        spec.quantile_trees = match self.intervals.as_str() {
            "conformal" => false,
            "quantile-trees" | "quantile_trees" => true,
            other => {
                return Err(ForecastError::option(
                    "intervals",
                    format!("{other:?}; expected conformal or quantile-trees"),
                ));
            }
        };
        spec.check()?;
        Ok(spec)
    }
}

/// A cut in time as users write it: a date means "after that local day",
/// a timestamp (RFC 3339, or local `YYYY-MM-DDTHH:MM`) "just before it".
///
/// # Errors
/// Text that is neither, naming `option`.
pub fn cut_time(text: &str, tz: &TimeZone, option: &str) -> Result<Timestamp> {
    cut(text, tz, option, true)
}

/// A bound in time that excludes what it names: a date means "from the
/// start of that local day on" (`--test-until 2014-12-01` issues nothing on
/// 1 December), a timestamp "from it on".
///
/// # Errors
/// Text that is neither, naming `option`.
pub fn start_time(text: &str, tz: &TimeZone, option: &str) -> Result<Timestamp> {
    cut(text, tz, option, false)
}

fn cut(text: &str, tz: &TimeZone, option: &str, date_ends_after: bool) -> Result<Timestamp> {
    let bad = |reason: String| ForecastError::option(option, reason);
    if text.len() == 10
        && let Ok(d) = text.parse::<Date>()
    {
        let day = if date_ends_after { d.tomorrow().map_err(|e| bad(e.to_string()))? } else { d };
        return day.to_zoned_datetime(tz.clone()).map(|z| z.timestamp()).map_err(|e| bad(e.to_string()));
    }
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = text.parse::<DateTime>() {
        return dt.to_zoned_datetime(tz.clone()).map(|z| z.timestamp()).map_err(|e| bad(e.to_string()));
    }
    Err(bad(format!("{text:?} is not a date (YYYY-MM-DD) or a timestamp")))
}
