//! Reading files: time zones and DST, the quality report, and clear errors.

use std::path::Path;

use volta_forecasting::quality::{Action, FlagKind};
use volta_forecasting::{BacktestSpec, ForecastError, ModelSpec, ReadOptions, backtest, data};

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Hourly wall-clock times in Berlin over both DST changes of 2024.
fn berlin_csv() -> String {
    let mut text = String::from("time,load\n");
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").expect("tz");
    let start: jiff::Timestamp = "2024-03-29T23:00:00Z".parse().expect("ts");
    for h in 0..(24 * 215) {
        let t = start + jiff::SignedDuration::from_hours(h);
        let local = t.to_zoned_datetime(tz.clone());
        text.push_str(&format!("{},{}\n", local.strftime("%Y-%m-%d %H:%M"), 100 + h % 24));
    }
    text
}

#[test]
fn naive_local_times_cross_both_dst_changes() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(dir.path(), "berlin.csv", &berlin_csv());
    let mut options = ReadOptions::new("load");
    options.timezone = Some("Europe/Berlin".into());
    let (series, report) = data::read(&path, &options).expect("read");
    assert_eq!(report.step_seconds, 3600);
    assert_eq!((report.duplicates, report.missing_steps, report.off_grid), (0, 0, 0));
    assert_eq!(series.len(), 24 * 215);
    // 31 March has 23 hours, 27 October 25: count steps per local date.
    let count = |d: &str| (0..series.len()).filter(|&i| series.local(i).date().to_string() == d).count();
    assert_eq!(count("2024-03-31"), 23);
    assert_eq!(count("2024-10-27"), 25);
    assert_eq!(count("2024-06-01"), 24);
}

#[test]
fn the_quality_report_says_what_was_done() {
    let dir = tempfile::tempdir().expect("dir");
    let mut text = String::from("timestamp,load\n");
    for i in 0..(48 * 30) {
        let t = jiff::Timestamp::from_second(1_700_000_000 - 1_700_000_000 % 86_400 + 1800 * i).expect("ts");
        let v = match i {
            100 | 101 => String::new(),     // short gap: imputed
            200..=219 => continue,          // 20 missing rows: a long gap
            500 => "5000".to_owned(),       // an outlier
            700..=715 => "42.5".to_owned(), // a stuck meter
            _ => format!("{}", 50.0 + 10.0 * ((i % 48) as f64 / 48.0 * std::f64::consts::TAU).sin()),
        };
        text.push_str(&format!("{t},{v}\n"));
        if i == 300 {
            text.push_str(&format!("{t},{v}\n")); // a duplicate
        }
    }
    let path = write(dir.path(), "q.csv", &text);
    let (_, report) = data::read(&path, &ReadOptions::new("load")).expect("read");
    assert_eq!(report.step_seconds, 1800);
    assert_eq!(report.duplicates, 1);
    assert_eq!(report.missing_steps, 20);
    assert_eq!(report.imputed, 2);
    assert_eq!(report.long_gaps.len(), 1);
    assert_eq!(report.long_gaps[0].steps, 20);
    let outlier = report.flags.iter().find(|f| f.value == 5000.0).expect("the spike is flagged");
    assert_eq!((outlier.kind, outlier.action), (FlagKind::Outlier, Action::Excluded), "{outlier:?}");
    assert_eq!(report.flat_lines.len(), 1);
    assert_eq!(report.flat_lines[0].steps, 16);
    let flat = report.flags.iter().filter(|f| f.kind == FlagKind::FlatLine).count();
    assert_eq!(flat, 16, "{:?}", report.flags);
    assert_eq!(report.excluded, 17);
    assert!(report.summary().contains("1 duplicates merged"), "{}", report.summary());
    assert!(report.summary().contains("flagged: 1 outlier, 16 flat_line"), "{}", report.summary());
}

