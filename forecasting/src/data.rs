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
use volta_engine::series::{LocalTimes, Placed};

use crate::error::{ForecastError, Result};
use crate::history::{Exog, History};
use crate::quality::{self, Cleaning, DuplicatePolicy, NonFinite, QualityReport};

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
    /// What to do with flagged values, repeated instants and local times
    /// around DST changes (see [`quality`]).
    pub cleaning: Cleaning,
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
            cleaning: Cleaning::default(),
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
    let times = timestamps(column(&time_name)?, &time_name, &tz, options)?;
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
                    options,
                )?;
                let (at, vals) = instants(&other_times, &values(other_col, name)?);
                let rows: Vec<Timestamp> =
                    times.iter().map(|p| first_instant(*p).unwrap_or(Timestamp::UNIX_EPOCH)).collect();
                interpolate(&at, &vals, &rows)
            }
            (None, None) => values(column(name)?, name)?,
        };
        exog.push((name.clone(), col));
    }
    clean(&times, &time_name, &target, exog, options, tz)
}

/// The instants of placed rows with their values: a row given to both
/// instants of a repeated hour counts at each, a dropped row at none.
fn instants(placed: &[Placed], values: &[f64]) -> (Vec<Timestamp>, Vec<f64>) {
    let mut at = Vec::with_capacity(placed.len());
    let mut vals = Vec::with_capacity(placed.len());
    for (p, v) in placed.iter().zip(values) {
        match *p {
            Placed::At(t) | Placed::Shifted(t) => {
                at.push(t);
                vals.push(*v);
            }
            Placed::Both(a, b) => {
                at.extend([a, b]);
                vals.extend([*v, *v]);
            }
            Placed::Dropped => {}
        }
    }
    (at, vals)
}

/// The first instant a row was placed at, if any.
fn first_instant(placed: Placed) -> Option<Timestamp> {
    match placed {
        Placed::At(t) | Placed::Shifted(t) | Placed::Both(t, _) => Some(t),
        Placed::Dropped => None,
    }
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
    check_lengths(times.len(), target, &exog, options)?;
    let placed: Vec<Placed> = times.iter().map(|t| Placed::At(*t)).collect();
    clean_columns(&placed, "time", target, exog, options, tz)
}

/// Every column of an in-memory series has one value per time.
fn check_lengths(times: usize, target: &[f64], exog: &[(String, Vec<f64>)], options: &ReadOptions) -> Result<()> {
    let columns = std::iter::once((options.target.as_str(), target.len()))
        .chain(exog.iter().map(|(name, values)| (name.as_str(), values.len())));
    for (name, len) in columns {
        if len != times {
            return Err(ForecastError::column(name, format!("{len} values for {times} times")));
        }
    }
    Ok(())
}

/// The end of the in-memory reading paths: `exog`'s names are the
/// exogenous columns, the known-ahead ones must be among them, then the
/// rows are placed and cleaned.
fn clean_columns(
    placed: &[Placed],
    time_name: &str,
    target: &[f64],
    exog: Vec<(String, Vec<f64>)>,
    options: &ReadOptions,
    tz: TimeZone,
) -> Result<(History, QualityReport)> {
    let mut options = options.clone();
    options.exog = exog.iter().map(|(n, _)| n.clone()).collect();
    check_known_ahead(&options)?;
    clean(placed, time_name, target, exog, &options, tz)
}

