//! Conversions between `volta.forecast.v1` messages and the domain: the
//! series and options of a request (every field of a message is read, so a
//! field added to the proto cannot be silently ignored), the field path of
//! a library error, and the scores and forecasts sent back.

use tonic::Status;
use volta_engine::series::{Ambiguous, DstPolicy, Nonexistent};
use volta_forecasting::metrics::Level;
use volta_forecasting::quality::{Action, DuplicatePolicy, FlagKind, OutlierPolicy};
use volta_forecasting::{Backtest, Cleaning, ForecastError, History, ModelOptions, QualityReport, ReadOptions, data};

use crate::pb::{common, forecast as pb};
use crate::status;
use crate::time::{self, count, unsigned};

/// The RPC a forecasting error came from: it decides which request field
/// an option of the library stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `Backtest`.
    Backtest,
    /// `Train`.
    Train,
    /// `Forecast`.
    Forecast,
}

/// The request field that a library option name (`lags[0]`, `temperature`,
/// `timezone`) stands for in `call`: a path that exists in the proto.
#[must_use]
pub fn field_of(option: &str, call: Call) -> String {
    let split = option.find(['[', '.']).unwrap_or(option.len());
    let (head, rest) = option.split_at(split);
    let field = match head {
        "horizon" => "options.horizon_steps",
        "issue_time" if call == Call::Forecast => "issue_time",
        "issue_time" => "options.issue_time_of_day",
        "model" => "options.model",
        "quantiles" => "options.quantiles",
        "intervals" => "options.intervals",
        "calibration_days" => "options.calibration_days",
        "calibration_folds" => "options.calibration_folds",
        "calibrate_by" => "options.calibrate_by",
        "regime_bins" => "options.regime_bins",
        "train_days" => "options.train_days",
        "temperature" => "options.temperature_column",
        "holidays" => "options.holiday_calendar",
        "holiday_dates" => "options.holiday_dates",
        "lags" => "options.lag_days",
        "latitude" => "options.latitude",
        "longitude" => "options.longitude",
        "trees" => "options.trees",
        "learning_rate" => "options.learning_rate",
        "max_depth" => "options.max_depth",
        "penalty" => "options.penalty",
        "timezone" => "series.time_zone",
        "time_column" => "series.time_column",
        "exog" => "series.exog_columns",
        "known_ahead" => "series.known_ahead_columns",
        "target" => "series.target",
        "train_until" => "train_until",
        _ => return "options".to_owned(),
    };
    format!("{field}{rest}")
}

/// A forecasting error of `call` as a status naming the request field.
#[must_use]
pub fn error(err: &ForecastError, call: Call) -> Status {
    status::forecast(err, &|option| field_of(option, call))
}

fn enum_value<T: TryFrom<i32>>(field: &str, value: i32) -> Result<T, Status> {
    T::try_from(value).map_err(|_| status::invalid(field, format!("unknown value {value}")))
}

/// The library's name of a model kind.
///
/// # Errors
/// INVALID_ARGUMENT naming `field` for a value the proto does not define.
pub fn model_name(field: &str, kind: i32) -> Result<&'static str, Status> {
    Ok(match enum_value::<pb::ModelKind>(field, kind)? {
        pb::ModelKind::Unspecified | pb::ModelKind::Gbdt => "gbdt",
        pb::ModelKind::NaiveDay => "naive_day",
        pb::ModelKind::NaiveWeek => "naive_week",
        pb::ModelKind::ClearSkyPersistence => "clear_sky_persistence",
        pb::ModelKind::Vanilla => "vanilla",
        pb::ModelKind::Linear => "linear",
        pb::ModelKind::ElasticNet => "elastic_net",
    })
}

/// The kind of a model the library names (`gbdt`, `linear`, ...).
#[must_use]
pub fn model_kind(name: &str) -> pb::ModelKind {
    match name {
        "naive_day" | "naive" => pb::ModelKind::NaiveDay,
        "naive_week" => pb::ModelKind::NaiveWeek,
        "clear_sky_persistence" => pb::ModelKind::ClearSkyPersistence,
        "vanilla" => pb::ModelKind::Vanilla,
        "linear" => pb::ModelKind::Linear,
        "elastic_net" => pb::ModelKind::ElasticNet,
        "gbdt" => pb::ModelKind::Gbdt,
        _ => pb::ModelKind::Unspecified,
    }
}

fn positive(field: &str, value: Option<i32>) -> Result<Option<usize>, Status> {
    value.map(|v| unsigned(field, v)).transpose()
}

