//! The `volta` binary, run as a user would.

use std::path::PathBuf;
use std::process::{Command, Output};

fn volta(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_volta")).args(args).output().expect("volta runs")
}

fn case(rel: &str) -> String {
    volta_datasets::case(rel).display().to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn valid_cases_print_ok_with_a_summary() {
    let out = volta(&["validate", &case("campus.toml"), &case("islanded.toml")]);
    assert!(out.status.success(), "{}", stdout(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].starts_with("ok ") && lines[0].contains("168 steps of 1h") && lines[0].contains("13 assets"),
        "{text}"
    );
    assert!(lines[1].contains("144 steps of 30min") && lines[1].contains("electricity"), "{text}");
}

#[test]
fn invalid_case_prints_one_line_per_problem_and_exits_1() {
    let path = case("invalid/structure.toml");
    let out = volta(&["validate", &path]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let expected =
        std::fs::read_to_string(volta_datasets::invalid_cases().join("structure.expected")).expect("expected");
    let mut lines = text.lines();
    let count = expected.lines().count();
    assert_eq!(lines.next(), Some(format!("invalid {path}: {count} problems").as_str()));
    assert_eq!(lines.collect::<Vec<_>>(), expected.lines().collect::<Vec<_>>());
}

#[test]
fn unreadable_and_malformed_files_fail_cleanly() {
    for name in ["empty.toml", "binary.toml", "malformed.toml", "truncated.json", "does_not_exist.toml"] {
        let path = case(&format!("invalid/{name}"));
        let out = volta(&["validate", &path]);
        assert_eq!(out.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked") && !err.contains("backtrace"), "{name}: {err}");
        assert!(stdout(&out).starts_with(&format!("invalid {path}: ")), "{name}: {}", stdout(&out));
    }
}

#[test]
fn json_output_is_machine_readable() {
    let out = volta(&["validate", "--format", "json", &case("campus.toml"), &case("invalid/efficiencies.toml")]);
    assert_eq!(out.status.code(), Some(1));
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(value[0]["ok"], true);
    assert_eq!(value[1]["ok"], false);
    assert_eq!(value[1]["issues"][0]["path"], "assets.boiler.outputs[0].efficiency");
    assert_eq!(value[1]["issues"][0]["code"], "efficiency");
}

#[test]
fn strict_fails_on_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(volta_datasets::case("campus.toml")).expect("campus")
        + "\n[[buses]]\nid = \"spare\"\ncarrier = \"electricity\"\n";
    let path: PathBuf = dir.path().join("campus.toml");
    std::fs::write(&path, text).expect("write");
    let profiles = "campus_profiles.csv";
    std::fs::copy(volta_datasets::case(profiles), dir.path().join(profiles)).expect("copy");
    let p = path.display().to_string();
    let lenient = volta(&["validate", &p]);
    assert!(lenient.status.success());
    assert!(stdout(&lenient).contains("warning: buses.spare"));
    let strict = volta(&["validate", "--strict", &p]);
    assert_eq!(strict.status.code(), Some(1));
}

#[test]
fn export_writes_a_self_contained_case_that_reads_back_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("campus.json");
    let target = target.to_str().expect("utf-8 path");
    let out = volta(&["validate", "--export", target, &case("campus.toml")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(target).expect("written")).expect("json");
    // Series are inline: the CSV is not needed any more.
    let demand = exported["assets"][0]["demand_kw"].as_array().expect("inline demand");
    assert_eq!(demand.len(), 168);
    let original = volta_engine::Case::from_path(case("campus.toml")).expect("campus");
    let again = volta_engine::Case::from_path(target).expect("exported case");
    assert_eq!(original, again);
    // One case only.
    let out = volta(&["validate", "--export", target, &case("campus.toml"), &case("islanded.toml")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--export takes exactly one case"));
}

#[test]
fn help_teaches() {
    let out = volta(&["--help"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.contains("validate") && text.contains("Examples:"), "{text}");
    let out = volta(&["validate", "--help"]);
    let text = stdout(&out);
    assert!(text.contains("PATH: message") && text.contains("--strict"), "{text}");
    let out = volta(&["validate"]);
    assert_eq!(out.status.code(), Some(2), "missing arguments is a usage error");
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(out)))
}

#[test]
fn schedule_prints_a_json_summary_and_writes_tables_and_plots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = volta(&["schedule", &case("campus.toml"), "--out", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    assert_eq!(summary["status"], "optimal");
    for key in ["objective", "cost", "co2_kg", "best_bound", "gap", "solve_seconds"] {
        assert!(summary[key].is_number(), "{key} missing: {summary}");
    }
    let cost = summary["cost"].as_f64().expect("cost");
    let by_category: f64 =
        summary["cost_by_category"].as_object().expect("breakdown").values().filter_map(|v| v.as_f64()).sum();
    assert!((cost - by_category).abs() < 1e-6 * cost, "{cost} vs {by_category}");
    for file in ["schedule.csv", "schedule.parquet", "storage.csv", "commitment.csv", "prices.csv", "costs.csv"] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }
    for bus in ["elec", "heat", "cool", "gas"] {
        let png = std::fs::read(dir.path().join(format!("dispatch_{bus}.png"))).expect("plot");
        assert!(png.starts_with(b"\x89PNG"), "dispatch_{bus}.png is not a PNG");
    }
    // The schedule table has one row per step and balances every bus.
    let text = std::fs::read_to_string(dir.path().join("schedule.csv")).expect("csv");
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().expect("header").split(',').collect();
    assert_eq!(header[0], "timestamp");
    let rows: Vec<Vec<f64>> =
        rows.map(|r| r.split(',').skip(1).map(|v| v.parse().expect("number")).collect()).collect();
    assert_eq!(rows.len(), 168);
    for bus in ["elec", "heat", "cool", "gas"] {
        let cols: Vec<usize> =
            header.iter().enumerate().filter(|(_, h)| h.ends_with(&format!(".{bus}_kw"))).map(|(i, _)| i - 1).collect();
        for row in &rows {
            let sum: f64 = cols.iter().map(|&c| row[c]).sum();
            assert!(sum.abs() < 1e-3, "{bus} does not balance: {sum}");
        }
    }
    // The Parquet file, timestamps included, reads back as a case series.
    let reuse = dir.path().join("reuse.toml");
    std::fs::write(
        &reuse,
        r#"
name = "reuse"
[time]
start = "2014-11-03T00:00"
timezone = "Australia/Melbourne"
step = "1h"
days = 7
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "grid"
type = "grid"
bus = "elec"
import_price = 0.2
[[assets]]
id = "campus"
type = "load"
bus = "elec"
demand_kw = { file = "schedule.parquet", column = "campus_electric.elec_kw", time_column = "timestamp", scale = -1 }
"#,
    )
    .expect("write");
    let out = volta(&["validate", &reuse.display().to_string()]);
    assert!(out.status.success(), "{}", stdout(&out));
}

#[test]
fn an_infeasible_case_exits_3_with_an_explanation() {
    let out = volta(&["schedule", &case("infeasible/short_heat.toml")]);
    assert_eq!(out.status.code(), Some(3), "infeasible, not a usage error (2) or bad input (1)");
    let summary = json(&out);
    assert_eq!(summary["status"], "infeasible");
    assert!(summary["cost"].is_null());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("heat bus") && err.contains("short by") && err.contains("at maximum"), "{err}");
}

#[test]
fn pareto_and_rolling_horizon_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = volta(&["schedule", &case("campus.toml"), "--pareto", "3", "--out", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let points = json(&out)["pareto"]["points"].as_array().expect("points").len();
    assert!((2..=3).contains(&points));
    assert!(dir.path().join("pareto.png").is_file() && dir.path().join("pareto.csv").is_file());

    let out = volta(&["schedule", &case("campus.toml"), "--horizon-h", "48", "--commit-h", "24", "--lower-bound"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    assert_eq!(summary["rolling"]["windows"], 7);
    assert_eq!(summary["rolling"]["steps_scheduled"], 168);
    // Six windows start from the one before; the first, cold, counts too
    // when the relaxation proves its own rounding.
    let warm = summary["rolling"]["warm_started_windows"].as_u64().expect("a count");
    assert!((6..=7).contains(&warm), "{summary}");
    let proven = summary["rolling"]["proven_by_relaxation_windows"].as_u64().expect("a count");
    assert!((1..=warm).contains(&proven), "windows the relaxation proves skip their MIP: {summary}");
    // The relaxation is below the stitched cost, by a few percent on the campus.
    let (cost, bound) = (summary["cost"].as_f64().expect("cost"), summary["lower_bound"].as_f64().expect("bound"));
    let gap = summary["gap_to_lower_bound"].as_f64().expect("gap");
    assert!(bound < cost && (gap - (cost - bound) / cost).abs() < 1e-12 && gap < 0.05, "{summary}");
}

#[test]
fn a_week_in_blocks_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = volta(&["schedule", &case("campus.toml"), "--blocks", "3", "--out", &dir.path().display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    assert_eq!(summary["decomposition"]["blocks"], 3, "{summary}");
    assert_eq!(summary["decomposition"]["block_starts"], serde_json::json!([0, 56, 112]));
    assert_eq!(summary["decomposition"]["seam_steps"], 24);
    assert_eq!(summary["decomposition"]["steps_scheduled"], 168);
    let (cost, bound) = (summary["cost"].as_f64().expect("cost"), summary["lower_bound"].as_f64().expect("bound"));
    assert!(bound < cost && summary["gap_to_lower_bound"].as_f64().expect("gap") < 0.05, "{summary}");
    assert!(dir.path().join("schedule.csv").is_file());

    // Blocks that cannot hold two seams, and seams shorter than the CHP's
    // minimum up time, are refused before any solve.
    let out = volta(&["schedule", &case("campus.toml"), "--blocks", "4"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("use at most 3"));
    let out = volta(&["schedule", &case("campus.toml"), "--blocks", "2", "--seam-h", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longest minimum up or down time"));
    let out = volta(&["schedule", &case("campus.toml"), "--blocks", "2", "--horizon-h", "48"]);
    assert_eq!(out.status.code(), Some(2), "--blocks and --horizon-h are two ways to cut the horizon");
}

#[test]
fn schedule_options_are_checked() {
    let out = volta(&["schedule", &case("campus.toml"), "--gap", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mip_gap"));
    let out = volta(&["schedule", &case("campus.toml"), "--horizon-h", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--horizon-h"));
}

fn victoria_args(extra: &[&str]) -> Vec<String> {
    let data = volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv").display().to_string();
    let mut args: Vec<String> = [
        "--data",
        data.as_str(),
        "--time-column",
        "period_start_aest_assumed",
        "--timezone",
        "Australia/Brisbane",
        "--target",
        "demand_gw",
        "--exog",
        "temperature_c",
        "--known-ahead",
        "temperature_c",
        "--temperature",
        "temperature_c",
        "--holidays",
        "AU-VIC",
        "--horizon",
        "48",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

fn volta_owned(command: &str, args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_volta")).arg(command).args(args).output().expect("volta runs")
}

#[test]
fn backtest_prints_metrics_and_writes_forecasts_and_a_plot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().to_str().expect("utf-8").to_owned();
    let args = victoria_args(&[
        "--train-until",
        "2014-10-31",
        "--model",
        "naive_week",
        "--quantiles",
        "0.1,0.5,0.9",
        "--out",
        &out_dir,
    ]);
    let out = volta_owned("backtest", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary = json(&out);
    assert_eq!(summary["model"], "naive_week");
    assert_eq!(summary["n_forecasts"], 61);
    let mape = summary["mape"].as_f64().expect("mape");
    assert!((mape - 7.2).abs() < 0.05, "{mape}");
    for key in ["mae", "rmse", "mase", "rmae", "smape"] {
        assert!(summary[key].as_f64().is_some_and(f64::is_finite), "{key}");
    }
    assert!(summary["pinball"]["0.9"].as_f64().is_some());
    assert!(summary["coverage"]["0.1"].as_f64().is_some());
    let csv = std::fs::read_to_string(dir.path().join("forecasts.csv")).expect("csv");
    assert_eq!(csv.lines().count(), 61 * 48 + 1);
    assert!(csv.starts_with("issue,time,lead,actual,flagged,point,naive,q0.1,q0.5,q0.9"));
    // The whole test period is plotted, and the data's quality report written.
    for file in ["quality.csv", "quality.json", "quality.png"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    assert_eq!(summary["flagged_not_scored"], 0);
    assert_eq!(summary["data"]["flagged"]["unusual"], 118, "{}", summary["data"]);
    let png = std::fs::metadata(dir.path().join("forecast.png")).expect("png");
    assert!(png.len() > 10_000);
}

#[test]
fn train_then_forecast_writes_the_next_day() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("m.json").to_str().expect("utf-8").to_owned();
    let args = victoria_args(&[
        "--train-until",
        "2014-12-30",
        "--model",
        "linear",
        "--quantiles",
        "0.1,0.9",
        "--model-file",
        &model,
    ]);
    let out = volta_owned("train", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&out)["model"], "linear");
    let data = volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv").display().to_string();
    let out = volta(&[
        "forecast",
        "--model-file",
        &model,
        "--data",
        &data,
        "--time-column",
        "period_start_aest_assumed",
        "--issue-time",
        "2014-12-31T00:00",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 49, "{text}");
    assert_eq!(lines[0], "time,point,q0.1,q0.9");
    assert!(lines[1].starts_with("2014-12-31T00:00:00+10:00,"), "{}", lines[1]);
    let row: Vec<f64> = lines[20].split(',').skip(1).map(|v| v.parse().expect("number")).collect();
    assert!(row[1] <= row[0] && row[0] <= row[2], "{row:?}");
}

#[test]
fn bad_forecasting_input_exits_1_naming_the_problem() {
    let cases: [(&[&str], &str); 4] = [
        (&["--train-until", "2014-10-31", "--target", "demand_mw"], "demand_mw"),
        (&["--train-until", "2015-06-01"], "train_until"),
        (&["--train-until", "2014-10-31", "--issue-time", "25:00"], "issue_time"),
        (&["--train-until", "2014-10-31", "--quantiles", "0.9,0.1"], "quantiles"),
    ];
    for (extra, needle) in cases {
        let mut args = victoria_args(&[]);
        // A later --target overrides the first.
        if let Some(i) = extra.iter().position(|a| *a == "--target") {
            let t = args.iter().position(|a| a == "--target").expect("target");
            args[t + 1] = extra[i + 1].to_owned();
            args.extend(extra[..i].iter().map(|s| (*s).to_owned()));
        } else {
            args.extend(extra.iter().map(|s| (*s).to_owned()));
        }
        let out = volta_owned("backtest", &args);
        assert_eq!(out.status.code(), Some(1), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{extra:?}: {err}");
    }
}

#[test]
fn contracts_from_a_portfolio_file_to_a_settlement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("contracts.db").display());
    let small = volta_datasets::small_portfolio();
    let file = |name: &str| small.join(name).display().to_string();
    let run = |args: &[&str]| volta(&[&["contracts", "--database", &db], args].concat());

    let out = run(&["apply", &file("portfolio.toml")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("8 contracts created"), "{}", stdout(&out));
    let again = run(&["apply", &file("portfolio.toml")]);
    assert!(stdout(&again).contains("0 contracts created (8 already there)"), "{}", stdout(&again));

    // A bad row names its file, line and column, and nothing of the file is kept.
    let text = std::fs::read_to_string(small.join("readings-2024-04.csv")).expect("readings");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[500] = lines[500].replace(",measured", ",guessed");
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, lines.join("\n")).expect("write");
    let out = run(&["import", "readings", &bad.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("bad.csv:501: column 4 (quality)") && error.contains("guessed"), "{error}");

    let out = run(&["import", "prices", "spot", &file("spot.csv")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["import", "readings", &file("readings-2024-04.csv")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).starts_with("revision 1: 23063 readings, 8 contracts"), "{}", stdout(&out));

    // April 2024 in Melbourne: 30 days, one of 25 hours (7 April).
    let plot = dir.path().join("april.png");
    let out = run(&[
        "stats",
        "--portfolio",
        "--from",
        "2024-04-01",
        "--to",
        "2024-04-30",
        "--by",
        "day",
        "--plot",
        &plot.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout(&out).lines().count(), 31, "{}", stdout(&out));
    assert!(std::fs::metadata(&plot).is_ok_and(|m| m.len() > 10_000), "a plot");
    let month = run(&["stats", "--contract", "c00001", "--from", "2024-04-01", "--to", "2024-04-30"]);
    let row = stdout(&month).lines().nth(1).unwrap_or_default().to_owned();
    assert!(row.starts_with("2024-04") && row.contains("6632.000"), "{row}");

    let settle = run(&["settle", "c00001", "--from", "2024-04-01", "--to", "2024-04-30"]);
    assert!(stdout(&settle).contains("(run 1: stored)"), "{}", stdout(&settle));
    let again = run(&["settle", "c00001", "--from", "2024-04-01", "--to", "2024-04-30"]);
    assert!(stdout(&again).contains("(run 1: the same inputs as the stored run)"), "{}", stdout(&again));
    let top = run(&["top", "--from", "2024-04-01", "--to", "2024-04-30", "-n", "3"]);
    assert_eq!(stdout(&top).lines().count(), 4, "{}", stdout(&top));
}

#[test]
fn a_half_read_month_is_projected_to_its_end_with_its_odds() {
    // Two contracts on the real load shapes, read from December to the
    // middle of April: where will April end?
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("portfolio");
    let spec = volta_datasets::portfolio::Spec {
        contracts: 2,
        first: jiff::civil::date(2023, 12, 1),
        last: jiff::civil::date(2024, 4, 30),
        seed: 7,
    };
    volta_datasets::portfolio::generate(&spec, &data).expect("portfolio");
    let db = format!("sqlite://{}", dir.path().join("contracts.db").display());
    let run = |args: &[&str]| volta(&[&["contracts", "--database", &db], args].concat());
    let file = |name: &str| data.join(name).display().to_string();
    assert!(run(&["apply", &file("portfolio.toml")]).status.success());
    assert!(run(&["import", "prices", "spot", &file("spot.csv")]).status.success());
    for month in ["2023-12", "2024-01", "2024-02", "2024-03"] {
        let out = run(&["import", "readings", &file(&format!("readings-{month}.csv"))]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // April up to the 15th, 00:00 in Melbourne (14:00 UTC the day before).
    let april = std::fs::read_to_string(data.join("readings-2024-04.csv")).expect("april");
    let mut lines = april.lines();
    let header = lines.next().expect("header");
    let read: Vec<&str> = lines.filter(|l| l.split(',').nth(1).is_some_and(|t| t < "2024-04-14T14")).collect();
    let half = dir.path().join("april-half.csv");
    std::fs::write(&half, [vec![header], read].concat().join("\n")).expect("write");
    assert!(run(&["import", "readings", &half.display().to_string()]).status.success());

    let plot = dir.path().join("odds.png");
    let out = run(&[
        "project",
        "c00001",
        "--from",
        "2024-04-01",
        "--to",
        "2024-04-30",
        "--history-days",
        "120",
        "--plot",
        &plot.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.starts_with("projection of c00001, 2024-04-01 to 2024-04-30 as of 2024-04-14T14:00:00Z"), "{text}");
    for row in ["point forecast", "P10", "P50", "P90", "expected penalty"] {
        assert!(text.lines().any(|l| l.starts_with(row)), "{row}: {text}");
    }
    let delivered = |row: &str| -> f64 {
        let line = text.lines().find(|l| l.starts_with(row)).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN)
    };
    assert!(delivered("P10") <= delivered("P50") && delivered("P50") <= delivered("P90"), "{text}");
    assert!(std::fs::metadata(&plot).is_ok_and(|m| m.len() > 10_000), "a plot");

    // Refusals name the option.
    let out = run(&["project", "c00001", "--from", "2024-04-01", "--to", "2024-04-30", "--history-days", "20"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("history_days"), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["project", "c00001", "--from", "2024-04-01", "--to", "2024-04-30", "--as-of", "May"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--as-of"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_book_clears_by_each_mechanism_with_its_picture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let market = |name: &str| volta_datasets::root().join("market").join(name).display().to_string();
    // The park's book over its network, checked by hand: hour 1 prices 0.10
    // (PV marginal), 0.25 (CHP marginal) and 0.105 (the PV plus the fee);
    // both hours congest the 4 kWh feeder; the battery's block earns 0.795
    // for 0.84 asked.
    let fills = dir.path().join("fills.csv");
    let out = volta(&[
        "market",
        "clear",
        &market("park-orders.csv"),
        "--mechanism",
        "welfare",
        "--network",
        &market("park-network.toml"),
        "--fills",
        &fills.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.starts_with("welfare 2.500000; buyers pay 5.29, sellers receive 4.08 ("), "{text}");
    for line in [
        "2024-06-03T10:00:00Z/60      a            0.1",
        "2024-06-03T10:00:00Z/60      c            0.105",
        "2024-06-03T11:00:00Z/60      b            0.3",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert_eq!(text.matches("congested: line a-b").count(), 2, "{text}");
    assert!(text.contains("block 8: accepted at a loss of 0.045 (uplift)"), "{text}");
    let written = std::fs::read_to_string(&fills).expect("fills");
    assert!(written.contains("\n8,3.000,0.105\n") && written.contains("\n9,3.000,0.16"), "{written}");

    // One zone, a call auction: the curves cross along 0.15 to 0.18.
    let book = dir.path().join("zone.csv");
    std::fs::write(
        &book,
        "id,participant,start,node,side,price,kwh\n\
         1,shop,2024-06-03T12:00:00Z,z,buy,0.20,10\n\
         2,pool,2024-06-03T12:00:00Z,z,buy,0.15,10\n\
         3,pv,2024-06-03T12:00:00Z,z,sell,0.10,10\n\
         4,chp,2024-06-03T12:00:00Z,z,sell,0.18,10\n",
    )
    .expect("write");
    let plot = dir.path().join("curves.png");
    let out = volta(&["market", "clear", &book.display().to_string(), "--plot", &plot.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let row = stdout(&out).lines().nth(1).unwrap_or_default().to_owned();
    assert!(row.starts_with("2024-06-03T12:00:00Z/60") && row.contains(" 0.165 ") && row.contains("10.000"), "{row}");
    assert!(std::fs::metadata(&plot).is_ok_and(|m| m.len() > 10_000), "a plot");
    let out = volta(&["market", "clear", &book.display().to_string(), "--mechanism", "pay-as-bid"]);
    assert!(
        stdout(&out).lines().nth(1).unwrap_or_default().ends_with(" 1"),
        "the operator keeps 2.00 - 1.00: {}",
        stdout(&out)
    );

    // Mistakes are named.
    let out = volta(&["market", "clear", &market("park-orders.csv")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--mechanism welfare"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&book, "id,participant,start,node,side,price,kwh\n1,shop,2024-06-03T12:00:00Z,z,bid,0.20,10\n")
        .expect("write");
    let out = volta(&["market", "clear", &book.display().to_string()]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("zone.csv:2: column 5 (side)") && error.contains("\"bid\""), "{error}");
}

#[test]
fn a_site_bids_from_its_case() {
    // The hall of datasets/market (trading's bid test): hour 2 bids 10 kWh
    // at 0.25 (the chillers) and 11.9 at 0.40; the forecast comes from a CSV.
    let dir = tempfile::tempdir().expect("tempdir");
    let case = volta_datasets::root().join("market").join("hall.toml");
    let prices = dir.path().join("prices.csv");
    std::fs::write(&prices, "price\n0.10\n0.30\n").expect("prices");
    let out_csv = dir.path().join("curves.csv");
    let out = volta(&[
        "bid",
        &case.display().to_string(),
        "--grid",
        "market",
        "--prices",
        &prices.display().to_string(),
        "--shifts=-0.05,0,0.05,0.10",
        "--out",
        &out_csv.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let written = std::fs::read_to_string(&out_csv).expect("curves");
    assert_eq!(
        written.lines().collect::<Vec<_>>(),
        [
            "start,side,price,kwh",
            "2024-06-03T00:00:00Z,buy,0.2,40.000",
            "2024-06-03T01:00:00Z,buy,0.25,10.000",
            "2024-06-03T01:00:00Z,buy,0.4,11.900"
        ]
    );
    let out = volta(&["bid", &case.display().to_string(), "--grid", "hall"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--grid hall"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Writes readings as Parquet: meter and quality as UTF-8, start as UTC
/// milliseconds, energy_wh as integers.
fn write_parquet_readings(path: &std::path::Path, rows: &[(String, i64, i64, String)]) {
    use std::sync::Arc;

    use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as PhysicalType};
    use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::types::Type;

    let text = |name: &str| {
        Arc::new(
            Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
                .with_repetition(Repetition::REQUIRED)
                .with_logical_type(Some(LogicalType::String))
                .build()
                .expect("column"),
        )
    };
    let start = Type::primitive_type_builder("start", PhysicalType::INT64)
        .with_repetition(Repetition::REQUIRED)
        .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MILLIS)))
        .build()
        .expect("column");
    let energy = Type::primitive_type_builder("energy_wh", PhysicalType::INT64)
        .with_repetition(Repetition::REQUIRED)
        .build()
        .expect("column");
    let schema = Arc::new(
        Type::group_type_builder("readings")
            .with_fields(vec![text("meter"), Arc::new(start), Arc::new(energy), text("quality")])
            .build()
            .expect("schema"),
    );
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        SerializedFileWriter::new(file, schema, Arc::new(WriterProperties::builder().build())).expect("writer");
    let mut group = writer.next_row_group().expect("group");
    let meters: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.0.as_str())).collect();
    let starts: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let energies: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let qualities: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.3.as_str())).collect();
    let mut index = 0;
    while let Some(mut column) = group.next_column().expect("column") {
        match index {
            0 => column.typed::<ByteArrayType>().write_batch(&meters, None, None).expect("write"),
            1 => column.typed::<Int64Type>().write_batch(&starts, None, None).expect("write"),
            2 => column.typed::<Int64Type>().write_batch(&energies, None, None).expect("write"),
            _ => column.typed::<ByteArrayType>().write_batch(&qualities, None, None).expect("write"),
        };
        column.close().expect("close");
        index += 1;
    }
    group.close().expect("close");
    writer.close().expect("close");
}

#[test]
fn readings_import_from_parquet_as_from_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("contracts.db").display());
    let small = volta_datasets::small_portfolio();
    let run = |args: &[&str]| volta(&[&["contracts", "--database", &db], args].concat());
    assert!(run(&["apply", &small.join("portfolio.toml").display().to_string()]).status.success());
    // The first meter's April, from the committed CSV.
    let text = std::fs::read_to_string(small.join("readings-2024-04.csv")).expect("readings");
    let rows: Vec<(String, i64, i64, String)> = text
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("m00001,"))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let start: jiff::Timestamp = cells[1].parse().expect("time");
            let (kwh, frac) = cells[2].split_once('.').expect("kWh with decimals");
            let wh = kwh.parse::<i64>().expect("kWh") * 1000 + frac.parse::<i64>().expect("Wh");
            (cells[0].to_owned(), start.as_millisecond(), wh, cells[3].to_owned())
        })
        .collect();
    let mut bad = rows.clone();
    bad[9].3 = "guessed".into();
    let bad_path = dir.path().join("bad.parquet");
    write_parquet_readings(&bad_path, &bad);
    let out = run(&["import", "readings", &bad_path.display().to_string()]);
    assert_eq!(out.status.code(), Some(1));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("bad.parquet: row 10, column quality") && error.contains("guessed"), "{error}");
    let path = dir.path().join("m00001.parquet");
    write_parquet_readings(&path, &rows);
    let out = run(&["import", "readings", &path.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).starts_with(&format!("revision 1: {} readings, 1 contracts", rows.len())), "{}", stdout(&out));
    // Delivered: the same as the CSV's kWh, added up exactly.
    let total_wh: i64 = rows.iter().map(|r| r.2).sum();
    let stats = run(&["stats", "--contract", "c00001", "--from", "2024-04-01", "--to", "2024-04-30"]);
    let row = stdout(&stats).lines().nth(1).unwrap_or_default().to_owned();
    let delivered = format!("{}.{:03}", total_wh / 1000, total_wh % 1000);
    assert!(row.contains(&delivered), "{row} lacks {delivered}");
}

/// Victoria's CSV with `edit` applied to its data lines (0-based), written
/// into `dir`.
fn dirty_victoria(dir: &std::path::Path, edit: impl Fn(&mut Vec<String>)) -> String {
    let text = std::fs::read_to_string(volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv")).expect("csv");
    let mut lines: Vec<String> = text.lines().skip(1).map(str::to_owned).collect();
    edit(&mut lines);
    let path = dir.join("dirty.csv");
    let header = text.lines().next().expect("header");
    std::fs::write(&path, format!("{header}\n{}\n", lines.join("\n"))).expect("write");
    path.to_str().expect("utf-8").to_owned()
}

fn set_demand(line: &str, value: &str) -> String {
    let mut cells: Vec<&str> = line.split(',').collect();
    cells[2] = value;
    cells.join(",")
}

#[test]
fn inspect_lists_every_flag_with_its_time_and_writes_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dirty_victoria(dir.path(), |lines| {
        lines[48 * 280] = set_demand(&lines[48 * 280], "inf");
        lines[48 * 300 + 20] = set_demand(&lines[48 * 300 + 20], "0");
    });
    let out_dir = dir.path().join("q");
    let out = volta(&[
        "inspect",
        "--data",
        &data,
        "--time-column",
        "period_start_aest_assumed",
        "--timezone",
        "Australia/Brisbane",
        "--target",
        "demand_gw",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("flagged: 1 non_finite, 1 outlier, 11"), "{text}");
    assert!(text.contains("unusual; 2 target steps excluded"), "{text}");
    let csv = std::fs::read_to_string(out_dir.join("quality.csv")).expect("quality.csv");
    assert!(csv.starts_with("time,column,kind,value,expected,used,action,rule\n"), "{csv}");
    assert!(csv.contains("2014-10-08T00:00:00+10:00,demand_gw,non_finite,inf,"), "{csv}");
    let dropout = csv.lines().find(|l| l.starts_with("2014-10-28T10:00:00+10:00")).expect("the dropout");
    assert!(dropout.contains(",outlier,0,") && dropout.contains(",excluded,"), "{dropout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("quality.json")).expect("json")).expect("json");
    assert_eq!(report["excluded"], 2);
    assert!(std::fs::metadata(out_dir.join("quality.png")).expect("png").len() > 10_000);
}

#[test]
fn dirty_files_get_errors_that_name_the_row_and_the_policy_to_choose() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |data: &str, extra: &[&str]| {
        let mut args =
            vec!["inspect", "--data", data, "--time-column", "period_start_aest_assumed", "--target", "demand_gw"];
        args.extend_from_slice(extra);
        volta(&args)
    };
    // Text in the target: the row and line.
    let text = dirty_victoria(dir.path(), |lines| lines[16] = set_demand(&lines[16], "n/a"));
    let out = run(&text, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("column \"demand_gw\", row 17 (line 18 of a file with a header): \"n/a\" is not a number"),
        "{err}"
    );
    // A conflicting repeat: both rows, and the option that merges them.
    let dup = dirty_victoria(dir.path(), |lines| {
        let repeat = set_demand(&lines[5], "7.5");
        lines.insert(6, repeat);
    });
    let err = String::from_utf8_lossy(&run(&dup, &[]).stderr).into_owned();
    assert!(err.contains("rows 6 and 7 both give 2014-01-01T02:30:00+00:00"), "{err}");
    let out = run(&dup, &["--duplicates", "last"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout(&out).contains("1 duplicates merged"), "{}", stdout(&out));
    // A header without rows.
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "period_start_aest_assumed,demand_gw\n").expect("write");
    let err = String::from_utf8_lossy(&run(empty.to_str().expect("utf-8"), &[]).stderr).into_owned();
    assert!(err.contains("the data has a header but no rows"), "{err}");
}

#[test]
fn test_until_a_date_issues_nothing_on_that_date() {
    let args = victoria_args(&["--train-until", "2014-10-31", "--test-until", "2014-11-08", "--model", "naive_week"]);
    let out = volta_owned("backtest", &args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // 1 to 7 November: seven forecasts, none issued on the 8th.
    assert_eq!(json(&out)["n_forecasts"], 7);
}

#[test]
fn a_solver_strategy_set_on_the_command_line_is_used_reported_and_reaches_the_same_optimum() {
    let default = volta(&["schedule", &case("campus.toml"), "--no-prices"]);
    assert!(default.status.success(), "{}", String::from_utf8_lossy(&default.stderr));
    let default = json(&default);
    let chosen = &default["strategy"];
    assert_eq!(default["proven_by_relaxation"], false, "no start, nothing to prove");
    assert!(chosen["lp_method"].is_string() && chosen["presolve"].is_boolean(), "{chosen}");
    assert!(chosen["heuristic_effort"].is_number(), "a MIP reports its heuristic effort: {chosen}");
    let set = volta(&[
        "schedule",
        &case("campus.toml"),
        "--no-prices",
        "--lp-method",
        "ipm",
        "--presolve",
        "off",
        "--heuristic-effort",
        "0.3",
        "--mip-start",
        "rounding",
    ]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let set = json(&set);
    assert_eq!(
        set["strategy"],
        serde_json::json!({ "lp_method": "ipm", "presolve": false, "heuristic_effort": 0.3, "mip_start": "rounding" })
    );
    // Both within HiGHS's 1e-4 gap of the same optimum.
    let (a, b) = (set["objective"].as_f64().expect("objective"), default["objective"].as_f64().expect("objective"));
    assert!((a - b).abs() <= 2e-4 * b.abs(), "the same optimum within the gaps: {a} vs {b}");
    for (flag, value, says) in [
        ("--heuristic-effort", "1.5", "not a share in [0, 1]"),
        ("--presolve", "maybe", "neither on nor off"),
        ("--lp-method", "barrier", "invalid value"),
        ("--mip-start", "lp", "invalid value"),
    ] {
        let out = volta(&["schedule", &case("campus.toml"), flag, value]);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains(says), "{flag} {value}: {err}");
    }
}

#[test]
fn write_model_writes_the_lp_or_mps_with_readable_names_and_checks_its_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lp = dir.path().join("campus.lp");
    let out = volta(&["schedule", &case("campus.toml"), "--write-model", lp.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&lp).expect("the model");
    assert!(text.starts_with("\\ Volta dispatch model of case \"campus\": 168 steps of 1 h"), "{}", &text[..200]);
    for name in ["utility.import(0)", "elec.balance(167)", "Subject To", "Bounds", "Binaries", "End"] {
        assert!(text.contains(name), "{name}");
    }
    // HiGHS reads the file and reaches the schedule's objective: checked in
    // CI by benches/pypsa/model_export.py (highspy), for MPS too.
    let mps = dir.path().join("campus.mps");
    let out = volta(&["schedule", &case("campus.toml"), "--write-model", mps.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&mps).expect("the MPS model");
    for name in ["NAME volta", "ROWS", " N obj", "COLUMNS", "RHS", "BOUNDS", "ENDATA", "elec.balance(167)"] {
        assert!(text.contains(name), "{name}");
    }
    let bad = dir.path().join("campus.txt");
    let out = volta(&["schedule", &case("campus.toml"), "--write-model", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("must end in .lp"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn plan_forecasts_the_load_and_plans_under_its_scenarios() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = dir.path().join("vic.model.json").display().to_string();
    let args = victoria_args(&[
        "--model",
        "linear",
        "--quantiles",
        "0.1,0.5,0.9",
        "--train-until",
        "2014-11-11",
        "--model-file",
        &model,
    ]);
    let trained = volta_owned("train", &args);
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let data = volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv").display().to_string();
    let out = dir.path().join("plan");
    let forecast = format!("site.demand_kw={model},{data},150");
    let case = case("site_day.toml");
    let run = volta(&[
        "plan",
        &case,
        "--issue-time",
        "2014-11-12T00:00",
        "--forecast",
        &forecast,
        "--scenarios",
        "6",
        "--imbalance-penalty",
        "0.1",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    let text = stdout(&run);
    assert!(run.status.success(), "{text}\n{}", String::from_utf8_lossy(&run.stderr));
    assert!(
        text.contains("two-stage stochastic plan of 24 steps from forecasts issued 2014-11-12T00:00:00+10:00"),
        "{text}"
    );
    assert!(text.contains("6 scenario(s): optimal") && text.contains("P90"), "{text}");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("plan.json")).expect("plan.json")).expect("json");
    assert_eq!(plan["plan"]["commitment"][0]["on"].as_array().map(Vec::len), Some(24));
    assert_eq!(plan["scenarios"].as_array().map(Vec::len), Some(6));
    let p = |key: &str| plan[key].as_f64().unwrap_or_else(|| panic!("{key} in plan.json"));
    assert!(p("cost_p10") <= p("cost_p50") && p("cost_p50") <= p("cost_p90") && p("cost_p90") <= p("cvar"));
    assert_eq!(plan["cvar_alpha"].as_f64(), Some(0.9));
    let forecasts = std::fs::read_to_string(out.join("forecasts.csv")).expect("forecasts.csv");
    assert_eq!(forecasts.lines().next(), Some("time,series,point,q0.1,q0.5,q0.9"));
    assert_eq!(forecasts.lines().count(), 25);
    assert!(std::fs::metadata(out.join("plan.png")).expect("plan.png").len() > 10_000);
    let scenarios = std::fs::read_to_string(out.join("scenarios.csv")).expect("scenarios.csv");
    assert_eq!(scenarios.lines().count(), 7);
    // Each scenario's load, step by step.
    let series = std::fs::read_to_string(out.join("scenario_series.csv")).expect("scenario_series.csv");
    assert_eq!(series.lines().count(), 1 + 6 * 24);
    assert!(series.lines().nth(1).is_some_and(|l| l.contains(",site.demand_kw,")), "{series}");
    // Each scenario's flows: 6 scenarios × 3 assets with one bus each × 24 steps.
    let schedules = std::fs::read_to_string(out.join("schedules.csv")).expect("schedules.csv");
    assert_eq!(schedules.lines().count(), 1 + 6 * 3 * 24);
    // A series the case does not have, and an issue time inside the model's training data: input errors, exit 1.
    let bad = format!("site.availability={model},{data}");
    let refused = volta(&["plan", &case, "--issue-time", "2014-11-12T00:00", "--forecast", &bad]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only a renewable has availability"));
    let late = volta(&["plan", &case, "--issue-time", "2014-11-11T12:00", "--forecast", &forecast]);
    assert_eq!(late.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&late.stderr).contains("would have seen the day it plans"),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );
}
