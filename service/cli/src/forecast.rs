//! `volta backtest`, `volta train` and `volta forecast`: load and PV forecasting.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use volta_forecasting::{
    BacktestSpec, Cleaning, ForecastSpec, GbdtParams, History, ModelOptions, QualityReport, ReadOptions, TrainedModel,
    data,
};

pub(super) const BACKTEST_ABOUT: &str = "\
Backtest a forecasting model on history, as it would have run in operation.

The model is trained on the data before --train-until. Then, at every issue
time (--issue-time, local clock, every day) after it, a forecast of the next
--horizon steps is issued using only what was known at that moment: the
target up to the issue time, measured exogenous columns up to the issue
time, and columns marked --known-ahead (weather forecasts) over the horizon.
--refit-every N retrains every N issues on all data before the issue.

Models: naive (same time on the latest known day), naive_week, vanilla
(Hong's multiple linear regression benchmark: trend, month, weekday x time
of day, a temperature cubic; needs --temperature), linear (ridge on lags,
calendar, exogenous and degree-hour features), elastic_net, gbdt
(gradient-boosted trees on the same features).

With --quantiles, the forecast also gives those quantiles, calibrated on the
model's own out-of-sample errors (conformal): --calibration-folds models are
cross-fitted over the training period, each forecasting the days it did not
see, and with a known-ahead --temperature the errors are grouped by
temperature regime (--calibrate-by), so hot days get their own, wider
intervals. P10-P90 intervals then cover close to 80 % on new data.

The data is cleaned first (see `volta inspect`): inf is never used, and
values flagged as outliers, stuck-meter flat-lines or DST artifacts are
left out of fitting, calibration and scoring (--outliers), with what was
flagged summarised on stderr.

