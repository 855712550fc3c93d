//! Rolling-horizon simulation (model predictive control).
//!
//! A long period is scheduled as a sequence of overlapping windows: each
//! window of `horizon` steps is optimised, its first `commit` steps are
//! kept, and the state at the end of those steps (storage levels, each
//! unit's output and on/off history, the peak import so far, the energy a
//! shiftable load has already served) becomes the next window's initial
//! state. The case's end conditions (cyclic or minimum storage levels)
//! apply only to the window that reaches the end of the case.
//!
//! Each window starts the solver from the commitment the window before it
//! chose over the steps they share ([`RollingOptions::warm_start`], on by
//! default; see `warm`): the windows are the same problems, solved faster.
//! A window whose start its LP relaxation proves within the gap is not
//! solved as a MIP at all ([`WindowReport::proven_by_relaxation`]).
//!
//! A run that is cancelled (its [`Cancel`](volta_engine::Cancel) token set
//! by a caller or a deadline) keeps what it committed: it stops before its
//! next window and returns the stitched schedule so far, with the status
//! [`Status::Interrupted`].

use serde::Serialize;
use volta_engine::{AssetKind, Case};

use crate::error::DispatchError;
use crate::model::{AssetState, CarriedState, Hint, Window};
use crate::options::Options;
use crate::plan::Infeasibility;
use crate::plan::{Detail, Schedule, Status};

/// How to cut the horizon into windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RollingOptions {
    /// Steps optimised in each window (the look-ahead).
    pub horizon_steps: usize,
    /// Steps kept from each window before moving on (at most the horizon).
    pub commit_steps: usize,
    /// Solver options for every window.
    pub options: Options,
    /// Start each window's MIP from the previous window's commitment on
    /// the steps they share (the default); off, every window starts cold.
    pub warm_start: bool,
    /// Also solve the LP relaxation of the whole horizon, whose optimum
    /// bounds the cost of any schedule of the case from below, so that the
    /// result says how far from optimal the stitched one can be at most
    /// ([`RollingResult::lower_bound`]). The cost objective (without a CO2
    /// price) only.
    pub lower_bound: bool,
}

impl RollingOptions {
    /// Windows of `horizon_steps`, of which `commit_steps` are kept; without
    /// `commit_steps`, half the window (at least one step), so that every
    /// committed step was planned with as much look-ahead again. The one
    /// default of the CLI, gRPC and Python.
    #[must_use]
    pub fn new(horizon_steps: usize, commit_steps: Option<usize>, options: Options) -> Self {
        Self {
            horizon_steps,
            commit_steps: commit_steps.unwrap_or((horizon_steps / 2).max(1)),
            options,
            warm_start: true,
            lower_bound: false,
        }
    }
}

/// What happened in one window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    /// Its first step in the case.
    pub start: usize,
    /// Steps optimised.
    pub len: usize,
    /// How its solve ended.
    pub status: Status,
    /// Its objective over the whole window (look-ahead included).
    pub objective: Option<f64>,
    /// Seconds in HiGHS.
    pub solve_seconds: f64,
    /// Seconds building the model.
    pub build_seconds: f64,
    /// Integer columns its start set (see [`crate::SolveStats`]): the
    /// previous window's commitment, or (a window solved cold) its own
    /// relaxation's when the relaxation proved it; 0: none.
    pub warm_start: usize,
    /// The start was proven within the gap by the window's LP relaxation,
    /// so its MIP was not solved (see [`crate::SolveStats`]).
    pub proven_by_relaxation: bool,
}

/// The stitched result of a rolling-horizon run.
#[derive(Debug, Clone, Serialize)]
pub struct RollingResult {
    /// The worst status over the windows (optimal < within gap < time limit
    /// < infeasible); the run stops at the first window without a schedule.
    /// [`Status::Interrupted`] when it was cancelled between windows.
    pub status: Status,
    /// The committed steps of every window, end to end. Its cost and
    /// emissions are recomputed from the stitched flows.
    pub schedule: Option<Schedule>,
    /// One report per window solved.
    pub windows: Vec<WindowReport>,
    /// Why the failing window was infeasible, if one was.
    pub infeasibility: Option<Infeasibility>,
    /// With [`RollingOptions::lower_bound`]: the optimum of the whole
    /// horizon's LP relaxation, at most the cost of the best schedule, so
    /// `(cost − lower_bound) / cost` bounds how far the stitched schedule is
    /// from optimal.
    pub lower_bound: Option<f64>,
}

