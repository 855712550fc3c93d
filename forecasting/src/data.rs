//! Time series from CSV or Parquet files, on a regular time grid.
//!
//! Files are read with polars. The time column may hold instants (RFC 3339
//! text with an offset, or a time-zone-aware datetime column) or local wall
//! clock times (naive text or datetimes), which are placed in the series'
//! time zone. Internally a series is a regular grid of absolute instants, so
//! that a day of 23 or 25 hours around a DST change simply has 46 or 50
//! half-hours; calendar features use the local time of each instant.
//!
//! [`read`] also cleans the data and says what it did in a [`QualityReport`]:
//! rows off the grid, duplicates, missing steps, short gaps imputed, long
//! gaps left, outliers and flat-lines flagged.

use std::path::Path;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ZonedDateTime};
use polars::prelude::*;
use serde::Serialize;
use volta_engine::series::LocalTimes;
use volta_engine::{TimeGrid, TimeSeries};

use crate::error::{ForecastError, Result};
use crate::quality::{self, QualityReport};

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
        Ok(Self { grid, target_name, target, exog })
    }

    /// A history whose target is an engine series (a case's profile, say),
    /// named `target_name`, without exogenous columns.
    #[must_use]
    pub fn from_series(target_name: impl Into<String>, series: TimeSeries) -> Self {
        let grid = series.grid().clone();
        Self { grid, target_name: target_name.into(), target: series.into_values(), exog: Vec::new() }
    }

    /// The target as an engine series, ready to become a case's profile.
    ///
    /// # Errors
    /// Never in practice: the history keeps one value per step.
    pub fn target_series(&self) -> Result<TimeSeries> {
        TimeSeries::new(self.grid.clone(), self.target.clone())
            .map_err(|e| ForecastError::column(&self.target_name, e.to_string()))
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
        Self::new(grid, self.target_name.clone(), mean(&self.target), exog)
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
            for e in &mut out.exog {
                e.values.resize(len, f64::NAN);
            }
        }
        Ok(out)
    }
}

/// How to read a file into a [`History`].
#[derive(Debug, Clone, Serialize)]
pub struct ReadOptions {
    /// The time column; by default the first datetime column, or one named
    /// `timestamp`, `time`, `datetime` or `date`.
    pub time_column: Option<String>,
    /// The target column.
    pub target: String,
    /// Exogenous columns to carry along.
    pub exog: Vec<String>,
    /// Those exogenous columns that are forecasts, known over the horizon at
    /// issue time.
    pub known_ahead: Vec<String>,
    /// Time zone of the calendar, and of naive (offset-less) timestamps.
    /// Default: UTC.
    pub timezone: Option<String>,
    /// Gaps of at most this many steps are filled by linear interpolation;
    /// longer gaps stay missing. Default: 4.
    pub max_gap_steps: usize,
    /// Resample to this step (seconds; a multiple of the data's step) by
    /// averaging, after cleaning.
    pub resample_s: Option<i64>,
    /// A second file (weather, say) holding exogenous columns that the main
    /// file lacks, on its own time grid: its values are interpolated
    /// linearly in time onto the main file's timestamps.
    pub exog_file: Option<std::path::PathBuf>,
    /// The longest regular grid the rows may span, in steps (default
    /// [`MAX_GRID_STEPS`]): a few rows far apart with a short step would
    /// otherwise make a grid of millions of empty steps. Services set it lower.
    pub max_steps: usize,
}

/// The default of [`ReadOptions::max_steps`]: the engine's largest grid (ten
/// years of one-minute steps).
pub const MAX_GRID_STEPS: usize = volta_engine::time::MAX_STEPS;

impl ReadOptions {
    /// Options for `target` with every default.
    #[must_use]
    pub fn new(target: impl Into<String>) -> Self {
        Self {
            time_column: None,
            target: target.into(),
            exog: Vec::new(),
            known_ahead: Vec::new(),
            timezone: None,
            max_gap_steps: 4,
            resample_s: None,
            exog_file: None,
            max_steps: MAX_GRID_STEPS,
        }
    }
}

/// Reads a CSV or Parquet file (by extension) into a clean regular series.
///
/// # Errors
/// Unreadable files, missing columns, unparsable timestamps or values, and a
/// time column without a regular step, each naming the file or column.
pub fn read(path: &Path, options: &ReadOptions) -> Result<(History, QualityReport)> {
    let frame = load_frame(path)?;
    let extra = options.exog_file.as_deref().map(load_frame).transpose()?;
    from_frames(&frame, extra.as_ref(), options)
}

