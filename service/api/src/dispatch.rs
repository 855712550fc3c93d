//! Conversions between `volta.dispatch.v1` messages and the domain: each
//! request read into a checked call (every field destructured, so that a
//! field added to the proto cannot be silently ignored), the case text a
//! remote caller sends, and the schedules, fronts and windows sent back.

use jiff::SignedDuration;
use tonic::Status;
use volta_dispatch::{
    Detail, DispatchError, Front, Infeasibility, LpMethod, MAX_BLOCKS, MipStart, Objective, Resolved, RollingResult,
    Schedule, Solution, Strategy, WindowReport,
};
use volta_engine::{CaseReader, Checked, Format, TimeGrid};

use crate::pb::common;
use crate::pb::dispatch::{self as pb, case_text};
use crate::{status, time};

/// The length in bytes of a request's case text (0 when absent).
#[must_use]
pub fn case_bytes(case: Option<&pb::CaseText>) -> usize {
    match case.and_then(|c| c.format.as_ref()) {
        Some(case_text::Format::Json(text) | case_text::Format::Toml(text)) => text.len(),
        None => 0,
    }
}

/// Reads a case sent by a remote caller: every series inline, never a file
/// of the server's.
///
/// # Errors
/// The case's problems, each with the path of its field.
pub fn read_case(case: Option<pb::CaseText>) -> Result<Checked, volta_engine::Error> {
    let reader = CaseReader::new().inline_only();
    match case.and_then(|c| c.format) {
        Some(case_text::Format::Json(text)) => reader.read_str(&text, Format::Json),
        Some(case_text::Format::Toml(text)) => reader.read_str(&text, Format::Toml),
        None => reader.read_str("", Format::Json),
    }
}

/// The objective a request names, with its CO2 price.
///
/// # Errors
/// INVALID_ARGUMENT naming `objective` or `co2_price`.
pub fn objective(value: i32, co2_price: Option<f64>) -> Result<Objective, Status> {
    let name = match pb::Objective::try_from(value) {
        Ok(pb::Objective::Unspecified) => "",
        Ok(pb::Objective::Cost) => "cost",
        Ok(pb::Objective::Co2) => "co2",
        Ok(pb::Objective::Weighted) => "weighted",
        Err(_) => return Err(status::invalid("objective", format!("unknown value {value}"))),
    };
    Objective::from_request(name, co2_price).map_err(|e| status::invalid(e.field(), e.to_string()))
}

/// A relative MIP gap in [0, 1).
pub(crate) fn mip_gap(gap: Option<f64>) -> Result<Option<f64>, Status> {
    match gap {
        Some(g) if !(0.0..1.0).contains(&g) => {
            Err(status::invalid("mip_gap", format!("{g:?} is not a relative gap in [0, 1)")))
        }
        other => Ok(other),
    }
}

/// A solver time limit: positive when given.
pub(crate) fn time_limit(field: &str, limit: Option<prost_types::Duration>) -> Result<Option<SignedDuration>, Status> {
    match time::length(field, limit)? {
        Some(d) if d.is_zero() => Err(status::invalid(field, "a time limit must be positive".to_owned())),
        other => Ok(other),
    }
}

/// A request's solver strategy, checked.
fn solver_strategy(strategy: pb::SolverStrategy) -> Result<Strategy, Status> {
    let pb::SolverStrategy { lp_method, presolve, heuristic_effort, mip_start } = strategy;
    let lp_method = match pb::LpMethod::try_from(lp_method) {
        Ok(pb::LpMethod::Unspecified) => None,
        Ok(pb::LpMethod::Simplex) => Some(LpMethod::Simplex),
        Ok(pb::LpMethod::Ipm) => Some(LpMethod::Ipm),
        Err(_) => return Err(status::invalid("strategy.lp_method", format!("unknown value {lp_method}"))),
    };
    let mip_start = match pb::MipStart::try_from(mip_start) {
        Ok(pb::MipStart::Unspecified) => None,
        Ok(pb::MipStart::None) => Some(MipStart::None),
        Ok(pb::MipStart::Rounding) => Some(MipStart::Rounding),
        Ok(pb::MipStart::Check) => Some(MipStart::Check),
        Err(_) => return Err(status::invalid("strategy.mip_start", format!("unknown value {mip_start}"))),
    };
    let strategy = Strategy { lp_method, presolve, heuristic_effort, mip_start };
    // The heuristic effort is the one part with a range.
    strategy.check().map_err(|e| status::invalid("strategy.heuristic_effort", e.to_string()))?;
    Ok(strategy)
}

