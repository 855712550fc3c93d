//! A structured fuzz campaign over every RPC of `volta serve`.
//!
//! Well-typed requests are generated with proptest: small cases whose every
//! number, size, time and series may be hostile (huge, negative, not finite,
//! the wrong type, a file reference), option documents with hostile values
//! for every known key and some unknown ones, tiny CSVs with odd rows, and
//! arbitrary text where text goes. Raw byte mutations of valid encoded
//! requests go to every method as well. Each call carries a short deadline.
//!
//! The invariants, checked on every answer:
//! - never INTERNAL or UNKNOWN: bad input is the caller's fault;
//! - no panic text, no path of the server, no secret in any message;
//! - the process stays up, its peak memory under a ceiling, and
//!   `volta_panics_total` stays 0.
//!
//! `VOLTA_FUZZ_CASES` sets the cases per RPC (default 64 here, so that the
//! test suite stays quick; `benches/fuzz.sh` runs thousands and prints the
//! outcome table that the README reports) and `VOLTA_FUZZ_SEED` the seed
//! (fixed by default; `random` for exploration).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use tonic::Code;

use super::{SECRET, Server, fpb, pb, token, with_token};
use volta_api::pb::planning as ppb;

/// One call's outcome, as a future the runner blocks on.
type Call = Pin<Box<dyn Future<Output = Result<String, tonic::Status>>>>;

/// Cases per RPC: `VOLTA_FUZZ_CASES`, or 64.
fn cases() -> u32 {
    std::env::var("VOLTA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

/// The generator's seed: `VOLTA_FUZZ_SEED` (a number, or `random`), else
/// a fixed one, so that the test suite is reproducible and a CI run fails
/// only on a change of the code (the long runs of `benches/fuzz.sh` draw a
/// random seed and print it when they fail).
fn seed() -> proptest::test_runner::RngSeed {
    use proptest::test_runner::RngSeed;
    match std::env::var("VOLTA_FUZZ_SEED").as_deref() {
        Ok("random") => RngSeed::Random,
        Ok(n) => n.parse().map_or(RngSeed::Fixed(13), RngSeed::Fixed),
        Err(_) => RngSeed::Fixed(13),
    }
}

/// Peak resident memory the server may reach (VmHWM), in KiB.
const MEMORY_CEILING_KIB: u64 = 3 << 20;

/// Words no answer may contain.
const LEAKS: [&str; 8] = ["panicked", "RUST_BACKTRACE", "/root", "/home", "/work", "/proc", "src/", SECRET];

/// A hostile value for a number slot of a case.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => any::<f64>().prop_map(|v| format!("{v:e}")),
        3 => prop::sample::select(vec![
            "0", "-1", "1e308", "-1e308", "1e9", "1.0000001e9", "5e-324", "nan", "inf", "-inf",
            "18446744073709551616", "\"12\"", "[1, 2]", "true", "{}", "\"\"",
            "{ file = \"/etc/passwd\", column = \"root\" }",
            "{ file = \"../../../../proc/self/environ\", column = \"x\", time_column = \"t\" }",
        ])
        .prop_map(str::to_owned),
    ]
}

/// A number slot: usually in `range`, sometimes hostile.
fn number(range: std::ops::Range<f64>) -> impl Strategy<Value = String> {
    prop_oneof![30 => range.prop_map(|v| format!("{v:.4}")), 1 => hostile()]
}

/// A series slot: a constant or a list (of the right length or not).
fn profile(range: std::ops::Range<f64>) -> impl Strategy<Value = String> {
    let values = prop::collection::vec(number(range.clone()), 0..40).prop_map(|v| format!("[{}]", v.join(", ")));
    prop_oneof![4 => number(range), 1 => values]
}

fn steps() -> impl Strategy<Value = String> {
    prop_oneof![
        20 => (1_u32..36).prop_map(|v| v.to_string()),
        1 => prop::sample::select(vec!["0", "-3", "1000000", "5000000", "5270401", "18446744073709551615", "1.5", "\"24\""])
            .prop_map(str::to_owned),
    ]
}

/// A text slot: one of `valid` mostly, else one of `invalid` or any text.
fn text(valid: Vec<&'static str>, invalid: Vec<&'static str>) -> impl Strategy<Value = String> {
    prop_oneof![
        20 => prop::sample::select(valid).prop_map(str::to_owned),
        1 => prop::sample::select(invalid).prop_map(str::to_owned),
        1 => ".{0,40}".prop_map(|s: String| s),
    ]
}

