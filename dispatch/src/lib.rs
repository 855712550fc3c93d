//! # volta-dispatch: multi-energy scheduling as a MILP on HiGHS
//!
//! Given a checked [`Case`], [`schedule`] finds the operating schedule of
//! every asset that minimises cost, CO2 or a weighted sum of both, subject
//! to an energy balance on every bus at every step. [`pareto`] traces the
//! cost–CO2 front; [`rolling_horizon`] simulates a long period window by
//! window, [`decompose`] solves it as blocks in parallel with consistent
//! seams, and [`lower_bound`] (its LP relaxation) says how far from optimal
//! the stitched result can be; [`two_stage`] plans under scenarios of the uncertain series and
//! [`redispatch`] prices a plan against the day as it turned out. The model is built with Volta's LP layer (volta-lp) and solved by HiGHS.
//!
//! ```no_run
//! use volta_dispatch::{Options, schedule};
//! use volta_engine::Case;
//!
//! let case = Case::from_path("datasets/cases/campus.toml")?;
//! let solution = schedule(&case, &Options::default())?;
//! println!("{}: {:?}", solution.status.name(), solution.objective);
//! if let Some(plan) = &solution.schedule {
//!     println!("cost {:.2}, CO2 {:.0} kg", plan.cost, plan.co2_kg);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## The model
//!
//! Power columns are mean kW over a step of `h` hours; costs are in the
//! case's currency. Each asset adds signed flows to buses (positive into the
//! bus), and at every step the flows into each bus sum to zero.
//!
//! | asset | columns | constraints |
//! |---|---|---|
//! | load | shed, shifted power | shed ≤ share × demand; each shifting window serves its energy |
//! | renewable | output | output ≤ availability × capacity (= if not curtailable) |
//! | thermal | output, fuel, on/start/stop | capacity and minimum on the rated flow, convex fuel curve, ramps, min up/down |
//! | converter | reference flow (first input) | the same unit rules on the rated flow; inputs × ratio, outputs × efficiency |
//! | grid | import, export, peak | limits; peak ≥ import at every step |
//! | storage | charge, discharge, energy | `e[t] = e[t−1]·(1−loss)^h + η_c·c·h − d·h/η_d`, bounds, end condition |
//!
//! Unit commitment uses the three-binary form of Morales-España, Latorre and
//! Ramos (2013): `u[t] − u[t−1] = v[t] − w[t]`, with minimum up time
//! `Σ_{τ=t−UT+1..t} v[τ] ≤ u[t]` and minimum down time
//! `Σ_{τ=t−DT+1..t} w[τ] ≤ 1 − u[t]`, both honoured across the initial
//! state. Only `u` is integer (`v[t] ≤ u[t]` and `v[t] ≤ 1 − u[t−1]` make
//! `v` and `w` integral with it); a cold start costs extra when the unit was
//! off for the whole cold-start lookback, and with tiers of start-up costs
//! by time off each tier adds its increment over the one below the same
//! way: in a small model in the tight form of start-up types (a start is
//! warm only if a stop falls within the lookback), in a large one in the
//! compact form `c[t] ≥ extra·(v[t] − Σ u)`; both cost every integral
//! schedule the same (the size rule and its measurements are at the
//! model's `TIGHT_STARTS_BELOW`). A start may ramp straight to the larger
//! of the minimum power and the ramp limit.
//!
//! Start-up and shut-down trajectories (Morales-España, Gentile and Ramos,
//! 2013) split a unit's rated output into what it gives while up (between
//! `Pmin·u[t]` and `Pmax·u[t]`, under the ramp limits) and what its
//! trajectories give while it is off: `Σ_k SU[k]·v[t+k]` over the steps
//! before a start and `Σ_j SD[j]·w[t−j]` from a stop on, with data
//! outputs; the minimum time off covers both trajectories, so they never
//! overlap each other or a running step.
//!
//! ## Fleets of identical units
//!
//! Units equal in everything but their id (a thermal unit or converter with
//! commitment, with the same initial state) are interchangeable, and a
//! solver branching on each one's binaries explores all their permutations.
//! By default ([`Options::fleets`]) they are modelled as a fleet:
//!
//! - without ramp limits, **aggregated**: per step, integers for how many
//!   are on and how many start; the running units share the output equally
//!   (the cheapest split under a convex fuel curve); minimum up and down
//!   times hold as counts; a start is hot when matched to a stop of the
//!   fleet within the warm window (each stop serves one start). This is
//!   exact: the count schedule is split back into unit schedules that meet
//!   every unit constraint at the same cost, warm units restarted earliest
//!   deadline first;
//! - with ramp limits, where counts would not be exact, **ordered**: each
//!   unit keeps its binaries and the units are ordered by hours on.
//!
//! Either way every unit has its own schedule and costs in the result. The
//! Kazarlis 40- and 100-unit systems (four and ten copies of each unit of
//! the 10-unit system) reach a 1e-4 gap in seconds where the units apart
//! need minutes (the README's benchmark); random fleets reach the optimum
//! of their units apart (`tests/integration/fleets.rs`).
//!
//! Spinning reserve on a bus is met by the headroom of committed units
//! (capacity × on − output, scaled to the bus for converter outputs) and by
//! storage (more discharge or less charge, within the energy left). Grid
//! imports do not count as reserve.
//!
//! When the case sets a value of lost load, every bus may leave demand
//! unserved at that price; otherwise balances are hard.
//!
//! ## Statuses, not errors
//!
//! Infeasible and unbounded cases return a [`Solution`] with that
//! [`Status`]; an infeasible one carries an [`Infeasibility`] that names
//! the failing balance, its time steps and size, and the assets at their
//! limits. A time limit with an incumbent returns the incumbent.
//! [`DispatchError`] is reserved for requests that cannot be carried out.

