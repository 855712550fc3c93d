//! `volta.dispatch.v1.DispatchService`.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use volta_dispatch::{Objective, Options};
use volta_engine::{CaseReader, Checked, Error as CaseFileError, Format};

use super::pb::{self, case_text};

/// The dispatch service.
pub(crate) struct Dispatch {
    slots: Arc<Semaphore>,
}

impl Dispatch {
    pub(crate) fn new(slots: Arc<Semaphore>) -> Self {
        Self { slots }
    }
}

fn read(case: Option<pb::CaseText>) -> Result<Checked, CaseFileError> {
    let reader = CaseReader::new();
    match case.and_then(|c| c.format) {
        Some(case_text::Format::Json(text)) => reader.read_str(&text, Format::Json),
        Some(case_text::Format::Toml(text)) => reader.read_str(&text, Format::Toml),
        None => reader.read_str("", Format::Json),
    }
}

/// An issue with its path from the request's root (`case.assets.chp...`).
fn problem(issue: &volta_engine::Issue) -> pb::Problem {
    pb::Problem { path: format!("case.{}", issue.path), message: issue.message.clone() }
}

fn problems(err: &CaseFileError) -> Vec<pb::Problem> {
    match err.report() {
        Some(report) => report.issues.iter().map(problem).collect(),
        None => vec![pb::Problem { path: "case".into(), message: err.to_string() }],
    }
}

/// INVALID_ARGUMENT with a google.rpc.BadRequest naming every field.
fn invalid(err: &CaseFileError) -> Status {
    let mut details = ErrorDetails::new();
    for p in problems(err) {
        details.add_bad_request_violation(p.path, p.message);
    }
    Status::with_error_details(Code::InvalidArgument, format!("invalid case: {err}"), details)
}

#[tonic::async_trait]
impl pb::dispatch_service_server::DispatchService for Dispatch {
    async fn validate(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::ValidateResponse>, Status> {
        let case = request.into_inner().case;
        let checked = tokio::task::spawn_blocking(move || read(case))
            .await
            .map_err(|e| Status::internal(format!("validation task failed: {e}")))?;
        Ok(Response::new(match checked {
            Ok(ok) => pb::ValidateResponse {
                ok: true,
                summary: ok.case.summary(),
                problems: Vec::new(),
                warnings: ok.warnings.iter().map(problem).collect(),
            },
            Err(err) => pb::ValidateResponse {
                ok: false,
                summary: String::new(),
                problems: problems(&err),
                warnings: Vec::new(),
            },
        }))
    }

    async fn schedule(&self, request: Request<pb::ScheduleRequest>) -> Result<Response<pb::ScheduleResponse>, Status> {
        let deadline = super::deadline(&request);
        let req = request.into_inner();
        let objective = match (pb::Objective::try_from(req.objective), req.co2_price) {
            (Ok(pb::Objective::Unspecified | pb::Objective::Cost), None) => Objective::Cost,
            (Ok(pb::Objective::Co2), None) => Objective::Co2,
            (Ok(pb::Objective::Weighted | pb::Objective::Unspecified | pb::Objective::Cost), Some(p)) => {
                Objective::Weighted { cost_weight: 1.0, co2_weight: p }
            }
            (Ok(pb::Objective::Weighted), None) => {
                return Err(Status::invalid_argument("objective: OBJECTIVE_WEIGHTED needs co2_price"));
            }
            (Ok(pb::Objective::Co2), Some(_)) => {
                return Err(Status::invalid_argument("co2_price: only with OBJECTIVE_WEIGHTED or OBJECTIVE_COST"));
            }
            (Err(_), _) => return Err(Status::invalid_argument(format!("objective: unknown value {}", req.objective))),
        };
        // The deadline bounds the solve, with a margin for the reply.
        let budget = deadline.map(|d| d.saturating_sub(Duration::from_millis(200)).as_secs_f64().max(0.05));
        let time_limit = match (req.time_limit_seconds, budget) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let options = Options { objective, mip_gap: req.gap, time_limit_s: time_limit, ..Options::default() };
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Status::resource_exhausted("every solver slot is busy; retry later"))?;
        let case = req.case;
        let solved = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let checked = read(case).map_err(|e| invalid(&e))?;
            volta_dispatch::schedule(&checked.case, &options).map_err(|e| Status::invalid_argument(e.to_string()))
        })
        .await
        .map_err(|e| Status::internal(format!("solver task failed: {e}")))??;
        let plan = solved.schedule.as_ref();
        Ok(Response::new(pb::ScheduleResponse {
            status: solved.status.name().to_owned(),
            objective: solved.objective,
            best_bound: solved.best_bound,
            gap: solved.gap,
            cost: plan.map(|p| p.cost),
            co2_kg: plan.map(|p| p.co2_kg),
            cost_by_category: plan
                .map(|p| p.cost_by_category().into_iter().map(|(c, v)| (c.name().to_owned(), v)).collect())
                .unwrap_or_default(),
            infeasibility: solved.infeasibility.as_ref().map(volta_dispatch::Infeasibility::report).unwrap_or_default(),
            solve_seconds: solved.stats.solve_seconds,
        }))
    }
}
