//! Running HiGHS on a built model and reading the schedule back.

use std::time::Instant;

use volta_engine::{AssetKind, Case};

use crate::error::DispatchError;
use crate::model::{AssetVars, Mode, Model, Window};
use crate::options::Options;
use crate::plan::{AssetSchedule, BusSchedule, CostItem, Detail, EmissionItem, Flow, Schedule, SolveStats, Status};
use volta_lp::{Integrality, Lin, Outcome, Settings};

/// What HiGHS returned, before interpretation.
#[derive(Debug)]
pub(crate) struct Raw {
    pub(crate) status: Status,
    pub(crate) objective: Option<f64>,
    pub(crate) best_bound: Option<f64>,
    pub(crate) gap: Option<f64>,
    /// Column values, when a primal solution exists.
    pub(crate) x: Option<Vec<f64>>,
    /// Row duals, for an LP with a solution.
    pub(crate) duals: Option<Vec<f64>>,
    pub(crate) seconds: f64,
    /// HiGHS could not tell infeasible from unbounded.
    pub(crate) ambiguous: bool,
}

/// Solves `model` minimising `objective`.
pub(crate) fn run(mut model: Model, objective: &Lin, options: &Options) -> Result<(Model, Raw), DispatchError> {
    // The LP is consumed by HiGHS; keep the rest of the model for reading.
    let lp = std::mem::replace(&mut model.lp, volta_lp::solve::placeholder());
    let s = volta_lp::solve(lp, objective, &settings(options)).map_err(DispatchError::Solver)?;
    let raw = Raw {
        status: status_of(s.outcome),
        objective: s.objective,
        best_bound: s.best_bound,
        gap: s.gap,
        x: s.x,
        duals: s.duals,
        seconds: s.seconds,
        ambiguous: s.ambiguous,
    };
    Ok((model, raw))
}

/// HiGHS's settings for `options`.
pub(crate) fn settings(options: &Options) -> Settings {
    Settings {
        verbose: options.verbose,
        time_limit_s: options.time_limit_s,
        mip_gap: options.mip_gap,
        threads: options.threads,
    }
}

/// The status a solver outcome reports.
pub(crate) fn status_of(outcome: Outcome) -> Status {
    match outcome {
        Outcome::Optimal => Status::Optimal,
        Outcome::WithinGap => Status::WithinGap,
        Outcome::TimeLimit => Status::TimeLimit,
        Outcome::IterationLimit => Status::IterationLimit,
        Outcome::MemoryLimit => Status::MemoryLimit,
        Outcome::Interrupted => Status::Interrupted,
        Outcome::Infeasible => Status::Infeasible,
        Outcome::Unbounded => Status::Unbounded,
    }
}

/// Builds and solves one window of `case`; returns the model and the raw result.
pub(crate) fn solve_window(
    case: &Case,
    window: &Window<'_>,
    options: &Options,
    extra: &dyn Fn(&mut Model),
) -> Result<(Model, Raw, SolveStats), DispatchError> {
    let started = Instant::now();
    let mut model = Model::build(case, window, Integrality::Integer, Mode::Normal);
    extra(&mut model);
    let objective = model.objective(options.objective);
    let mut stats = SolveStats {
        columns: model.lp.num_cols(),
        rows: model.lp.num_rows(),
        binaries: model.lp.binaries().len(),
        build_seconds: started.elapsed().as_secs_f64(),
        ..SolveStats::default()
    };
    let is_mip = model.lp.is_mip();
    let binaries = model.lp.binaries().to_vec();
    let (model, mut raw) = run(model, &objective, options)?;
    stats.solve_seconds = raw.seconds;
    // Marginal prices: the LP duals, or for a MILP those of the LP with its
    // binaries fixed at the solution.
    if options.prices
        && is_mip
        && let Some(x) = &raw.x
    {
        let started = Instant::now();
        let fixed: Vec<f64> = binaries.iter().map(|c| x[c.0]).collect();
        let mut lp_model = Model::build(case, window, Integrality::Fixed(fixed), Mode::Normal);
        extra(&mut lp_model);
        let objective = lp_model.objective(options.objective);
        let lp_options = Options { time_limit_s: None, mip_gap: None, ..options.clone() };
        if let Ok((_, fixed_raw)) = run(lp_model, &objective, &lp_options) {
            raw.duals = fixed_raw.duals;
        }
        stats.price_seconds = started.elapsed().as_secs_f64();
    }
    Ok((model, raw, stats))
}

