//! Two-stage stochastic scheduling: one plan for the many ways a day can
//! turn out, and the cost of a plan once the day is known.
//!
//! A [`Scenario`] is the case with some of its uncertain series (loads,
//! renewable availability, grid prices; see [`SeriesRef`]) replaced by the
//! values they take in that scenario, with a probability.
//!
//! ## The model ([`two_stage`])
//!
//! **First stage**, decided before the day and the same in every scenario:
//! - the on/off state of every unit under commitment at every step
//!   (start-ups and shut-downs follow from it);
//! - with an imbalance penalty, a *nomination* per grid and step: the net
//!   import (import − export, kW) bought ahead.
//!
//! **Second stage**, per scenario: everything else: unit outputs within
//! the committed states, storage, curtailment, shedding and unserved
//! demand at their values of lost load, and grid flows. A grid flow that
//! differs from its nomination pays the penalty per kWh of the difference,
//! on top of the grid's prices: the two-settlement rule of a day-ahead and
//! a balancing market, with a symmetric imbalance price of the day-ahead
//! price ± the penalty.
//!
//! The objective is the expected cost `Σ_s p_s·c_s`; with a risk measure,
//! `(1 − w)·Σ_s p_s·c_s + w·CVaR_α(c)`, CVaR in the linear form of
//! Rockafellar and Uryasev (2000): `η + Σ_s p_s·z_s / (1 − α)` with
//! `z_s ≥ c_s − η`, `z_s ≥ 0`. `CVaR_α` is the expected cost of the worst
//! `1 − α` of the probability.
//!
//! It is solved as one MILP (the extensive form), every scenario a copy of
//! the deterministic model, with the first stage tied across copies by
//! equalities. With one scenario it *is* the deterministic model: its
//! nominations equal the flows, so no imbalance is paid, and the optimum
//! is [`schedule`](crate::schedule)'s.
//!
//! ## Re-dispatch ([`redispatch`])
//!
//! Given a [`Plan`] and the case as it turned out, the first stage is held
//! and only the second stage is solved: the realised cost of the plan,
//! including the imbalance it pays. Re-dispatching a plan against one of
//! its own scenarios gives that scenario's cost in the plan's solution.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use volta_engine::{AssetId, AssetKind, Case, SeriesRef};
use volta_lp::{Col, Integrality, Lin, Lp};

use crate::error::DispatchError;
use crate::model::{AssetVars, CarriedState, Mode, Model, Window};
use crate::options::{Objective, Options};
use crate::plan::{Detail, Schedule, SolveStats, Status};
use crate::solve::{self, clean};

/// The most scenarios one model takes.
pub const MAX_SCENARIOS: usize = 1_000;

/// The most scenario-steps (scenarios × steps of the case) one model takes:
/// about 150 columns and rows per scenario-step on the campus case, so the
/// extensive form stays under a few GB.
pub const MAX_SCENARIO_STEPS: usize = 200_000;

/// One way the case's uncertain series can turn out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// A name for reports (unique within a set).
    pub name: String,
    /// Its probability; the probabilities of a set sum to 1.
    pub probability: f64,
    /// The series it replaces, one value per step of the case; every other
    /// series keeps the case's values.
    pub series: Vec<(SeriesRef, Vec<f64>)>,
}

/// Conditional value at risk of the cost, blended with its expectation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Cvar {
    /// The level: CVaR is the expected cost of the worst `1 − alpha` of the
    /// probability (0.9: the worst 10 %). In [0, 1).
    pub alpha: f64,
    /// The weight of CVaR against the expected cost, in [0, 1]
    /// (1: minimise CVaR alone).
    pub weight: f64,
}

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct StochasticOptions {
    /// Solver options; the objective must be cost.
    pub options: Options,
    /// With a penalty (currency per kWh), grids are nominated in the first
    /// stage and each kWh of difference pays it; without, grid flows are
    /// second-stage decisions like any other.
    pub imbalance_penalty: Option<f64>,
    /// A risk measure to blend into the objective.
    pub risk: Option<Cvar>,
}

/// The decisions made before the day: what a plan commits to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Per unit under commitment, its state at each step.
    pub commitment: Vec<UnitPlan>,
    /// Per grid, when nominated: the net import bought ahead.
    pub nominations: Vec<Nomination>,
}