/// The library's model options of a request's `options`: absent fields
/// take the CLI's defaults.
///
/// # Errors
/// INVALID_ARGUMENT naming the field: a negative count, an unknown enum
/// value, an impossible date or time of day.
pub fn model_options(options: Option<pb::ModelOptions>) -> Result<ModelOptions, Status> {
    let pb::ModelOptions {
        horizon_steps,
        issue_time_of_day,
        model,
        quantiles,
        intervals,
        calibration_days,
        calibration_folds,
        calibrate_by,
        regime_bins,
        train_days,
        temperature_column,
        holiday_calendar,
        holiday_dates,
        lag_days,
        latitude,
        longitude,
        trees,
        learning_rate,
        max_depth,
        penalty,
    } = options.unwrap_or_default();
    let mut out = ModelOptions::default();
    if let Some(h) = positive("options.horizon_steps", horizon_steps)? {
        out.horizon = h;
    }
    if let Some(common::TimeOfDay { hours, minutes }) = issue_time_of_day {
        if !(0..24).contains(&hours) || !(0..60).contains(&minutes) {
            return Err(status::invalid(
                "options.issue_time_of_day",
                format!("{hours:02}:{minutes:02} is not a time of day"),
            ));
        }
        out.issue_time = format!("{hours:02}:{minutes:02}");
    }
    model_name("options.model", model)?.clone_into(&mut out.model);
    out.quantiles = quantiles;
    out.intervals = match enum_value::<pb::IntervalMethod>("options.intervals", intervals)? {
        pb::IntervalMethod::Unspecified | pb::IntervalMethod::Conformal => "conformal",
        pb::IntervalMethod::QuantileTrees => "quantile-trees",
    }
    .to_owned();
    if let Some(days) = positive("options.calibration_days", calibration_days)? {
        out.calibration_days = days;
    }
    if let Some(folds) = positive("options.calibration_folds", calibration_folds)? {
        out.calibration_folds = folds;
    }
    out.calibrate_by = match enum_value::<pb::Calibration>("options.calibrate_by", calibrate_by)? {
        pb::Calibration::Unspecified | pb::Calibration::Auto => "auto",
        pb::Calibration::None => "none",
        pb::Calibration::Temperature => "temperature",
        pb::Calibration::Level => "level",
    }
    .to_owned();
    if let Some(bins) = positive("options.regime_bins", regime_bins)? {
        out.regime_bins = bins;
    }
    out.train_days = positive("options.train_days", train_days)?;
    out.temperature = Some(temperature_column).filter(|t| !t.is_empty());
    out.holidays = Some(holiday_calendar).filter(|h| !h.is_empty());
    out.holiday_dates = holiday_dates
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let field = format!("options.holiday_dates[{i}]");
            let year = i16::try_from(d.year).map_err(|_| status::invalid(&field, format!("year {}", d.year)))?;
            let month = i8::try_from(d.month).map_err(|_| status::invalid(&field, format!("month {}", d.month)))?;
            let day = i8::try_from(d.day).map_err(|_| status::invalid(&field, format!("day {}", d.day)))?;
            jiff::civil::Date::new(year, month, day)
                .map(|d| d.to_string())
                .map_err(|e| status::invalid(&field, format!("not a date: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if !lag_days.is_empty() {
        out.lags = lag_days
            .iter()
            .enumerate()
            .map(|(i, &d)| unsigned(&format!("options.lag_days[{i}]"), d))
            .collect::<Result<_, _>>()?;
    }
    out.latitude = latitude;
    out.longitude = longitude;
    if let Some(trees) = positive("options.trees", trees)? {
        out.trees = trees;
    }
    if let Some(rate) = learning_rate {
        out.learning_rate = rate;
    }
    if let Some(depth) = positive("options.max_depth", max_depth)? {
        out.max_depth = depth;
    }
    out.penalty = penalty;
    Ok(out)
}

/// The columns to read of a request's series, and its source.
#[derive(Debug)]
pub struct Series {
    /// Target, exogenous and known-ahead columns, time column and zone.
    pub read: ReadOptions,
    /// The data.
    pub source: Option<pb::series_data::Source>,
    /// Whether the request set `series.cleaning` (Forecast otherwise cleans
    /// as the model's training data was cleaned).
    pub cleaning_given: bool,
}

/// The cleaning policies of a request.
///
/// # Errors
/// INVALID_ARGUMENT naming the field of a value the proto does not define.
pub fn cleaning(message: Option<pb::Cleaning>) -> Result<Cleaning, Status> {
    let pb::Cleaning { outliers, duplicates, nonexistent_times, ambiguous_times } = message.unwrap_or_default();
    Ok(Cleaning {
        outliers: match enum_value::<pb::OutlierPolicy>("series.cleaning.outliers", outliers)? {
            pb::OutlierPolicy::Unspecified | pb::OutlierPolicy::Drop => OutlierPolicy::Drop,
            pb::OutlierPolicy::Clip => OutlierPolicy::Clip,
            pb::OutlierPolicy::Keep => OutlierPolicy::Keep,
        },
        duplicates: match enum_value::<pb::DuplicatePolicy>("series.cleaning.duplicates", duplicates)? {
            pb::DuplicatePolicy::Unspecified | pb::DuplicatePolicy::Error => DuplicatePolicy::Error,
            pb::DuplicatePolicy::First => DuplicatePolicy::First,
            pb::DuplicatePolicy::Last => DuplicatePolicy::Last,
            pb::DuplicatePolicy::Mean => DuplicatePolicy::Mean,
        },
        dst: DstPolicy {
            nonexistent: match enum_value::<pb::NonexistentTimes>(
                "series.cleaning.nonexistent_times",
                nonexistent_times,
            )? {
                pb::NonexistentTimes::Unspecified | pb::NonexistentTimes::Raise => Nonexistent::Raise,
                pb::NonexistentTimes::Drop => Nonexistent::Drop,
                pb::NonexistentTimes::ShiftForward => Nonexistent::ShiftForward,
            },
            ambiguous: match enum_value::<pb::AmbiguousTimes>("series.cleaning.ambiguous_times", ambiguous_times)? {
                pb::AmbiguousTimes::Unspecified | pb::AmbiguousTimes::Infer => Ambiguous::Infer,
                pb::AmbiguousTimes::Raise => Ambiguous::Raise,
                pb::AmbiguousTimes::First => Ambiguous::First,
                pb::AmbiguousTimes::Last => Ambiguous::Last,
                pb::AmbiguousTimes::Average => Ambiguous::Average,
            },
        },
    })
}

/// Flags a response carries at most ([`pb::DataQuality::flags_truncated`]
/// says when there were more).
pub const MAX_FLAGS: usize = 1_000;

/// What reading and cleaning a series did and found, as a message.
#[must_use]
pub fn data_quality(report: &QualityReport) -> pb::DataQuality {
    let kind = |k: FlagKind| match k {
        FlagKind::NonFinite => pb::FlagKind::NonFinite,
        FlagKind::Outlier => pb::FlagKind::Outlier,
        FlagKind::Unusual => pb::FlagKind::Unusual,
        FlagKind::FlatLine => pb::FlagKind::FlatLine,
        FlagKind::Dst => pb::FlagKind::Dst,
        FlagKind::Duplicate => pb::FlagKind::Duplicate,
    };
    let action = |a: Action| match a {
        Action::Excluded => pb::FlagAction::Excluded,
        Action::Clipped => pb::FlagAction::Clipped,
        Action::Kept => pb::FlagAction::Kept,
        Action::Imputed => pb::FlagAction::Imputed,
        Action::Merged => pb::FlagAction::Merged,
    };
    pb::DataQuality {
        rows: count(report.rows),
        steps: count(report.steps),
        missing_steps: count(report.missing_steps),
        imputed: count(report.imputed),
        duplicates_merged: count(report.duplicates),
        dst_rows: count(report.dst_rows),
        excluded: count(report.excluded),
        flag_counts: report
            .by_kind()
            .into_iter()
            .map(|(k, n)| pb::FlagCount { kind: kind(k).into(), count: count(n) })
            .collect(),
        flags: report
            .flags
            .iter()
            .take(MAX_FLAGS)
            .map(|f| pb::DataFlag {
                time: f.time.parse::<jiff::Timestamp>().ok().map(time::timestamp),
                column: f.column.clone(),
                kind: kind(f.kind).into(),
                value: f.value,
                expected: f.expected,
                used: f.used,
                action: action(f.action).into(),
                rule: f.rule.clone(),
            })
            .collect(),
        flags_truncated: report.flags.len() > MAX_FLAGS,
    }
}

/// What a request's series asks to read. The target may come from the
/// model (`default_target`, for Forecast).
///
/// # Errors
/// INVALID_ARGUMENT naming `series.target` when there is none.
pub fn series(message: Option<pb::SeriesData>, default_target: Option<&str>) -> Result<Series, Status> {
    let pb::SeriesData {
        source,
        target,
        time_column,
        exog_columns,
        known_ahead_columns,
        time_zone,
        cleaning: policies,
    } = message.unwrap_or_default();
    let cleaning_given = policies.is_some();
    let target = match (target.as_str(), default_target) {
        ("", Some(t)) => t.to_owned(),
        ("", None) => return Err(status::invalid("series.target", "name the column to forecast".to_owned())),
        (t, _) => t.to_owned(),
    };
    let mut read = ReadOptions::new(target);
    read.time_column = Some(time_column).filter(|s| !s.is_empty());
    read.exog = exog_columns;
    read.known_ahead = known_ahead_columns;
    read.timezone = Some(time_zone).filter(|s| !s.is_empty());
    read.cleaning = cleaning(policies)?;
    Ok(Series { read, source, cleaning_given })
}

impl Series {
    /// Reads the series, as `volta backtest` reads a file: a CSV's rows or
    /// a table's columns, onto a clean regular grid.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming the column or field at fault.
    pub fn read(self, call: Call) -> Result<(History, QualityReport), Status> {
        let Self { mut read, source, .. } = self;
        match source {
            Some(pb::series_data::Source::Csv(text)) => {
                let frame = data::frame_from_csv(&text).map_err(|e| error(&e, call))?;
                data::from_frame(&frame, &read).map_err(|e| error(&e, call))
            }
            Some(pb::series_data::Source::Table(common::Table { grid, columns })) => {
                let common::TimeGrid { start, step, steps, time_zone } = grid.unwrap_or_default();
                let start = time::instant("series.table.grid.start", start)?
                    .ok_or_else(|| status::invalid("series.table.grid.start", "required".to_owned()))?;
                let step = time::length("series.table.grid.step", step)?
                    .filter(|s| s.is_positive() && s.subsec_nanos() == 0)
                    .ok_or_else(|| {
                        status::invalid("series.table.grid.step", "a positive whole number of seconds".to_owned())
                    })?;
                let steps = unsigned("series.table.grid.steps", steps)?;
                if steps > read.max_steps {
                    return Err(status::invalid(
                        "series.table.grid.steps",
                        format!("{steps} steps, more than {} ", read.max_steps),
                    ));
                }
                if read.timezone.is_none() && !time_zone.is_empty() {
                    read.timezone = Some(time_zone);
                }
                let times = (0..steps)
                    .map(|k| {
                        let k = i32::try_from(k).unwrap_or(i32::MAX);
                        step.checked_mul(k).and_then(|d| start.checked_add(d).ok())
                    })
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| status::invalid("series.table.grid", "ends after the year 9999".to_owned()))?;
                let mut target = None;
                let mut exog = Vec::new();
                for (i, common::Series { name, values }) in columns.into_iter().enumerate() {
                    if name == read.target {
                        target = Some(values);
                    } else if read.exog.contains(&name) {
                        exog.push((name, values));
                    } else if name.is_empty() {
                        return Err(status::invalid(&format!("series.table.columns[{i}].name"), "required".to_owned()));
                    }
                }
                let target = target.ok_or_else(|| {
                    status::invalid(
                        "series.target",
                        format!("{} is not a column of the table", status::shown(&read.target)),
                    )
                })?;
                if let Some(missing) = read.exog.iter().find(|n| !exog.iter().any(|(e, _)| e == *n)) {
                    return Err(status::invalid(
                        "series.exog_columns",
                        format!("{} is not a column of the table", status::shown(missing)),
                    ));
                }
                data::from_columns(&times, &target, exog, &read).map_err(|e| error(&e, call))
            }
            None => Err(status::invalid("series", "send the data as csv or as a table".to_owned())),
        }
    }
}

fn scores(levels: &[Level]) -> Vec<pb::QuantileScore> {
    levels.iter().map(|l| pb::QuantileScore { level: l.q, value: l.value }).collect()
}

/// The scores of a backtest, with what cleaning its series did.
#[must_use]
pub fn backtest(bt: &Backtest, quality: &QualityReport) -> pb::BacktestResponse {
    let m = &bt.metrics;
    pb::BacktestResponse {
        model: model_kind(&bt.model).into(),
        forecasts: count(bt.forecasts.len()),
        mae: m.mae,
        rmse: m.rmse,
        mape: m.mape,
        smape: m.smape,
        mase: m.mase,
        rmae: m.rmae,
        skill: m.skill,
        pinball_losses: scores(&m.pinball),
        coverages: scores(&m.coverage),
        interval_coverage: m.intervals.first().map(|i| i.observed),
        fit_time: Some(time::seconds(bt.fit_seconds)),
        data_quality: Some(data_quality(quality)),
        flagged_not_scored: count(m.flagged),
    }
}

/// The grid of `steps` forecast steps from step `first` of `series`.
#[must_use]
pub fn forecast_grid(series: &History, first: usize, steps: usize) -> common::TimeGrid {
    time::grid(series.time(first), series.grid().step(), steps, series.tz())
}
