//! Progressive hedging: the two-stage problem decomposed by scenario, for
//! scenario counts the extensive form cannot hold, the scenarios solved in
//! parallel (rayon).
//!
//! Each iteration solves every scenario alone, its first-stage decisions
//! `z_s` (unit states and grid nominations) free but priced: by weights
//! `W_s` and by a proximal term that pulls them to the probability-weighted
//! mean `z̄` (Rockafellar and Wets, 1991). Then `W_s += ρ·(z_s − z̄)`, which
//! keeps `Σ_s p_s W_s = 0`. For a binary state the proximal term
//! `ρ/2·(u − ū)²` equals `ρ/2·(u·(1 − 2ū) + ū²)`, linear, so every
//! subproblem stays a MILP; for a nomination it is `ρ_n·|n − n̄|` (two
//! columns), the linear variant.
//!
//! PH is a heuristic for a MILP, so every claim is bounded:
//! - **Upper bound:** each iteration's mean first stage (states rounded)
//!   is a plan; re-dispatched against every scenario it has an expected
//!   cost, which a real plan attains. The best plan so far is returned.
//! - **Lower bound:** for weights with `Σ_s p_s W_s = 0`, the expected
//!   optimum of the scenarios solved alone with their weights and no
//!   proximal term bounds the two-stage optimum from below (Gade et al.,
//!   2016); with zero weights it is the wait-and-see value. A nomination's
//!   weight is held within what its imbalance and proximal terms cost (a
//!   larger one would make its subproblem unbounded); when that breaks
//!   `Σ_s p_s W_s = 0`, or a weight exceeds the imbalance penalty alone,
//!   only the wait-and-see bound is used.
//! - The reported gap is between the two, so the decomposition and the
//!   extensive form agree within it by construction.

use rayon::prelude::*;
use serde::Serialize;
use volta_engine::Case;
use volta_lp::Lin;

use crate::error::DispatchError;
use crate::solve;
use crate::stochastic::{
    Nomination, Plan, Scenario, StochasticOptions, StochasticSolution, UnitPlan, build, check, extensive,
    scenario_cases, under_commitment,
};

/// How hard to hedge.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hedging {
    /// Penalty weight on a unit state's distance from the mean, currency
    /// per unit of state.
    pub rho: f64,
    /// Penalty weight on a nomination's distance from the mean, currency
    /// per kW and step (default: the imbalance penalty × the step's hours,
    /// what that distance would cost as imbalance).
    pub rho_nomination: Option<f64>,
    /// Stop after this many iterations.
    pub max_iterations: usize,
    /// Stop when the scenarios' states all agree and their nominations
    /// differ from the mean by at most this many kW (probability-weighted
    /// mean over steps).
    pub tolerance_kw: f64,
}

impl Default for Hedging {
    fn default() -> Self {
        Self { rho: 20.0, rho_nomination: None, max_iterations: 30, tolerance_kw: 1.0 }
    }
}

/// One iteration of progressive hedging.
#[derive(Debug, Clone, Serialize)]
pub struct Iteration {
    /// Probability-weighted share of unit states that differ from the mean's rounding.
    pub state_disagreement: f64,
    /// Probability-weighted mean |n_s − n̄| over grids and steps, kW.
    pub nomination_disagreement_kw: f64,
    /// The expected cost of this iteration's mean plan.
    pub plan_cost: f64,
}

/// How progressive hedging went.
#[derive(Debug, Clone, Serialize)]
pub struct HedgingReport {
    /// Per iteration.
    pub iterations: Vec<Iteration>,
    /// Whether the scenarios agreed within the tolerance.
    pub converged: bool,
    /// The best lower bound on the two-stage optimum.
    pub lower_bound: f64,
    /// The expected cost of the returned plan.
    pub upper_bound: f64,
    /// `(upper − lower) / |upper|`.
    pub gap: f64,
}

/// First-stage values of one scenario: states per unit, nominations per grid.
#[derive(Debug, Clone, PartialEq)]
struct Decisions {
    states: Vec<Vec<f64>>,
    nominations: Vec<Vec<f64>>,
}