/// A small case (load, PV, battery, a unit under commitment, a grid) whose
/// values are mostly sound and sometimes hostile: the sound ones reach the
/// solver, the others the checks.
fn case_text() -> impl Strategy<Value = pb::CaseText> {
    let time = (
        steps(),
        text(vec!["1h", "15min", "30min"], vec!["1s", "0min", "-1h", "7d", "1h30min"]),
        text(vec!["UTC", "Europe/Berlin", "Australia/Melbourne", "America/New_York"], vec!["Mars/Olympus", ""]),
        text(
            vec!["2025-03-30T00:00", "2025-10-26T00:00", "2025-06-01T00:00"],
            vec!["9999-12-31T23:00", "0001-01-01T00:00", "2025-02-30T00:00"],
        ),
    );
    let sizes = (number(0.0..2000.0), number(0.0..3000.0), number(0.0..1000.0), number(0.0..600.0));
    let unit = (
        number(50.0..800.0),
        number(0.0..50.0),
        number(0.0..0.5),
        number(0.0..6.0),
        number(0.0..2000.0),
        number(0.2..0.6),
    );
    let fractions = (number(0.5..1.0), number(0.0..1.0));
    let profiles = (profile(0.0..500.0), profile(0.0..1.0), profile(-0.1..0.6), number(1.0..20.0));
    let structure = (any::<bool>(), 0_u8..40, any::<u8>());
    (time, sizes, unit, fractions, profiles, structure).prop_map(
        |(
            (steps, step, tz, start),
            (pv, energy, charge, discharge),
            (cap, min, fuel, up, limit, efficiency),
            (eff, soc),
            (load, avail, price, voll),
            (json, damage, at),
        )| {
            let mut toml = format!(
                r#"name = "fuzz"
[time]
start = "{start}"
timezone = "{tz}"
step = "{step}"
steps = {steps}
[[carriers]]
id = "diesel"
co2_kg_per_kwh = 0.267
[[buses]]
id = "ac"
carrier = "electricity"
[[assets]]
id = "load"
type = "load"
bus = "ac"
demand_kw = {load}
curtailable = {{ value_of_lost_load = {voll} }}
[[assets]]
id = "pv"
type = "renewable"
bus = "ac"
capacity_kw = {pv}
availability = {avail}
[[assets]]
id = "battery"
type = "storage"
bus = "ac"
energy_capacity_kwh = {energy}
charge_power_kw = {charge}
discharge_power_kw = {discharge}
charge_efficiency = {eff}
initial_soc = {soc}
[[assets]]
id = "unit"
type = "thermal"
bus = "ac"
capacity_kw = {cap}
min_power_kw = {min}
fuel_carrier = "diesel"
fuel_price = {fuel}
efficiency = {efficiency}
  [assets.commitment]
  min_up_h = {up}
  start_cost = 5
[[assets]]
id = "grid"
type = "grid"
bus = "ac"
import_limit_kw = {limit}
import_price = {price}
co2_kg_per_kwh = 0.5
"#
            );
            match damage {
                // A duplicated asset id.
                0 => toml.push_str("[[assets]]\nid = \"grid\"\ntype = \"grid\"\nbus = \"ac\"\nimport_price = 1\n"),
                // A document cut anywhere, even inside a multi-byte character.
                1 => {
                    let cut = usize::from(at) * toml.len() / 255;
                    toml = String::from_utf8_lossy(&toml.as_bytes()[..cut]).into_owned();
                }
                // An unknown key, a missing bus.
                2 => toml.push_str("solver = \"cplex\"\n"),
                3 => toml = toml.replace("bus = \"ac\"\nimport_limit_kw", "bus = \"dc\"\nimport_limit_kw"),
                _ => {}
            }
            let format = if json {
                // The same document as JSON where it parses, else the raw text.
                match toml::from_str::<toml::Value>(&toml).ok().and_then(|v| serde_json::to_string(&v).ok()) {
                    Some(json) => pb::case_text::Format::Json(json),
                    None => pb::case_text::Format::Json(toml),
                }
            } else {
                pb::case_text::Format::Toml(toml)
            };
            pb::CaseText { format: Some(format) }
        },
    )
}

/// An optional number: absent, in `range`, or any float at all.
fn maybe(range: std::ops::Range<f64>) -> impl Strategy<Value = Option<f64>> {
    prop::option::weighted(
        0.3,
        prop_oneof![
            20 => range,
            1 => any::<f64>(),
            1 => prop::sample::select(vec![f64::NAN, f64::INFINITY, -1.0, 0.0, 1e-300, 1e300]),
        ],
    )
}

fn objective() -> impl Strategy<Value = i32> {
    prop_oneof![20 => 0_i32..3, 1 => any::<i32>()]
}

/// A duration: usually a sound number of seconds, sometimes hostile
/// (negative, mixed signs, nanoseconds out of range, huge).
fn duration(sound: std::ops::Range<u32>) -> impl Strategy<Value = Option<prost_types::Duration>> {
    let sound = sound.prop_map(|s| Some(prost_types::Duration { seconds: i64::from(s), nanos: 0 }));
    let hostile =
        (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Some(prost_types::Duration { seconds, nanos }));
    prop_oneof![20 => sound, 2 => Just(None), 1 => hostile]
}

fn schedule_request() -> impl Strategy<Value = pb::ScheduleRequest> {
    let view = prop_oneof![10 => Just(1_i32), 1 => any::<i32>()];
    let assets = prop_oneof![10 => Just(Vec::new()), 1 => prop::collection::vec(".{0,12}", 0..3)];
    // Most solve whole; some in blocks, sound or hostile.
    let blocks = prop_oneof![10 => Just(None), 2 => (1_u32..4).prop_map(Some), 1 => any::<u32>().prop_map(Some)];
    let seams = prop_oneof![10 => Just(None), 1 => any::<u32>().prop_map(Some)];
    let solving = (objective(), maybe(0.0..0.5), maybe(0.0..0.01), duration(1..3));
    // Most leave the strategy to Volta; some set it, sound or hostile.
    let lp_method = prop_oneof![5 => 0_i32..3, 1 => any::<i32>()];
    let effort = maybe(0.0..1.0);
    let mip_start = prop_oneof![5 => 0_i32..4, 1 => any::<i32>()];
    let strategy = prop_oneof![
        10 => Just(None),
        3 => (lp_method, prop::option::of(any::<bool>()), effort, mip_start).prop_map(
            |(lp_method, presolve, heuristic_effort, mip_start)| Some(pb::SolverStrategy {
                lp_method,
                presolve,
                heuristic_effort,
                mip_start
            })
        ),
    ];
    (case_text(), solving, view, assets, any::<bool>(), blocks, seams, strategy).prop_map(
        |(
            case,
            (objective, co2_price, mip_gap, time_limit),
            view,
            asset_ids,
            separate_units,
            blocks,
            seam_steps,
            strategy,
        )| {
            pb::ScheduleRequest {
                case: Some(case),
                objective,
                co2_price,
                mip_gap,
                time_limit,
                view: if asset_ids.is_empty() { view } else { 2 },
                asset_ids,
                separate_units,
                blocks,
                seam_steps,
                strategy,
            }
        },
    )
}

