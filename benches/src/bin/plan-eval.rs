//! Day-ahead plans judged out of sample: every day of November and December
//! 2014, a site whose load is Victoria's demand plans at 00:00 from Volta's
//! own forecast, then settles its plan against the real day by re-dispatch.
//!
//! The site (hourly, AEST): Victoria's demand scaled to a 1,800 kW peak;
//! 600 kW of PV whose availability is PVDAQ system 50's output per unit of
//! its peak, shifted 549 days (May–June 2013 in Golden, CO, becomes
//! November–December 2014, the same season's day length) and to AEST local
//! clock time; a 400 kW gas engine under unit commitment (minimum 200 kW, 3 h up, 2 h
//! down, 25 AUD a start, 0.118 AUD/kWh of fuel); a 500 kWh, 250 kW battery
//! returning to half full each day; a grid at 0.28 AUD/kWh (07–23 h) or
//! 0.13, importing at most 1,500 kW, exporting at most 300 kW at 0.06;
//! demand unserved at 5 AUD/kWh. The engine must be committed a day ahead
//! and the grid's net import nominated; each kWh of difference pays
//! 0.10 AUD on top. The forecaster is trained on data to 31 October, with
//! calibrated quantiles and cross-fitted error paths (temperature known
//! ahead: ex post, as in the forecasting benchmark).
//!
//! Compared, each day, by the realised cost of re-dispatching the plan on
//! the real day: perfect foresight (the bound), the deterministic plan on
//! the point forecast, the stochastic plan over the joint scenarios, and
//! the stochastic plan with CVaR. Prints a table; `--days N` shortens the
//! run, `--scenarios K` sets the reduced scenario count (default 20).
//!
//! Run: `cargo run --release -p volta-benches --bin plan-eval`

use std::time::Instant;

use jiff::Timestamp;
use volta_benches::flags::Flags;
use volta_dispatch::stochastic::{Cvar, StochasticOptions};
use volta_dispatch::{Options, redispatch, schedule};
use volta_engine::case::{CaseReader, Format};
use volta_engine::{Case, SeriesField, SeriesRef};
use volta_forecasting::{FeatureSpec, ForecastSpec, History, Holidays, ModelSpec, train};
use volta_planning::{ForecastSource, PlanOptions, plan};

const PEAK_KW: f64 = 1800.0;

fn day_case(date: &str, load_kw: &[f64], pv: &[f64]) -> Case {
    let list = |v: &mut dyn Iterator<Item = f64>| v.map(|x| format!("{x:.4}")).collect::<Vec<_>>().join(", ");
    let load = list(&mut load_kw.iter().copied());
    let pv = list(&mut pv.iter().copied());
    let price = list(&mut (0..24).map(|h| if (7..23).contains(&h) { 0.28 } else { 0.13 }));
    let text = format!(
        r#"
name = "victoria-site-{date}"
[time]
start = "{date}T00:00"
timezone = "Australia/Brisbane"
step = "1h"
steps = 24
[settings]
currency = "AUD"
value_of_lost_load = 5
[[buses]]
id = "elec"
carrier = "electricity"
[[assets]]
id = "site"
type = "load"
bus = "elec"
demand_kw = [{load}]
[[assets]]
id = "pv"
type = "renewable"
bus = "elec"
capacity_kw = 600
availability = [{pv}]
[[assets]]
id = "grid"
type = "grid"
bus = "elec"
import_price = [{price}]
export_price = 0.06
import_limit_kw = 1500
export_limit_kw = 300
[[assets]]
id = "engine"
type = "thermal"
bus = "elec"
capacity_kw = 400
min_power_kw = 200
fuel_carrier = "gas"
fuel_price = 0.045
efficiency = 0.38
  [assets.commitment]
  min_up_h = 3
  min_down_h = 2
  start_cost = 25
  initial = {{ on = false, hours_in_state = 10 }}
[[assets]]
id = "battery"
type = "storage"
bus = "elec"
energy_capacity_kwh = 500
charge_power_kw = 250
discharge_power_kw = 250
initial_soc = 0.5
final_soc = "cyclic"
"#
    );
    CaseReader::new().read_str(&text, Format::Toml).expect("day case").case
}

/// Days PVDAQ's clock is moved forward: 2013-05-01 becomes 2014-11-01.
const PV_SHIFT_DAYS: i64 = 549;