/// The strategy a solve used, as the API reports it.
fn used_strategy(strategy: Resolved) -> pb::SolverStrategy {
    pb::SolverStrategy {
        lp_method: match strategy.lp_method {
            LpMethod::Simplex => pb::LpMethod::Simplex,
            LpMethod::Ipm => pb::LpMethod::Ipm,
        }
        .into(),
        presolve: Some(strategy.presolve),
        heuristic_effort: strategy.heuristic_effort,
        mip_start: match strategy.mip_start {
            None => pb::MipStart::Unspecified,
            Some(MipStart::None) => pb::MipStart::None,
            Some(MipStart::Rounding) => pb::MipStart::Rounding,
            Some(MipStart::Check) => pb::MipStart::Check,
        }
        .into(),
    }
}

/// The solver settings every solving request carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Solving {
    /// What to minimise.
    pub objective: Objective,
    /// The relative MIP gap.
    pub mip_gap: Option<f64>,
    /// The requested time limit (of each solve, or each window).
    pub time_limit: Option<SignedDuration>,
    /// How HiGHS goes about the problem (unset parts: Volta's choice).
    pub strategy: Strategy,
}

/// A Schedule request, read and checked (the case is read later, off the
/// async executor).
#[derive(Debug)]
pub struct ScheduleCall {
    /// The case text.
    pub case: Option<pb::CaseText>,
    /// Objective, gap and time limit.
    pub solving: Solving,
    /// Whether the step-by-step schedule goes back.
    pub full: bool,
    /// Only these assets' schedules (all when empty).
    pub asset_ids: Vec<String>,
    /// Every committed unit on its own (no fleets).
    pub separate_units: bool,
    /// Blocks solved side by side, and the seams' half width in steps.
    pub blocks: Option<(usize, Option<usize>)>,
}

impl TryFrom<pb::ScheduleRequest> for ScheduleCall {
    type Error = Status;

    fn try_from(request: pb::ScheduleRequest) -> Result<Self, Status> {
        let pb::ScheduleRequest {
            case,
            objective: kind,
            co2_price,
            mip_gap: gap,
            time_limit: limit,
            view,
            asset_ids,
            separate_units,
            blocks,
            seam_steps,
            strategy,
        } = request;
        let full = match pb::ScheduleView::try_from(view) {
            Ok(pb::ScheduleView::Unspecified | pb::ScheduleView::Full) => true,
            Ok(pb::ScheduleView::Summary) => false,
            Err(_) => return Err(status::invalid("view", format!("unknown value {view}"))),
        };
        if !full && !asset_ids.is_empty() {
            return Err(status::invalid("asset_ids", "asset_ids select schedules: use SCHEDULE_VIEW_FULL".to_owned()));
        }
        let solving = Solving {
            objective: objective(kind, co2_price)?,
            mip_gap: mip_gap(gap)?,
            time_limit: time_limit("time_limit", limit)?,
            strategy: strategy.map(solver_strategy).transpose()?.unwrap_or_default(),
        };
        let blocks = match (blocks, seam_steps) {
            (None, Some(_)) => {
                return Err(status::invalid(
                    "seam_steps",
                    "seam_steps shape a decomposition: set blocks too".to_owned(),
                ));
            }
            (None, None) => None,
            (Some(n), _) if n == 0 || n as usize > MAX_BLOCKS => {
                let message = format!("{n}; a horizon is cut into 1 to {MAX_BLOCKS} blocks");
                return Err(status::invalid("blocks", message));
            }
            (Some(_), Some(0)) => return Err(status::invalid("seam_steps", "0; a seam is at least 1 step".to_owned())),
            (Some(n), seam) => Some((n as usize, seam.map(|s| s as usize))),
        };
        if blocks.is_some() && solving.objective == Objective::Co2 {
            let message = "a decomposition minimises cost or a weighted sum, not CO2 alone".to_owned();
            return Err(status::invalid("objective", message));
        }
        Ok(Self { case, solving, full, asset_ids, separate_units, blocks })
    }
}