/// Plans `case` under `scenarios` by progressive hedging; the solution is
/// the best plan found, evaluated against every scenario, with the report.
///
/// # Errors
/// As [`two_stage`](crate::two_stage); a risk measure is refused (CVaR
/// couples the scenarios).
pub fn progressive_hedging(
    case: &Case,
    scenarios: &[Scenario],
    options: &StochasticOptions,
    hedging: &Hedging,
) -> Result<(StochasticSolution, HedgingReport), DispatchError> {
    check(case, options)?;
    if options.risk.is_some() {
        return Err(DispatchError::Option(
            "risk: CVaR couples the scenarios; plan with the extensive form (two_stage)".to_owned(),
        ));
    }
    if !(hedging.rho.is_finite() && hedging.rho > 0.0) {
        return Err(DispatchError::Option(format!("rho must be a positive number, not {}", hedging.rho)));
    }
    if hedging.max_iterations == 0 || hedging.max_iterations > 1000 {
        return Err(DispatchError::Option("max_iterations must be in 1..=1000".to_owned()));
    }
    let (cases, names, p) = scenario_cases(case, scenarios)?;
    let h = case.grid().step_hours();
    let rho_n = hedging.rho_nomination.unwrap_or_else(|| options.imbalance_penalty.unwrap_or(0.0) * h).max(1e-9);
    // Zero weights, no proximal term: the wait-and-see solves.
    let alone = solve_all(&cases, options, None, None)?;
    let mut lower_bound: f64 = alone.iter().zip(&p).map(|((_, v), p)| p * v).sum();
    let mut z: Vec<Decisions> = alone.into_iter().map(|(d, _)| d).collect();
    let mut w: Vec<Decisions> = z.iter().map(zeros_like).collect();
    let mut report = HedgingReport {
        iterations: Vec::new(),
        converged: false,
        lower_bound,
        upper_bound: f64::INFINITY,
        gap: f64::INFINITY,
    };
    let mut best: Option<Plan> = None;
    for _ in 0..hedging.max_iterations {
        options.options.cancel.check()?;
        let mean = weighted_mean(&z, &p);
        let plan = plan_of(case, &mean);
        let cost = expected_cost(&cases, &names, &p, &plan, options)?;
        let (states_off, kw_off) = disagreement(&z, &mean, &p);
        report.iterations.push(Iteration {
            state_disagreement: states_off,
            nomination_disagreement_kw: kw_off,
            plan_cost: cost,
        });
        if cost < report.upper_bound {
            report.upper_bound = cost;
            best = Some(plan);
        }
        if states_off == 0.0 && kw_off <= hedging.tolerance_kw {
            report.converged = true;
            break;
        }
        // A nomination's weight beyond what its imbalance and proximal terms
        // cost would make its subproblem unbounded: held just inside.
        let cap = 0.999 * (options.imbalance_penalty.unwrap_or(0.0) * h + rho_n);
        for (ws, zs) in w.iter_mut().zip(&z) {
            update(ws, zs, &mean, hedging.rho, rho_n, cap);
        }
        let proximal = Proximal { mean: &mean, rho: hedging.rho, rho_n };
        let solved = solve_all(&cases, options, Some(&w), Some(&proximal))?;
        z = solved.into_iter().map(|(d, _)| d).collect();
    }
    // The bound of the final weights (no proximal term), when it is one:
    // the weights must average to zero (held weights may not) and leave
    // every subproblem bounded.
    let penalty_h = options.imbalance_penalty.unwrap_or(0.0) * h;
    let mean_weight = weighted_mean(&w, &p);
    let balanced = mean_weight.states.iter().chain(&mean_weight.nominations).flatten().all(|v| v.abs() < 1e-6);
    let bounded = w.iter().flat_map(|ws| ws.nominations.iter().flatten()).all(|v| v.abs() < penalty_h);
    if balanced
        && bounded
        && let Ok(weighted) = solve_all(&cases, options, Some(&w), None)
    {
        let bound: f64 = weighted.iter().zip(&p).map(|((_, v), p)| p * v).sum();
        lower_bound = lower_bound.max(bound);
    }
    report.lower_bound = lower_bound;
    report.gap = (report.upper_bound - lower_bound).max(0.0) / report.upper_bound.abs().max(1e-9);
    let plan = best.unwrap_or_default();
    let solution = extensive(&cases, &names, &p, Some(&plan), options)?;
    Ok((solution, report))
}