/// PVDAQ system 50's AC power (W), its naive local times (UTC−07:00)
/// moved to the same AEST clock time 549 days later, from 2012 on.
fn pv_history() -> History {
    let path = volta_datasets::raw("system_50_ac_power_2_full_DST.parquet");
    let table = volta_engine::case::table::read_table(&path, &path).expect("pv table");
    let utc = jiff::tz::TimeZone::UTC;
    let times = table.instants("measured_on", &path, &utc).map_err(|e| e.1).expect("pv times");
    let watts = table.numbers_with_gaps("ac_power_2", &path).map_err(|e| e.1).expect("pv power");
    // Read as UTC, the naive clock is off by the zone: AEST is 10 h ahead.
    let shift = jiff::SignedDuration::from_hours(24 * PV_SHIFT_DAYS - 10);
    let from: Timestamp = "2012-01-01T00:00:00Z".parse().expect("from");
    let (t, w): (Vec<Timestamp>, Vec<f64>) = times
        .iter()
        .zip(watts)
        .filter(|(t, _)| **t >= from)
        .map(|(t, w)| (t.checked_add(shift).expect("shift"), w))
        .unzip();
    let mut options = volta_forecasting::ReadOptions::new("ac_power_w");
    options.timezone = Some("Australia/Brisbane".into());
    volta_forecasting::data::from_columns(&t, &w, Vec::new(), &options).expect("pv history").0
}

#[derive(Default)]
struct Tally {
    cost: f64,
    unserved_kwh: f64,
    imbalance_kwh: f64,
    seconds: f64,
    costs: Vec<f64>,
}

impl Tally {
    fn add(&mut self, cost: f64, unserved: f64, imbalance: f64, seconds: f64) {
        self.cost += cost;
        self.unserved_kwh += unserved;
        self.imbalance_kwh += imbalance;
        self.seconds += seconds;
        self.costs.push(cost);
    }

    fn worst(&self, share: f64) -> f64 {
        let mut c = self.costs.clone();
        c.sort_by(|a, b| b.total_cmp(a));
        let k = ((c.len() as f64 * share).ceil() as usize).max(1).min(c.len());
        c[..k].iter().sum::<f64>() / k as f64
    }
}

const USAGE: &str = "\
usage: plan-eval [--days N] [--scenarios K]
  --days N       days planned and evaluated (default 61)
  --scenarios K  scenarios of each stochastic plan (default 20)";

