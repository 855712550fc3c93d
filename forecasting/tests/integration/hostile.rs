//! Hostile and careless options: refused with the option named, before any
//! work, and never a file opened for a caller on another machine.

use volta_forecasting::spec::bounds;
use volta_forecasting::{Files, ForecastError, ModelOptions, ModelSpec, ReadOptions, data, train};

use crate::{spec, victoria};

fn options(json: &str) -> ModelOptions {
    serde_json::from_str(json).expect("options")
}

/// The option an error names.
fn named(err: &ForecastError) -> &str {
    let ForecastError::Option { option, .. } = err else { panic!("not an option error: {err}") };
    option
}

#[test]
fn remote_options_never_open_a_file_and_local_ones_may() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("holidays.csv");
    std::fs::write(&file, "date\n2014-12-25\nthe-secret-line\n").expect("write");
    let missing = dir.path().join("holidayX.csv");
    let series = victoria().head(48 * 30);
    let mut messages = Vec::new();
    for path in [&file, &missing] {
        let o = options(&format!(r#"{{"horizon": 48, "holidays": {:?}}}"#, path.display()));
        let err = o.to_spec_with(&series, Files::Refused).expect_err("refused");
        assert_eq!(named(&err), "holidays");
        let text = err.to_string();
        assert!(!text.contains("secret") && !text.contains("2014-12-25"), "{text}");
        messages.push(text.replace(&path.display().to_string(), "PATH"));
    }
    // Not a word about whether the file exists (the text shown is cut, so
    // compare the part after the value).
    let tail = |m: &str| m.rsplit_once(';').map(|(_, t)| t.to_owned()).unwrap_or_default();
    assert_eq!(tail(&messages[0]), tail(&messages[1]));
    // Built-in calendars work either way, and the CLI still reads its file.
    let builtin = options(r#"{"horizon": 48, "holidays": "au-vic"}"#);
    assert!(builtin.to_spec_with(&series, Files::Refused).is_ok());
    let o = options(&format!(r#"{{"horizon": 48, "holidays": {:?}}}"#, file.display()));
    let err = o.to_spec_with(&series, Files::Local).expect_err("the third line is not a date");
    assert!(err.to_string().contains("holidays"), "{err}");
}

#[test]
fn inline_holiday_dates_add_to_a_calendar_and_bad_ones_are_named() {
    let series = victoria().head(48 * 30);
    let o = options(r#"{"horizon": 48, "holidays": "AU-VIC", "holiday_dates": ["2014-01-02", "2014-01-03"]}"#);
    let spec = o.to_spec_with(&series, Files::Refused).expect("spec");
    let day = |d: &str| d.parse::<jiff::civil::Date>().expect("date");
    assert!(spec.features.holidays.contains(day("2014-01-01")), "the built-in New Year");
    assert!(spec.features.holidays.contains(day("2014-01-02")) && spec.features.holidays.contains(day("2014-01-03")));
    assert!(!spec.features.holidays.contains(day("2014-01-06")));
    let bad = options(r#"{"horizon": 48, "holiday_dates": ["2014-01-02", "2014-02-30"]}"#);
    let err = bad.to_spec_with(&series, Files::Refused).expect_err("no 30 February");
    assert_eq!(named(&err), "holiday_dates[1]");
}

#[test]
fn sizes_beyond_the_bounds_are_refused_naming_the_option() {
    let series = victoria().head(48 * 30);
    let cases = [
        (r#"{"horizon": 48, "lags": [18446744073709551615]}"#, "lags[0]"),
        (r#"{"horizon": 48, "lags": [0]}"#, "lags[0]"),
        (r#"{"horizon": 48, "regime_bins": 1000000000000}"#, "regime_bins"),
        (r#"{"horizon": 48, "regime_bins": 0}"#, "regime_bins"),
        (r#"{"horizon": 4294967295}"#, "horizon"),
        (r#"{"horizon": 48, "trees": 1000000000, "model": "gbdt"}"#, "trees"),
        (r#"{"horizon": 48, "train_days": 18446744073709551615}"#, "train_days"),
        (r#"{"horizon": 48, "calibration_folds": 1000}"#, "calibration_folds"),
    ];
    for (json, option) in cases {
        let err = options(json).to_spec(&series).expect_err(json);
        assert_eq!(named(&err), option, "{json}: {err}");
    }
    let many = format!(r#"{{"horizon": 48, "lags": {:?}}}"#, (1..=bounds::MAX_LAGS + 1).collect::<Vec<_>>());
    assert_eq!(named(&options(&many).to_spec(&series).expect_err("too many lags")), "lags");
    let quantiles: Vec<f64> = (1..=bounds::MAX_QUANTILES + 1).map(|i| i as f64 / 101.0).collect();
    let json = format!(r#"{{"horizon": 48, "quantiles": {quantiles:?}}}"#);
    assert_eq!(named(&options(&json).to_spec(&series).expect_err("too many levels")), "quantiles");
}

#[test]
fn a_forecast_issued_past_the_data_is_refused_at_once() {
    let series = victoria().head(48 * 60);
    let model = train(&series, &spec(ModelSpec::NaiveWeek, Vec::new()), 48 * 50).expect("train");
    let end = series.time(series.len() - 1);
    for issue in ["2016-06-01T00:00:00+10:00", "9999-12-01T00:00:00+00:00"] {
        let issue: jiff::Timestamp = issue.parse().expect("ts");
        let err = model.forecast(&series, issue).expect_err("past the data");
        assert_eq!(named(&err), "issue_time", "{err}");
        assert!(err.to_string().contains("after the end of the data"), "{err}");
    }
    // The end of the data itself is the last issue time that may be asked for.
    let last = end + jiff::SignedDuration::from_secs(series.step_s());
    assert!(model.forecast(&series, last).is_ok());
}

#[test]
fn a_sparse_file_that_would_make_a_huge_grid_is_refused_before_it_is_built() {
    let csv = "t,y\n2020-01-01T00:00:00,1\n2020-01-01T00:00:01,2\n2020-01-01T00:00:02,3\n2021-07-01T00:00:00,4\n";
    let frame = data::frame_from_csv(csv).expect("frame");
    let mut read = ReadOptions::new("y");
    read.time_column = Some("t".into());
    read.max_steps = 1_000_000;
    let err = data::from_frame(&frame, &read).expect_err("47 million steps");
    let text = err.to_string();
    assert!(text.contains("47260801 steps") && text.contains("limit of 1000000"), "{text}");
}

#[test]
fn a_cancelled_training_stops_between_trees() {
    let series = victoria().head(48 * 120);
    let gbdt = ModelSpec::Gbdt(volta_forecasting::GbdtParams { trees: 100_000, ..Default::default() });
    let spec = spec(gbdt, vec![0.1, 0.9]);
    // Cancelled before it starts: nothing is fitted.
    let cancel = volta_engine::Cancel::new();
    cancel.cancel();
    let err = volta_forecasting::train_cancellable(&series, &spec, 48 * 100, &cancel).expect_err("cancelled");
    assert!(matches!(err, ForecastError::Cancelled { .. }), "{err}");
    // Cancelled while fitting 100,000 trees (minutes of work): it stops at
    // the next tree of each of its parallel fits.
    let cancel = volta_engine::Cancel::new();
    let later = cancel.clone();
    let canceller = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        later.cancel();
    });
    let err = volta_forecasting::train_cancellable(&series, &spec, 48 * 100, &cancel).expect_err("cancelled");
    assert_eq!(err.to_string(), "cancelled while training");
    canceller.join().expect("canceller");
}
