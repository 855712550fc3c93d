//! `volta.planning.v1.PlanningService`: day-ahead plans from the models
//! the forecast service stored under the caller's tenant.

use tonic::{Request, Response, Status};
use volta_api::pb::planning as pb;
use volta_api::planning::{self as convert, PlanCall};
use volta_api::status as errors;
use volta_dispatch::{Options, StochasticOptions};
use volta_planning::{ForecastSource, PlanOptions};

use crate::Shared;
use crate::auth::{Caller, Role};
use crate::budget::Budget;
use crate::dispatch::{authorised_case, solve_options};
use crate::forecast::{model_history, read_model, stored};

/// The planning service (shares the solver slots with dispatch and
/// forecasting).
pub(crate) struct Planning {
    shared: Shared,
}

impl Planning {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

#[tonic::async_trait]
impl pb::planning_service_server::PlanningService for Planning {
    async fn plan(&self, request: Request<pb::PlanRequest>) -> Result<Response<pb::PlanResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let mut call = PlanCall::try_from(request.into_inner())?;
        // Every model is the caller's tenant's, found before any work.
        let mut bodies = Vec::with_capacity(call.forecasts.len());
        for (i, source) in call.forecasts.iter().enumerate() {
            let (_, body) = stored(&self.shared, &format!("forecasts[{i}].model"), &source.model, &caller).await?;
            bodies.push(body);
        }
        let options = PlanOptions {
            scenarios: call.scenarios,
            stochastic: StochasticOptions {
                options: Options { prices: false, ..solve_options(&call.solving, &budget) },
                imbalance_penalty: call.imbalance_penalty,
                risk: call.risk,
            },
            hedging: call.hedging.clone(),
        };
        let cancel = options.stochastic.options.cancel.clone();
        let limits = self.shared.limits.clone();
        let metrics = self.shared.metrics.clone();
        let reply = self
            .shared
            .offload("plan", &cancel, &budget, move || {
                let case = authorised_case(&caller, call.case.take(), &limits)?;
                // The extensive form is a copy of the case per scenario.
                let copies = call.scenarios.max(1);
                let cells = case.grid().len().saturating_mul(case.assets().len().max(1)).saturating_mul(copies);
                if cells > limits.max_case_cells {
                    return Err(errors::over_limit(
                        "scenarios",
                        &format!(
                            "{copies} scenarios x {} steps x {} assets = {cells} cells",
                            case.grid().len(),
                            case.assets().len()
                        ),
                        "max_case_cells",
                        limits.max_case_cells,
                    ));
                }
                let mut sources = Vec::with_capacity(bodies.len());
                for (i, (source, body)) in call.forecasts.iter_mut().zip(&bodies).enumerate() {
                    let model = read_model(&source.model, body)?;
                    let history = model_history(&model, source.history.take(), &limits)
                        .map_err(|e| errors::within(e, "series", &format!("forecasts[{i}].history")))?;
                    sources.push(ForecastSource { series: source.series.clone(), model, history, scale: source.scale });
                }
                let made = volta_planning::plan(&case, &sources, call.issue, &options).map_err(|e| call.error(&e))?;
                metrics.solved(made.solution.status.name());
                Ok(convert::plan_response(&case, &made, &made.summary(&options), &call))
            })
            .await?;
        Ok(Response::new(reply))
    }
}