/// A decomposition's refusal, on the request field it concerns.
#[must_use]
pub fn decomposition_error(err: &DispatchError) -> Status {
    match err {
        DispatchError::Option(message) if message.starts_with("blocks") => status::invalid("blocks", message.clone()),
        DispatchError::Option(message) if message.starts_with("seam_steps") => {
            status::invalid("seam_steps", message.clone())
        }
        other @ (DispatchError::Option(_) | DispatchError::Solver(_) | DispatchError::Cancelled) => {
            status::dispatch(other)
        }
    }
}

/// A Pareto request, read and checked.
#[derive(Debug)]
pub struct ParetoCall {
    /// The case text.
    pub case: Option<pb::CaseText>,
    /// Points on the front (the server bounds it by its limits).
    pub points: usize,
    /// Gap and time limit of each solve (the objective is cost, then CO2).
    pub solving: Solving,
}

impl TryFrom<pb::ParetoRequest> for ParetoCall {
    type Error = Status;

    fn try_from(request: pb::ParetoRequest) -> Result<Self, Status> {
        let pb::ParetoRequest { case, points, mip_gap: gap, time_limit: limit } = request;
        let solving = Solving {
            objective: Objective::Cost,
            mip_gap: mip_gap(gap)?,
            time_limit: time_limit("time_limit", limit)?,
            strategy: Strategy::default(),
        };
        Ok(Self { case, points: time::unsigned("points", points)?, solving })
    }
}

/// A RollingHorizon request, read and checked; its lengths become steps
/// once the case's grid is known ([`RollingCall::steps`]).
#[derive(Debug)]
pub struct RollingCall {
    /// The case text.
    pub case: Option<pb::CaseText>,
    /// Look-ahead of a window.
    pub horizon: SignedDuration,
    /// Time kept from a window (default: half the horizon).
    pub commit: Option<SignedDuration>,
    /// Objective, gap and time limit of each window.
    pub solving: Solving,
    /// Start every window cold (not from the previous window's commitment).
    pub cold_windows: bool,
    /// Also bound the cost from below by the LP relaxation.
    pub lower_bound: bool,
}

impl TryFrom<pb::RollingHorizonRequest> for RollingCall {
    type Error = Status;

    fn try_from(request: pb::RollingHorizonRequest) -> Result<Self, Status> {
        let pb::RollingHorizonRequest {
            case,
            horizon,
            commit,
            objective: kind,
            co2_price,
            mip_gap: gap,
            window_time_limit,
            cold_windows,
            lower_bound,
        } = request;
        let horizon = time::length("horizon", horizon)?
            .ok_or_else(|| status::invalid("horizon", "required: the look-ahead of a window".to_owned()))?;
        let solving = Solving {
            objective: objective(kind, co2_price)?,
            mip_gap: mip_gap(gap)?,
            time_limit: time_limit("window_time_limit", window_time_limit)?,
            strategy: Strategy::default(),
        };
        if lower_bound && solving.objective != Objective::Cost {
            let message = "a lower bound is computed for OBJECTIVE_COST without a co2_price only";
            return Err(status::invalid("lower_bound", message.to_owned()));
        }
        Ok(Self { case, horizon, commit: time::length("commit", commit)?, solving, cold_windows, lower_bound })
    }
}

impl RollingCall {
    /// The window's look-ahead and commitment in steps of `grid`.
    ///
    /// # Errors
    /// INVALID_ARGUMENT naming `horizon` or `commit` when one is not a
    /// positive whole number of steps.
    pub fn steps(&self, grid: &TimeGrid) -> Result<(usize, Option<usize>), Status> {
        let steps = |length: SignedDuration, field: &str| {
            let step = grid.step();
            let whole = !step.is_zero() && length.as_nanos() % step.as_nanos() == 0;
            Some(length.as_nanos() / step.as_nanos().max(1))
                .filter(|n| whole && *n > 0)
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| {
                    let message = format!("{length:#} is not a positive whole number of {} steps", grid.step_text());
                    status::invalid(field, message)
                })
        };
        Ok((steps(self.horizon, "horizon")?, self.commit.map(|c| steps(c, "commit")).transpose()?))
    }
}