/// Loads a whole file as a polars frame.
///
/// # Errors
/// When the file cannot be read or parsed.
pub fn load_frame(path: &Path) -> Result<DataFrame> {
    let fail = |e: &dyn std::fmt::Display| ForecastError::Read { path: path.to_owned(), reason: e.to_string() };
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("parquet" | "pq") => {
            let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
            ParquetReader::new(file).finish().map_err(|e| fail(&e))
        }
        Some("csv" | "txt") | None => CsvReadOptions::default()
            .with_has_header(true)
            .with_infer_schema_length(Some(10_000))
            .try_into_reader_with_file_path(Some(path.to_owned()))
            .and_then(SerReader::finish)
            .map_err(|e| fail(&e)),
        Some(other) => Err(fail(&format!("unknown file type .{other}; expected .csv or .parquet"))),
    }
}

/// Parses CSV text (with a header row) into a polars frame, for data that
/// arrives over the network rather than from a file.
///
/// # Errors
/// When the text is not CSV.
pub fn frame_from_csv(text: &str) -> Result<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(10_000))
        .into_reader_with_file_handle(std::io::Cursor::new(text.as_bytes().to_vec()))
        .finish()
        .map_err(|e| ForecastError::Read { path: "<csv text>".into(), reason: e.to_string() })
}

/// Builds a clean regular series from a frame (see [`read`]).
///
/// # Errors
/// As [`read`].
pub fn from_frame(frame: &DataFrame, options: &ReadOptions) -> Result<(History, QualityReport)> {
    from_frames(frame, None, options)
}

/// [`from_frame`] with exogenous columns optionally taken from a second
/// frame, interpolated in time (see [`ReadOptions::exog_file`]).
///
/// # Errors
/// As [`read`].
pub fn from_frames(
    frame: &DataFrame,
    extra: Option<&DataFrame>,
    options: &ReadOptions,
) -> Result<(History, QualityReport)> {
    let tz = zone(options)?;
    let names: Vec<String> = frame.get_column_names().iter().map(|s| s.to_string()).collect();
    let time_name = match &options.time_column {
        Some(name) => name.clone(),
        None => guess_time_column(frame, &names)?,
    };
    let column = |name: &str| {
        frame
            .column(name)
            .map_err(|_| ForecastError::MissingColumn { column: name.to_owned(), available: names.join(", ") })
    };
    check_known_ahead(options)?;
    let times = timestamps(column(&time_name)?, &time_name, &tz)?;
    let target = values(column(&options.target)?, &options.target)?;
    let mut exog = Vec::with_capacity(options.exog.len());
    for name in &options.exog {
        if name == &options.target || name == &time_name {
            return Err(ForecastError::option("exog", format!("{name:?} is the target or the time column")));
        }
        let own = frame.column(name).ok();
        let col = match (own, extra) {
            (Some(c), _) => values(c, name)?,
            (None, Some(other)) => {
                let other_names: Vec<String> = other.get_column_names().iter().map(|s| s.to_string()).collect();
                let other_col = other.column(name).map_err(|_| ForecastError::MissingColumn {
                    column: name.clone(),
                    available: format!("{} (data) and {} (exog file)", names.join(", "), other_names.join(", ")),
                })?;
                let other_time = guess_time_column(other, &other_names)?;
                let other_times = timestamps(
                    other.column(&other_time).map_err(|e| ForecastError::column(&other_time, e.to_string()))?,
                    &other_time,
                    &tz,
                )?;
                interpolate(&other_times, &values(other_col, name)?, &times)
            }
            (None, None) => values(column(name)?, name)?,
        };
        exog.push((name.clone(), col));
    }
    clean(&times, &time_name, &target, exog, options, tz)
}

/// Values at `at` by linear interpolation in time between the samples
/// `(times, values)` (NaN outside them or next to a missing sample).
fn interpolate(times: &[Timestamp], values: &[f64], at: &[Timestamp]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..times.len()).collect();
    order.sort_by_key(|&i| times[i]);
    let t: Vec<Timestamp> = order.iter().map(|&i| times[i]).collect();
    let v: Vec<f64> = order.iter().map(|&i| values[i]).collect();
    at.iter()
        .map(|x| {
            let k = t.partition_point(|s| s < x);
            if k < t.len() && t[k] == *x {
                return v[k];
            }
            if k == 0 || k == t.len() {
                return f64::NAN;
            }
            let (t0, t1) = (t[k - 1], t[k]);
            let w = x.duration_since(t0).as_secs_f64() / t1.duration_since(t0).as_secs_f64();
            v[k - 1] + w * (v[k] - v[k - 1])
        })
        .collect()
}

/// A clean regular series from columns already in memory (a Python or
/// service front end): instants, the target and exogenous columns, cleaned
/// and reported as [`read`] does. `options.time_column` and `exog_file` are
/// not used; `options.exog` is ignored in favour of `exog`'s names.
///
/// # Errors
/// Mismatched lengths, an unknown time zone, or too few rows.
pub fn from_columns(
    times: &[Timestamp],
    target: &[f64],
    exog: Vec<(String, Vec<f64>)>,
    options: &ReadOptions,
) -> Result<(History, QualityReport)> {
    let tz = zone(options)?;
    if target.len() != times.len() {
        return Err(ForecastError::column(
            &options.target,
            format!("{} values for {} times", target.len(), times.len()),
        ));
    }
    for (name, values) in &exog {
        if values.len() != times.len() {
            return Err(ForecastError::column(name, format!("{} values for {} times", values.len(), times.len())));
        }
    }
    let mut options = options.clone();
    options.exog = exog.iter().map(|(n, _)| n.clone()).collect();
    check_known_ahead(&options)?;
    clean(times, "time", target, exog, &options, tz)
}