/// A unit's planned on/off states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitPlan {
    /// The unit.
    pub asset: AssetId,
    /// On at each step.
    pub on: Vec<bool>,
}

/// A grid's nominated net import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Nomination {
    /// The grid.
    pub asset: AssetId,
    /// Import minus export at each step, kW.
    pub net_import_kw: Vec<f64>,
}

/// How one scenario turns out under the plan.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioOutcome {
    /// The scenario's name.
    pub name: String,
    /// Its probability.
    pub probability: f64,
    /// Its total cost: the schedule's cost plus the imbalance paid.
    pub cost: f64,
    /// What the grid flows' differences from the nominations cost.
    pub imbalance_cost: f64,
    /// Energy by which grid flows differ from the nominations, kWh.
    pub imbalance_kwh: f64,
    /// Demand not served (shed or unserved), kWh.
    pub unserved_kwh: f64,
    /// Its second-stage schedule (first-stage states included), which
    /// [`verify::check`](crate::verify::check) accepts against the
    /// scenario's case.
    pub schedule: Schedule,
}

/// The result of [`two_stage`] or [`redispatch`].
#[derive(Debug, Clone, Serialize)]
pub struct StochasticSolution {
    /// How the solve ended.
    pub status: Status,
    /// The objective (expected cost, blended with CVaR when asked).
    pub objective: Option<f64>,
    /// The best proven bound on the objective.
    pub best_bound: Option<f64>,
    /// The relative gap between the two.
    pub gap: Option<f64>,
    /// The first-stage decisions, when a solution exists.
    pub plan: Option<Plan>,
    /// Per scenario, when a solution exists.
    pub scenarios: Vec<ScenarioOutcome>,
    /// Size and timings of the one model.
    pub stats: SolveStats,
}

impl StochasticSolution {
    /// `Σ_s p_s·c_s`.
    #[must_use]
    pub fn expected_cost(&self) -> Option<f64> {
        (!self.scenarios.is_empty()).then(|| self.scenarios.iter().map(|s| s.probability * s.cost).sum())
    }

    /// The cost distribution's `q`-quantile (the smallest cost whose
    /// cumulative probability reaches `q`).
    #[must_use]
    pub fn cost_quantile(&self, q: f64) -> Option<f64> {
        cost_quantile(&self.scenarios.iter().map(|s| (s.cost, s.probability)).collect::<Vec<_>>(), q)
    }

    /// The expected cost of the worst `1 − alpha` of the probability.
    #[must_use]
    pub fn cvar(&self, alpha: f64) -> Option<f64> {
        cvar(&self.scenarios.iter().map(|s| (s.cost, s.probability)).collect::<Vec<_>>(), alpha)
    }
}

/// The `q`-quantile of a discrete distribution of `(cost, probability)`:
/// the smallest cost whose cumulative probability reaches `q`.
#[must_use]
pub fn cost_quantile(outcomes: &[(f64, f64)], q: f64) -> Option<f64> {
    let mut sorted = outcomes.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut cumulative = 0.0;
    for &(cost, p) in &sorted {
        cumulative += p;
        if cumulative >= q - 1e-12 {
            return Some(cost);
        }
    }
    sorted.last().map(|c| c.0)
}

/// CVaR at `alpha` of a discrete distribution of `(cost, probability)`:
/// the probability-weighted mean of the highest costs making up `1 − alpha`
/// of the mass, the last one taken in part.
#[must_use]
pub fn cvar(outcomes: &[(f64, f64)], alpha: f64) -> Option<f64> {
    if outcomes.is_empty() || !(0.0..1.0).contains(&alpha) {
        return None;
    }
    let mut sorted = outcomes.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let tail = 1.0 - alpha;
    let (mut mass, mut sum) = (0.0, 0.0);
    for (cost, p) in sorted {
        let take = p.min(tail - mass);
        if take <= 0.0 {
            break;
        }
        mass += take;
        sum += take * cost;
    }
    Some(sum / mass)
}

/// Plans `case` under `scenarios`: the first stage that minimises the
/// expected cost (or its blend with CVaR) over them.
///
/// # Errors
/// [`DispatchError::Option`] naming the scenario and field for a bad
/// scenario set (no scenarios, too many, probabilities not summing to 1,
/// a series that does not fit the case) or option; [`DispatchError::Solver`]
/// if HiGHS fails; [`DispatchError::Cancelled`].
pub fn two_stage(
    case: &Case,
    scenarios: &[Scenario],
    options: &StochasticOptions,
) -> Result<StochasticSolution, DispatchError> {
    check(case, options)?;
    let (cases, names, probabilities) = scenario_cases(case, scenarios)?;
    extensive(&cases, &names, &probabilities, None, options)
}

