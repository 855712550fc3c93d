//! `volta.planning.v1`: a Plan request read and checked, the plan as a
//! response, and planning's errors as statuses naming the request field.

use jiff::Timestamp;
use tonic::Status;
use volta_dispatch::{Cvar, Hedging};
use volta_engine::{Case, SeriesRef};
use volta_planning::{DayAheadPlan, PlanError, PlanSummary};

use crate::dispatch::{Solving, grid, mip_gap, schedule, solve_status, time_limit};
use crate::forecast::{Call, error as error_of};
use crate::pb::{dispatch as dpb, forecast as fpb, planning as pb};
use crate::status::{self, Reason};
use crate::time;

/// Forecast series a request may name: a case has few uncertain series.
pub const MAX_FORECASTS: usize = 16;

/// Iterations of progressive hedging a request may ask for.
pub const MAX_HEDGING_ITERATIONS: u32 = 1000;

/// One forecast series of a request, read and checked (its model is
/// looked up under the caller's tenant, its history read, by the server).
#[derive(Debug)]
pub struct SourceCall {
    /// The series it replaces.
    pub series: SeriesRef,
    /// The stored model's resource name.
    pub model: String,
    /// The data the model reads.
    pub history: Option<fpb::SeriesData>,
    /// Case value = `scale` × forecast value.
    pub scale: f64,
}

/// A Plan request, read and checked (the case is read later, off the
/// async executor).
#[derive(Debug)]
pub struct PlanCall {
    /// The case text.
    pub case: Option<dpb::CaseText>,
    /// When the forecasts are issued.
    pub issue: Timestamp,
    /// The forecast series, in request order.
    pub forecasts: Vec<SourceCall>,
    /// Scenarios to plan under (0: deterministic).
    pub scenarios: usize,
    /// Currency per kWh off a grid's nomination.
    pub imbalance_penalty: Option<f64>,
    /// The risk measure.
    pub risk: Option<Cvar>,
    /// Progressive hedging instead of the extensive form.
    pub hedging: Option<Hedging>,
    /// The cost objective, the relative MIP gap and the requested time limit.
    pub solving: Solving,
    /// Whether each scenario's schedule goes back.
    pub schedules: bool,
}

/// A finite number in `range`, or INVALID_ARGUMENT naming `field`.
fn number_in(field: &str, value: f64, range: impl std::ops::RangeBounds<f64>, rule: &str) -> Result<f64, Status> {
    if value.is_finite() && range.contains(&value) {
        Ok(value)
    } else {
        Err(status::invalid(field, format!("{value} is not {rule}")))
    }
}

impl TryFrom<pb::PlanRequest> for PlanCall {
    type Error = Status;

    fn try_from(request: pb::PlanRequest) -> Result<Self, Status> {
        let pb::PlanRequest {
            case,
            issue_time,
            forecasts,
            scenarios,
            imbalance_penalty,
            cvar,
            hedging,
            mip_gap: gap,
            time_limit: limit,
            schedules,
        } = request;
        let issue = time::instant("issue_time", issue_time)?
            .ok_or_else(|| status::invalid("issue_time", "required: when the forecasts are issued".to_owned()))?;
        if forecasts.is_empty() {
            return Err(status::invalid("forecasts", "name at least one series to forecast".to_owned()));
        }
        if forecasts.len() > MAX_FORECASTS {
            return Err(status::invalid(
                "forecasts",
                format!("{} series; a plan forecasts at most {MAX_FORECASTS}", forecasts.len()),
            ));
        }
        let mut sources: Vec<SourceCall> = Vec::with_capacity(forecasts.len());
        for (i, source) in forecasts.into_iter().enumerate() {
            let pb::ForecastSource { series, model, history, scale } = source;
            let field = |name: &str| format!("forecasts[{i}].{name}");
            let series = SeriesRef::parse(&series).map_err(|e| status::invalid(&field("series"), e))?;
            if let Some(j) = sources.iter().position(|s| s.series == series) {
                return Err(status::invalid(
                    &field("series"),
                    format!("{series} is forecast twice (also forecasts[{j}])"),
                ));
            }
            if model.is_empty() {
                return Err(status::invalid(&field("model"), "required: tenants/{tenant}/models/{model}".to_owned()));
            }
            if history.is_none() {
                return Err(status::invalid(&field("history"), "required: the data the model reads".to_owned()));
            }
            let scale = number_in(&field("scale"), scale.unwrap_or(1.0), f64::MIN_POSITIVE.., "a positive number")?;
            sources.push(SourceCall { series, model, history, scale });
        }
        let max = volta_dispatch::stochastic::MAX_SCENARIOS;
        let scenarios = usize::try_from(scenarios).unwrap_or(usize::MAX);
        if scenarios > max {
            return Err(status::invalid("scenarios", format!("{scenarios}; a plan takes at most {max}")));
        }
        let imbalance_penalty = imbalance_penalty
            .map(|p| number_in("imbalance_penalty", p, 0.0..=1e9, "a price in [0, 1e9] per kWh"))
            .transpose()?;
        let risk = cvar
            .map(|c| {
                Ok::<_, Status>(Cvar {
                    alpha: number_in("cvar.alpha", c.alpha, 0.0..1.0, "a level in [0, 1)")?,
                    weight: number_in("cvar.weight", c.weight, 0.0..=1.0, "a weight in [0, 1]")?,
                })
            })
            .transpose()?;
        let hedging = hedging
            .map(|h| {
                if !(1..=MAX_HEDGING_ITERATIONS).contains(&h.max_iterations) {
                    return Err(status::invalid(
                        "hedging.max_iterations",
                        format!("{}; from 1 to {MAX_HEDGING_ITERATIONS}", h.max_iterations),
                    ));
                }
                let defaults = Hedging::default();
                Ok(Hedging {
                    max_iterations: usize::try_from(h.max_iterations).unwrap_or(usize::MAX),
                    rho: number_in(
                        "hedging.rho",
                        h.rho.unwrap_or(defaults.rho),
                        f64::MIN_POSITIVE..=1e9,
                        "in (0, 1e9]",
                    )?,
                    tolerance_kw: number_in(
                        "hedging.tolerance_kw",
                        h.tolerance_kw.unwrap_or(defaults.tolerance_kw),
                        f64::MIN_POSITIVE..,
                        "a positive power",
                    )?,
                    ..defaults
                })
            })
            .transpose()?;
        if hedging.is_some() && risk.is_some() {
            return Err(status::invalid(
                "cvar",
                "progressive hedging decomposes by scenario and CVaR couples them: drop one".to_owned(),
            ));
        }
        Ok(Self {
            case,
            issue,
            forecasts: sources,
            scenarios,
            imbalance_penalty,
            risk,
            hedging,
            solving: Solving {
                objective: volta_dispatch::Objective::Cost,
                mip_gap: mip_gap(gap)?,
                time_limit: time_limit("time_limit", limit)?,
                strategy: volta_dispatch::Strategy::default(),
            },
            schedules,
        })
    }
}