/// The calendar's time zone (UTC by default).
fn zone(options: &ReadOptions) -> Result<TimeZone> {
    match &options.timezone {
        Some(name) => TimeZone::get(name).map_err(|e| ForecastError::option("timezone", e.to_string())),
        None => Ok(TimeZone::UTC),
    }
}

/// Every known-ahead column must be one of the exogenous columns.
fn check_known_ahead(options: &ReadOptions) -> Result<()> {
    match options.known_ahead.iter().find(|name| !options.exog.contains(name)) {
        Some(name) => Err(ForecastError::option(
            "known_ahead",
            format!("{name:?} is not one of the exogenous columns ({})", options.exog.join(", ")),
        )),
        None => Ok(()),
    }
}

/// The common end of every reading path: the regular grid and its cleaning,
/// then the resampling asked for.
fn clean(
    times: &[Timestamp],
    time_name: &str,
    target: &[f64],
    exog: Vec<(String, Vec<f64>)>,
    options: &ReadOptions,
    tz: TimeZone,
) -> Result<(History, QualityReport)> {
    let (series, mut report) = quality::regularise(times, time_name, target, exog, options, tz)?;
    match options.resample_s {
        Some(step) if step != series.step_s() => {
            report.resampled_to = Some(step);
            Ok((series.resample(step)?, report))
        }
        Some(_) | None => Ok((series, report)),
    }
}

fn guess_time_column(frame: &DataFrame, names: &[String]) -> Result<String> {
    for col in frame.columns() {
        if matches!(col.dtype(), DataType::Datetime(..)) {
            return Ok(col.name().to_string());
        }
    }
    for want in ["timestamp", "time", "datetime", "date", "ds"] {
        if let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(want)) {
            return Ok(name.clone());
        }
    }
    Err(ForecastError::option(
        "time_column",
        format!("no datetime column and none named timestamp/time/datetime/date; the data has: {}", names.join(", ")),
    ))
}

/// A numeric column as f64, nulls as NaN.
fn values(column: &Column, name: &str) -> Result<Vec<f64>> {
    if matches!(column.dtype(), DataType::String) {
        return Err(ForecastError::column(name, "holds text, expected numbers"));
    }
    let cast = column
        .cast(&DataType::Float64)
        .map_err(|e| ForecastError::column(name, format!("cannot be read as numbers: {e}")))?;
    let ca = cast.f64().map_err(|e| ForecastError::column(name, e.to_string()))?;
    Ok(ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Instants of the time column.
#[expect(clippy::wildcard_enum_match_arm, reason = "polars' dtype list grows; every other dtype is refused alike")]
fn timestamps(column: &Column, name: &str, tz: &TimeZone) -> Result<Vec<Timestamp>> {
    let bad = |row: usize, reason: String| ForecastError::Timestamp { column: name.to_owned(), row: row + 1, reason };
    match column.dtype() {
        DataType::Datetime(unit, zone) => {
            let ca = column.datetime().map_err(|e| ForecastError::column(name, e.to_string()))?;
            let per_s: i64 = match unit {
                TimeUnit::Nanoseconds => 1_000_000_000,
                TimeUnit::Microseconds => 1_000_000,
                TimeUnit::Milliseconds => 1_000,
            };
            let aware = zone.is_some();
            let mut local = LocalTimes::new(tz);
            ca.physical()
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    let v = v.ok_or_else(|| bad(row, "missing timestamp".into()))?;
                    let ts =
                        Timestamp::new(v.div_euclid(per_s), (v.rem_euclid(per_s) * (1_000_000_000 / per_s)) as i32)
                            .map_err(|e| bad(row, e.to_string()))?;
                    if aware {
                        Ok(ts)
                    } else {
                        // Naive datetimes are wall-clock times in the series' zone.
                        local.place(ts.to_zoned_datetime(TimeZone::UTC).datetime()).map_err(|e| bad(row, e))
                    }
                })
                .collect()
        }
        DataType::String => {
            let ca = column.str().map_err(|e| ForecastError::column(name, e.to_string()))?;
            let mut local = LocalTimes::new(tz);
            ca.iter()
                .enumerate()
                .map(|(row, v)| {
                    let text = v.ok_or_else(|| bad(row, "missing timestamp".into()))?;
                    local.parse(text).map_err(|e| bad(row, e))
                })
                .collect()
        }
        other => Err(ForecastError::column(name, format!("is {other}, expected datetimes or timestamp text"))),
    }
}