mod decompose;
mod error;
mod exact;
mod explain;
mod fleet;
mod hedging;
mod model;
mod options;
mod pareto;
mod plan;
mod rolling;
mod solve;
pub mod stochastic;
mod strategy;
pub mod verify;
mod warm;

use volta_engine::{AssetKind, Case};

pub use decompose::{Decomposed, Decomposition, MAX_BLOCKS, SeamReport, Stage, decompose};
pub use error::DispatchError;
pub use exact::Exact;
pub use hedging::{Hedging, HedgingReport, Iteration, progressive_hedging};
pub use model::CarriedState;
pub use options::{LOST_LOAD_CO2_KG_PER_KWH, Objective, ObjectiveError, Options};
pub use pareto::{Front, MAX_PARETO_POINTS, ParetoPoint, pareto};
pub use plan::{
    AssetSchedule, BusSchedule, CostCategory, CostItem, Detail, EmissionItem, Flow, Schedule, Solution, SolveStats,
    Status,
};
pub use plan::{Infeasibility, Violation, ViolationKind};
pub use rolling::{RollingOptions, RollingResult, WindowReport, rolling_horizon};
pub use stochastic::{Cvar, Plan, Scenario, StochasticOptions, StochasticSolution, redispatch, two_stage};
pub use strategy::{Class, DEFAULT_HEURISTIC_EFFORT, LpMethod, MipStart, ROUNDING_FROM_INTEGERS, Resolved, Strategy};

use crate::model::{Model, Window};

/// Schedules `case` over its whole horizon.
///
/// # Errors
/// [`DispatchError::Option`] for an option out of range, and
/// [`DispatchError::Solver`] if HiGHS fails. An infeasible or unbounded
/// case is a [`Status`], not an error.
pub fn schedule(case: &Case, options: &Options) -> Result<Solution, DispatchError> {
    check_options(options)?;
    let state = CarriedState::default();
    let window = Window::whole(case, &state, options.fleets);
    solve(case, &window, options, None)
}

/// Solves one window. With `co2_cap`, the CO2 expression is bounded above
/// (the epsilon constraint of the Pareto front).
pub(crate) fn solve(
    case: &Case,
    window: &Window<'_>,
    options: &Options,
    co2_cap: Option<f64>,
) -> Result<Solution, DispatchError> {
    solve_then(case, window, options, co2_cap, Infeasible::Explain)
}

/// What an infeasible window's solve does besides saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Infeasible {
    /// Finds the constraints that conflict ([`Solution::infeasibility`]).
    Explain,
    /// Nothing more: the caller tries another window (a decomposition's
    /// seam that widens, a block that lets its end go).
    Retry,
}