impl PlanCall {
    /// The request field of the forecast of `series`.
    fn source_field(&self, series: &SeriesRef, name: &str) -> String {
        let i = self.forecasts.iter().position(|s| &s.series == series).unwrap_or(0);
        format!("forecasts[{i}].{name}")
    }

    /// Planning's refusal as a status naming the request field.
    #[must_use]
    pub fn error(&self, err: &PlanError) -> Status {
        match err {
            PlanError::Forecast { series, error } => {
                status::within(error_of(error, Call::Forecast), "series", &self.source_field(series, "history"))
            }
            PlanError::Align { series, message } => {
                let field = self.source_field(series, "model");
                status::invalid(&field, format!("{series}: {message}"))
            }
            PlanError::Case(e) => {
                let series = match e {
                    volta_engine::ReplaceError::UnknownAsset(s) => s,
                    volta_engine::ReplaceError::WrongType { series, .. }
                    | volta_engine::ReplaceError::Length { series, .. }
                    | volta_engine::ReplaceError::Value { series, .. } => series,
                };
                status::invalid(&self.source_field(series, "series"), e.to_string())
            }
            PlanError::NoScenarios(message) => status::error(
                Reason::DataTooThin,
                format!("no scenarios: {message}; train the models with quantiles, or ask for 0 scenarios"),
            ),
            PlanError::Option(message) => status::invalid("scenarios", message.clone()),
            PlanError::Dispatch(e) => status::dispatch(e),
        }
    }
}

/// The answer to a Plan call: `made` in numbers (`summary`), on `case`'s
/// grid, with the forecasts and, when asked, each scenario's schedule.
#[must_use]
pub fn plan_response(case: &Case, made: &DayAheadPlan, summary: &PlanSummary, call: &PlanCall) -> pb::PlanResponse {
    let solution = &made.solution;
    let plan = summary.plan.clone().unwrap_or_default();
    pb::PlanResponse {
        status: solve_status(solution.status).into(),
        objective: summary.objective,
        best_bound: summary.best_bound,
        mip_gap: summary.gap,
        expected_cost: summary.expected_cost,
        cost: summary.cost_p50.map(|p50| pb::CostDistribution {
            p10: summary.cost_p10.unwrap_or(p50),
            p50,
            p90: summary.cost_p90.unwrap_or(p50),
            cvar_alpha: summary.cvar_alpha,
            cvar: summary.cvar.unwrap_or(p50),
        }),
        grid: Some(grid(case.grid())),
        commitment: plan
            .commitment
            .into_iter()
            .map(|u| pb::UnitCommitment { asset: u.asset.to_string(), on: u.on })
            .collect(),
        nominations: plan
            .nominations
            .into_iter()
            .map(|n| pb::Nomination { asset: n.asset.to_string(), net_import_kw: n.net_import_kw })
            .collect(),
        scenarios: summary
            .scenarios
            .iter()
            .zip(&solution.scenarios)
            .map(|(o, full)| pb::ScenarioOutcome {
                name: o.name.clone(),
                probability: o.probability,
                cost: o.cost,
                imbalance_cost: o.imbalance_cost,
                imbalance_kwh: o.imbalance_kwh,
                unserved_kwh: o.unserved_kwh,
                schedule: call.schedules.then(|| schedule(&full.schedule, &[])),
            })
            .collect(),
        forecasts: made
            .forecasts
            .iter()
            .map(|f| pb::SeriesForecast {
                series: f.series.to_string(),
                model: call
                    .forecasts
                    .iter()
                    .find(|s| s.series == f.series)
                    .map(|s| s.model.clone())
                    .unwrap_or_default(),
                point: f.point.clone(),
                quantiles: f
                    .levels
                    .iter()
                    .enumerate()
                    .map(|(j, &level)| fpb::Quantile {
                        level,
                        values: f.quantiles.iter().map(|row| row.get(j).copied().unwrap_or(f64::NAN)).collect(),
                    })
                    .collect(),
                paths: u32::try_from(f.paths.len()).unwrap_or(u32::MAX),
            })
            .collect(),
        hedging: summary.hedging.as_ref().map(|h| pb::HedgingReport {
            iterations: u32::try_from(h.iterations).unwrap_or(u32::MAX),
            converged: h.converged,
            lower_bound: h.lower_bound,
            upper_bound: h.upper_bound,
            gap: h.gap,
        }),
        solve_time: Some(time::seconds(summary.solve_seconds)),
    }
}
