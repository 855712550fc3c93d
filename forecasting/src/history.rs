//! What a forecaster reads: a target and its exogenous columns on one grid.

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use volta_engine::{TimeGrid, TimeSeries};

use crate::error::{ForecastError, Result};

/// What a forecaster reads: a target and its exogenous columns on one
/// regular [`TimeGrid`] of the engine (so a 23- or 25-hour local day simply
/// has 23 or 25 hourly steps, and calendar features use each step's local
/// time). Missing values are NaN.
#[derive(Debug, Clone)]
pub struct History {
    grid: TimeGrid,
    /// The target column's name.
    pub target_name: String,
    /// The target, one value per step of the grid.
    pub target: Vec<f64>,
    /// Exogenous columns, one value per step of the grid.
    pub exog: Vec<Exog>,
    /// Steps whose target the quality check flagged and the cleaning policy
    /// excluded: their value in `target` is a stand-in for the features
    /// (lags), never a label to fit, calibrate or score. Empty: none.
    excluded: Vec<bool>,
}

/// An exogenous column (temperature, irradiance, a workday flag, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Exog {
    /// Column name.
    pub name: String,
    /// Values; NaN where missing.
    pub values: Vec<f64>,
    /// Whether the column is a forecast, known ahead of time for the whole
    /// horizon at issue time. Columns that are not (measured temperature,
    /// say) are only used up to the issue time: no future weather leaks in.
    pub known_ahead: bool,
}

impl History {
    /// A history on `grid`; the target and every exogenous column must have
    /// one value per step.
    ///
    /// # Errors
    /// When a length differs from the grid's.
    pub fn new(grid: TimeGrid, target_name: impl Into<String>, target: Vec<f64>, exog: Vec<Exog>) -> Result<Self> {
        let target_name = target_name.into();
        if target.len() != grid.len() {
            return Err(ForecastError::column(
                &target_name,
                format!("{} values for a grid of {} steps", target.len(), grid.len()),
            ));
        }
        for e in &exog {
            if e.values.len() != grid.len() {
                return Err(ForecastError::column(
                    &e.name,
                    format!("{} values, the target has {}", e.values.len(), target.len()),
                ));
            }
        }
        Ok(Self { grid, target_name, target, exog, excluded: Vec::new() })
    }

    /// A history whose target is an engine series (a case's profile, say),
    /// named `target_name`, without exogenous columns.
    #[must_use]
    pub fn from_series(target_name: impl Into<String>, series: TimeSeries) -> Self {
        let grid = series.grid().clone();
        Self {
            grid,
            target_name: target_name.into(),
            target: series.into_values(),
            exog: Vec::new(),
            excluded: Vec::new(),
        }
    }

    /// The target as an engine series, ready to become a case's profile.
    ///
    /// # Errors
    /// Never in practice: the history keeps one value per step.
    pub fn target_series(&self) -> Result<TimeSeries> {
        TimeSeries::new(self.grid.clone(), self.target.clone())
            .map_err(|e| ForecastError::column(&self.target_name, e.to_string()))
    }

    /// Whether step `i`'s target was flagged and excluded from fitting,
    /// calibration and scoring.
    #[must_use]
    pub fn is_excluded(&self, i: usize) -> bool {
        self.excluded.get(i).copied().unwrap_or(false)
    }

    /// Step `i`'s target as a label to fit or score: NaN where it is
    /// missing or excluded.
    #[must_use]
    pub fn label(&self, i: usize) -> f64 {
        if self.is_excluded(i) { f64::NAN } else { self.target.get(i).copied().unwrap_or(f64::NAN) }
    }

    /// Number of excluded steps.
    #[must_use]
    pub fn excluded_count(&self) -> usize {
        self.excluded.iter().filter(|e| **e).count()
    }

    /// Marks the steps whose target is not to be used as a label (one flag
    /// per step; any other length clears the marks).
    pub fn set_excluded(&mut self, excluded: Vec<bool>) {
        self.excluded =
            if excluded.len() == self.target.len() && excluded.contains(&true) { excluded } else { Vec::new() };
    }

    /// The grid the values are on.
    #[must_use]
    pub fn grid(&self) -> &TimeGrid {
        &self.grid
    }

    /// Time zone of the calendar (hour of day, weekday, holidays).
    #[must_use]
    pub fn tz(&self) -> &TimeZone {
        self.grid.time_zone()
    }

    /// The first step's start.
    #[must_use]
    pub fn start(&self) -> Timestamp {
        self.grid.instant(0)
    }

    /// The step length in seconds.
    #[must_use]
    pub fn step_s(&self) -> i64 {
        self.grid.step().as_secs()
    }

    /// Number of steps.
    #[must_use]
    pub fn len(&self) -> usize {
        self.target.len()
    }