/// How a solve ended, as sent.
#[must_use]
pub fn solve_status(status: volta_dispatch::Status) -> pb::SolveStatus {
    match status {
        volta_dispatch::Status::Optimal => pb::SolveStatus::Optimal,
        volta_dispatch::Status::WithinGap => pb::SolveStatus::WithinGap,
        volta_dispatch::Status::TimeLimit => pb::SolveStatus::TimeLimit,
        volta_dispatch::Status::IterationLimit => pb::SolveStatus::IterationLimit,
        volta_dispatch::Status::MemoryLimit => pb::SolveStatus::MemoryLimit,
        volta_dispatch::Status::Interrupted => pb::SolveStatus::Interrupted,
        volta_dispatch::Status::Infeasible => pb::SolveStatus::Infeasible,
        volta_dispatch::Status::Unbounded => pb::SolveStatus::Unbounded,
    }
}

/// An asset's kind from its case-file type name.
#[must_use]
pub fn asset_kind(type_name: &str) -> pb::AssetKind {
    match type_name {
        "load" => pb::AssetKind::Load,
        "renewable" => pb::AssetKind::Renewable,
        "thermal" => pb::AssetKind::Thermal,
        "grid" => pb::AssetKind::Grid,
        "converter" => pb::AssetKind::Converter,
        "storage" => pb::AssetKind::Storage,
        _ => pb::AssetKind::Unspecified,
    }
}

fn flags(v: &[bool]) -> Vec<f64> {
    v.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect()
}

/// An asset's own series, named as in `schedule.csv`.
fn detail(detail: &Detail) -> Vec<common::Series> {
    let series = |name: &str, values: &[f64]| common::Series { name: name.to_owned(), values: values.to_vec() };
    match detail {
        Detail::Load { demand_kw, served_kw, shed_kw } => {
            vec![series("demand_kw", demand_kw), series("served_kw", served_kw), series("shed_kw", shed_kw)]
        }
        Detail::Renewable { available_kw, output_kw } => {
            vec![series("available_kw", available_kw), series("output_kw", output_kw)]
        }
        Detail::Unit { output_kw, fuel_kw, on, starts } => {
            let mut out = vec![series("output_kw", output_kw)];
            out.extend(fuel_kw.as_deref().map(|f| series("fuel_kw", f)));
            out.extend(on.as_deref().map(|f| common::Series { name: "on".into(), values: flags(f) }));
            out.extend(starts.as_deref().map(|f| common::Series { name: "starts".into(), values: flags(f) }));
            out
        }
        Detail::Grid { import_kw, export_kw } => vec![series("import_kw", import_kw), series("export_kw", export_kw)],
        Detail::Storage { charge_kw, discharge_kw, energy_kwh, initial_kwh: _ } => {
            vec![series("charge_kw", charge_kw), series("discharge_kw", discharge_kw), series("energy_kwh", energy_kwh)]
        }
    }
}

/// The time grid of a schedule or a case.
#[must_use]
pub fn grid(grid: &TimeGrid) -> common::TimeGrid {
    time::grid(grid.instant(0), grid.step(), grid.len(), grid.time_zone())
}

/// A schedule step by step; with `assets`, only theirs.
#[must_use]
pub fn schedule(plan: &Schedule, assets: &[String]) -> pb::Schedule {
    pb::Schedule {
        grid: Some(grid(&plan.grid)),
        assets: plan
            .assets
            .iter()
            .filter(|a| assets.is_empty() || assets.iter().any(|id| a.id.as_str() == id))
            .map(|a| pb::AssetSchedule {
                id: a.id.to_string(),
                kind: asset_kind(a.kind).into(),
                flows: a.flows.iter().map(|f| pb::Flow { bus: f.bus.to_string(), power_kw: f.kw.clone() }).collect(),
                details: detail(&a.detail),
            })
            .collect(),
        buses: plan
            .buses
            .iter()
            .map(|b| pb::BusSchedule {
                id: b.id.to_string(),
                prices: b.price.clone().unwrap_or_default(),
                unserved_kw: b.unserved_kw.clone(),
            })
            .collect(),
    }
}