impl RollingResult {
    /// `(cost − lower_bound) / cost` of the stitched schedule: at most how
    /// far from optimal it is. `None` without a bound or a schedule.
    #[must_use]
    pub fn gap_to_lower_bound(&self) -> Option<f64> {
        gap_below(self.schedule.as_ref(), self.lower_bound)
    }
}

/// `(cost − bound) / cost` of a stitched schedule against a lower bound.
pub(crate) fn gap_below(schedule: Option<&Schedule>, bound: Option<f64>) -> Option<f64> {
    let cost = schedule?.cost;
    bound.map(|bound| (cost - bound) / cost.abs().max(1e-9))
}

/// Simulates `case` window by window. `progress` is called after each
/// window with its report, the steps it commits (`None` when its solve
/// found no schedule) and the number of windows in all.
///
/// # Errors
/// [`DispatchError::Option`] for a zero or inconsistent window size, and
/// solver errors. Cancellation is not an error: see the module.
pub fn rolling_horizon(
    case: &Case,
    rolling: &RollingOptions,
    progress: &mut dyn FnMut(&WindowReport, Option<&Schedule>, usize),
) -> Result<RollingResult, DispatchError> {
    let total = case.grid().len();
    let (horizon, commit) = (rolling.horizon_steps, rolling.commit_steps);
    if horizon == 0 || commit == 0 || commit > horizon {
        return Err(DispatchError::Option(format!("need 0 < commit_steps ({commit}) <= horizon_steps ({horizon})")));
    }
    crate::check_options(&rolling.options)?;
    if rolling.lower_bound && rolling.options.objective != crate::Objective::Cost {
        return Err(DispatchError::Option(
            "a lower bound is computed for the cost objective without a CO2 price only".to_owned(),
        ));
    }
    let count = total.div_ceil(commit);
    if count > 1 {
        crate::whole_horizon(case, "a rolling horizon")?;
    }
    let mut state = CarriedState::default();
    let mut hint: Option<Hint> = None;
    let mut stitched: Option<Schedule> = None;
    let mut windows = Vec::with_capacity(count);
    let mut status = Status::Optimal;
    let mut start = 0;
    while start < total {
        let len = horizon.min(total - start);
        let window = Window {
            start,
            len,
            state: &state,
            fleets: rolling.options.fleets,
            hint: hint.as_ref().filter(|_| rolling.warm_start),
            terminal: None,
        };
        let solution = match crate::solve(case, &window, &rolling.options, None) {
            Err(DispatchError::Cancelled) => {
                status = worse(status, Status::Interrupted);
                break;
            }
            other => other?,
        };
        let report = WindowReport {
            start,
            len,
            status: solution.status,
            objective: solution.objective,
            solve_seconds: solution.stats.solve_seconds,
            build_seconds: solution.stats.build_seconds,
            warm_start: solution.stats.warm_start,
            proven_by_relaxation: solution.stats.proven_by_relaxation,
        };
        status = worse(status, solution.status);
        let Some(plan) = solution.schedule else {
            progress(&report, None, count);
            windows.push(report);
            return Ok(RollingResult {
                status,
                schedule: stitched,
                windows,
                infeasibility: solution.infeasibility,
                lower_bound: None,
            });
        };
        let keep = commit.min(len);
        hint = Some(Hint::from_schedule(&plan, start));
        let under_way = starts_under_way(case, &plan, keep);
        let part = truncate(plan, keep);
        progress(&report, Some(&part), count);
        windows.push(report);
        let merged = match stitched.take() {
            None => part,
            Some(mut acc) => {
                append(&mut acc, part);
                acc
            }
        };
        let mut merged = merged;
        merged.grid = case.grid().window(0, start + keep);
        state = carry(case, &merged);
        for (i, at) in under_way {
            if let Some(AssetState::Unit { starts_in, .. }) = state.assets.get_mut(&i) {
                *starts_in = Some(at);
            }
        }
        stitched = Some(merged);
        start += keep;
    }
    let schedule = stitched.map(|s| priced(case, s));
    // After the windows, so that a cancelled run stops before it too.
    let lower_bound = if rolling.lower_bound && status != Status::Interrupted {
        match crate::lower_bound(case, &rolling.options) {
            Err(DispatchError::Cancelled) => None,
            other => other?,
        }
    } else {
        None
    };
    Ok(RollingResult { status, schedule, windows, infeasibility: None, lower_bound })
}

