//! `volta plan`: a day-ahead plan from forecasts, deterministic or
//! two-stage stochastic, with the forecasts and scenarios written beside it.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Args as ClapArgs;
use volta_dispatch::stochastic::{Cvar, StochasticOptions};
use volta_dispatch::{DispatchError, Options};
use volta_engine::{Case, SeriesRef};
use volta_forecasting::{TrainedModel, cut_time, data};
use volta_planning::{DayAheadPlan, ForecastSource, PlanOptions, PlanSummary, plan};

pub(super) const LONG_ABOUT: &str = "\
Plan a case from forecasts of its uncertain series. Each --forecast names a
series of the case (a load's demand_kw, a renewable's availability, a grid's
import_price or export_price), a model file written by `volta train`, the data
it reads (its target up to the issue time) and optionally a scale from the
model's units to the case's. Every series is forecast from --issue-time onto
the case's grid (a case step of several forecast steps takes their mean).

With --scenarios 0 (the default) the plan is deterministic: the case scheduled
on the point forecasts. With --scenarios K, the forecasts' joint scenarios
(each past day's out-of-sample errors of every model, replayed together) are
reduced to K by fast forward selection, and the plan is two-stage stochastic:
unit commitment (and, with --imbalance-penalty, each grid's net import) is
fixed for all scenarios, everything else is decided per scenario. --cvar adds
a risk measure. The plan's cost is reported as a distribution over the
scenarios: expected, P10/P50/P90 and CVaR.";

pub(super) const AFTER_HELP: &str = "\
Examples:
  volta train --data load.csv --target load_kw --horizon 48 --quantiles 0.1,0.5,0.9 --model-file load.model.json
  volta plan site.toml --issue-time 2014-11-12T00:00 \\
      --forecast site.demand_kw=load.model.json,load.csv --scenarios 20 --imbalance-penalty 0.1 --out plan/
  volta plan site.toml --issue-time 2014-11-12T00:00 \\
      --forecast site.demand_kw=vic.model.json,vic.csv,150 --scenarios 20 --cvar 0.9:0.5

Written with --out: plan.json (the commitment and nominations, and each
scenario's cost), forecasts.csv (point and quantiles per series and step),
scenarios.csv (each scenario's probability, cost, imbalance and unserved
energy), scenario_series.csv (each scenario's value of each forecast series
per step), schedules.csv (each scenario's flows per asset, bus and step) and
plan.png (each series' scenario fan with the plan over it, and the cost
distribution). Exit status: 0 planned, 1 on an error (bad case, forecast or
option), 2 for a command line that does not parse, 3 when no plan was found
(infeasible, or nothing within the time limit).";

/// Arguments of `volta plan`.
#[derive(Debug, ClapArgs)]
pub(super) struct Args {
    /// The case file.
    case: PathBuf,
    /// When the forecasts are issued: a timestamp (RFC 3339, or local YYYY-MM-DDTHH:MM in the case's zone).
    #[arg(long, value_name = "TIME")]
    issue_time: String,
    /// A forecast series: SERIES=MODEL_FILE,DATA_FILE[,SCALE] (repeat for several series).
    #[arg(long = "forecast", value_name = "SPEC", required = true)]
    forecasts: Vec<String>,
    /// Scenarios to plan under (0: a deterministic plan on the point forecasts).
    #[arg(long, default_value_t = 0)]
    scenarios: usize,
    /// Nominate each grid's net import a day ahead; each kWh of difference pays this (currency/kWh).
    #[arg(long, value_name = "PRICE")]
    imbalance_penalty: Option<f64>,
    /// Blend CVaR into the objective: ALPHA:WEIGHT (e.g. 0.9:0.5, the worst 10 % at half weight).
    #[arg(long, value_name = "ALPHA:WEIGHT")]
    cvar: Option<String>,
    /// Solve by progressive hedging (scenarios in parallel), at most this many iterations, instead of one
    /// extensive-form MILP; reports its lower and upper bounds.
    #[arg(long, value_name = "ITERATIONS")]
    hedging: Option<usize>,
    /// Stop the solve after this many seconds with the best plan found.
    #[arg(long, value_name = "S")]
    time_limit: Option<f64>,
    /// Stop within this relative MIP gap (default HiGHS's 1e-4).
    #[arg(long, value_name = "GAP")]
    mip_gap: Option<f64>,
    /// Write plan.json, forecasts.csv and scenarios.csv here.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// One `--forecast` read: the series and its source.
fn source(spec: &str) -> anyhow::Result<ForecastSource> {
    let Some((series, rest)) = spec.split_once('=') else {
        bail!("--forecast {spec:?}: expected SERIES=MODEL_FILE,DATA_FILE[,SCALE]");
    };
    let series = SeriesRef::parse(series).map_err(|e| anyhow::anyhow!("--forecast: {e}"))?;
    let parts: Vec<&str> = rest.split(',').collect();
    let (model_file, data_file, scale) = match parts.as_slice() {
        [m, d] => (*m, *d, 1.0),
        [m, d, s] => {
            let scale: f64 =
                s.parse().map_err(|_| anyhow::anyhow!("--forecast {series}: scale {s:?} is not a number"))?;
            (*m, *d, scale)
        }
        _ => bail!("--forecast {spec:?}: expected SERIES=MODEL_FILE,DATA_FILE[,SCALE]"),
    };
    let model = TrainedModel::load(std::path::Path::new(model_file))
        .with_context(|| format!("--forecast {series}: model file {model_file}"))?;
    let (history, _) = data::read(std::path::Path::new(data_file), &model.read_options())
        .with_context(|| format!("--forecast {series}: data file {data_file}"))?;
    Ok(ForecastSource { series, model, history, scale })
}

fn options(args: &Args) -> anyhow::Result<PlanOptions> {
    let risk = match &args.cvar {
        None => None,
        Some(text) => {
            let parsed = text.split_once(':').and_then(|(a, w)| Some((a.parse().ok()?, w.parse().ok()?)));
            let Some((alpha, weight)) = parsed else { bail!("--cvar {text:?}: expected ALPHA:WEIGHT, e.g. 0.9:0.5") };
            Some(Cvar { alpha, weight })
        }
    };
    let solver = Options { time_limit_s: args.time_limit, mip_gap: args.mip_gap, prices: false, ..Options::default() };
    let hedging = args
        .hedging
        .map(|max_iterations| volta_dispatch::Hedging { max_iterations, ..volta_dispatch::Hedging::default() });
    Ok(PlanOptions {
        hedging,
        scenarios: args.scenarios,
        stochastic: StochasticOptions { options: solver, imbalance_penalty: args.imbalance_penalty, risk },
    })
}

pub(super) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let case = match Case::from_path(&args.case) {
        Ok(case) => case,
        Err(e) => {
            eprintln!("{}: {e}", args.case.display());
            return Ok(ExitCode::from(crate::exit::INPUT));
        }
    };
    // Input errors (a bad spec, a missing file, a bad time) exit 1 like a bad case.
    let inputs = (|| -> anyhow::Result<_> {
        let options = options(args)?;
        let sources: Vec<ForecastSource> = args.forecasts.iter().map(|s| source(s)).collect::<anyhow::Result<_>>()?;
        let issue = cut_time(&args.issue_time, case.grid().time_zone(), "--issue-time")?;
        Ok((options, sources, issue))
    })();
    let (options, sources, issue) = match inputs {
        Ok(inputs) => inputs,
        Err(e) => {
            eprintln!("volta plan: {e:#}");
            return Ok(ExitCode::from(crate::exit::INPUT));
        }
    };
    let made = match plan(&case, &sources, issue, &options) {
        Ok(made) => made,
        Err(volta_planning::PlanError::Dispatch(DispatchError::Solver(e))) => bail!("solver error: {e}"),
        Err(e) => {
            eprintln!("volta plan: {e}");
            return Ok(ExitCode::from(crate::exit::INPUT));
        }
    };
    let numbers = made.summary(&options);
    say!("{}", summary(&case, &made, &numbers, options.scenarios));
    if let Some(dir) = &args.out {
        write(dir, &case, &made, &numbers)?;
        crate::report::write_plan_plot(&case, &made, numbers.cvar_alpha, dir)?;
        say!(
            "written: {}/plan.json, forecasts.csv, scenarios.csv, scenario_series.csv, schedules.csv, plan.png",
            dir.display()
        );
    }
    Ok(if made.solution.plan.is_some() { ExitCode::SUCCESS } else { ExitCode::from(crate::exit::NO_SOLUTION) })
}

/// What the terminal shows.
fn summary(case: &Case, made: &DayAheadPlan, numbers: &PlanSummary, scenarios: usize) -> String {
    let s = &made.solution;
    let currency = &case.settings().currency;
    let mut out = String::new();
    let kind = if scenarios == 0 { "deterministic" } else { "two-stage stochastic" };
    let _ = writeln!(
        out,
        "{}: {kind} plan of {} steps from forecasts issued {}, {} scenario(s): {}",
        case.name(),
        case.grid().len(),
        made.issue.to_zoned_datetime(case.grid().time_zone().clone()),
        made.scenarios.len(),
        numbers.status
    );
    for f in &made.forecasts {
        let mean = f.point.iter().sum::<f64>() / f.point.len().max(1) as f64;
        let _ = writeln!(
            out,
            "  forecast {}: mean {mean:.3} over {} steps, {} past-day paths",
            f.series,
            f.point.len(),
            f.paths.len()
        );
    }
    if let (Some(expected), Some(p10), Some(p50), Some(p90)) =
        (numbers.expected_cost, numbers.cost_p10, numbers.cost_p50, numbers.cost_p90)
    {
        let _ = writeln!(out, "  cost: expected {expected:.2} {currency}; P10 {p10:.2}, P50 {p50:.2}, P90 {p90:.2}");
        if let Some(cvar) = numbers.cvar {
            let alpha = numbers.cvar_alpha;
            let _ = writeln!(
                out,
                "  CVaR({alpha}) {cvar:.2} {currency} (the mean of the worst {:.0} %)",
                100.0 * (1.0 - alpha)
            );
        }
    }
    if let Some(plan) = &s.plan {
        for unit in &plan.commitment {
            let on: Vec<String> =
                unit.on.iter().enumerate().filter(|(_, on)| **on).map(|(t, _)| case.grid().stamp(t)).collect();
            let _ = writeln!(
                out,
                "  {} on at {} of {} steps{}",
                unit.asset,
                on.len(),
                unit.on.len(),
                on.first().map_or(String::new(), |f| format!(", first {f}"))
            );
        }
        for n in &plan.nominations {
            let energy: f64 = n.net_import_kw.iter().sum::<f64>() * case.grid().step_hours();
            let _ = writeln!(out, "  {} nominated net import {energy:.1} kWh", n.asset);
        }
    }
    if let Some(report) = &numbers.hedging {
        let _ = writeln!(
            out,
            "  progressive hedging: {} iterations, {}; cost between {:.2} and {:.2} (gap {:.2} %)",
            report.iterations,
            if report.converged { "converged" } else { "not converged" },
            report.lower_bound,
            report.upper_bound,
            100.0 * report.gap
        );
    }
    let _ = write!(
        out,
        "  model: {} columns, {} rows, {} binaries; solved in {:.2} s",
        s.stats.columns, s.stats.rows, s.stats.binaries, s.stats.solve_seconds
    );
    out
}

fn write(dir: &std::path::Path, case: &Case, made: &DayAheadPlan, numbers: &PlanSummary) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let s = &made.solution;
    let mut json = serde_json::json!({
        "case": case.name(),
        "issue": made.issue.to_zoned_datetime(case.grid().time_zone().clone()).to_string(),
    });
    if let (Some(head), serde_json::Value::Object(rest)) = (json.as_object_mut(), serde_json::to_value(numbers)?) {
        head.extend(rest);
    }
    let path = dir.join("plan.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let mut text = String::from("time,series,point");
    let levels = made.forecasts.first().map(|f| f.levels.clone()).unwrap_or_default();
    for q in &levels {
        let _ = write!(text, ",q{q}");
    }
    text.push('\n');
    for f in &made.forecasts {
        for (t, p) in f.point.iter().enumerate() {
            let _ = write!(text, "{},{},{p}", case.grid().stamp(t), f.series);
            for q in f.quantiles.get(t).into_iter().flatten() {
                let _ = write!(text, ",{q}");
            }
            text.push('\n');
        }
    }
    let path = dir.join("forecasts.csv");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    let mut text = String::from("scenario,probability,cost,imbalance_cost,imbalance_kwh,unserved_kwh\n");
    for o in &numbers.scenarios {
        let _ = writeln!(
            text,
            "{},{},{},{},{},{}",
            o.name, o.probability, o.cost, o.imbalance_cost, o.imbalance_kwh, o.unserved_kwh
        );
    }
    let path = dir.join("scenarios.csv");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    // What each scenario says of each forecast series: the fan, to plot or
    // to plan again with another tool (benches/pypsa/stochastic.py).
    let mut text = String::from("scenario,probability,time,series,value\n");
    for scenario in &made.scenarios {
        for (series, values) in &scenario.series {
            for (t, v) in values.iter().enumerate() {
                let _ =
                    writeln!(text, "{},{},{},{series},{v}", scenario.name, scenario.probability, case.grid().stamp(t));
            }
        }
    }
    let path = dir.join("scenario_series.csv");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    // Every scenario's second-stage schedule, long: one row per flow and step.
    let mut text = String::from("scenario,time,asset,bus,kw\n");
    for o in &s.scenarios {
        for asset in &o.schedule.assets {
            for flow in &asset.flows {
                for (t, kw) in flow.kw.iter().enumerate() {
                    let _ = writeln!(text, "{},{},{},{},{kw}", o.name, case.grid().stamp(t), asset.id, flow.bus);
                }
            }
        }
    }
    let path = dir.join("schedules.csv");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