Prints a JSON summary: model, n_forecasts, mae, rmse, mape, smape, mase,
rmae (MAE over the one-day naive's), per quantile the pinball loss and the
share of actuals below it, flagged_not_scored, and what the cleaning did
(data); a score with nothing to average over is null. With --out DIR also
forecasts.csv, metrics_by_lead.csv, forecast.png (forecasts, intervals and
actuals in local dates, flagged actuals marked; --plot-from, --plot-days),
and the data's quality.csv, quality.json and quality.png.";

pub(super) const BACKTEST_AFTER: &str = "\
Examples:
  # Victoria 2014, day-ahead at midnight, ex-post temperature (measured, used as a forecast)
  volta backtest --data datasets/raw/vic_elecdemand_2014_halfhourly.csv \\
      --time-column period_start_aest_assumed --timezone Australia/Brisbane \\
      --target demand_gw --exog temperature_c --known-ahead temperature_c --temperature temperature_c \\
      --holidays AU-VIC --horizon 48 --issue-time 00:00 --train-until 2014-10-31 \\
      --model gbdt --quantiles 0.1,0.5,0.9 --out backtest/

--train-until takes a date (training ends after that local day) or a
timestamp (training ends just before it).

Exit status: 0 on success, 1 for bad input (the message names the column or option).";

pub(super) const INSPECT_ABOUT: &str = "\
Check a data file before forecasting from it: read it as `volta backtest`
and `volta train` would, and list every value the checks flag, with its
time, value, rule and what the cleaning does with it.

Kinds: non_finite (inf, never used), outlier (far from the same time on
nearby days, beyond their range, entered and left by a kink: a spike, a dropout, a meter
fault), flat_line (one non-zero value for 3 hours or more), dst (an outlier
or flat value within an hour of a DST change: the spring-forward hour near
zero, the fall-back hour doubled), duplicate (rows at one time, merged by
--duplicates), and unusual (far from nearby days but reached smoothly: hot
days, holidays; listed and kept).

Prints the summary and the flags (up to --show) as a table; with --out DIR
also quality.csv (every flag), quality.json (the whole report) and
quality.png (the series with its flags marked).";

pub(super) const INSPECT_AFTER: &str = "\
Examples:
  volta inspect --data datasets/raw/vic_elecdemand_2014_halfhourly.csv \\
      --time-column period_start_aest_assumed --timezone Australia/Brisbane --target demand_gw --out quality/
  # A meter file in local time with a row for the skipped spring-forward hour:
  volta inspect --data meter.csv --target kwh --timezone Europe/Lisbon --nonexistent-times drop

Exit status: 0 when read (whatever was flagged), 1 when the file cannot be read.";

/// Arguments of `volta inspect`.
#[derive(Debug, clap::Args)]
pub(super) struct InspectArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Show at most this many flags in the terminal (all are in quality.csv).
    #[arg(long, value_name = "N", default_value_t = 40)]
    show: usize,
    /// Write quality.csv, quality.json and quality.png here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub(super) fn inspect(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let (series, quality) = read_series(&args.data)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", quality.summary())?;
    if !quality.flags.is_empty() {
        writeln!(
            out,
            "\n{:<27} {:<14} {:<10} {:>14} {:>14} {:>14}  action",
            "time", "column", "kind", "value", "expected", "used"
        )?;
        let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.6}"));
        for f in quality.flags.iter().take(args.show) {
            writeln!(
                out,
                "{:<27} {:<14} {:<10} {:>14} {:>14} {:>14}  {}",
                f.time,
                f.column,
                f.kind.name(),
                format!("{:.6}", f.value),
                num(f.expected),
                num(f.used),
                f.action.name()
            )?;
        }
        if quality.flags.len() > args.show {
            writeln!(out, "... and {} more (--show N, or --out DIR for quality.csv)", quality.flags.len() - args.show)?;
        }
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for file in crate::report::forecast::write_quality(&series, &quality, dir)? {
            writeln!(out, "wrote {}", file.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) const TRAIN_ABOUT: &str = "\
Train a forecasting model and save it to a model file (versioned JSON).

Takes the data and model options of `volta backtest`; trains on the data
before --train-until, or on all of it. `volta forecast` loads the file.";

pub(super) const FORECAST_ABOUT: &str = "\
Forecast the next horizon with a saved model.

Reads the data file (the target and the model's exogenous columns; rows
past the last actual may carry known-ahead columns such as a weather
forecast), issues a forecast at --issue-time from what is known then, and
writes CSV (time, point forecast, quantiles) to stdout or --out.";

pub(super) const FORECAST_AFTER: &str = "\
Examples:
  volta train --data load.csv --target load_kw --exog temp_fc --known-ahead temp_fc \\
      --temperature temp_fc --horizon 96 --model gbdt --quantiles 0.1,0.5,0.9 --model-file site.model.json
  volta forecast --model-file site.model.json --data load.csv --issue-time 2024-06-03T00:00";

/// Where the data is and how to read it.
#[derive(Debug, clap::Args)]
pub(super) struct DataArgs {
    /// CSV or Parquet file with a time column, the target and any exogenous columns.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The target column.
    #[arg(long, value_name = "COL")]
    target: String,
    /// Exogenous columns, comma-separated.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    exog: Vec<String>,
    /// Exogenous columns known over the horizon at issue time (forecasts); others are only used up to the issue.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    known_ahead: Vec<String>,
    /// The time column (default: the first datetime column, or timestamp/time/datetime/date).
    #[arg(long, value_name = "COL")]
    time_column: Option<String>,
    /// Time zone of the calendar and of timestamps without an offset (IANA name).
    #[arg(long, value_name = "TZ", default_value = "UTC")]
    timezone: String,
    /// Fill gaps of up to this many steps by interpolation.
    #[arg(long, value_name = "STEPS", default_value_t = 4)]
    max_gap: usize,
    /// Average the data to this step after cleaning (e.g. 1h, 30min; a multiple of its step).
    #[arg(long, value_name = "STEP")]
    resample: Option<String>,
    /// A second file (weather) with exogenous columns the data lacks; its
    /// values are interpolated in time onto the data's timestamps.
    #[arg(long, value_name = "FILE")]
    exog_file: Option<PathBuf>,
    /// Target values flagged as outliers, flat-lines or DST artifacts:
    /// `drop` leaves them out of fitting, calibration and scoring (lags see
    /// the median of the same time on nearby days), `clip` moves outliers
    /// to the rule's bound, `keep` uses them. `inf` is never used.
    #[arg(long, value_name = "POLICY", default_value = "drop", value_parser = ["drop", "clip", "keep"])]
    outliers: String,
    /// Rows that give one time different values: `error` names both rows,
    /// or keep the `first`, the `last` or their `mean`. Identical repeats are
    /// merged whatever this says.
    #[arg(long, value_name = "POLICY", default_value = "error", value_parser = ["error", "first", "last", "mean"])]
    duplicates: String,
    /// Local times a DST change skips (02:30 on a spring-forward night):
    /// `raise`, `drop` the row, or `shift-forward` to the change.
    #[arg(long, value_name = "POLICY", default_value = "raise", value_parser = ["raise", "drop", "shift-forward"])]
    nonexistent_times: String,
    /// Local times a DST change repeats: `infer` (first offset, then the
    /// second when the time comes again), `raise`, `first`, `last`, or
    /// `average` (a row stands for both instants; rows on one instant are
    /// averaged).
    #[arg(long, value_name = "POLICY", default_value = "infer", value_parser = ["infer", "raise", "first", "last", "average"])]
    ambiguous_times: String,
}

impl DataArgs {
    fn cleaning(&self) -> anyhow::Result<Cleaning> {
        Ok(Cleaning::from_names(
            Some(&self.outliers),
            Some(&self.duplicates),
            Some(&self.nonexistent_times),
            Some(&self.ambiguous_times),
        )?)
    }
}

/// The model and its features.
#[derive(Debug, clap::Args)]
pub(super) struct ModelArgs {
    /// Steps per forecast.
    #[arg(long, value_name = "STEPS")]
    horizon: usize,
    /// Local time of day at which forecasts are issued.
    #[arg(long, value_name = "HH:MM", default_value = "00:00")]
    issue_time: String,
    /// naive, naive_week, vanilla, linear, elastic_net or gbdt.
    #[arg(long, default_value = "gbdt")]
    model: String,
    /// Quantile levels to forecast, e.g. 0.1,0.5,0.9.
    #[arg(long, value_name = "Q,...", value_delimiter = ',')]
    quantiles: Vec<f64>,
    /// How quantiles are made: `conformal` (error quantiles added to the point
    /// forecast) or `quantile-trees` (gbdt only: pinball-loss trees per level,
    /// each corrected by its held-out errors).
    #[arg(long, value_name = "METHOD", default_value = "conformal", value_parser = ["conformal", "quantile-trees"])]
    intervals: String,
    /// Days at the end of training held out to calibrate the quantiles.
    #[arg(long, value_name = "DAYS", default_value_t = 28)]
    calibration_days: usize,
    /// Calibrate on the out-of-fold errors of this many cross-fitted models
    /// over all the training data (0: only on the last --calibration-days,
    /// with a model fitted before them).
    #[arg(long, value_name = "K", default_value_t = 3)]
    calibration_folds: usize,
    /// Calibrate separately in regimes of `temperature` (a known-ahead
    /// --temperature column: hot days get their own, wider intervals) or
    /// `level` (the point forecast), or `none`. `auto`: temperature when
    /// --temperature is known ahead, else none.
    #[arg(long, value_name = "VAR", default_value = "auto", value_parser = ["auto", "none", "temperature", "level"])]
    calibrate_by: String,
    /// Number of regimes for --calibrate-by (equal shares of the errors).
    #[arg(long, value_name = "N", default_value_t = 3)]
    regime_bins: usize,
    /// Train on at most this many days before each cut (default: all).
    #[arg(long, value_name = "DAYS")]
    train_days: Option<usize>,
    /// The exogenous column holding temperature (degree-hours, smoothing, vanilla).
    #[arg(long, value_name = "COL")]
    temperature: Option<String>,
    /// Holidays: a built-in calendar of a country or subdivision (FR, DE-BY,
    /// GB-SCT, US-CA, AU-NSW, CN, JP, IN-MH, BR-SP: the EU, the UK, China,
    /// India, Japan, Brazil, the US and Australia, 2000-2040, from
    /// python-holidays; AU-VIC, DE and US by rule for any year), or a file
    /// of dates (one YYYY-MM-DD per line).
    #[arg(long, value_name = "CODE|FILE")]
    holidays: Option<String>,
    /// Same-time-of-day lags of the target, in days.
    #[arg(long, value_name = "DAYS,...", value_delimiter = ',', default_value = "1,2,7")]
    lags: Vec<usize>,
    /// Site latitude (PV: clear-sky and sun-position features; with --longitude).
    #[arg(long, requires = "longitude", allow_negative_numbers = true)]
    latitude: Option<f64>,
    /// Site longitude, degrees east.
    #[arg(long, requires = "latitude", allow_negative_numbers = true)]
    longitude: Option<f64>,
    /// gbdt: number of trees.
    #[arg(long, default_value_t = GbdtParams::default().trees)]
    trees: usize,
    /// gbdt: learning rate.
    #[arg(long, default_value_t = GbdtParams::default().learning_rate)]
    learning_rate: f64,
    /// gbdt: maximum tree depth.
    #[arg(long, default_value_t = GbdtParams::default().max_depth)]
    max_depth: usize,
    /// linear / elastic_net: penalty.
    #[arg(long)]
    penalty: Option<f64>,
}

/// Arguments of `volta backtest`.
#[derive(Debug, clap::Args)]
pub(super) struct BacktestArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Training ends after this local date, or just before this timestamp.
    #[arg(long, value_name = "DATE|TIME")]
    train_until: String,
    /// Issue no forecast at or after this local date or timestamp.
    #[arg(long, value_name = "DATE|TIME")]
    test_until: Option<String>,
    /// Retrain every N issues (0: train once).
    #[arg(long, value_name = "N", default_value_t = 0)]
    refit_every: usize,
    /// Keep the training-time quantile calibration for the whole backtest
    /// (default: recalibrate before each issue on the errors of the last
    /// --calibration-days, as an operator retraining daily would).
    #[arg(long)]
    static_intervals: bool,
    /// Write forecasts.csv, metrics_by_lead.csv, forecast.png and the data's
    /// quality.csv, quality.json and quality.png here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// forecast.png starts at this local date (default: the first forecast).
    #[arg(long, value_name = "DATE")]
    plot_from: Option<String>,
    /// forecast.png shows this many days (default: the whole test period).
    #[arg(long, value_name = "DAYS")]
    plot_days: Option<usize>,
}

/// Which forecasts forecast.png shows.
pub(crate) struct PlotWindow {
    /// First local date shown.
    pub from: Option<String>,
    /// Days shown.
    pub days: Option<usize>,
}

/// Arguments of `volta train`.
#[derive(Debug, clap::Args)]
pub(super) struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    model: ModelArgs,
    /// Train on the data before this local date's end or timestamp (default: all).
    #[arg(long, value_name = "DATE|TIME")]
    train_until: Option<String>,
    /// Where to save the model.
    #[arg(long, value_name = "FILE")]
    model_file: PathBuf,
}

