//! A day-ahead plan from forecasts: forecast every uncertain series, build
//! the scenarios, plan, and keep everything a user needs to judge it.

use jiff::Timestamp;
use serde::Serialize;
use volta_dispatch::{
    Hedging, HedgingReport, Scenario, StochasticOptions, StochasticSolution, progressive_hedging, two_stage,
};
use volta_engine::Case;

use crate::error::PlanError;
use crate::forecast::{ForecastSource, SeriesForecast, forecast};
use crate::scenarios::{joint, reduce};

/// How to plan from forecasts.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Scenarios to plan under: 0 plans for the point forecast alone (a
    /// deterministic plan); otherwise the joint scenarios of the forecasts,
    /// reduced to this many.
    pub scenarios: usize,
    /// The stochastic model's options (imbalance penalty, risk measure,
    /// solver settings).
    pub stochastic: StochasticOptions,
    /// Solve by progressive hedging (scenarios in parallel) instead of the
    /// extensive form.
    pub hedging: Option<Hedging>,
}

/// A plan, with the forecasts and scenarios it was made from.
#[derive(Debug, Clone, Serialize)]
pub struct DayAheadPlan {
    /// When the forecasts were issued.
    pub issue: Timestamp,
    /// Every forecast series, on the case's grid.
    pub forecasts: Vec<SeriesForecast>,
    /// The scenarios planned under (for a deterministic plan, the point
    /// forecast alone).
    pub scenarios: Vec<Scenario>,
    /// The plan and each scenario's schedule.
    pub solution: StochasticSolution,
    /// How progressive hedging went, when it was used.
    pub hedging: Option<HedgingReport>,
}

/// Forecasts every series of `sources` from `issue` onto `case` and plans.
///
/// # Errors
/// A [`PlanError`] naming the series or option at fault.
pub fn plan(
    case: &Case,
    sources: &[ForecastSource],
    issue: Timestamp,
    options: &PlanOptions,
) -> Result<DayAheadPlan, PlanError> {
    if options.scenarios > volta_dispatch::stochastic::MAX_SCENARIOS {
        return Err(PlanError::Option(format!(
            "scenarios: {} asked for, at most {}",
            options.scenarios,
            volta_dispatch::stochastic::MAX_SCENARIOS
        )));
    }
    for (k, source) in sources.iter().enumerate() {
        if sources[..k].iter().any(|s| s.series == source.series) {
            return Err(PlanError::Option(format!("{} is forecast twice", source.series)));
        }
    }
    let forecasts: Vec<SeriesForecast> = sources.iter().map(|s| forecast(case, s, issue)).collect::<Result<_, _>>()?;
    let scenarios = if options.scenarios == 0 {
        let series = forecasts.iter().map(|f| (f.series.clone(), f.point.clone())).collect();
        vec![Scenario { name: "point forecast".to_owned(), probability: 1.0, series }]
    } else {
        reduce(&joint(&forecasts, case.grid())?, options.scenarios)
    };
    let (solution, hedging) = match &options.hedging {
        Some(hedging) => {
            let (solution, report) = progressive_hedging(case, &scenarios, &options.stochastic, hedging)?;
            (solution, Some(report))
        }
        None => (two_stage(case, &scenarios, &options.stochastic)?, None),
    };
    Ok(DayAheadPlan { issue, forecasts, scenarios, solution, hedging })
}