fn pareto_request() -> impl Strategy<Value = pb::ParetoRequest> {
    let points = prop_oneof![20 => 2_i32..6, 1 => any::<i32>()];
    (case_text(), points, maybe(0.0..0.01), duration(1..2)).prop_map(|(case, points, mip_gap, time_limit)| {
        pb::ParetoRequest { case: Some(case), points, mip_gap, time_limit }
    })
}

fn rolling_request() -> impl Strategy<Value = pb::RollingHorizonRequest> {
    // Sound lengths are whole hours; a third of an hour is not a whole number of steps.
    let hours = |d: Option<prost_types::Duration>| {
        d.map(|d| prost_types::Duration { seconds: d.seconds.saturating_mul(3600), ..d })
    };
    let horizon = duration(1..24).prop_map(hours);
    let third = prost_types::Duration { seconds: 1200, nanos: 0 };
    let commit = prop_oneof![3 => duration(1..12).prop_map(hours), 1 => Just(Some(third)), 1 => Just(None)];
    (case_text(), horizon, commit, objective(), maybe(0.0..0.01), any::<bool>()).prop_map(
        |(case, horizon, commit, objective, mip_gap, cold_windows)| pb::RollingHorizonRequest {
            case: Some(case),
            horizon,
            commit,
            objective,
            co2_price: None,
            mip_gap,
            window_time_limit: Some(prost_types::Duration { seconds: 1, nanos: 0 }),
            cold_windows,
            lower_bound: false,
        },
    )
}

/// Model options: sound values in every field, and in a quarter of the
/// cases one field given a hostile value (any integer, any float, a path,
/// an impossible date or time of day, an undefined enum value).
fn model_options() -> impl Strategy<Value = fpb::ModelOptions> {
    use volta_api::pb::common::{Date, TimeOfDay};
    let some = |range: std::ops::Range<i32>| prop::option::of(range);
    let quantiles = prop::sample::select(vec![vec![], vec![0.1, 0.9], vec![0.05, 0.5, 0.95]]);
    let lags = prop::sample::select(vec![vec![1], vec![1, 2], vec![]]);
    let calendar = prop::sample::select(vec!["", "AU-VIC", "DE", "US"]);
    let dates = prop::collection::vec(
        (2024_i32..2025, 1_i32..13, 1_i32..29).prop_map(|(year, month, day)| Date { year, month, day }),
        0..3,
    );
    let issue = prop::option::of(
        (0_i32..24, prop::sample::select(vec![0_i32, 30])).prop_map(|(hours, minutes)| TimeOfDay { hours, minutes }),
    );
    let site = prop::option::of((-60.0..60.0_f64, -180.0..180.0_f64));
    let sound = (
        (1_i32..48, issue, prop::sample::select(vec![0_i32, 1, 2, 5, 7]), quantiles, 0_i32..3, 0_i32..5),
        (some(1..4), some(5..60), prop::sample::select(vec!["", "x"]), calendar, dates, lags),
        (site, some(5..60), prop::option::of(0.01..0.3_f64), some(2..6), prop::option::of(0.0..1.0_f64)),
    )
        .prop_map(
            |(
                (horizon, issue_time_of_day, model, quantiles, intervals, calibrate_by),
                (regime_bins, train_days, temperature, calendar, holiday_dates, lag_days),
                (site, trees, learning_rate, max_depth, penalty),
            )| fpb::ModelOptions {
                horizon_steps: Some(horizon),
                issue_time_of_day,
                model,
                quantiles,
                intervals,
                calibration_days: Some(2),
                calibration_folds: Some(0),
                calibrate_by,
                regime_bins,
                train_days,
                temperature_column: temperature.to_owned(),
                holiday_calendar: calendar.to_owned(),
                holiday_dates,
                lag_days,
                latitude: site.map(|(lat, _)| lat),
                longitude: site.map(|(_, lon)| lon),
                trees,
                learning_rate,
                max_depth,
                penalty,
            },
        );
    let strange_float = prop_oneof![any::<f64>(), prop::sample::select(vec![f64::NAN, f64::INFINITY, -1.0, 1e300])];
    let hostile = (0_u8..16, any::<i32>(), strange_float, prop::sample::select(vec!["/etc/passwd", "../x.csv", "XX"]));
    (sound, prop::option::weighted(0.25, hostile)).prop_map(|(mut o, hostile)| {
        let Some((field, int, float, text)) = hostile else { return o };
        match field {
            0 => o.horizon_steps = Some(int),
            1 => o.issue_time_of_day = Some(TimeOfDay { hours: int, minutes: int.wrapping_mul(7) }),
            2 => o.model = int,
            3 => o.quantiles = vec![float],
            4 => o.intervals = int,
            5 => o.calibration_days = Some(int),
            6 => o.calibration_folds = Some(int),
            7 => o.calibrate_by = int,
            8 => o.regime_bins = Some(int),
            9 => o.train_days = Some(int),
            10 => o.holiday_calendar = text.to_owned(),
            11 => o.holiday_dates = vec![Date { year: int, month: int % 14, day: 31 }],
            12 => o.lag_days = vec![int],
            13 => (o.latitude, o.longitude) = (Some(float), None),
            14 => o.trees = Some(int),
            _ => (o.learning_rate, o.max_depth, o.penalty) = (Some(float), Some(int), Some(float)),
        }
        o
    })
}