/// The proximal term of an iteration.
struct Proximal<'a> {
    mean: &'a Decisions,
    rho: f64,
    rho_n: f64,
}

fn zeros_like(d: &Decisions) -> Decisions {
    Decisions {
        states: d.states.iter().map(|v| vec![0.0; v.len()]).collect(),
        nominations: d.nominations.iter().map(|v| vec![0.0; v.len()]).collect(),
    }
}

fn weighted_mean(z: &[Decisions], p: &[f64]) -> Decisions {
    let mut mean = zeros_like(&z[0]);
    for (zs, &ps) in z.iter().zip(p) {
        for (m, v) in mean.states.iter_mut().zip(&zs.states).chain(mean.nominations.iter_mut().zip(&zs.nominations)) {
            for (a, b) in m.iter_mut().zip(v) {
                *a += ps * b;
            }
        }
    }
    mean
}

/// `(share of states off the mean's rounding, mean |n − n̄| in kW)`, both weighted by probability.
fn disagreement(z: &[Decisions], mean: &Decisions, p: &[f64]) -> (f64, f64) {
    let (mut states, mut kw) = (0.0, 0.0);
    let count_states: usize = mean.states.iter().map(Vec::len).sum();
    let count_kw: usize = mean.nominations.iter().map(Vec::len).sum();
    for (zs, &ps) in z.iter().zip(p) {
        for (v, m) in zs.states.iter().zip(&mean.states) {
            states += ps * v.iter().zip(m).filter(|(a, b)| (**a > 0.5) != (**b >= 0.5)).count() as f64;
        }
        for (v, m) in zs.nominations.iter().zip(&mean.nominations) {
            kw += ps * v.iter().zip(m).map(|(a, b)| (a - b).abs()).sum::<f64>();
        }
    }
    (states / count_states.max(1) as f64, kw / count_kw.max(1) as f64)
}

fn update(w: &mut Decisions, z: &Decisions, mean: &Decisions, rho: f64, rho_n: f64, cap: f64) {
    for ((ws, zs), m) in w.states.iter_mut().zip(&z.states).zip(&mean.states) {
        for ((a, v), b) in ws.iter_mut().zip(zs).zip(m) {
            *a += rho * (v - b);
        }
    }
    for ((ws, zs), m) in w.nominations.iter_mut().zip(&z.nominations).zip(&mean.nominations) {
        for ((a, v), b) in ws.iter_mut().zip(zs).zip(m) {
            *a = (*a + rho_n * (v - b)).clamp(-cap, cap);
        }
    }
}

/// The plan of a mean first stage: states rounded, nominations as they are.
fn plan_of(case: &Case, mean: &Decisions) -> Plan {
    // In asset order, as the models create their first-stage columns.
    let units: Vec<_> = case.assets().iter().filter(|a| under_commitment(&a.kind)).map(|a| a.id.clone()).collect();
    let grids: Vec<_> = case
        .assets()
        .iter()
        .filter(|a| matches!(a.kind, volta_engine::AssetKind::Grid(_)))
        .map(|a| a.id.clone())
        .collect();
    Plan {
        commitment: units
            .into_iter()
            .zip(&mean.states)
            .map(|(asset, on)| UnitPlan { asset, on: on.iter().map(|v| *v >= 0.5).collect() })
            .collect(),
        nominations: if mean.nominations.is_empty() {
            Vec::new()
        } else {
            grids
                .into_iter()
                .zip(&mean.nominations)
                .map(|(asset, kw)| Nomination { asset, net_import_kw: kw.clone() })
                .collect()
        },
    }
}