/// Arguments of `volta forecast`.
#[derive(Debug, clap::Args)]
pub(super) struct ForecastArgs {
    /// A model file written by `volta train`.
    #[arg(long, value_name = "FILE")]
    model_file: PathBuf,
    /// CSV or Parquet data with the model's target and exogenous columns.
    #[arg(long, value_name = "FILE")]
    data: PathBuf,
    /// The time column (default: detected).
    #[arg(long, value_name = "COL")]
    time_column: Option<String>,
    /// Issue time: a timestamp (RFC 3339, or local YYYY-MM-DDTHH:MM).
    #[arg(long, value_name = "TIME")]
    issue_time: String,
    /// Write the CSV here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

fn read_series(args: &DataArgs) -> anyhow::Result<(History, QualityReport)> {
    let mut options = ReadOptions::new(args.target.clone());
    options.time_column.clone_from(&args.time_column);
    options.exog.clone_from(&args.exog);
    options.known_ahead.clone_from(&args.known_ahead);
    options.timezone = Some(args.timezone.clone());
    options.max_gap_steps = args.max_gap;
    options.exog_file.clone_from(&args.exog_file);
    options.resample_s = args.resample.as_deref().map(parse_step).transpose()?;
    options.cleaning = args.cleaning()?;
    Ok(data::read(&args.data, &options)?)
}

/// What the cleaning flagged, by kind, on stderr (stdout carries the
/// command's JSON or CSV).
fn print_flags(quality: &QualityReport) {
    let kinds = quality.by_kind();
    if kinds.is_empty() {
        return;
    }
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "data: {} target steps excluded from fitting and scoring", quality.excluded);
    for (kind, n) in kinds {
        let first = quality.flags.iter().find(|f| f.kind == kind);
        let example = first.map_or(String::new(), |f| format!(" (first at {}: {} {})", f.time, f.column, f.value));
        let _ = writeln!(err, "  {n:>6} {:<10}{example}", kind.name());
    }
    let _ = writeln!(err, "  every flag with its time, rule and action: `volta inspect` or --out DIR (quality.csv)");
}