/// A small CSV series: hourly or half-hourly rows over days, usually
/// clean, sometimes with gaps, duplicates, odd or non-existent local
/// times, text, blanks or extreme values.
fn series() -> impl Strategy<Value = fpb::SeriesData> {
    let shape = (20_i64..40, prop::sample::select(vec![60_i64, 30]), any::<bool>());
    let edit = (
        any::<prop::sample::Index>(),
        prop::sample::select(vec![
            "",
            "nan",
            "inf",
            "-1e300",
            "1e300",
            "x",
            "\"1,5\"",
            "DROP",
            "DUP",
            "garbage",
            "2024-03-31T02:30",
            "9999-12-31T23:59",
            "0001-01-01T00:00",
            "2024-02-30T00:00",
            "1970-01-01T00:00:00Z",
        ]),
    );
    let damage = prop_oneof![4 => Just(Vec::new()), 1 => prop::collection::vec(edit, 1..6)];
    let tz = text(vec!["", "UTC", "Europe/Lisbon", "Australia/Brisbane"], vec!["Nowhere/Land", "+25:00"]);
    let column = || text(vec!["y"], vec!["t", "x", "", "z"]);
    let time_column = text(vec!["t"], vec!["y", "", "q"]);
    // Every policy, now and then one the proto does not define.
    let policy = || prop_oneof![9 => 0_i32..6, 1 => prop::sample::select(vec![-1_i32, 7, i32::MAX])];
    let cleaning = prop::option::of((policy(), policy(), policy(), policy()).prop_map(|(o, d, n, a)| fpb::Cleaning {
        outliers: o,
        duplicates: d,
        nonexistent_times: n,
        ambiguous_times: a,
    }));
    (shape, damage, tz, column(), time_column, cleaning).prop_map(
        |((days, minutes, late), damage, time_zone, target, time_column, cleaning)| {
            // From March 1st or 10th: across Lisbon's spring-forward day or not.
            let start = jiff::civil::date(2024, 3, if late { 10 } else { 1 });
            let rows = days * 24 * 60 / minutes;
            let mut lines: Vec<String> = (0..rows)
                .map(|i| {
                    let t = start.at(0, 0, 0, 0) + jiff::Span::new().minutes(i * minutes);
                    let hour = (i * minutes / 60) % 24;
                    let y = 50.0 + 20.0 * ((hour as f64) / 24.0 * std::f64::consts::TAU).sin() + (i % 7) as f64;
                    format!("{t},{y:.3},{:.2}", 10.0 + (hour as f64) / 2.0)
                })
                .collect();
            for (at, what) in damage {
                if lines.is_empty() {
                    break;
                }
                let i = at.index(lines.len());
                match what {
                    "DROP" => {
                        lines.remove(i);
                    }
                    "DUP" => {
                        let line = lines[i].clone();
                        lines.insert(i, line.replace(",5", ",6"));
                    }
                    stamp if stamp.len() > 12 || stamp == "garbage" => {
                        let rest = lines[i].split_once(',').map_or(String::new(), |(_, r)| r.to_owned());
                        lines[i] = format!("{stamp},{rest}");
                    }
                    value => {
                        let t = lines[i].split(',').next().unwrap_or_default().to_owned();
                        lines[i] = format!("{t},{value},1");
                    }
                }
            }
            let csv = format!("t,y,x\n{}\n", lines.join("\n"));
            fpb::SeriesData {
                source: Some(fpb::series_data::Source::Csv(csv)),
                target,
                time_column,
                exog_columns: vec!["x".to_owned()],
                known_ahead_columns: Vec::new(),
                time_zone,
                cleaning,
            }
        },
    )
}

/// The end of training: inside the data, at its edges, or far outside.
fn cut_time() -> impl Strategy<Value = Option<prost_types::Timestamp>> {
    let at = |text: &str| super::at(text);
    let sound = prop::sample::select(vec![
        at("2024-03-20T00:00:00Z"),
        at("2024-03-24T12:00:00+01:00"),
        at("2024-03-28T00:00:00Z"),
    ]);
    let hostile = prop_oneof![
        prop::sample::select(vec![at("9999-12-30T00:00:00Z"), at("1900-01-01T00:00:00Z"), at("2024-03-31T02:30:00Z")]),
        (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| prost_types::Timestamp { seconds, nanos }),
    ];
    prop_oneof![12 => sound.prop_map(Some), 1 => Just(None), 2 => hostile.prop_map(Some)]
}

fn backtest_request() -> impl Strategy<Value = fpb::BacktestRequest> {
    let refit = prop_oneof![3 => 0_i32..5, 1 => any::<i32>()];
    (series(), model_options(), cut_time(), refit).prop_map(|(series, options, train_until, refit_every)| {
        fpb::BacktestRequest { series: Some(series), options: Some(options), train_until, refit_every }
    })
}

