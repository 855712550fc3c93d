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
use jiff::{SignedDuration, Timestamp};
use polars::prelude::*;
use serde::Serialize;
use volta_engine::TimeGrid;
use volta_engine::series::LocalTimes;

use crate::error::{ForecastError, Result};
use crate::history::{Exog, History};
use crate::quality::{self, QualityReport};

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
    let (series, mut report) = regularise(times, time_name, target, exog, options, tz)?;
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

/// Places rows on a regular grid and cleans them, counting in the report
/// every row dropped, step added and value imputed.
fn regularise(
    times: &[Timestamp],
    time_name: &str,
    target: &[f64],
    exog: Vec<(String, Vec<f64>)>,
    options: &ReadOptions,
    tz: TimeZone,
) -> Result<(History, QualityReport)> {
    let mut report = QualityReport { rows: times.len(), ..QualityReport::default() };
    if times.len() < 2 {
        return Err(ForecastError::column(time_name, format!("{} rows; at least 2 are needed", times.len())));
    }
    let mut order: Vec<usize> = (0..times.len()).collect();
    if times.windows(2).any(|w| w[1] < w[0]) {
        order.sort_by_key(|&i| times[i]);
        report.sorted = true;
    }
    let step_s = most_common_step(&order.iter().map(|&i| times[i]).collect::<Vec<_>>())
        .ok_or_else(|| ForecastError::column(time_name, "all timestamps are equal"))?;
    let start = times[order[0]];
    let last = times[order[order.len() - 1]];
    let span = last.duration_since(start).as_secs();
    let steps = usize::try_from(span / step_s).unwrap_or(usize::MAX).saturating_add(1);
    if steps > options.max_steps {
        return Err(ForecastError::column(
            time_name,
            format!(
                "the rows span {steps} steps of {step_s} s, more than the limit of {} (is the step right?)",
                options.max_steps
            ),
        ));
    }
    let mut slot: Vec<Option<usize>> = vec![None; steps];
    for &i in &order {
        let offset = times[i].duration_since(start).as_secs();
        if offset % step_s != 0 {
            report.off_grid += 1;
            continue;
        }
        let k = (offset / step_s) as usize;
        if slot[k].is_some() {
            report.duplicates += 1;
        } else {
            slot[k] = Some(i);
        }
    }
    report.missing_steps = slot.iter().filter(|s| s.is_none()).count();
    let place = |col: &[f64]| -> Vec<f64> { slot.iter().map(|s| s.map_or(f64::NAN, |i| col[i])).collect() };
    let mut y = place(target);
    report.imputed = quality::impute(&mut y, options.max_gap_steps);
    let mut ex = Vec::with_capacity(exog.len());
    for (name, col) in exog {
        let mut values = place(&col);
        let filled = quality::impute(&mut values, options.max_gap_steps);
        report.exog_imputed.push((name.clone(), filled));
        let known_ahead = options.known_ahead.contains(&name);
        ex.push(Exog { name, values, known_ahead });
    }
    let grid = TimeGrid::new(start.to_zoned_datetime(tz), SignedDuration::from_secs(step_s), steps)
        .map_err(|e| ForecastError::column(time_name, format!("the rows' step of {step_s} s: {e}")))?;
    let series = History::new(grid, options.target.clone(), y, ex)?;
    report.step_seconds = step_s;
    report.steps = steps;
    report.start = series.stamp(0);
    report.end = series.stamp(steps - 1);
    quality::find(&series, &mut report);
    Ok((series, report))
}

fn most_common_step(sorted: &[Timestamp]) -> Option<i64> {
    let mut counts: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
    for w in sorted.windows(2) {
        let d = w[1].duration_since(w[0]);
        if d > SignedDuration::ZERO {
            *counts.entry(d.as_secs()).or_default() += 1;
        }
    }
    counts.into_iter().filter(|&(s, _)| s > 0).max_by_key(|&(s, n)| (n, -s)).map(|(s, _)| s)
}