/// The asset ids of `wanted` that the case lacks, as an INVALID_ARGUMENT.
///
/// # Errors
/// Naming the first `asset_ids[i]` the case does not have.
pub fn check_assets(case: &volta_engine::Case, wanted: &[String]) -> Result<(), Status> {
    for (i, id) in wanted.iter().enumerate() {
        if !case.assets().iter().any(|a| a.id.as_str() == id) {
            return Err(status::invalid(
                &format!("asset_ids[{i}]"),
                format!("the case has no asset {}", status::shown(id)),
            ));
        }
    }
    Ok(())
}

/// The answer to a Schedule call.
#[must_use]
pub fn schedule_response(solved: &Solution, call: &ScheduleCall) -> pb::ScheduleResponse {
    let plan = solved.schedule.as_ref();
    pb::ScheduleResponse {
        status: solve_status(solved.status).into(),
        objective: solved.objective,
        best_bound: solved.best_bound,
        mip_gap: solved.gap,
        cost: plan.map(|p| p.cost),
        co2_kg: plan.map(|p| p.co2_kg),
        costs: costs(plan),
        infeasibility: explanation(solved.infeasibility.as_ref()),
        solve_time: Some(time::seconds(solved.stats.solve_seconds)),
        schedule: plan.filter(|_| call.full).map(|p| schedule(p, &call.asset_ids)),
        exact_cost: solved.exact.map(|e| e.cost),
        exact_lower_bound: solved.exact.and_then(|e| e.lower_bound),
        strategy: solved.stats.strategy.map(used_strategy),
        proven_by_relaxation: solved.stats.proven_by_relaxation,
    }
}

/// The answer to a Pareto call.
#[must_use]
pub fn pareto_response(front: &Front) -> pb::ParetoResponse {
    pb::ParetoResponse {
        points: front
            .points
            .iter()
            .map(|p| pb::ParetoPoint {
                co2_cap_kg: p.co2_cap_kg,
                cost: p.cost,
                co2_kg: p.co2_kg,
                status: solve_status(p.status).into(),
            })
            .collect(),
        dropped_points: time::count(front.dropped),
    }
}

/// One window of a rolling run, with the steps it commits.
#[must_use]
pub fn window(report: &WindowReport, index: usize, windows: usize, committed: Option<&Schedule>) -> pb::WindowResult {
    pb::WindowResult {
        index: time::count(index),
        windows: time::count(windows),
        start_step: time::count(report.start),
        steps: time::count(report.len),
        status: solve_status(report.status).into(),
        objective: report.objective,
        solve_time: Some(time::seconds(report.solve_seconds)),
        build_time: Some(time::seconds(report.build_seconds)),
        committed: committed.map(|p| schedule(p, &[])),
        warm_start_columns: time::count(report.warm_start),
        proven_by_relaxation: report.proven_by_relaxation,
    }
}

/// The stitched summary of a rolling run; `status` overrides the run's
/// own (a deadline that ended it early is a time limit).
#[must_use]
pub fn rolling_summary(result: &RollingResult, status: Option<pb::SolveStatus>) -> pb::RollingHorizonSummary {
    let plan = result.schedule.as_ref();
    pb::RollingHorizonSummary {
        status: status.unwrap_or_else(|| solve_status(result.status)).into(),
        cost: plan.map(|p| p.cost),
        co2_kg: plan.map(|p| p.co2_kg),
        costs: costs(plan),
        infeasibility: explanation(result.infeasibility.as_ref()),
        steps: plan.map_or(0, |p| time::count(p.grid.len())),
        lower_bound: result.lower_bound,
    }
}

/// Why a case was infeasible, in plant terms; empty when it was not.
#[must_use]
pub fn explanation(infeasibility: Option<&Infeasibility>) -> String {
    infeasibility.map(Infeasibility::report).unwrap_or_default()
}

/// The cost of a schedule by category (empty without a schedule).
#[must_use]
pub fn costs(plan: Option<&Schedule>) -> Vec<pb::CategoryCost> {
    plan.map(|p| {
        p.cost_by_category()
            .into_iter()
            .map(|(c, cost)| pb::CategoryCost { category: c.name().to_owned(), cost })
            .collect()
    })
    .unwrap_or_default()
}