fn train_request() -> impl Strategy<Value = fpb::TrainRequest> {
    let request_id = prop_oneof![3 => Just(String::new()), 1 => ".{0,140}"];
    (series(), model_options(), cut_time(), ".{0,300}", request_id).prop_map(
        |(series, options, train_until, display_name, request_id)| fpb::TrainRequest {
            series: Some(series),
            options: Some(options),
            train_until,
            display_name,
            request_id,
        },
    )
}

/// Outcomes by RPC and status code, and the distinct fields named.
#[derive(Default)]
struct Tally {
    codes: BTreeMap<(&'static str, String), u64>,
    fields: BTreeMap<&'static str, std::collections::BTreeSet<String>>,
}

static TALLY: Mutex<Option<Tally>> = Mutex::new(None);

fn record(rpc: &'static str, outcome: &Result<String, tonic::Status>) -> Result<(), TestCaseError> {
    let code = match outcome {
        Ok(label) => label.clone(),
        Err(status) => format!("{:?}", status.code()),
    };
    let mut fields = Vec::new();
    if let Err(status) = outcome {
        use tonic_types::StatusExt as _;
        if let Some(bad) = status.get_details_bad_request() {
            // Generalise indices so that the tally counts kinds of fields.
            fields
                .extend(bad.field_violations.iter().map(|v| v.field.chars().filter(|c| !c.is_ascii_digit()).collect()));
        }
    }
    {
        let mut tally = TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let tally = tally.get_or_insert_with(Tally::default);
        *tally.codes.entry((rpc, code)).or_default() += 1;
        tally.fields.entry(rpc).or_default().extend(fields);
    }
    let Err(status) = outcome else { return Ok(()) };
    if std::env::var_os("VOLTA_FUZZ_SHOW").is_some() {
        use tonic_types::StatusExt as _;
        let first = status.get_details_bad_request().and_then(|b| b.field_violations.first().cloned());
        let first = first.map(|v| format!(" [{}: {}]", v.field, v.description)).unwrap_or_default();
        println!(
            "fuzz: {rpc}: {:?}: {}{first} ({} detail bytes)",
            status.code(),
            status.message(),
            status.details().len()
        );
    }
    prop_assert!(!matches!(status.code(), Code::Internal | Code::Unknown | Code::DataLoss), "{rpc}: {status:?}");
    // Every error of the server's says why, in a reason a client can switch
    // on (CANCELLED may be the client's own timer), and names only fields
    // that exist in the protos.
    {
        use tonic_types::StatusExt as _;
        let info = status.get_details_error_info();
        prop_assert!(info.is_some() || status.code() == Code::Cancelled, "{rpc}: no ErrorInfo: {status:?}");
        if let Some(bad) = status.get_details_bad_request() {
            for violation in &bad.field_violations {
                prop_assert!(
                    violation.field.starts_with("case") || super::request_field_exists(&violation.field),
                    "{rpc}: {} is not a request field",
                    violation.field
                );
            }
        }
    }
    for leak in LEAKS {
        prop_assert!(!status.message().contains(leak), "{rpc} leaks {leak:?}: {status:?}");
    }
    Ok(())
}

fn deadline<T>(message: T, bearer: &str) -> tonic::Request<T> {
    let mut request = with_token(message, bearer);
    request.set_timeout(Duration::from_secs(3));
    request
}

/// Runs `cases()` generated requests of one RPC through `call`.
fn campaign<S: Strategy>(
    runtime: &tokio::runtime::Runtime,
    server: &Server,
    rpc: &'static str,
    strategy: S,
    call: impl Fn(S::Value) -> Call,
) {
    let config = Config {
        cases: cases(),
        failure_persistence: None,
        max_shrink_iters: 200,
        rng_seed: seed(),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |request| {
        let outcome = runtime.block_on(call(request));
        record(rpc, &outcome)?;
        prop_assert!(server.is_running(), "{rpc}: the server died");
        Ok(())
    });
    if let Err(failure) = result {
        panic!("{rpc}: {failure}");
    }
    let peak = server.peak_kib();
    assert!(peak < MEMORY_CEILING_KIB, "{rpc}: peak memory {peak} KiB");
}

/// The raw bytes of a valid request with random flips, cuts and inserts.
fn mutated(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let edits = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0_u8..4), 1..8);
    edits.prop_map(move |edits| {
        let mut bytes = valid.clone();
        for (at, byte, kind) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match kind {
                0 => bytes[i] = byte,
                1 => bytes.truncate(i),
                2 => bytes.insert(i, byte),
                _ => bytes[i] ^= 0x80,
            }
        }
        bytes
    })
}

/// A codec that sends bytes as they are and discards the reply's bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        use bytes::Buf as _;
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