/// [`solve`], explaining an infeasible window only when asked.
pub(crate) fn solve_then(
    case: &Case,
    window: &Window<'_>,
    options: &Options,
    co2_cap: Option<f64>,
    infeasible: Infeasible,
) -> Result<Solution, DispatchError> {
    let cap = move |model: &mut Model| {
        if let Some(cap) = co2_cap {
            let co2 = model.co2();
            model.lp.le(co2, cap);
        }
    };
    options.cancel.check()?;
    let (mut model, mut raw, mut stats) = solve::solve_window(case, window, options, &cap)?;
    let mut objective = raw.objective;
    // The CO2 objective is lexicographic: least CO2 first, then least cost.
    if options.objective == Objective::Co2
        && let Some(best) = raw.objective
    {
        // The least CO2 is held as it was found (HiGHS's feasibility
        // tolerance is the only slack), and the objective reported is the
        // CO2 of the schedule returned, so the two always agree.
        let bound = best + best.abs().max(1.0) * 1e-9;
        let primary_of = |model: &Model| {
            let mut primary = model.co2();
            primary.add_lin(&model.lost_load_kwh, LOST_LOAD_CO2_KG_PER_KWH);
            primary
        };
        let limit = move |model: &mut Model| {
            cap(model);
            let primary = primary_of(model);
            model.lp.le(primary, bound);
        };
        let second = Options { objective: Objective::Cost, ..options.clone() };
        options.cancel.check()?;
        let (m2, r2, s2) = solve::solve_window(case, window, &second, &limit)?;
        if let Some(x) = &r2.x {
            stats.solve_seconds += s2.solve_seconds;
            stats.build_seconds += s2.build_seconds;
            stats.price_seconds += s2.price_seconds;
            objective = Some(primary_of(&m2).eval(x));
            (model, raw) = (m2, r2);
        }
    }
    let schedule = raw.x.as_ref().map(|x| solve::read_schedule(case, &model, x, raw.duals.as_deref()));
    let mut status = raw.status;
    let mut infeasibility = None;
    if status == Status::Infeasible && infeasible == Infeasible::Explain {
        options.cancel.check()?;
        infeasibility = explain::explain(case, window, options)?;
        if raw.ambiguous && infeasibility.as_ref().is_some_and(|i| i.unexplained) {
            status = Status::Unbounded;
            infeasibility = None;
        }
    }
    let exact = schedule.as_ref().and_then(|s| exact::exact(case, s, options.objective, raw.best_bound));
    Ok(Solution { status, objective, best_bound: raw.best_bound, gap: raw.gap, stats, schedule, infeasibility, exact })
}

/// A file format for a written model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// The CPLEX LP format (`.lp`).
    Lp,
    /// The free MPS format (`.mps`).
    Mps,
}

impl ModelFormat {
    /// The format a file name's extension asks for (`.lp` or `.mps`).
    #[must_use]
    pub fn of_path(path: &std::path::Path) -> Option<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("lp") => Some(Self::Lp),
            Some("mps") => Some(Self::Mps),
            _ => None,
        }
    }
}

/// Writes the model `schedule` would hand to HiGHS for `case` under
/// `options` (its objective, and whether identical units form fleets), in
/// the CPLEX LP or the free MPS format (any LP/MILP solver reads either),
/// with readable names: `{asset}.{role}(t)` for columns
/// (`battery.charge(5)`, `chp.on(12)`, `grid.import(0)`) and rows
/// (`battery.storage(5)`, `elec.balance(3)`), `t` counting within the group
/// (for most, the step). The objective is in the case's currency (or kg
/// CO2); its constant is written too, so a solver's optimum equals the
/// schedule's objective. For the CO2 objective this is the first of the two
/// solves (least CO2; the second minimises cost with the CO2 held).
///
/// # Errors
/// When `out` fails.
pub fn write_model(
    case: &Case,
    options: &Options,
    format: ModelFormat,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let objective = options.objective;
    let state = CarriedState::default();
    let window = Window::whole(case, &state, options.fleets);
    let model = Model::build(case, &window, volta_lp::Integrality::Integer, model::Mode::Normal);
    let lin = model.objective(objective);
    let title = format!(
        "Volta dispatch model of case {:?}: {} steps of {} h, objective {objective:?}.\nColumns and rows are named asset.role(k), k counting within the group (for most, the step).",
        case.name(),
        case.grid().len(),
        case.grid().step_hours()
    );
    match format {
        ModelFormat::Lp => model.lp.write_lp(&lin, &title, out),
        ModelFormat::Mps => model.lp.write_mps(&lin, &title, out),
    }
}