/// Per scenario: its case, its name and its probability.
pub(crate) type ScenarioCases = (Vec<Case>, Vec<String>, Vec<f64>);

/// Each scenario as a case of its own, with its name and its probability
/// (normalised exactly), after checking the set.
pub(crate) fn scenario_cases(case: &Case, scenarios: &[Scenario]) -> Result<ScenarioCases, DispatchError> {
    if scenarios.is_empty() {
        return Err(DispatchError::Option("scenarios: at least one is needed".to_owned()));
    }
    budget(case, scenarios.len())?;
    let total: f64 = scenarios.iter().map(|s| s.probability).sum();
    if (total - 1.0).abs() > 1e-6 {
        return Err(DispatchError::Option(format!("scenarios: the probabilities sum to {total}, not 1")));
    }
    let mut cases = Vec::with_capacity(scenarios.len());
    let mut names = std::collections::HashSet::new();
    for (k, scenario) in scenarios.iter().enumerate() {
        let at = |field: &str| format!("scenarios[{k}] ({:?}).{field}", scenario.name);
        if !names.insert(scenario.name.as_str()) {
            return Err(DispatchError::Option(format!("{}: the name is used twice", at("name"))));
        }
        if !(scenario.probability.is_finite() && scenario.probability > 0.0) {
            return Err(DispatchError::Option(format!(
                "{}: must be a positive number, not {}",
                at("probability"),
                scenario.probability
            )));
        }
        let mut built = case.clone();
        for (series, values) in &scenario.series {
            built = built
                .with_series(series, values.clone())
                .map_err(|e| DispatchError::Option(format!("{}: {e}", at("series"))))?;
        }
        cases.push(built);
    }
    // Probabilities normalised exactly.
    let probabilities: Vec<f64> = scenarios.iter().map(|s| s.probability / total).collect();
    let names: Vec<String> = scenarios.iter().map(|s| s.name.clone()).collect();
    Ok((cases, names, probabilities))
}

/// The realised cost of `plan` on `actual`, the case as the day turned
/// out: the second stage solved with the plan's commitment and
/// nominations held. Its one scenario is called `actual`.
///
/// # Errors
/// [`DispatchError::Option`] for a plan that does not fit the case (an
/// unknown unit or grid, a wrong length, nominations without a penalty or
/// the reverse), and as [`two_stage`].
pub fn redispatch(
    actual: &Case,
    plan: &Plan,
    options: &StochasticOptions,
) -> Result<StochasticSolution, DispatchError> {
    check(actual, options)?;
    let n = actual.grid().len();
    for (k, unit) in plan.commitment.iter().enumerate() {
        let committed = actual.assets().iter().any(|a| a.id == unit.asset && under_commitment(&a.kind));
        if !committed {
            return Err(DispatchError::Option(format!(
                "plan.commitment[{k}]: {:?} is not a unit under commitment in the case",
                unit.asset.as_str()
            )));
        }
        if unit.on.len() != n {
            return Err(DispatchError::Option(format!(
                "plan.commitment[{k}] ({}): {} states for a case of {n} steps",
                unit.asset,
                unit.on.len()
            )));
        }
    }
    for asset in actual.assets() {
        if under_commitment(&asset.kind) && !plan.commitment.iter().any(|u| u.asset == asset.id) {
            return Err(DispatchError::Option(format!(
                "plan.commitment: no states for {}, a unit under commitment in the case",
                asset.id
            )));
        }
    }
    let grids: Vec<&AssetId> =
        actual.assets().iter().filter(|a| matches!(a.kind, AssetKind::Grid(_))).map(|a| &a.id).collect();
    match options.imbalance_penalty {
        Some(_) => {
            for grid in &grids {
                let Some(nomination) = plan.nominations.iter().find(|n| &n.asset == *grid) else {
                    return Err(DispatchError::Option(format!(
                        "plan.nominations: none for grid {grid}, which an imbalance penalty nominates"
                    )));
                };
                if nomination.net_import_kw.len() != n || nomination.net_import_kw.iter().any(|v| !v.is_finite()) {
                    return Err(DispatchError::Option(format!(
                        "plan.nominations ({grid}): needs {n} finite values, has {}",
                        nomination.net_import_kw.len()
                    )));
                }
            }
        }
        None if !plan.nominations.is_empty() => {
            return Err(DispatchError::Option(
                "plan.nominations: the plan nominates grids; give the imbalance penalty it was made with".to_owned(),
            ));
        }
        None => {}
    }
    if let Some(extra) = plan.nominations.iter().find(|n| !grids.contains(&&n.asset)) {
        return Err(DispatchError::Option(format!("plan.nominations: {} is not a grid of the case", extra.asset)));
    }
    extensive(std::slice::from_ref(actual), &["actual".to_owned()], &[1.0], Some(plan), options)
}