#[test]
fn every_rpc_survives_hostile_requests() {
    use prost::Message as _;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let server = Server::start_with(&["--database", &db, "--solver-slots", "2"], &[("VOLTA_JWT_HS256_SECRET", SECRET)]);
    let channel = runtime.block_on(server.channel());
    let exp = 4_000_000_000_u64;
    let admin = token(&serde_json::json!({"sub": "fuzz", "tenant": "acme", "roles": ["admin"], "exp": exp}));
    let dispatch = pb::dispatch_service_client::DispatchServiceClient::new(channel.clone());
    let forecast = fpb::forecast_service_client::ForecastServiceClient::new(channel.clone());

    // One real model, so that Forecast reaches the model as well as NOT_FOUND.
    let series = super::victoria();
    let train = fpb::TrainRequest {
        series: Some(series.clone()),
        options: Some(super::model(fpb::ModelKind::NaiveWeek)),
        train_until: Some(super::victoria_train_until()),
        display_name: "fuzz".into(),
        request_id: String::new(),
    };
    let model = runtime
        .block_on(forecast.clone().train(with_token(train, &admin)))
        .expect("train")
        .into_inner()
        .model
        .expect("model")
        .name;

    macro_rules! unary {
        ($client:expr, $method:ident, $label:expr) => {{
            let (client, bearer) = ($client.clone(), admin.clone());
            move |request| {
                let (mut client, bearer) = (client.clone(), bearer.clone());
                Box::pin(async move {
                    let reply = client.$method(deadline(request, &bearer)).await?.into_inner();
                    Ok($label(&reply))
                }) as Call
            }
        }};
    }

    let validate = case_text().prop_map(|case| pb::ValidateRequest { case: Some(case) });
    campaign(
        &runtime,
        &server,
        "Validate",
        validate,
        unary!(dispatch, validate, |r: &pb::ValidateResponse| if r.ok { "Ok valid" } else { "Ok invalid" }.to_owned()),
    );
    campaign(
        &runtime,
        &server,
        "Schedule",
        schedule_request(),
        unary!(dispatch, schedule, |r: &pb::ScheduleResponse| format!("Ok {:?}", r.status())),
    );
    campaign(
        &runtime,
        &server,
        "Pareto",
        pareto_request(),
        unary!(dispatch, pareto, |r: &pb::ParetoResponse| format!("Ok {} points", r.points.len())),
    );
    let rolling = {
        let (client, bearer) = (dispatch, admin.clone());
        move |request| {
            let (mut client, bearer) = (client.clone(), bearer.clone());
            Box::pin(async move {
                let mut events = client.rolling_horizon(deadline(request, &bearer)).await?.into_inner();
                let mut last = String::from("Ok (no summary)");
                while let Some(event) = events.message().await? {
                    if let Some(pb::rolling_horizon_response::Event::Summary(summary)) = event.event {
                        last = format!("Ok {:?}", summary.status());
                    }
                }
                Ok(last)
            }) as Call
        }
    };
    campaign(&runtime, &server, "RollingHorizon", rolling_request(), rolling);
    campaign(
        &runtime,
        &server,
        "Backtest",
        backtest_request(),
        unary!(forecast, backtest, |_: &fpb::BacktestResponse| "Ok".to_owned()),
    );
    campaign(
        &runtime,
        &server,
        "Train",
        train_request(),
        unary!(forecast, train, |_: &fpb::TrainResponse| "Ok".to_owned()),
    );
    let names = prop_oneof![
        3 => Just(model.clone()),
        1 => ".{0,80}".prop_map(|s: String| s),
        1 => "tenants/(acme|globex)/models/[a-f0-9]{0,32}".prop_map(|s: String| s),
        1 => Just("x".repeat(5000)),
    ];
    let at = super::at;
    let issue = prop_oneof![
        6 => prop::sample::select(vec![
            at("2014-11-05T00:00:00+10:00"),
            at("2014-12-01T00:00:00+10:00"),
            at("2014-12-30T00:00:00+10:00"),
        ]).prop_map(Some),
        2 => prop::sample::select(vec![
            at("2014-11-05T00:10:00+10:00"),
            at("9999-12-30T00:00:00Z"),
            at("2016-06-01T00:00:00Z"),
            at("1900-01-01T00:00:00Z"),
        ]).prop_map(Some),
        1 => Just(None),
        1 => (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ];
    let forecasts = (names, series_or_victoria(series), issue)
        .prop_map(|(model, series, issue_time)| fpb::ForecastRequest { model, series: Some(series), issue_time });
    campaign(
        &runtime,
        &server,
        "Forecast",
        forecasts,
        unary!(forecast, forecast, |_: &fpb::ForecastResponse| "Ok".to_owned()),
    );
    // Plans from a model with quantiles (their calibration gives the scenarios).
    let calibrated = fpb::TrainRequest {
        series: Some(super::victoria()),
        options: Some(super::with_quantiles(super::model(fpb::ModelKind::NaiveWeek))),
        train_until: Some(super::at("2014-11-12T00:00:00+10:00")),
        display_name: "fuzz plan".into(),
        request_id: String::new(),
    };
    let calibrated = runtime
        .block_on(forecast.clone().train(with_token(calibrated, &admin)))
        .expect("train")
        .into_inner()
        .model
        .expect("model")
        .name;
    let planning = ppb::planning_service_client::PlanningServiceClient::new(channel.clone());
    campaign(
        &runtime,
        &server,
        "Plan",
        plan_request(calibrated, super::victoria()),
        unary!(planning, plan, |r: &ppb::PlanResponse| format!("Ok {:?}", r.status())),
    );
    let gets = prop_oneof![1 => Just(model), 1 => ".{0,80}".prop_map(|s: String| s)]
        .prop_map(|name| fpb::GetModelRequest { name });
    campaign(
        &runtime,
        &server,
        "GetModel",
        gets,
        unary!(forecast, get_model, |_: &fpb::GetModelResponse| "Ok".to_owned()),
    );
    let token = prop_oneof![6 => Just(String::new()), 1 => ".{0,40}"];
    let filters = vec![
        r#"kind = "MODEL_KIND_NAIVE_WEEK""#,
        r#"target = "demand_gw""#,
        r#"display_name = "fuzz" AND kind = "MODEL_KIND_GBDT""#,
    ];
    let filter = prop_oneof![
        3 => Just(String::new()),
        2 => prop::sample::select(filters).prop_map(str::to_owned),
        1 => ".{0,60}",
    ];
    let lists = (prop_oneof![3 => 0_i32..5, 1 => any::<i32>()], token, filter)
        .prop_map(|(page_size, page_token, filter)| fpb::ListModelsRequest { page_size, page_token, filter });
    campaign(
        &runtime,
        &server,
        "ListModels",
        lists,
        unary!(forecast, list_models, |_: &fpb::ListModelsResponse| "Ok".to_owned()),
    );
    let deletes = prop_oneof![".{0,80}", "tenants/acme/models/[a-f0-9]{1,32}"]
        .prop_map(|name: String| fpb::DeleteModelRequest { name });
    campaign(
        &runtime,
        &server,
        "DeleteModel",
        deletes,
        unary!(forecast, delete_model, |_: &fpb::DeleteModelResponse| "Ok".to_owned()),
    );

    // Orders: one real market, hostile everything else.
    let trading = volta_api::pb::trading::trading_service_client::TradingServiceClient::new(channel.clone());
    let market = volta_api::pb::trading::CreateMarketRequest {
        market_id: "fuzz".into(),
        rules: Some(volta_api::pb::trading::MarketRules {
            time_zone: "Europe/Berlin".into(),
            interval_minutes: 15,
            gate_opens_before: Some(prost_types::Duration { seconds: 7 * 86_400, nanos: 0 }),
            gate_closes_before: None,
            min_price: "-0.5".into(),
            max_price: "4".into(),
            matching: 0,
            grid_fee: String::new(),
            network: None,
            day_ahead_gate: String::new(),
        }),
    };
    runtime.block_on(trading.clone().create_market(with_token(market, &admin))).expect("market");
    let soon = (jiff::Timestamp::now().as_second() / 900 + 8) * 900;
    let starts = prop_oneof![
        4 => (0_i64..64).prop_map(move |k| Some(prost_types::Timestamp { seconds: soon + 900 * k, nanos: 0 })),
        1 => Just(None),
        1 => (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ];
    let prices = prop_oneof![
        4 => (-60_i32..450).prop_map(|c| format!("{:.2}", f64::from(c) / 100.0)),
        1 => Just(String::new()),
        1 => prop::sample::select(vec!["NaN", "1e400", "-0", "0.0000001", "99999999999999999999", " 0.2"])
            .prop_map(str::to_owned),
        1 => ".{0,40}",
    ];
    let orders = (
        prop_oneof![4 => Just("fuzz".to_owned()), 1 => ".{0,70}"],
        prop_oneof![3 => "[a-z0-9-]{1,20}", 1 => ".{0,200}"],
        prop_oneof![3 => Just(String::new()), 2 => "p[0-9]", 1 => ".{0,70}"],
        starts,
        prop_oneof![4 => 1_i32..3, 1 => any::<i32>()],
        prop_oneof![4 => 1_i64..100_000, 1 => any::<i64>()],
        prices,
        prop_oneof![4 => 0_i32..4, 1 => any::<i32>()],
    )
        .prop_map(
            |(market_id, client_order_id, participant_id, delivery_start, side, quantity_wh, limit_price, tif)| {
                volta_api::pb::trading::SubmitOrderRequest {
                    market_id,
                    client_order_id,
                    participant_id,
                    delivery_start,
                    side,
                    quantity_wh,
                    limit_price,
                    time_in_force: tif,
                    node: String::new(),
                    block: Vec::new(),
                    curve: Vec::new(),
                }
            },
        );
    campaign(
        &runtime,
        &server,
        "SubmitOrder",
        orders,
        unary!(trading, submit_order, |r: &volta_api::pb::trading::SubmitOrderResponse| format!(
            "Ok {} trades",
            r.trades.len()
        )),
    );

    // Raw bytes: mutations of valid requests, to every method.
    let valid =
        pb::ScheduleRequest { case: Some(super::case_json("islanded.toml")), ..Default::default() }.encode_to_vec();
    let methods = [
        "/volta.dispatch.v1.DispatchService/Validate",
        "/volta.dispatch.v1.DispatchService/Schedule",
        "/volta.dispatch.v1.DispatchService/Pareto",
        "/volta.forecast.v1.ForecastService/Backtest",
        "/volta.forecast.v1.ForecastService/Train",
        "/volta.forecast.v1.ForecastService/Forecast",
        "/volta.forecast.v1.ForecastService/GetModel",
        "/volta.forecast.v1.ForecastService/ListModels",
        "/volta.forecast.v1.ForecastService/DeleteModel",
        "/volta.planning.v1.PlanningService/Plan",
        "/volta.trading.v1.TradingService/SubmitOrder",
        "/volta.trading.v1.TradingService/CancelOrder",
        "/volta.trading.v1.TradingService/GetBook",
        "/volta.trading.v1.TradingService/ListOrders",
    ];
    let raw = (prop::sample::select(methods.to_vec()), mutated(valid));
    let send = {
        let (channel, bearer) = (channel, admin);
        move |(method, bytes): (&'static str, Vec<u8>)| {
            let (channel, bearer) = (channel.clone(), bearer.clone());
            Box::pin(async move {
                let mut grpc = tonic::client::Grpc::new(channel);
                grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
                let path = http::uri::PathAndQuery::from_static(method);
                grpc.unary(deadline(bytes, &bearer), path, RawCodec).await.map(|_| "Ok".to_owned())
            }) as Call
        }
    };
    campaign(&runtime, &server, "raw bytes", raw, send);

    let text = runtime.block_on(super::metrics(&server));
    assert!(text.contains("volta_panics_total 0"), "{text}");
    report(server.peak_kib());
}

/// Plan requests: mostly the site's day from `model` (trained with
/// quantiles) on Victoria's demand, with hostile series, names, scales,
/// instants and options; sometimes a hostile case.
fn plan_request(model: String, victoria: fpb::SeriesData) -> impl Strategy<Value = ppb::PlanRequest> {
    let site = std::fs::read_to_string(volta_datasets::case("site_day.toml")).expect("site_day.toml");
    let case = prop_oneof![
        3 => Just(pb::CaseText { format: Some(pb::case_text::Format::Toml(site)) }),
        1 => case_text(),
    ];
    let names = prop_oneof![
        6 => Just(model),
        1 => ".{0,80}".prop_map(|s: String| s),
        1 => "tenants/(default|globex)/models/[a-f0-9]{0,32}".prop_map(|s: String| s),
    ];
    let series = text(
        vec!["site.demand_kw"],
        vec![
            "grid.import_price",
            "grid.export_price",
            "engine.availability",
            "site",
            "site.demand_kw.x",
            "grid.demand_kw",
        ],
    );
    let scale = prop_oneof![6 => Just(Some(150.0)), 1 => Just(None), 1 => any::<f64>().prop_map(Some)];
    let source = (series, names, series_or_victoria(victoria), scale).prop_map(|(series, model, history, scale)| {
        ppb::ForecastSource { series, model, history: Some(history), scale }
    });
    // Mostly one source; sometimes none, or two (a repeat).
    let sources = (source, 0_u8..10).prop_map(|(one, n)| match n {
        0 => Vec::new(),
        1 => vec![one.clone(), one],
        _ => vec![one],
    });
    let at = super::at;
    let issue = prop_oneof![
        8 => Just(Some(at("2014-11-12T00:00:00+10:00"))),
        2 => prop::sample::select(vec![
            at("2014-11-11T23:00:00+10:00"),
            at("2014-11-12T00:10:00+10:00"),
            at("2014-11-05T00:00:00+10:00"),
            at("2015-06-01T00:00:00Z"),
            at("9999-12-30T00:00:00Z"),
        ]).prop_map(Some),
        1 => Just(None),
        1 => (any::<i64>(), any::<i32>()).prop_map(|(seconds, nanos)| Some(prost_types::Timestamp { seconds, nanos })),
    ];
    let scenarios = prop_oneof![6 => 0_u32..8, 1 => any::<u32>()];
    let cvar = prop::option::weighted(0.2, (maybe(0.0..1.0), maybe(0.0..1.0))).prop_map(|c| {
        c.map(|(alpha, weight)| ppb::Cvar { alpha: alpha.unwrap_or(0.9), weight: weight.unwrap_or(0.5) })
    });
    let hedging = prop::option::weighted(
        0.2,
        (prop_oneof![4 => 0_u32..12, 1 => any::<u32>()], maybe(1.0..50.0), maybe(0.1..5.0)),
    )
    .prop_map(|h| h.map(|(max_iterations, rho, tolerance_kw)| ppb::Hedging { max_iterations, rho, tolerance_kw }));
    let options = (maybe(0.0..0.5), cvar, hedging, maybe(0.0..0.01), duration(1..3), any::<bool>());
    (case, sources, issue, scenarios, options).prop_map(
        |(
            case,
            forecasts,
            issue_time,
            scenarios,
            (imbalance_penalty, cvar, hedging, mip_gap, time_limit, schedules),
        )| {
            ppb::PlanRequest {
                case: Some(case),
                issue_time,
                forecasts,
                scenarios,
                imbalance_penalty,
                cvar,
                hedging,
                mip_gap,
                time_limit,
                schedules,
            }
        },
    )
}

fn series_or_victoria(victoria: fpb::SeriesData) -> impl Strategy<Value = fpb::SeriesData> {
    prop_oneof![
        3 => Just(fpb::SeriesData { target: String::new(), ..victoria }),
        1 => series(),
    ]
}

/// Prints the outcome table (cases and codes per RPC, distinct fields named).
fn report(peak: u64) {
    let tally = TALLY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(tally) = tally.as_ref() else { return };
    let mut rpcs: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for ((rpc, code), n) in &tally.codes {
        rpcs.entry(rpc).or_default().insert(code, *n);
    }
    println!("fuzz: {} cases per RPC, server peak {} MiB", cases(), peak / 1024);
    println!("| RPC | cases | outcomes | distinct fields named |");
    println!("|---|---:|---|---:|");
    for (rpc, codes) in rpcs {
        let total: u64 = codes.values().sum();
        let outcomes: Vec<String> = codes.iter().map(|(c, n)| format!("{c} {n}")).collect();
        let fields = tally.fields.get(rpc).map_or(0, std::collections::BTreeSet::len);
        println!("| {rpc} | {total} | {} | {fields} |", outcomes.join(", "));
    }
}
