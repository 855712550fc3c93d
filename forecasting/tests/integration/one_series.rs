//! One series, two readers: a file that reads as a forecaster's history
//! reads as a case profile with the same instants and values, and the other
//! way round, DST days included (the engine's one DST policy).

use std::fmt::Write as _;
use std::path::Path;

use volta_engine::{AssetKind, Case, Profile, TimeGrid};
use volta_forecasting::{History, ReadOptions, data};

/// The demand profile of the load `office` of a one-bus case whose grid is
/// `grid_toml`, read from `file` (relative to `dir`).
fn case_profile(dir: &Path, grid_toml: &str, file: &str, column: &str) -> (TimeGrid, Vec<f64>) {
    let text = format!(
        r#"name = "one series"
{grid_toml}
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "office"
type = "load"
bus = "elec"
demand_kw = {{ file = "{file}", column = "{column}", time_column = "timestamp" }}
[[assets]]
id = "utility"
type = "grid"
bus = "elec"
import_price = 0.3
"#
    );
    let path = dir.join("case.toml");
    std::fs::write(&path, text).expect("case written");
    let case = Case::from_path(&path).expect("the file reads as a case profile");
    let office = case.asset("office").expect("office");
    let AssetKind::Load(load) = &office.kind else { panic!("office is a load") };
    let values = match &load.demand_kw {
        Profile::Series(v) => v.to_vec(),
        Profile::Constant(c) => vec![*c; case.grid().len()],
    };
    (case.grid().clone(), values)
}

fn history(path: &Path, tz: &str, column: &str) -> History {
    let mut options = ReadOptions::new(column);
    options.timezone = Some(tz.into());
    options.max_gap_steps = 0;
    let (history, report) = data::read(path, &options).expect("the file reads as a history");
    assert_eq!((report.duplicates, report.missing_steps, report.off_grid), (0, 0, 0), "{}", report.summary());
    history
}

#[test]
fn a_fall_back_day_in_local_time_reads_alike_in_both() {
    // A meter's file in Berlin wall-clock time around the 25-hour day of
    // 27 October 2024: the hour 02:00 comes twice, without offsets.
    let dir = tempfile::tempdir().expect("tempdir");
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").expect("zone");
    let first: jiff::Timestamp = "2024-10-25T22:00:00Z".parse().expect("midnight in Berlin, 26 October");
    let mut csv = String::from("timestamp,load_kw\n");
    for i in 0..72 {
        let local = (first + jiff::SignedDuration::from_hours(i)).to_zoned_datetime(tz.clone());
        writeln!(csv, "{},{}", local.strftime("%Y-%m-%d %H:%M"), 100 + i).expect("row");
    }
    std::fs::write(dir.path().join("meter.csv"), &csv).expect("csv written");
    assert_eq!(csv.matches("2024-10-27 02:00").count(), 2, "the fall-back hour is listed twice");

    let history = history(&dir.path().join("meter.csv"), "Europe/Berlin", "load_kw");
    assert_eq!(history.len(), 72);
    let grid_toml = "[time]\nstart = \"2024-10-27T00:00\"\ntimezone = \"Europe/Berlin\"\nstep = \"1h\"\ndays = 1";
    let (grid, profile) = case_profile(dir.path(), grid_toml, "meter.csv", "load_kw");
    assert_eq!(grid.len(), 25, "a 25-hour day");
    let offset = history.index_at_or_after(grid.instant(0));
    assert_eq!(offset, 24);
    assert_eq!(profile, history.target[offset..offset + 25].to_vec());
    assert!(grid.instants().enumerate().all(|(i, t)| history.time(offset + i) == t));
}

#[test]
fn a_history_written_out_reads_back_as_a_case_profile_and_a_case_file_as_a_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The other way round first: the islanded case's profile file is a history.
    let islanded = volta_datasets::case("islanded_profiles.csv");
    let read = history(&islanded, "Australia/Brisbane", "load_kw");
    let case = Case::from_path(volta_datasets::case("islanded.toml")).expect("islanded case");
    let load = case
        .assets()
        .iter()
        .find_map(|a| {
            if let AssetKind::Load(load) = &a.kind { Some(load.demand_kw.to_vec(case.grid().len())) } else { None }
        })
        .expect("a load");
    let offset = read.index_at_or_after(case.grid().instant(0));
    assert_eq!(load, read.target[offset..offset + load.len()].to_vec());

    // A history's target, written with its grid's stamps, is a case profile
    // on a grid in another zone that covers the spring-forward day.
    let grid = TimeGrid::parse("2024-03-30T00:00", "Europe/Berlin", "30min", &volta_engine::time::GridLength::Days(3))
        .expect("grid");
    assert_eq!(grid.len(), 142, "48 + 46 + 48 half-hours: the middle day has 23 hours");
    let values: Vec<f64> = (0..grid.len()).map(|i| 50.0 + (i % 48) as f64).collect();
    let written = History::new(grid, "load_kw", values.clone(), Vec::new()).expect("history");
    let series = written.target_series().expect("series");
    let mut csv = String::from("timestamp,load_kw\n");
    for (i, v) in series.values().iter().enumerate() {
        writeln!(csv, "{},{v}", series.grid().stamp(i)).expect("row");
    }
    std::fs::write(dir.path().join("history.csv"), csv).expect("csv");
    let grid_toml = "[time]\nstart = \"2024-03-31T00:00\"\ntimezone = \"Europe/Berlin\"\nstep = \"30min\"\ndays = 1";
    let (day, profile) = case_profile(dir.path(), grid_toml, "history.csv", "load_kw");
    assert_eq!(day.len(), 46, "the spring-forward day has 23 hours");
    let from = written.index_at_or_after(day.instant(0));
    assert_eq!(profile, values[from..from + 46].to_vec());
    let back = history(&dir.path().join("history.csv"), "Europe/Berlin", "load_kw");
    assert_eq!(back.grid(), written.grid());
    assert_eq!(back.target, values);
}