/// The summary's account of the data: what was flagged and done.
fn quality_json(quality: &QualityReport) -> Value {
    json!({
        "summary": quality.summary(),
        "flagged": Value::Object(quality.by_kind().iter().map(|(k, n)| (k.name().to_owned(), json!(n))).collect()),
        "excluded": quality.excluded,
        "duplicates_merged": quality.duplicates,
        "dst_rows": quality.dst_rows,
    })
}

/// `15min`, `30min`, `1h`, `2h`, `1d` as seconds.
fn parse_step(text: &str) -> anyhow::Result<i64> {
    let (num, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: i64 = num.parse().map_err(|_| anyhow::anyhow!("--resample: {text:?} is not a step like 30min or 1h"))?;
    let scale = match unit {
        "s" => 1,
        "min" | "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("--resample: unit of {text:?} must be s, min, h or d"),
    };
    Ok(n * scale)
}

fn forecast_spec(args: &ModelArgs, series: &History) -> anyhow::Result<ForecastSpec> {
    let options = ModelOptions {
        horizon: args.horizon,
        issue_time: args.issue_time.clone(),
        model: args.model.clone(),
        quantiles: args.quantiles.clone(),
        intervals: args.intervals.clone(),
        calibration_days: args.calibration_days,
        calibration_folds: args.calibration_folds,
        calibrate_by: args.calibrate_by.clone(),
        regime_bins: args.regime_bins,
        train_days: args.train_days,
        temperature: args.temperature.clone(),
        holidays: args.holidays.clone(),
        holiday_dates: Vec::new(),
        lags: args.lags.clone(),
        latitude: args.latitude,
        longitude: args.longitude,
        trees: args.trees,
        learning_rate: args.learning_rate,
        max_depth: args.max_depth,
        penalty: args.penalty,
    };
    Ok(options.to_spec(series)?)
}

/// [`volta_forecasting::cut_time`] with the CLI's option names.
fn cut_time(text: &str, tz: &TimeZone, option: &str) -> anyhow::Result<Timestamp> {
    Ok(volta_forecasting::cut_time(text, tz, option)?)
}

fn quantile_map(levels: &[volta_forecasting::metrics::Level]) -> Value {
    Value::Object(levels.iter().map(|l| (format!("{}", l.q), json!(l.value))).collect())
}

pub(super) fn backtest(args: &BacktestArgs) -> anyhow::Result<ExitCode> {
    let (series, quality) = read_series(&args.data)?;
    print_flags(&quality);
    let spec = forecast_spec(&args.model, &series)?;
    let train_until = cut_time(&args.train_until, series.tz(), "--train-until")?;
    let test_until = args
        .test_until
        .as_deref()
        .map(|t| volta_forecasting::start_time(t, series.tz(), "--test-until"))
        .transpose()?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} forecasts, {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(format!("backtest {}", spec.model.name()));
    let mut progress = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        std::ops::ControlFlow::Continue(())
    };
    let bt = volta_forecasting::backtest_with_progress(
        &series,
        &BacktestSpec {
            forecast: spec.clone(),
            train_until,
            refit_every: args.refit_every,
            test_until,
            recalibrate: !args.static_intervals,
        },
        &mut progress,
    )?;
    bar.finish_and_clear();
    let m = &bt.metrics;
    let mut summary = json!({
        "model": bt.model,
        "target": series.target_name,
        "horizon": spec.features.horizon,
        "issue_time": spec.issue_time.to_string(),
        "n_forecasts": bt.forecasts.len(),
        "n_points": m.n,
        "mae": m.mae,
        "rmse": m.rmse,
        "mape": m.mape,
        "smape": m.smape,
        "mase": m.mase,
        "rmae": m.rmae,
        "skill": m.skill,
        "benchmark": bt.benchmark,
        "fits": bt.fits,
        "fit_seconds": bt.fit_seconds,
        "predict_seconds": bt.predict_seconds,
        "known_ahead": args.data.known_ahead,
        "flagged_not_scored": m.flagged,
        "data": quality_json(&quality),
    });
    if !spec.quantiles.is_empty() {
        summary["pinball"] = quantile_map(&m.pinball);
        summary["coverage"] = quantile_map(&m.coverage);
        summary["intervals"] = serde_json::to_value(&m.intervals)?;
    }
    if !args.data.known_ahead.is_empty() {
        summary["note"] = json!(
            "columns marked --known-ahead are used over the horizon as if forecast; if they hold measurements the scores are ex-post"
        );
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let window = PlotWindow { from: args.plot_from.clone(), days: args.plot_days };
        let mut files = crate::report::forecast::write_backtest(&series, &spec, &bt, &window, dir)?;
        files.extend(crate::report::forecast::write_quality(&series, &quality, dir)?);
        summary["files"] = json!(files);
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn train(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let (series, quality) = read_series(&args.data)?;
    print_flags(&quality);
    let spec = forecast_spec(&args.model, &series)?;
    let end = match &args.train_until {
        Some(t) => series.index_at_or_after(cut_time(t, series.tz(), "--train-until")?),
        None => series.len(),
    };
    let start = std::time::Instant::now();
    let mut model = volta_forecasting::train(&series, &spec, end)?;
    model.time_column.clone_from(&args.data.time_column);
    model.cleaning = args.data.cleaning()?;
    let seconds = start.elapsed().as_secs_f64();
    model.save(&args.model_file)?;
    let summary = json!({
        "model": spec.model.name(),
        "model_file": args.model_file,
        "trained_until": model.trained_until.to_string(),
        "fit_seconds": seconds,
        "calibration_residuals": model.calibration.as_ref().map(|c| c.residuals),
        "data": quality_json(&quality),
    });
    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&summary)?)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn forecast(args: &ForecastArgs) -> anyhow::Result<ExitCode> {
    let model = TrainedModel::load(&args.model_file)?;
    let mut options = model.read_options();
    if args.time_column.is_some() {
        options.time_column.clone_from(&args.time_column);
    }
    let (series, _) = data::read(&args.data, &options)?;
    let issue = Some(&args.issue_time)
        .filter(|t| t.len() > 10)
        .and_then(|t| cut_time(t, series.tz(), "--issue-time").ok())
        .ok_or_else(|| anyhow::anyhow!("--issue-time: {:?} is not a timestamp", args.issue_time))?;
    let forecast = model.forecast(&series, issue)?;
    let mut text = String::from("time,point");
    for q in &model.spec.quantiles {
        text.push_str(&format!(",q{q}"));
    }
    text.push('\n');
    for (k, p) in forecast.point.iter().enumerate() {
        text.push_str(&format!("{},{p}", series.stamp(forecast.issue_step + k)));
        for q in forecast.quantiles.get(k).into_iter().flatten() {
            text.push_str(&format!(",{q}"));
        }
        text.push('\n');
    }
    match &args.out {
        Some(path) => std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?,
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(ExitCode::SUCCESS)
}