/// Reads the schedule of `case` out of a solved `model`.
pub(crate) fn read_schedule(case: &Case, model: &Model, x: &[f64], duals: Option<&[f64]>) -> Schedule {
    let n = model.len;
    let eval = |lins: &[Lin]| -> Vec<f64> { lins.iter().map(|l| clean(l.eval(x))).collect() };
    let val = |cols: &[volta_lp::Col]| -> Vec<f64> { cols.iter().map(|c| clean(x[c.0])).collect() };
    let mut assets = Vec::with_capacity(case.assets().len());
    for (i, asset) in case.assets().iter().enumerate() {
        let flows =
            model.flows[i].iter().map(|(bus, kw)| Flow { bus: case.buses()[*bus].id.clone(), kw: eval(kw) }).collect();
        let detail = match &model.vars[i] {
            AssetVars::Load { demand, served, shed } => Detail::Load {
                demand_kw: demand.clone(),
                served_kw: eval(served),
                shed_kw: shed.as_ref().map_or_else(|| vec![0.0; n], |s| val(s)),
            },
            AssetVars::Renewable { output, available } => {
                Detail::Renewable { available_kw: available.clone(), output_kw: val(output) }
            }
            AssetVars::Unit(unit) => {
                let output_kw = unit.x.iter().enumerate().map(|(t, c)| clean(unit.rated_coef[t] * x[c.0])).collect();
                let is_thermal = matches!(asset.kind, AssetKind::Thermal(_));
                Detail::Unit {
                    output_kw,
                    fuel_kw: is_thermal.then(|| eval(&unit.fuel)),
                    on: unit.on.as_ref().map(|u| u.iter().map(|c| x[c.0] > 0.5).collect()),
                    starts: unit.start.as_ref().map(|v| v.iter().map(|c| x[c.0] > 0.5).collect()),
                }
            }
            AssetVars::Grid { import, export, .. } => Detail::Grid { import_kw: val(import), export_kw: val(export) },
            AssetVars::Storage { charge, discharge, energy, initial_kwh } => Detail::Storage {
                charge_kw: val(charge),
                discharge_kw: val(discharge),
                energy_kwh: val(energy),
                initial_kwh: *initial_kwh,
            },
        };
        assets.push(AssetSchedule { id: asset.id.clone(), kind: asset.kind.type_name(), flows, detail });
    }
    let buses = case
        .buses()
        .iter()
        .enumerate()
        .map(|(b, bus)| BusSchedule {
            id: bus.id.clone(),
            // The balance row reads "Σ flows into the bus = demand": its dual
            // is the cost of one more kW over the step; per kWh, divide by h.
            price: duals.map(|d| model.balance_rows[b].iter().map(|r| clean(d[r.0] / model.h)).collect()),
            unserved_kw: model.unserved[b].as_ref().map_or_else(|| vec![0.0; n], |c| val(c)),
        })
        .collect();
    let costs: Vec<CostItem> = model
        .costs
        .iter()
        .map(|term| CostItem {
            asset: term.asset.map(|i| case.assets()[i].id.clone()),
            category: term.category,
            amount: term.lin.eval(x),
        })
        .collect();
    let emissions: Vec<EmissionItem> = model
        .co2
        .iter()
        .map(|(i, lin)| EmissionItem { asset: case.assets()[*i].id.clone(), co2_kg: lin.eval(x) })
        .collect();
    let grid = case.grid().window(model.start, n);
    Schedule {
        grid,
        cost: costs.iter().map(|c| c.amount).sum(),
        co2_kg: emissions.iter().map(|e| e.co2_kg).sum(),
        assets,
        buses,
        costs,
        emissions,
    }
}

/// Rounds solver noise (|v| < 1e-9) to zero.
pub(crate) fn clean(v: f64) -> f64 {
    if v.abs() < 1e-9 { 0.0 } else { v }
}