/// [`from_columns`] with timestamps as text, as a file holds them: instants
/// with an offset, or wall-clock times placed in the series' zone by the
/// DST policy of `options.cleaning` (a Python frame with naive times sends
/// them so, and they are read exactly as the CLI reads a file).
///
/// # Errors
/// As [`from_columns`], and a timestamp that cannot be read or placed,
/// named by its row.
pub fn from_text_times(
    times: &[String],
    target: &[f64],
    exog: Vec<(String, Vec<f64>)>,
    options: &ReadOptions,
) -> Result<(History, QualityReport)> {
    let tz = zone(options)?;
    let name = options.time_column.as_deref().unwrap_or("time");
    check_lengths(times.len(), target, &exog, options)?;
    let mut local = LocalTimes::with_policy(&tz, options.cleaning.dst);
    let placed = times
        .iter()
        .enumerate()
        .map(|(row, text)| {
            local.parse_with_policy(text).map_err(|reason| ForecastError::Timestamp {
                column: name.to_owned(),
                row: row + 1,
                reason,
            })
        })
        .collect::<Result<Vec<Placed>>>()?;
    clean_columns(&placed, name, target, exog, options, tz)
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
    times: &[Placed],
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

/// A numeric column as f64, nulls as NaN. Text is read value by value
/// (`inf`, `NaN` and empty cells included), and the first cell that is no
/// number is named by its row.
fn values(column: &Column, name: &str) -> Result<Vec<f64>> {
    if matches!(column.dtype(), DataType::String) {
        let ca = column.str().map_err(|e| ForecastError::column(name, e.to_string()))?;
        return ca
            .iter()
            .enumerate()
            .map(|(row, cell)| match cell.map(str::trim) {
                None | Some("" | "NA" | "N/A" | "null" | "NULL") => Ok(f64::NAN),
                Some(text) => text.parse::<f64>().map_err(|_| ForecastError::Value {
                    column: name.to_owned(),
                    row: row + 1,
                    reason: format!("{text:?} is not a number"),
                }),
            })
            .collect();
    }
    let cast = column
        .cast(&DataType::Float64)
        .map_err(|e| ForecastError::column(name, format!("cannot be read as numbers: {e}")))?;
    let ca = cast.f64().map_err(|e| ForecastError::column(name, e.to_string()))?;
    Ok(ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect())
}

/// Instants of the time column.
#[expect(clippy::wildcard_enum_match_arm, reason = "polars' dtype list grows; every other dtype is refused alike")]
fn timestamps(column: &Column, name: &str, tz: &TimeZone, options: &ReadOptions) -> Result<Vec<Placed>> {
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
            let mut local = LocalTimes::with_policy(tz, options.cleaning.dst);
            ca.physical()
                .iter()
                .enumerate()
                .map(|(row, v)| {
                    let v = v.ok_or_else(|| bad(row, "missing timestamp".into()))?;
                    let ts =
                        Timestamp::new(v.div_euclid(per_s), (v.rem_euclid(per_s) * (1_000_000_000 / per_s)) as i32)
                            .map_err(|e| bad(row, e.to_string()))?;
                    if aware {
                        Ok(Placed::At(ts))
                    } else {
                        // Naive datetimes are wall-clock times in the series' zone.
                        local.place_with_policy(ts.to_zoned_datetime(TimeZone::UTC).datetime()).map_err(|e| bad(row, e))
                    }
                })
                .collect()
        }
        DataType::String => {
            let ca = column.str().map_err(|e| ForecastError::column(name, e.to_string()))?;
            let mut local = LocalTimes::with_policy(tz, options.cleaning.dst);
            ca.iter()
                .enumerate()
                .map(|(row, v)| {
                    let text = v.ok_or_else(|| bad(row, "missing timestamp".into()))?;
                    local.parse_with_policy(text).map_err(|e| bad(row, e))
                })
                .collect()
        }
        other => Err(ForecastError::column(name, format!("is {other}, expected datetimes or timestamp text"))),
    }
}

/// One placed row: its instant, its row (0-based) and whether it stands
/// for both instants of a repeated hour (then rows meeting at an instant are
/// averaged, not a conflict).
#[derive(Clone, Copy)]
struct Entry {
    at: Timestamp,
    row: usize,
    both: bool,
}

