//! Planning a real day from a real forecast: Victoria's demand, forecast
//! at midnight by a model trained on the months before, drives a small
//! site's load.

use jiff::Timestamp;
use volta_dispatch::stochastic::StochasticOptions;
use volta_dispatch::{Options, redispatch, schedule};
use volta_engine::case::{CaseReader, Format};
use volta_engine::{Case, SeriesField, SeriesRef};
use volta_forecasting::{FeatureSpec, ForecastSpec, History, ModelSpec, ReadOptions, data, train};
use volta_planning::{ForecastSource, PlanError, PlanOptions, plan};

fn victoria() -> History {
    let mut options = ReadOptions::new("demand_gw");
    options.time_column = Some("period_start_aest_assumed".into());
    options.timezone = Some("Australia/Brisbane".into());
    data::read(&volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv"), &options).expect("victoria").0
}

/// A day of a site on `start`'s date with `steps` steps of `step`: a load,
/// a committed gas engine, a grid with a 1,000 kW import limit.
fn site(start: &str, step: &str, steps: usize) -> Case {
    let text = format!(
        r#"
name = "site"
[time]
start = "{start}"
timezone = "Australia/Brisbane"
step = "{step}"
steps = {steps}
[settings]
value_of_lost_load = 5
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = 800
[[assets]]
id = "grid"
type = "grid"
bus = "elec"
import_price = 0.25
export_price = 0.05
import_limit_kw = 1000
export_limit_kw = 100
[[assets]]
id = "engine"
type = "thermal"
bus = "elec"
capacity_kw = 300
min_power_kw = 150
fuel_carrier = "gas"
fuel_price = 0.05
efficiency = 0.38
  [assets.commitment]
  min_up_h = 3
  min_down_h = 2
  start_cost = 20
"#
    );
    CaseReader::new().read_str(&text, Format::Toml).expect("site").case
}

struct Setup {
    source: ForecastSource,
    issue: Timestamp,
}

fn setup() -> Setup {
    let history = victoria();
    let spec = ForecastSpec::new(
        ModelSpec::from_name("linear").expect("linear"),
        FeatureSpec::new(48),
        jiff::civil::time(0, 0, 0, 0),
        vec![0.1, 0.5, 0.9],
    );
    let issue: Timestamp = "2014-11-12T00:00:00+10:00".parse().expect("issue");
    let end = history.index_at_or_after(issue);
    let model = train(&history, &spec, end).expect("train");
    assert!(model.error_paths().len() > 100, "{} paths", model.error_paths().len());
    // 1,400 kW at Victoria's 2014 peak of 9.35 GW.
    let source = ForecastSource { series: SeriesRef::new("site", SeriesField::DemandKw), model, history, scale: 150.0 };
    Setup { source, issue }
}

fn options() -> StochasticOptions {
    StochasticOptions {
        options: Options { mip_gap: Some(0.0), prices: false, ..Options::default() },
        imbalance_penalty: Some(0.1),
        risk: None,
    }
}

#[test]
fn a_real_forecast_drives_a_day_ahead_plan_and_its_settlement() {
    let Setup { source, issue } = setup();
    let case = site("2014-11-12T00:00", "1h", 24);
    // Deterministic: the point forecast, hourly means of the half-hours.
    let deterministic = plan(
        &case,
        std::slice::from_ref(&source),
        issue,
        &PlanOptions { scenarios: 0, stochastic: options(), hedging: None },
    )
    .expect("plan");
    let forecast = &deterministic.forecasts[0];
    assert_eq!(forecast.point.len(), 24);
    assert_eq!(forecast.quantiles.len(), 24);
    let raw = source.model.forecast(&source.history, issue).expect("forecast");
    for (h, &kw) in forecast.point.iter().enumerate() {
        let mean = 150.0 * (raw.point[2 * h] + raw.point[2 * h + 1]) / 2.0;
        assert!((kw - mean).abs() < 1e-9, "hour {h}: {kw} vs {mean}");
        let q = &forecast.quantiles[h];
        assert!(q[0] <= q[1] && q[1] <= q[2]);
    }
    // The deterministic plan is the schedule of the point-forecast case.
    let point_case = case.with_series(&source.series, forecast.point.clone()).expect("point case");
    let direct = schedule(&point_case, &options().options).expect("schedule");
    let planned = deterministic.solution.objective.expect("objective");
    assert!((planned - direct.objective.expect("objective")).abs() < 1e-6 * planned.abs());
    // Stochastic over 8 scenarios reduced from the joint paths.
    let stochastic = plan(
        &case,
        std::slice::from_ref(&source),
        issue,
        &PlanOptions { scenarios: 8, stochastic: options(), hedging: None },
    )
    .expect("plan");
    assert_eq!(stochastic.scenarios.len(), 8);
    let total: f64 = stochastic.scenarios.iter().map(|s| s.probability).sum();
    assert!((total - 1.0).abs() < 1e-9);
    assert!(stochastic.scenarios.iter().all(|s| s.name.starts_with("2014-")), "named by analog day");
    // The same plan by progressive hedging: its bounds hold the extensive optimum.
    let hedging = Some(volta_dispatch::Hedging::default());
    let hedged = plan(
        &case,
        std::slice::from_ref(&source),
        issue,
        &PlanOptions { scenarios: 8, stochastic: options(), hedging },
    )
    .expect("hedged plan");
    let report = hedged.hedging.as_ref().expect("report");
    // The summary every front door reports: the same numbers as the solution.
    let summary = stochastic.summary(&PlanOptions { scenarios: 8, stochastic: options(), hedging: None });
    assert_eq!(summary.scenarios.len(), 8);
    assert_eq!(summary.expected_cost, stochastic.solution.expected_cost());
    assert_eq!(summary.cost_p50, stochastic.solution.cost_quantile(0.5));
    assert_eq!(summary.cvar, stochastic.solution.cvar(0.9));
    assert!(summary.cost_p10 <= summary.cost_p50 && summary.cost_p50 <= summary.cost_p90);
    assert!(summary.hedging.is_none() && hedged.summary(&PlanOptions::default()).hedging.is_some());
    let rp = stochastic.solution.objective.expect("objective");
    assert!(report.lower_bound <= rp * (1.0 + 1e-7) && report.upper_bound >= rp * (1.0 - 1e-7));
    assert!(stochastic.hedging.is_none());
    // Both settle against the real day.
    let i0 = source.history.index_at_or_after(issue);
    let actual: Vec<f64> = (0..24)
        .map(|h| 150.0 * (source.history.target[i0 + 2 * h] + source.history.target[i0 + 2 * h + 1]) / 2.0)
        .collect();
    let real = case.with_series(&source.series, actual).expect("real day");
    let foresight = schedule(&real, &options().options).expect("foresight").objective.expect("objective");
    for made in [&deterministic, &stochastic] {
        let settled = redispatch(&real, made.solution.plan.as_ref().expect("plan"), &options()).expect("settle");
        let cost = settled.scenarios[0].cost;
        assert!(cost >= foresight - 1e-6 * foresight, "no plan beats foresight: {cost} < {foresight}");
    }
}

#[test]
fn forecasts_that_do_not_fit_the_case_say_why() {
    let Setup { source, issue } = setup();
    let fail = |case: &Case, source: &ForecastSource| {
        plan(case, std::slice::from_ref(source), issue, &PlanOptions::default()).expect_err("refused").to_string()
    };
    // Two days of hours do not fit a one-day horizon.
    let long = site("2014-11-12T00:00", "1h", 48);
    assert!(fail(&long, &source).contains("does not reach the case's end"), "{}", fail(&long, &source));
    // A 20-minute step is not a whole number of half-hours.
    let odd = site("2014-11-12T00:00", "20m", 24);
    assert!(fail(&odd, &source).contains("not a whole number"), "{}", fail(&odd, &source));
    // A case that starts before the issue.
    let early = site("2014-11-11T23:00", "1h", 12);
    assert!(fail(&early, &source).contains("at or after the issue time"), "{}", fail(&early, &source));
    let mut wrong = source.clone();
    wrong.series = SeriesRef::new("grid", SeriesField::DemandKw);
    assert!(fail(&site("2014-11-12T00:00", "1h", 24), &wrong).contains("only a load has demand_kw"));
    wrong.series = source.series.clone();
    wrong.scale = -1.0;
    assert!(fail(&site("2014-11-12T00:00", "1h", 24), &wrong).contains("scale must be a positive number"));
    // A model trained past the issue time would plan a day it has seen.
    let mut seen = source.clone();
    seen.model.trained_until = issue + jiff::SignedDuration::from_mins(30);
    let refused = fail(&site("2014-11-12T00:00", "1h", 24), &seen);
    assert!(refused.contains("would have seen the day it plans"), "{refused}");
    let twice = [source.clone(), source];
    let err = plan(&site("2014-11-12T00:00", "1h", 24), &twice, issue, &PlanOptions::default()).expect_err("twice");
    assert!(matches!(err, PlanError::Option(_)) && err.to_string().contains("forecast twice"));
}