/// The expected cost of `plan`: every scenario re-dispatched under it, in parallel.
fn expected_cost(
    cases: &[Case],
    names: &[String],
    p: &[f64],
    plan: &Plan,
    options: &StochasticOptions,
) -> Result<f64, DispatchError> {
    let costs: Vec<f64> = cases
        .par_iter()
        .zip(names)
        .map(|(case, name)| {
            let one = extensive(std::slice::from_ref(case), std::slice::from_ref(name), &[1.0], Some(plan), options)?;
            Ok(one.scenarios.first().map_or(f64::INFINITY, |s| s.cost))
        })
        .collect::<Result<_, DispatchError>>()?;
    Ok(costs.iter().zip(p).map(|(c, p)| c * p).sum())
}

/// Every scenario solved alone (in parallel), with its weights if given.
fn solve_all(
    cases: &[Case],
    options: &StochasticOptions,
    w: Option<&[Decisions]>,
    proximal: Option<&Proximal<'_>>,
) -> Result<Vec<(Decisions, f64)>, DispatchError> {
    cases.par_iter().enumerate().map(|(s, case)| solve_one(case, options, w.map(|w| &w[s]), proximal)).collect()
}

/// Solves one scenario alone with first-stage weights and a proximal term;
/// returns its first-stage values and the solver's bound on its objective.
fn solve_one(
    case: &Case,
    options: &StochasticOptions,
    weights: Option<&Decisions>,
    proximal: Option<&Proximal<'_>>,
) -> Result<(Decisions, f64), DispatchError> {
    let mut built = build(std::slice::from_ref(case), options)?;
    let mut objective = built.costs[0].clone();
    let units = &built.first.units;
    let grids = &built.first.nominations;
    if let Some(w) = weights {
        for ((_, cols), ws) in units.iter().zip(&w.states).chain(grids.iter().zip(&w.nominations)) {
            for (&c, &v) in cols.iter().zip(ws) {
                objective.add(c, v);
            }
        }
    }
    if let Some(prox) = proximal {
        for ((_, cols), m) in units.iter().zip(&prox.mean.states) {
            for (&c, &mean) in cols.iter().zip(m) {
                // ρ/2·(u − ū)² for binary u.
                objective.add(c, prox.rho / 2.0 * (1.0 - 2.0 * mean));
                objective.add_constant(prox.rho / 2.0 * mean * mean);
            }
        }
        built.lp.scope("proximal");
        for ((_, cols), m) in grids.iter().zip(&prox.mean.nominations) {
            for (&c, &mean) in cols.iter().zip(m) {
                let d = built.lp.col(0.0, f64::INFINITY);
                built.lp.ge(Lin::term(d, 1.0).with(c, -1.0), -mean);
                built.lp.ge(Lin::term(d, 1.0).with(c, 1.0), mean);
                objective.add(d, prox.rho_n);
            }
        }
    }
    let first_cols: Vec<(Vec<volta_lp::Col>, bool)> =
        units.iter().map(|(_, c)| (c.clone(), true)).chain(grids.iter().map(|(_, c)| (c.clone(), false))).collect();
    let (settings, _) = solve::settings(&options.options, &built.lp);
    let solved = volta_lp::solve(built.lp, &objective, &settings).map_err(DispatchError::Solver)?;
    // The best bound, not the incumbent: a lower bound stays one under a MIP gap.
    let (Some(x), Some(value)) = (solved.x, solved.best_bound.or(solved.objective)) else {
        return Err(DispatchError::Solver(format!(
            "a scenario of {} has no solution ({:?}) under progressive hedging",
            case.name(),
            solved.outcome
        )));
    };
    let mut d = Decisions { states: Vec::new(), nominations: Vec::new() };
    for (cols, is_state) in first_cols {
        let values: Vec<f64> = cols.iter().map(|c| if is_state { x[c.0].round() } else { x[c.0] }).collect();
        if is_state { d.states.push(values) } else { d.nominations.push(values) }
    }
    Ok((d, value))
}