/// Places rows on a regular grid and cleans them, counting in the report
/// every row dropped or merged, step added and value imputed, and flagging
/// what must not teach a model (see [`quality`]).
fn regularise(
    placed: &[Placed],
    time_name: &str,
    target: &[f64],
    exog: Vec<(String, Vec<f64>)>,
    options: &ReadOptions,
    tz: TimeZone,
) -> Result<(History, QualityReport)> {
    let mut report = QualityReport { rows: placed.len(), ..QualityReport::default() };
    if placed.is_empty() {
        return Err(ForecastError::column(time_name, "the data has a header but no rows"));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(placed.len());
    for (row, p) in placed.iter().enumerate() {
        match *p {
            Placed::At(at) => entries.push(Entry { at, row, both: false }),
            Placed::Shifted(at) => {
                report.dst_rows += 1;
                entries.push(Entry { at, row, both: false });
            }
            Placed::Both(a, b) => {
                report.dst_rows += 1;
                entries.extend([Entry { at: a, row, both: true }, Entry { at: b, row, both: true }]);
            }
            Placed::Dropped => report.dst_rows += 1,
        }
    }
    if entries.len() < 2 {
        return Err(ForecastError::column(time_name, format!("{} rows; at least 2 are needed", entries.len())));
    }
    if entries.windows(2).any(|w| w[1].at < w[0].at) {
        entries.sort_by_key(|e| (e.at, e.row));
        report.sorted = true;
    }
    let sorted: Vec<Timestamp> = entries.iter().map(|e| e.at).collect();
    let step_s =
        most_common_step(&sorted).ok_or_else(|| ForecastError::column(time_name, "all timestamps are equal"))?;
    let (start, last) = (sorted[0], sorted[sorted.len() - 1]);
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
    // Each step's entries: the first in `slot`, any more in `extra`.
    let mut slot: Vec<Option<Entry>> = vec![None; steps];
    let mut extra: std::collections::BTreeMap<usize, Vec<Entry>> = std::collections::BTreeMap::new();
    for e in &entries {
        let offset = e.at.duration_since(start).as_secs();
        if offset % step_s != 0 {
            report.off_grid += 1;
            continue;
        }
        let k = usize::try_from(offset / step_s).unwrap_or(usize::MAX);
        match slot.get_mut(k) {
            Some(s @ None) => *s = Some(*e),
            Some(Some(_)) => extra.entry(k).or_default().push(*e),
            None => report.off_grid += 1,
        }
    }
    report.missing_steps = slot.iter().filter(|s| s.is_none()).count();
    let grid = TimeGrid::new(start.to_zoned_datetime(tz), SignedDuration::from_secs(step_s), steps)
        .map_err(|e| ForecastError::column(time_name, format!("the rows' step of {step_s} s: {e}")))?;
    let mut merged = Merged { report: &mut report, grid: &grid, time_name, policy: options.cleaning.duplicates };
    let mut non_finite: Vec<NonFinite> = Vec::new();
    let mut y = merged.place(&slot, &extra, &options.target, target)?;
    take_non_finite(&options.target, &mut y, &mut non_finite);
    let mut ex = Vec::with_capacity(exog.len());
    let mut exog_placed = Vec::with_capacity(exog.len());
    for (name, col) in exog {
        let mut values = merged.place(&slot, &extra, &name, &col)?;
        take_non_finite(&name, &mut values, &mut non_finite);
        exog_placed.push((name, values));
    }
    // Rows merged into another at their step (a row given to both instants
    // of a repeated hour meets other rows, never itself).
    report.duplicates = extra.values().map(Vec::len).sum();
    let gaps: Vec<bool> = y.iter().map(|v| v.is_nan()).collect();
    report.imputed = quality::impute(&mut y, options.max_gap_steps);
    for (name, mut values) in exog_placed {
        let filled = quality::impute(&mut values, options.max_gap_steps);
        report.exog_imputed.push((name.clone(), filled));
        let known_ahead = options.known_ahead.contains(&name);
        ex.push(Exog { name, values, known_ahead });
    }
    let mut series = History::new(grid, options.target.clone(), y, ex)?;
    report.step_seconds = step_s;
    report.steps = steps;
    report.start = series.stamp(0);
    report.end = series.stamp(steps - 1);
    quality::inspect(&mut series, &mut report, options.cleaning.outliers, &non_finite, &gaps);
    // Flagged steps with no stand-in (no nearby days) are gaps like others.
    quality::impute(&mut series.target, options.max_gap_steps);
    Ok((series, report))
}

/// Replaces `inf` and `-inf` by a gap, noting each.
fn take_non_finite(column: &str, values: &mut [f64], out: &mut Vec<NonFinite>) {
    for (step, v) in values.iter_mut().enumerate() {
        if v.is_infinite() {
            out.push(NonFinite { column: column.to_owned(), step, value: *v });
            *v = f64::NAN;
        }
    }
}

/// Puts a column's rows on the grid, merging rows that meet at one step by
/// the duplicate policy.
struct Merged<'a> {
    report: &'a mut QualityReport,
    grid: &'a TimeGrid,
    time_name: &'a str,
    policy: DuplicatePolicy,
}

impl Merged<'_> {
    fn place(
        &mut self,
        slot: &[Option<Entry>],
        extra: &std::collections::BTreeMap<usize, Vec<Entry>>,
        name: &str,
        col: &[f64],
    ) -> Result<Vec<f64>> {
        let mut out: Vec<f64> = slot.iter().map(|s| s.map_or(f64::NAN, |e| col[e.row])).collect();
        for (&k, more) in extra {
            let Some(first) = slot[k] else { continue };
            let mut group: Vec<Entry> = std::iter::once(first).chain(more.iter().copied()).collect();
            group.sort_by_key(|e| e.row);
            let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
            let v0 = col[group[0].row];
            if group.iter().all(|e| same(col[e.row], v0)) {
                out[k] = v0;
                continue;
            }
            let finite: Vec<f64> = group.iter().map(|e| col[e.row]).filter(|v| !v.is_nan()).collect();
            let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
            if group.iter().all(|e| e.both) {
                out[k] = mean;
                continue;
            }
            let (a, b) = match group.iter().find(|e| !same(col[e.row], v0)) {
                Some(e) => (group[0], *e),
                None => (group[0], group[0]),
            };
            let (kept, how) = match self.policy {
                DuplicatePolicy::Error => {
                    return Err(ForecastError::Timestamp {
                        column: self.time_name.to_owned(),
                        row: b.row + 1,
                        reason: format!(
                            "rows {} and {} both give {}, with {name} {} and {}; choose a duplicate policy (first, last or mean) to merge them",
                            a.row + 1,
                            b.row + 1,
                            self.grid.stamp(k),
                            col[a.row],
                            col[b.row],
                        ),
                    });
                }
                DuplicatePolicy::First => (v0, "the first row kept"),
                DuplicatePolicy::Last => (col[group[group.len() - 1].row], "the last row kept"),
                DuplicatePolicy::Mean => (mean, "their mean kept"),
            };
            out[k] = kept;
            let rows: Vec<String> = group.iter().map(|e| (e.row + 1).to_string()).collect();
            self.report.flags.push(quality::Flag {
                time: self.grid.stamp(k),
                step: k,
                column: name.to_owned(),
                kind: quality::FlagKind::Duplicate,
                value: kept,
                expected: None,
                used: Some(kept).filter(|v| v.is_finite()),
                action: quality::Action::Merged,
                rule: format!("rows {} give one instant different values; {how}", rows.join(", ")),
            });
        }
        Ok(out)
    }
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