    /// Whether the history has no step (never: a grid has at least one).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.target.is_empty()
    }

    /// Start of step `i`.
    #[must_use]
    pub fn time(&self, i: usize) -> Timestamp {
        self.grid.instant(i)
    }

    /// Start of step `i` in the series' time zone.
    #[must_use]
    pub fn local(&self, i: usize) -> ZonedDateTime {
        self.grid.at(i)
    }

    /// Start of step `i` in RFC 3339 with the zone's offset.
    #[must_use]
    pub fn stamp(&self, i: usize) -> String {
        self.grid.stamp(i)
    }

    /// The step at or after `t` (may be past the end).
    #[must_use]
    pub fn index_at_or_after(&self, t: Timestamp) -> usize {
        let step = self.step_s();
        let secs = t.duration_since(self.start()).as_secs();
        if secs <= 0 { 0 } else { usize::try_from((secs + step - 1) / step).unwrap_or(usize::MAX) }
    }

    /// Steps per day (86,400 s divided by the step, rounded).
    #[must_use]
    pub fn steps_per_day(&self) -> usize {
        let step = self.step_s();
        usize::try_from(((86_400 + step / 2) / step).max(1)).unwrap_or(1)
    }

    /// The exogenous column called `name`.
    #[must_use]
    pub fn exog(&self, name: &str) -> Option<&Exog> {
        self.exog.iter().find(|e| e.name == name)
    }

    /// The history on a coarser grid of `step_s` seconds (a multiple of its
    /// step): each new step is the mean of the values inside it, ignoring
    /// missing ones (missing when all are). Steps are aligned on multiples
    /// of `step_s` since the Unix epoch, so an hourly grid starts on the hour.
    ///
    /// # Errors
    /// When `step_s` is not a positive multiple of the current step that
    /// divides a day.
    pub fn resample(&self, step_s: i64) -> Result<Self> {
        let current = self.step_s();
        if step_s <= 0 || step_s % current != 0 {
            return Err(ForecastError::option(
                "resample",
                format!("{step_s} s is not a multiple of the data's step of {current} s"),
            ));
        }
        if step_s == current {
            return Ok(self.clone());
        }
        let first = self.start().as_second().div_euclid(step_s) * step_s;
        let last = self.time(self.len().saturating_sub(1)).as_second().div_euclid(step_s) * step_s;
        let len = usize::try_from((last - first) / step_s + 1).unwrap_or(0);
        let bucket = |i: usize| usize::try_from((self.time(i).as_second() - first) / step_s).unwrap_or(0);
        let mean = |values: &[f64]| {
            let mut sum = vec![0.0; len];
            let mut n = vec![0usize; len];
            for (i, v) in values.iter().enumerate() {
                if !v.is_nan() {
                    sum[bucket(i)] += v;
                    n[bucket(i)] += 1;
                }
            }
            sum.iter().zip(&n).map(|(s, &k)| if k == 0 { f64::NAN } else { s / k as f64 }).collect::<Vec<f64>>()
        };
        let start = Timestamp::from_second(first).map_err(|e| ForecastError::option("resample", e.to_string()))?;
        let grid = TimeGrid::new(start.to_zoned_datetime(self.tz().clone()), SignedDuration::from_secs(step_s), len)
            .map_err(|e| ForecastError::option("resample", e.to_string()))?;
        let exog = self
            .exog
            .iter()
            .map(|e| Exog { name: e.name.clone(), values: mean(&e.values), known_ahead: e.known_ahead })
            .collect();
        let mut out = Self::new(grid, self.target_name.clone(), mean(&self.target), exog)?;
        if !self.excluded.is_empty() {
            // A coarse step is excluded when any of its fine steps is.
            let mut excluded = vec![false; len];
            for (i, e) in self.excluded.iter().enumerate() {
                excluded[bucket(i)] |= *e;
            }
            out.set_excluded(excluded);
        }
        Ok(out)
    }

    /// The first `len` steps, at least one (a training set, say).
    #[must_use]
    pub fn head(&self, len: usize) -> Self {
        let grid = self.grid.window(0, len);
        let len = grid.len();
        Self {
            grid,
            target_name: self.target_name.clone(),
            target: self.target[..len].to_vec(),
            exog: self
                .exog
                .iter()
                .map(|e| Exog { name: e.name.clone(), values: e.values[..len].to_vec(), known_ahead: e.known_ahead })
                .collect(),
            excluded: self.excluded.get(..len).map(<[bool]>::to_vec).unwrap_or_default(),
        }
    }

    /// The history padded with missing steps to `len` (for forecasts past
    /// its end); unchanged when it is already as long.
    ///
    /// # Errors
    /// A grid longer than the engine allows.
    pub fn extend(&self, len: usize) -> Result<Self> {
        let mut out = self.clone();
        if len > out.len() {
            out.grid = TimeGrid::new(self.grid.start().clone(), self.grid.step(), len)
                .map_err(|e| ForecastError::option("horizon", e.to_string()))?;
            out.target.resize(len, f64::NAN);
            if !out.excluded.is_empty() {
                out.excluded.resize(len, false);
            }
            for e in &mut out.exog {
                e.values.resize(len, f64::NAN);
            }
        }
        Ok(out)
    }
}