pub(crate) fn check(case: &Case, options: &StochasticOptions) -> Result<(), DispatchError> {
    crate::whole_horizon(case, "a plan over scenarios")?;
    crate::check_options(&options.options)?;
    if options.options.objective != Objective::Cost {
        return Err(DispatchError::Option(format!(
            "objective: stochastic planning minimises cost, not {}",
            options.options.objective.name()
        )));
    }
    if let Some(p) = options.imbalance_penalty
        && !(p.is_finite() && (0.0..=volta_engine::MAX_MAGNITUDE).contains(&p))
    {
        return Err(DispatchError::Option(format!("imbalance_penalty must be a number in [0, 1e9], not {p}")));
    }
    if let Some(risk) = options.risk {
        if !(0.0..1.0).contains(&risk.alpha) {
            return Err(DispatchError::Option(format!("cvar alpha must be in [0, 1), not {}", risk.alpha)));
        }
        if !(0.0..=1.0).contains(&risk.weight) {
            return Err(DispatchError::Option(format!("cvar weight must be in [0, 1], not {}", risk.weight)));
        }
    }
    budget(case, 1)
}

fn budget(case: &Case, scenarios: usize) -> Result<(), DispatchError> {
    if scenarios > MAX_SCENARIOS {
        return Err(DispatchError::Option(format!("scenarios: {scenarios} given, at most {MAX_SCENARIOS}")));
    }
    let steps = case.grid().len();
    if scenarios.saturating_mul(steps) > MAX_SCENARIO_STEPS {
        return Err(DispatchError::Option(format!(
            "scenarios: {scenarios} scenarios of {steps} steps make {} scenario-steps, at most {MAX_SCENARIO_STEPS}; \
             reduce the scenarios or shorten the case",
            scenarios * steps
        )));
    }
    Ok(())
}

/// The first-stage columns of one model.
pub(crate) struct FirstStage {
    /// Per unit under commitment: its asset index and its `on` columns (of
    /// the first scenario; the others are tied to them).
    pub(crate) units: Vec<(usize, Vec<Col>)>,
    /// Per nominated grid: its asset index and its nomination columns.
    pub(crate) nominations: Vec<(usize, Vec<Col>)>,
}

/// The extensive form's problem before its objective: every scenario's
/// model in one LP, tied by the first stage.
pub(crate) struct Built {
    pub(crate) lp: Lp,
    models: Vec<Model>,
    pub(crate) first: FirstStage,
    /// Per scenario: its cost (the imbalance included).
    pub(crate) costs: Vec<Lin>,
    /// Per scenario: its imbalance cost and energy.
    imbalances: Vec<(Lin, Lin)>,
}