/// `plan`, a schedule stitched from windows, with the cost and emissions of
/// its flows.
pub(crate) fn priced(case: &Case, mut plan: Schedule) -> Schedule {
    let audit = crate::verify::audit(case, &plan, 1e-6);
    plan.cost = audit.costs.iter().map(|c| c.amount).sum();
    plan.co2_kg = audit.emissions.iter().map(|e| e.co2_kg).sum();
    plan.costs = audit.costs;
    plan.emissions = audit.emissions;
    plan
}

pub(crate) fn worse(a: Status, b: Status) -> Status {
    let rank = |s: Status| match s {
        Status::Optimal => 0,
        Status::WithinGap => 1,
        Status::TimeLimit | Status::IterationLimit | Status::MemoryLimit | Status::Interrupted => 2,
        Status::Unbounded => 3,
        Status::Infeasible => 4,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Keeps the first `keep` steps of every series.
fn truncate(plan: Schedule, keep: usize) -> Schedule {
    slice(plan, 0, keep)
}

/// Keeps steps `from..to` (of the plan's own grid) of every series.
pub(crate) fn slice(mut plan: Schedule, from: usize, to: usize) -> Schedule {
    let cut = |v: &mut Vec<f64>| {
        v.truncate(to);
        v.drain(..from.min(v.len()));
    };
    let cut_flags = |v: &mut Vec<bool>| {
        v.truncate(to);
        v.drain(..from.min(v.len()));
    };
    for asset in &mut plan.assets {
        for flow in &mut asset.flows {
            cut(&mut flow.kw);
        }
        match &mut asset.detail {
            Detail::Load { demand_kw, served_kw, shed_kw } => {
                cut(demand_kw);
                cut(served_kw);
                cut(shed_kw);
            }
            Detail::Renewable { available_kw, output_kw } => {
                cut(available_kw);
                cut(output_kw);
            }
            Detail::Unit { output_kw, fuel_kw, on, starts } => {
                cut(output_kw);
                if let Some(f) = fuel_kw {
                    cut(f);
                }
                if let Some(on) = on {
                    cut_flags(on);
                }
                if let Some(s) = starts {
                    cut_flags(s);
                }
            }
            Detail::Grid { import_kw, export_kw } => {
                cut(import_kw);
                cut(export_kw);
            }
            Detail::Storage { charge_kw, discharge_kw, energy_kwh, initial_kwh } => {
                if from > 0 {
                    *initial_kwh = energy_kwh.get(from - 1).copied().unwrap_or(*initial_kwh);
                }
                cut(charge_kw);
                cut(discharge_kw);
                cut(energy_kwh);
            }
        }
    }
    for bus in &mut plan.buses {
        cut(&mut bus.unserved_kw);
        if let Some(p) = &mut bus.price {
            cut(p);
        }
    }
    plan.grid = plan.grid.window(from, to - from);
    plan
}

/// Appends `next` (the following steps) to `acc`; the caller sets the grid.
pub(crate) fn append(acc: &mut Schedule, next: Schedule) {
    for (a, b) in acc.assets.iter_mut().zip(next.assets) {
        for (fa, fb) in a.flows.iter_mut().zip(b.flows) {
            fa.kw.extend(fb.kw);
        }
        match (&mut a.detail, b.detail) {
            (
                Detail::Load { demand_kw, served_kw, shed_kw },
                Detail::Load { demand_kw: d, served_kw: s, shed_kw: x },
            ) => {
                demand_kw.extend(d);
                served_kw.extend(s);
                shed_kw.extend(x);
            }
            (Detail::Renewable { available_kw, output_kw }, Detail::Renewable { available_kw: a2, output_kw: o }) => {
                available_kw.extend(a2);
                output_kw.extend(o);
            }
            (
                Detail::Unit { output_kw, fuel_kw, on, starts },
                Detail::Unit { output_kw: o, fuel_kw: f, on: u, starts: s },
            ) => {
                output_kw.extend(o);
                if let (Some(a), Some(b)) = (fuel_kw, f) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (on, u) {
                    a.extend(b);
                }
                if let (Some(a), Some(b)) = (starts, s) {
                    a.extend(b);
                }
            }
            (Detail::Grid { import_kw, export_kw }, Detail::Grid { import_kw: i, export_kw: e }) => {
                import_kw.extend(i);
                export_kw.extend(e);
            }
            (
                Detail::Storage { charge_kw, discharge_kw, energy_kwh, .. },
                Detail::Storage { charge_kw: c, discharge_kw: d, energy_kwh: e, .. },
            ) => {
                charge_kw.extend(c);
                discharge_kw.extend(d);
                energy_kwh.extend(e);
            }
            _ => {}
        }
    }
    for (a, b) in acc.buses.iter_mut().zip(next.buses) {
        a.unserved_kw.extend(b.unserved_kw);
        match (&mut a.price, b.price) {
            (Some(p), Some(q)) => p.extend(q),
            (p, _) => *p = None,
        }
    }
}

/// The state at the end of the stitched schedule `plan`.
pub(crate) fn carry(case: &Case, plan: &Schedule) -> CarriedState {
    let h = case.grid().step_hours();
    let end = plan.grid.len();
    let mut state = CarriedState::default();
    for (i, (asset, sched)) in case.assets().iter().zip(&plan.assets).enumerate() {
        let carried = match (&asset.kind, &sched.detail) {
            (AssetKind::Storage(_), Detail::Storage { energy_kwh, .. }) => {
                energy_kwh.last().map(|&e| AssetState::Storage { energy_kwh: e })
            }
            (AssetKind::Thermal(_) | AssetKind::Converter(_), Detail::Unit { output_kw, on, .. }) => {
                let power_kw = output_kw.last().copied().unwrap_or(0.0);
                match on {
                    Some(on) => {
                        let last = on.last().copied().unwrap_or(false);
                        let run = on.iter().rev().take_while(|&&b| b == last).count();
                        // A run reaching back to the start continues the initial state.
                        let before = if run == on.len() { initial_run(asset, last) } else { 0.0 };
                        Some(AssetState::Unit {
                            power_kw,
                            on: last,
                            hours_in_state: run as f64 * h + before,
                            starts_in: None,
                        })
                    }
                    None => {
                        Some(AssetState::Unit { power_kw, on: true, hours_in_state: f64::INFINITY, starts_in: None })
                    }
                }
            }
            (AssetKind::Grid(g), Detail::Grid { import_kw, .. }) if g.peak_demand_charge > 0.0 => {
                Some(AssetState::Grid { peak_kw: import_kw.iter().copied().fold(0.0, f64::max) })
            }
            (AssetKind::Load(load), Detail::Load { served_kw, shed_kw, .. }) => {
                load.shiftable.as_ref().and_then(|s| case.grid().steps_in(s.window_h)).map(|w| {
                    let from = end - end % w.max(1);
                    let served = (from..end).map(|t| (served_kw[t] + shed_kw[t]) * h).sum();
                    AssetState::Shift { served_kwh: served }
                })
            }
            _ => None,
        };
        if let Some(c) = carried {
            state.assets.insert(i, c);
        }
    }
    state
}

/// The start-ups under way where a window's `plan` is cut after `keep`
/// steps: units off at the cut that start at a step `s` whose start-up
/// trajectory began before it, as (asset index, `s - keep`). The next
/// window must make those starts.
pub(crate) fn starts_under_way(case: &Case, plan: &Schedule, keep: usize) -> Vec<(usize, usize)> {
    let mut under_way = Vec::new();
    for (i, (asset, sched)) in case.assets().iter().zip(&plan.assets).enumerate() {
        let Some((uc, _)) = crate::fleet::commitment_of(&asset.kind) else { continue };
        let Detail::Unit { on: Some(on), .. } = &sched.detail else { continue };
        let steps = uc.startup_trajectory_kw.len();
        if steps == 0 || keep == 0 || keep >= on.len() || on[keep - 1] {
            continue;
        }
        if let Some(s) = (keep..on.len().min(keep + steps)).find(|&s| on[s]) {
            under_way.push((i, s - keep));
        }
    }
    under_way
}

/// Hours a unit had been in `on_state` before the case started.
fn initial_run(asset: &volta_engine::Asset, on_state: bool) -> f64 {
    let commitment = match &asset.kind {
        AssetKind::Thermal(th) => th.commitment.as_ref(),
        AssetKind::Converter(cv) => cv.commitment.as_ref(),
        AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => None,
    };
    match commitment {
        Some(uc) if uc.initial.on == on_state => uc.initial.hours_in_state.unwrap_or(f64::INFINITY),
        _ => 0.0,
    }
}