#[test]
fn bad_input_names_the_column_or_option() {
    let dir = tempfile::tempdir().expect("dir");
    let good = write(dir.path(), "g.csv", "timestamp,load\n2024-01-01T00:00:00Z,1\n2024-01-01T01:00:00Z,2\n");
    let err = data::read(&good, &ReadOptions::new("lod")).expect_err("missing");
    assert!(matches!(&err, ForecastError::MissingColumn { column, .. } if column == "lod"), "{err}");
    assert!(err.to_string().contains("timestamp, load"), "{err}");

    let bad_time = write(dir.path(), "t.csv", "timestamp,load\n2024-01-01T00:00:00Z,1\nyesterday,2\n");
    let err = data::read(&bad_time, &ReadOptions::new("load")).expect_err("time");
    assert!(err.to_string().contains("row 2") && err.to_string().contains("yesterday"), "{err}");

    let text_values = write(dir.path(), "v.csv", "timestamp,load\n2024-01-01T00:00:00Z,a\n2024-01-01T01:00:00Z,b\n");
    let err = data::read(&text_values, &ReadOptions::new("load")).expect_err("text");
    assert!(err.to_string().contains("\"load\""), "{err}");

    let gap = write(dir.path(), "s.csv", "timestamp,load\n2024-03-31T01:30,1\n2024-03-31T02:30,2\n");
    let mut options = ReadOptions::new("load");
    options.timezone = Some("Europe/Berlin".into());
    let err = data::read(&gap, &options).expect_err("nonexistent local time");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let (series, _) = data::read(&good, &ReadOptions::new("load")).expect("read");
    let spec = BacktestSpec {
        forecast: crate::spec(ModelSpec::NaiveDay, Vec::new()),
        train_until: series.time(1),
        refit_every: 0,
        test_until: None,
        recalibrate: true,
    };
    let err = backtest(&series, &spec).expect_err("horizon");
    assert!(err.to_string().starts_with("horizon"), "{err}");
    let mut spec = spec;
    spec.forecast.quantiles = vec![0.9, 0.1];
    assert!(backtest(&series, &spec).expect_err("quantiles").to_string().starts_with("quantiles"));
}

#[test]
fn parquet_files_read_like_csv() {
    use polars::prelude::*;
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("p.parquet");
    let times: Vec<i64> = (0..48).map(|i| 1_704_067_200_000 + i * 1_800_000).collect();
    let mut df = df!(
        "time" => times,
        "load" => (0..48).map(|i| i as f64).collect::<Vec<_>>(),
    )
    .expect("frame");
    let dtype = DataType::Datetime(TimeUnit::Milliseconds, Some(unsafe_utc()));
    df.with_column(df.column("time").expect("time").cast(&dtype).expect("cast")).expect("column");
    ParquetWriter::new(std::fs::File::create(&path).expect("file")).finish(&mut df).expect("write");
    let (series, report) = data::read(&path, &ReadOptions::new("load")).expect("read");
    assert_eq!(report.step_seconds, 1800);
    assert_eq!(series.len(), 48);
    assert_eq!(series.time(0).to_string(), "2024-01-01T00:00:00Z");
}

fn unsafe_utc() -> polars::prelude::TimeZone {
    polars::prelude::TimeZone::opt_try_new(Some("UTC")).expect("utc").expect("some")
}

#[test]
fn resampling_averages_onto_whole_hours() {
    let (series, _) = {
        let dir = tempfile::tempdir().expect("dir");
        let mut text = String::from("timestamp,load,temp\n");
        for i in 0..(4 * 48) {
            let t = jiff::Timestamp::from_second(1_704_067_200 + 900 * i).expect("ts");
            let load = if i == 5 { String::new() } else { format!("{}", i % 4) };
            text.push_str(&format!("{t},{load},{}\n", 10 + i));
        }
        let path = write(dir.path(), "r.csv", &text);
        let mut options = ReadOptions::new("load");
        options.exog = vec!["temp".into()];
        options.max_gap_steps = 0;
        options.resample_s = Some(3600);
        data::read(&path, &options).expect("read")
    };
    assert_eq!(series.step_s(), 3600);
    assert_eq!(series.len(), 48);
    assert_eq!(series.target[0], 1.5); // mean of 0, 1, 2, 3
    assert!((series.target[1] - 5.0 / 3.0).abs() < 1e-12); // 0, (missing), 2, 3
    assert_eq!(series.exog[0].values[0], 11.5);
    assert!(series.resample(5400).is_err());
}