fn main() {
    let (mut days, mut k): (usize, usize) = (61, 20);
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--days" => days = flags.value(&flag),
            "--scenarios" => k = flags.value(&flag),
            other => flags.unknown(other),
        }
    }
    let history: History = volta_benches::victoria();
    let scale = PEAK_KW / history.target.iter().copied().fold(0.0, f64::max);
    let mut features = FeatureSpec::new(48);
    features.temperature = Some("temperature_c".into());
    features.holidays = Holidays::builtin("AU-VIC", 2014, 2015).expect("holidays");
    let spec = ForecastSpec::new(
        ModelSpec::from_name("gbdt").expect("gbdt"),
        features,
        jiff::civil::time(0, 0, 0, 0),
        vec![0.1, 0.5, 0.9],
    );
    let start: Timestamp = "2014-11-01T00:00:00+10:00".parse().expect("start");
    let train_end = history.index_at_or_after(start);
    let started = Instant::now();
    let model = train(&history, &spec, train_end).expect("train");
    eprintln!(
        "trained {} on {} steps in {:.1} s; {} error paths",
        spec.model.name(),
        train_end,
        started.elapsed().as_secs_f64(),
        model.error_paths().len()
    );
    let series = SeriesRef::new("site", SeriesField::DemandKw);
    let load_source = ForecastSource { series, model, history: history.clone(), scale };
    let pv = pv_history();
    let pv_peak = pv.target.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max);
    let pv_spec = ForecastSpec::new(
        ModelSpec::from_name("gbdt").expect("gbdt"),
        FeatureSpec::new(96),
        jiff::civil::time(0, 0, 0, 0),
        vec![0.1, 0.5, 0.9],
    );
    let started = Instant::now();
    let pv_model = train(&pv, &pv_spec, pv.index_at_or_after(start)).expect("train pv");
    eprintln!(
        "trained the PV model on {} quarter-hours in {:.1} s; {} error paths",
        pv.index_at_or_after(start),
        started.elapsed().as_secs_f64(),
        pv_model.error_paths().len()
    );
    let pv_source = ForecastSource {
        series: SeriesRef::new("pv", SeriesField::Availability),
        model: pv_model,
        history: pv.clone(),
        scale: 1.0 / pv_peak,
    };
    let sources = [load_source, pv_source];
    let exact = Options { mip_gap: Some(1e-6), prices: false, ..Options::default() };
    let stochastic = |risk| StochasticOptions { options: exact.clone(), imbalance_penalty: Some(0.10), risk };
    let methods: [(&str, usize, Option<Cvar>); 3] = [
        ("deterministic (point forecast)", 0, None),
        ("stochastic", k, None),
        ("stochastic + CVaR(0.9), weight 0.5", k, Some(Cvar { alpha: 0.9, weight: 0.5 })),
    ];
    let mut foresight = Tally::default();
    let mut tallies: Vec<Tally> = methods.iter().map(|_| Tally::default()).collect();
    for d in 0..days {
        let issue = start.checked_add(jiff::SignedDuration::from_hours(24 * d as i64)).expect("issue");
        let date = issue.to_zoned_datetime(jiff::tz::TimeZone::fixed(jiff::tz::offset(10))).date().to_string();
        let i0 = history.index_at_or_after(issue);
        if i0 + 48 > history.len() {
            break;
        }
        // The real day, hourly: the mean of its two half-hours.
        let actual_kw: Vec<f64> =
            (0..24).map(|h| scale * (history.target[i0 + 2 * h] + history.target[i0 + 2 * h + 1]) / 2.0).collect();
        // The real PV: the mean of the hour's quarter-hours per unit of the
        // peak, a missing quarter-hour (3 %, mostly at night) counted as 0.
        let p0 = pv.index_at_or_after(issue);
        let actual_pv: Vec<f64> = (0..24)
            .map(|h| {
                let q = &pv.target[p0 + 4 * h..p0 + 4 * h + 4];
                (q.iter().map(|v| if v.is_finite() { *v } else { 0.0 }).sum::<f64>() / 4.0 / pv_peak).clamp(0.0, 1.0)
            })
            .collect();
        let case = day_case(&date, &actual_kw, &actual_pv);
        let t = Instant::now();
        let best = schedule(&case, &exact).expect("foresight");
        let plan_cost = best.schedule.as_ref().expect("feasible").cost;
        let unserved: f64 = best.schedule.as_ref().expect("feasible").buses.iter().flat_map(|b| &b.unserved_kw).sum();
        foresight.add(plan_cost, unserved, 0.0, t.elapsed().as_secs_f64());
        for ((_, scenarios, risk), tally) in methods.iter().zip(&mut tallies) {
            let options = PlanOptions { scenarios: *scenarios, stochastic: stochastic(*risk), hedging: None };
            let t = Instant::now();
            let made = plan(&case, &sources, issue, &options).expect("plan");
            let seconds = t.elapsed().as_secs_f64();
            let the_plan = made.solution.plan.as_ref().expect("a plan");
            let realised = redispatch(&case, the_plan, &stochastic(None)).expect("redispatch");
            let outcome = &realised.scenarios[0];
            tally.add(outcome.cost, outcome.unserved_kwh, outcome.imbalance_kwh, seconds);
        }
        eprintln!(
            "{date}: foresight {:.0}, {}",
            foresight.costs[d],
            tallies.iter().map(|t| format!("{:.0}", t.costs[d])).collect::<Vec<_>>().join(", ")
        );
    }
    let n = foresight.costs.len();
    println!("\n{n} days from 2014-11-01, load and PV forecast, {k} scenarios, imbalance 0.10 AUD/kWh\n");
    println!(
        "| plan | realised cost, AUD/day | above foresight | worst 10 % of days, AUD | unserved, kWh | imbalance, kWh | plan time, s/day |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let row = |name: &str, t: &Tally| {
        println!(
            "| {name} | {:.1} | {:+.2} % | {:.1} | {:.1} | {:.0} | {:.2} |",
            t.cost / n as f64,
            100.0 * (t.cost - foresight.cost) / foresight.cost,
            t.worst(0.1),
            t.unserved_kwh,
            t.imbalance_kwh,
            t.seconds / n as f64
        );
    };
    row("perfect foresight (bound)", &foresight);
    for ((name, _, _), t) in methods.iter().zip(&tallies) {
        row(name, t);
    }
    let (det, sto) = (tallies[0].cost / n as f64, tallies[1].cost / n as f64);
    println!(
        "\nvalue of the stochastic solution (out of sample): {:.1} AUD/day; value of perfect information: {:.1} AUD/day",
        det - sto,
        sto - foresight.cost / n as f64
    );
}