/// The optimum of the LP relaxation of `case` over its whole horizon (every
/// integer column continuous within its bounds), minimising `options`'
/// objective: a lower bound on the objective of any schedule of the case,
/// a rolling horizon's stitched one included. `None` when the relaxation
/// has no optimum (an infeasible case).
///
/// # Errors
/// [`DispatchError::Option`] for an option out of range, solver errors,
/// and [`DispatchError::Cancelled`].
pub fn lower_bound(case: &Case, options: &Options) -> Result<Option<f64>, DispatchError> {
    check_options(options)?;
    let (_, raw) = relax(case, options, options.fleets)?;
    Ok(raw.objective.filter(|_| raw.status == Status::Optimal))
}

/// The LP relaxation of `case` over its whole horizon, every unit on its
/// own: its optimum (a lower bound, as [`lower_bound`]'s) and its
/// (fractional) schedule, the on/off states rounded.
pub(crate) fn relaxation(case: &Case, options: &Options) -> Result<(Option<f64>, Option<Schedule>), DispatchError> {
    let (model, raw) = relax(case, options, false)?;
    if raw.status != Status::Optimal {
        return Ok((None, None));
    }
    let schedule = raw.x.as_ref().map(|x| solve::read_schedule(case, &model, x, None));
    Ok((raw.objective, schedule))
}

fn relax(case: &Case, options: &Options, fleets: bool) -> Result<(Model, solve::Raw), DispatchError> {
    options.cancel.check()?;
    let state = CarriedState::default();
    let window = Window::whole(case, &state, fleets);
    let model = Model::build(case, &window, volta_lp::Integrality::Relaxed, model::Mode::Normal);
    let objective = model.objective(options.objective);
    let lp_options = Options { mip_gap: None, ..options.clone() };
    solve::run(model, &objective, &lp_options, &[])
}

/// Builds the model of `case` and hands it to HiGHS without solving it;
/// returns `(columns, rows)`. For benchmarks that time model building
/// separately from solving.
#[doc(hidden)]
#[must_use]
pub fn build_only(case: &Case, objective: Objective) -> (usize, usize) {
    let state = CarriedState::default();
    let window = Window::whole(case, &state, true);
    let mut model = Model::build(case, &window, volta_lp::Integrality::Integer, model::Mode::Normal);
    let size = (model.lp.num_cols(), model.lp.num_rows());
    let objective = model.objective(objective);
    let lp = std::mem::replace(&mut model.lp, volta_lp::solve::placeholder());
    // Building the HiGHS model is part of the cost; a failure here would be
    // reported by a real solve.
    let _ = lp.into_highs(&objective);
    size
}

/// Refuses a case with a periodic store (whose start the optimiser
/// chooses) for work that splits the horizon or the start: `what`.
pub(crate) fn whole_horizon(case: &Case, what: &str) -> Result<(), DispatchError> {
    let periodic = case
        .assets()
        .iter()
        .find(|a| matches!(&a.kind, AssetKind::Storage(s) if s.final_soc == volta_engine::asset::FinalState::Periodic));
    match periodic {
        Some(asset) => Err(DispatchError::Option(format!(
            "assets.{}.final_soc: \"periodic\" lets the optimiser choose where the store starts, which needs the \
             whole horizon in one model, not {what}; use \"cyclic\" (end at initial_soc)",
            asset.id
        ))),
        None => Ok(()),
    }
}

pub(crate) fn check_options(options: &Options) -> Result<(), DispatchError> {
    if let Some(limit) = options.time_limit_s
        && !(limit.is_finite() && limit > 0.0)
    {
        return Err(DispatchError::Option(format!("time_limit_s must be a positive number of seconds, not {limit}")));
    }
    if let Some(gap) = options.mip_gap
        && !(0.0..1.0).contains(&gap)
    {
        return Err(DispatchError::Option(format!("mip_gap must be in [0, 1), not {gap}")));
    }
    if options.threads == Some(0) {
        return Err(DispatchError::Option("threads must be at least 1".to_owned()));
    }
    options.strategy.check()?;
    if let Objective::Weighted { cost_weight, co2_weight } = options.objective {
        for (name, w) in [("cost_weight", cost_weight), ("co2_weight", co2_weight)] {
            if !(w.is_finite() && (0.0..=volta_engine::MAX_MAGNITUDE).contains(&w)) {
                return Err(DispatchError::Option(format!(
                    "{name} must be a number in [0, {:e}], not {w}",
                    volta_engine::MAX_MAGNITUDE
                )));
            }
        }
        if cost_weight == 0.0 && co2_weight == 0.0 {
            return Err(DispatchError::Option("cost_weight and co2_weight cannot both be zero".to_owned()));
        }
    }
    Ok(())
}
