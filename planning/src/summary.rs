//! A plan in numbers: what every front door reports of a [`DayAheadPlan`]
//! (the CLI's `plan.json`, Python's `DayAheadPlan`, the gRPC
//! `PlanResponse`), computed once here so that they cannot disagree.

use serde::Serialize;
use volta_dispatch::{HedgingReport, Plan};

use crate::plan::{DayAheadPlan, PlanOptions};

/// The CVaR level a summary reports when the plan had no risk measure.
pub const DEFAULT_CVAR_ALPHA: f64 = 0.9;

/// The summary of a plan: its status and cost distribution, the plan
/// itself, and each scenario's outcome (without its schedule).
#[derive(Debug, Clone, Serialize)]
pub struct PlanSummary {
    /// How the solve ended (`optimal`, `within_gap`, `infeasible`, ...).
    pub status: &'static str,
    /// The objective: the expected cost, or its blend with CVaR.
    pub objective: Option<f64>,
    /// The solver's bound on the objective.
    pub best_bound: Option<f64>,
    /// The relative gap between objective and bound.
    pub gap: Option<f64>,
    /// `Σ_s p_s·c_s` over the scenarios.
    pub expected_cost: Option<f64>,
    /// The cost distribution's 10 % quantile.
    pub cost_p10: Option<f64>,
    /// Its median.
    pub cost_p50: Option<f64>,
    /// Its 90 % quantile.
    pub cost_p90: Option<f64>,
    /// The CVaR level reported: the risk measure's, or [`DEFAULT_CVAR_ALPHA`].
    pub cvar_alpha: f64,
    /// The mean cost of the worst `1 − cvar_alpha` of the probability.
    pub cvar: Option<f64>,
    /// The first stage: commitment and nominations (none without a solution).
    pub plan: Option<Plan>,
    /// Every scenario's outcome under the plan.
    pub scenarios: Vec<OutcomeSummary>,
    /// How progressive hedging went, when it solved the plan.
    pub hedging: Option<HedgingSummary>,
    /// Time in the solver, s.
    pub solve_seconds: f64,
}

/// One scenario's outcome under the plan.
#[derive(Debug, Clone, Serialize)]
pub struct OutcomeSummary {
    /// The scenario's name (its analog day, or `point forecast`).
    pub name: String,
    /// Its probability.
    pub probability: f64,
    /// Its cost under the plan, imbalance included.
    pub cost: f64,
    /// The part of `cost` paid for imbalance against the nominations.
    pub imbalance_cost: f64,
    /// Energy off the nominations, kWh.
    pub imbalance_kwh: f64,
    /// Demand not served, kWh.
    pub unserved_kwh: f64,
}

/// Progressive hedging's convergence and bounds.
#[derive(Debug, Clone, Serialize)]
pub struct HedgingSummary {
    /// Iterations run.
    pub iterations: usize,
    /// Whether the scenarios agreed within the tolerance.
    pub converged: bool,
    /// The best lower bound on the two-stage optimum.
    pub lower_bound: f64,
    /// The expected cost of the plan returned.
    pub upper_bound: f64,
    /// `(upper − lower) / |upper|`.
    pub gap: f64,
}

impl From<&HedgingReport> for HedgingSummary {
    fn from(report: &HedgingReport) -> Self {
        Self {
            iterations: report.iterations.len(),
            converged: report.converged,
            lower_bound: report.lower_bound,
            upper_bound: report.upper_bound,
            gap: report.gap,
        }
    }
}

impl DayAheadPlan {
    /// The plan in numbers, with CVaR at the level of `options`' risk
    /// measure, or [`DEFAULT_CVAR_ALPHA`] without one (`options`: those the
    /// plan was made with).
    #[must_use]
    pub fn summary(&self, options: &PlanOptions) -> PlanSummary {
        let s = &self.solution;
        let cvar_alpha = options.stochastic.risk.map_or(DEFAULT_CVAR_ALPHA, |r| r.alpha);
        PlanSummary {
            status: s.status.name(),
            objective: s.objective,
            best_bound: s.best_bound,
            gap: s.gap,
            expected_cost: s.expected_cost(),
            cost_p10: s.cost_quantile(0.1),
            cost_p50: s.cost_quantile(0.5),
            cost_p90: s.cost_quantile(0.9),
            cvar_alpha,
            cvar: s.cvar(cvar_alpha),
            plan: s.plan.clone(),
            scenarios: s
                .scenarios
                .iter()
                .map(|o| OutcomeSummary {
                    name: o.name.clone(),
                    probability: o.probability,
                    cost: o.cost,
                    imbalance_cost: o.imbalance_cost,
                    imbalance_kwh: o.imbalance_kwh,
                    unserved_kwh: o.unserved_kwh,
                })
                .collect(),
            hedging: self.hedging.as_ref().map(HedgingSummary::from),
            solve_seconds: s.stats.solve_seconds,
        }
    }
}