/// Builds the models of `cases` (one per scenario, all the same
/// structure) into one problem, the first stage shared.
pub(crate) fn build(cases: &[Case], options: &StochasticOptions) -> Result<Built, DispatchError> {
    let base = &cases[0];
    let n = base.grid().len();
    let h = base.grid().step_hours();
    let state = CarriedState::default();
    let window = Window::whole(base, &state, false);
    let mut lp = Lp::new(Integrality::Integer);
    let mut first = FirstStage { units: Vec::new(), nominations: Vec::new() };
    if options.imbalance_penalty.is_some() {
        for (i, asset) in base.assets().iter().enumerate() {
            if matches!(asset.kind, AssetKind::Grid(_)) {
                lp.scope(&format!("{}.nomination", asset.id));
                first.nominations.push((i, lp.cols(n, f64::NEG_INFINITY, f64::INFINITY)));
            }
        }
    }
    let penalty = options.imbalance_penalty.unwrap_or(0.0);
    let mut models = Vec::with_capacity(cases.len());
    // Per scenario: its cost, imbalance cost and imbalance energy.
    let mut costs = Vec::with_capacity(cases.len());
    let mut imbalances = Vec::with_capacity(cases.len());
    for (s, case) in cases.iter().enumerate() {
        options.options.cancel.check()?;
        if cases.len() > 1 {
            lp.prefix(&format!("s{s}."));
        }
        let mut model = Model::build_in(case, &window, lp, Mode::Normal);
        lp = std::mem::replace(&mut model.lp, volta_lp::solve::placeholder());
        let mut imbalance_cost = Lin::new();
        let mut imbalance_kwh = Lin::new();
        for (i, nominated) in &first.nominations {
            let AssetVars::Grid { import, export } = &model.vars[*i] else { continue };
            lp.scope(&format!("{}.imbalance", base.assets()[*i].id));
            for t in 0..n {
                let (over, under) = (lp.col(0.0, f64::INFINITY), lp.col(0.0, f64::INFINITY));
                let lin = Lin::term(import[t], 1.0).with(export[t], -1.0).with(nominated[t], -1.0);
                lp.eq(lin.with(over, -1.0).with(under, 1.0), 0.0);
                imbalance_cost.add(over, penalty * h).add(under, penalty * h);
                imbalance_kwh.add(over, h).add(under, h);
            }
        }
        for (i, vars) in model.vars.iter().enumerate() {
            let AssetVars::Unit(unit) = vars else { continue };
            let Some(on) = &unit.on else { continue };
            if s == 0 {
                first.units.push((i, on.clone()));
            } else if let Some((_, first_on)) = first.units.iter().find(|(j, _)| *j == i) {
                lp.scope(&format!("{}.nonanticipativity", base.assets()[i].id));
                for (&u, &u0) in on.iter().zip(first_on) {
                    lp.eq(Lin::term(u, 1.0).with(u0, -1.0), 0.0);
                }
            }
        }
        let mut cost = model.cost();
        cost.add_lin(&imbalance_cost, 1.0);
        costs.push(cost);
        imbalances.push((imbalance_cost, imbalance_kwh));
        models.push(model);
    }
    lp.prefix("");
    Ok(Built { lp, models, first, costs, imbalances })
}

/// Builds and solves the extensive form over `cases` (one per scenario,
/// all the same structure), the first stage held at `fixed` if given.
pub(crate) fn extensive(
    cases: &[Case],
    names: &[String],
    probabilities: &[f64],
    fixed: Option<&Plan>,
    options: &StochasticOptions,
) -> Result<StochasticSolution, DispatchError> {
    options.options.cancel.check()?;
    let started = Instant::now();
    let base = &cases[0];
    let h = base.grid().step_hours();
    let Built { mut lp, models, first, costs, imbalances } = build(cases, options)?;
    if let Some(plan) = fixed {
        hold(&mut lp, base, &first, plan);
    }
    let expected_weight = 1.0 - options.risk.map_or(0.0, |r| r.weight);
    let mut objective = Lin::new();
    for (cost, &p) in costs.iter().zip(probabilities) {
        objective.add_lin(cost, expected_weight * p);
    }
    if let Some(risk) = options.risk.filter(|r| r.weight > 0.0) {
        lp.scope("cvar");
        let eta = lp.col(f64::NEG_INFINITY, f64::INFINITY);
        objective.add(eta, risk.weight);
        for (cost, &p) in costs.iter().zip(probabilities) {
            let excess = lp.col(0.0, f64::INFINITY);
            lp.ge(Lin::term(excess, 1.0).with(eta, 1.0).with_lin(cost, -1.0), 0.0);
            objective.add(excess, risk.weight * p / (1.0 - risk.alpha));
        }
    }
    let mut stats = SolveStats {
        columns: lp.num_cols(),
        rows: lp.num_rows(),
        binaries: lp.integers().len(),
        build_seconds: started.elapsed().as_secs_f64(),
        ..SolveStats::default()
    };
    options.options.cancel.check()?;
    let (settings, strategy) = solve::settings(&options.options, &lp);
    stats.strategy = Some(strategy);
    let solved = volta_lp::solve(lp, &objective, &settings).map_err(DispatchError::Solver)?;
    stats.solve_seconds = solved.seconds;
    let mut solution = StochasticSolution {
        status: solve::status_of(solved.outcome),
        objective: solved.objective,
        best_bound: solved.best_bound,
        gap: solved.gap,
        plan: None,
        scenarios: Vec::new(),
        stats,
    };
    let Some(x) = solved.x else { return Ok(solution) };
    let value = |c: &Col| x[c.0];
    solution.plan = Some(Plan {
        commitment: first
            .units
            .iter()
            .map(|(i, on)| UnitPlan {
                asset: base.assets()[*i].id.clone(),
                on: on.iter().map(|c| value(c) > 0.5).collect(),
            })
            .collect(),
        nominations: first
            .nominations
            .iter()
            .map(|(i, cols)| Nomination {
                asset: base.assets()[*i].id.clone(),
                net_import_kw: cols.iter().map(|c| clean(value(c))).collect(),
            })
            .collect(),
    });
    for (s, model) in models.iter().enumerate() {
        let schedule = solve::read_schedule(&cases[s], model, &x, None);
        let (imbalance_cost, imbalance_kwh) = &imbalances[s];
        let imbalance_cost = imbalance_cost.eval(&x);
        solution.scenarios.push(ScenarioOutcome {
            name: names[s].clone(),
            probability: probabilities[s],
            cost: schedule.cost + imbalance_cost,
            imbalance_cost,
            imbalance_kwh: clean(imbalance_kwh.eval(&x)),
            unserved_kwh: unserved_kwh(&schedule, h),
            schedule,
        });
    }
    Ok(solution)
}

/// Holds the first stage at `plan` (checked against the case by the caller).
fn hold(lp: &mut Lp, case: &Case, first: &FirstStage, plan: &Plan) {
    lp.scope("plan");
    for (i, on) in &first.units {
        let id = &case.assets()[*i].id;
        if let Some(unit) = plan.commitment.iter().find(|u| &u.asset == id) {
            for (&col, &state) in on.iter().zip(&unit.on) {
                lp.eq(Lin::term(col, 1.0), if state { 1.0 } else { 0.0 });
            }
        }
    }
    for (i, cols) in &first.nominations {
        let id = &case.assets()[*i].id;
        if let Some(nomination) = plan.nominations.iter().find(|n| &n.asset == id) {
            for (&col, &kw) in cols.iter().zip(&nomination.net_import_kw) {
                lp.eq(Lin::term(col, 1.0), kw);
            }
        }
    }
}

/// Whether an asset is a unit under commitment (a first-stage decision).
pub(crate) fn under_commitment(kind: &AssetKind) -> bool {
    match kind {
        AssetKind::Thermal(th) => th.commitment.is_some(),
        AssetKind::Converter(cv) => cv.commitment.is_some(),
        AssetKind::Load(_) | AssetKind::Renewable(_) | AssetKind::Grid(_) | AssetKind::Storage(_) => false,
    }
}

/// Demand shed or unserved in `schedule`, kWh.
fn unserved_kwh(schedule: &Schedule, h: f64) -> f64 {
    let unserved: f64 = schedule.buses.iter().flat_map(|b| &b.unserved_kw).sum();
    let shed: f64 = schedule
        .assets
        .iter()
        .filter_map(
            |a| if let Detail::Load { shed_kw, .. } = &a.detail { Some(shed_kw.iter().sum::<f64>()) } else { None },
        )
        .sum();
    (unserved + shed) * h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cvar_takes_the_worst_tail_with_the_last_outcome_in_part() {
        let outcomes = [(10.0, 0.5), (20.0, 0.3), (40.0, 0.2)];
        assert_eq!(cvar(&outcomes, 0.8), Some(40.0));
        // The worst 30 %: 0.2 at 40 and 0.1 at 20.
        let worst30 = cvar(&outcomes, 0.7).expect("cvar");
        assert!((worst30 - (0.2 * 40.0 + 0.1 * 20.0) / 0.3).abs() < 1e-12);
        // At alpha 0, the mean.
        assert!((cvar(&outcomes, 0.0).expect("cvar") - 19.0).abs() < 1e-12);
        assert_eq!(cvar(&outcomes, 1.0), None);
        assert_eq!(cvar(&[], 0.5), None);
    }
}
