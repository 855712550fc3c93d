//! `volta.dispatch.v1.DispatchService`.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use volta_api::dispatch::{self as convert, ParetoCall, RollingCall, ScheduleCall, Solving};
use volta_api::pb::dispatch::{self as pb, rolling_horizon_response::Event};
use volta_api::status::{self as errors, Reason};
use volta_dispatch::{Decomposition, Options, RollingOptions, Schedule, WindowReport};
use volta_engine::{Cancel, Case};

use crate::Shared;
use crate::auth::{Caller, Role};
use crate::budget::Budget;
use crate::config::Limits;

/// The dispatch service.
pub(crate) struct Dispatch {
    shared: Shared,
}

impl Dispatch {
    pub(crate) fn new(shared: Shared) -> Self {
        Self { shared }
    }
}

/// The text of a case within `limits.max_case_mib`, checked before it is
/// parsed (parsing takes many times the text's size).
fn case_size(case: Option<&pb::CaseText>, limits: &Limits) -> Result<(), Status> {
    let bytes = convert::case_bytes(case);
    if bytes > limits.max_case_mib.saturating_mul(1 << 20) {
        let what = format!("{:.1} MiB of case text", bytes as f64 / f64::from(1 << 20));
        return Err(errors::over_limit("case", &what, "max_case_mib", limits.max_case_mib));
    }
    Ok(())
}

/// Reads and checks a case the caller may work on, within the size budget.
pub(crate) fn authorised_case(caller: &Caller, case: Option<pb::CaseText>, limits: &Limits) -> Result<Case, Status> {
    case_size(case.as_ref(), limits)?;
    let checked = convert::read_case(case).map_err(|e| errors::case(&e))?;
    caller.require_site(checked.case.name())?;
    let (steps, assets) = (checked.case.grid().len(), checked.case.assets().len());
    let cells = steps.saturating_mul(assets.max(1));
    if cells > limits.max_case_cells {
        return Err(errors::over_limit(
            "case.time",
            &format!("{steps} steps x {assets} assets = {cells} cells"),
            "max_case_cells",
            limits.max_case_cells,
        ));
    }
    Ok(checked.case)
}

/// Solver options of a call: its objective and gap, its time limit bounded
/// by its deadline, and a fresh cancellation token.
pub(crate) fn solve_options(solving: &Solving, budget: &Budget) -> Options {
    Options {
        objective: solving.objective,
        mip_gap: solving.mip_gap,
        strategy: solving.strategy,
        time_limit_s: budget.time_limit(solving.time_limit.map(|d| d.as_secs_f64())),
        cancel: Cancel::new(),
        ..Options::default()
    }
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<pb::RollingHorizonResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::dispatch_service_server::DispatchService for Dispatch {
    async fn validate(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::ValidateResponse>, Status> {
        Caller::of(&request)?.require(Role::Viewer)?;
        let budget = Budget::of(&request);
        let pb::ValidateRequest { case } = request.into_inner();
        case_size(case.as_ref(), &self.shared.limits)?;
        let checked = self.shared.unslotted("validation", &budget, move || convert::read_case(case)).await?;
        Ok(Response::new(match checked {
            Ok(ok) => pb::ValidateResponse {
                ok: true,
                summary: ok.case.summary(),
                problems: Vec::new(),
                warnings: errors::listed(&ok.warnings),
            },
            Err(err) => pb::ValidateResponse {
                ok: false,
                summary: String::new(),
                problems: errors::problems(&err),
                warnings: Vec::new(),
            },
        }))
    }

    async fn schedule(&self, request: Request<pb::ScheduleRequest>) -> Result<Response<pb::ScheduleResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let mut call = ScheduleCall::try_from(request.into_inner())?;
        let options = Options { fleets: !call.separate_units, ..solve_options(&call.solving, &budget) };
        let cancel = options.cancel.clone();
        let limits = self.shared.limits.clone();
        let metrics = self.shared.metrics.clone();
        let reply = self
            .shared
            .offload("schedule", &cancel, &budget, move || {
                let case = authorised_case(&caller, call.case.take(), &limits)?;
                convert::check_assets(&case, &call.asset_ids)?;
                let solved = match call.blocks {
                    None => volta_dispatch::schedule(&case, &options).map_err(|e| errors::dispatch(&e))?,
                    Some((blocks, seam_steps)) => {
                        let d = Decomposition { seam_steps, ..Decomposition::new(blocks, options) };
                        let result = volta_dispatch::decompose(&case, &d, &|_| {});
                        result.map_err(|e| convert::decomposition_error(&e))?.into_solution()
                    }
                };
                metrics.solved(solved.status.name());
                Ok(convert::schedule_response(&solved, &call))
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn pareto(&self, request: Request<pb::ParetoRequest>) -> Result<Response<pb::ParetoResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let ParetoCall { case, points, solving } = ParetoCall::try_from(request.into_inner())?;
        let limits = self.shared.limits.clone();
        if !(2..=limits.max_pareto_points).contains(&points) {
            let message =
                format!("{points}; a front has 2 to {} points (limits.max_pareto_points)", limits.max_pareto_points);
            return Err(errors::invalid("points", message));
        }
        let options = solve_options(&solving, &budget);
        let cancel = options.cancel.clone();
        let metrics = self.shared.metrics.clone();
        let reply = self
            .shared
            .offload("pareto", &cancel, &budget, move || {
                let case = authorised_case(&caller, case, &limits)?;
                let front = volta_dispatch::pareto(&case, points, &options).map_err(|e| errors::dispatch(&e))?;
                front.points.iter().for_each(|p| metrics.solved(p.status.name()));
                Ok(convert::pareto_response(&front))
            })
            .await?;
        Ok(Response::new(reply))
    }

    type RollingHorizonStream = ResponseStream;

    async fn rolling_horizon(
        &self,
        request: Request<pb::RollingHorizonRequest>,
    ) -> Result<Response<Self::RollingHorizonStream>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let mut call = RollingCall::try_from(request.into_inner())?;
        let options = solve_options(&call.solving, &budget);
        let cancel = options.cancel.clone();
        // Reading a case is CPU work: off the async executor, as every handler's.
        let limits = self.shared.limits.clone();
        let text = call.case.take();
        let case = self.shared.unslotted("case", &budget, move || authorised_case(&caller, text, &limits)).await??;
        let (horizon, commit) = call.steps(case.grid())?;
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (slot, busy) = self.shared.slot()?;
        let metrics = self.shared.metrics.clone();
        let metrics_on_panic = metrics.clone();
        let span = tracing::Span::current();
        let due = budget.reply_due();
        let admission = budget.admission();
        tokio::task::spawn_blocking(move || {
            let (_slot, _busy, _admission, _entered) = (slot, busy, admission, span.enter());
            let failed = tx.clone();
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut index = 0;
                let mut gone = false;
                let mut late = false;
                let mut progress = |report: &WindowReport, committed: Option<&Schedule>, total: usize| {
                    metrics.observe_work("rolling_window", report.solve_seconds + report.build_seconds);
                    metrics.solved(report.status.name());
                    let window = convert::window(report, index, total, committed);
                    index += 1;
                    let event = pb::RollingHorizonResponse { event: Some(Event::Window(window)) };
                    // A closed stream: the client went away; stop before the next window.
                    if tx.blocking_send(Ok(event)).is_err() {
                        gone = true;
                        cancel.cancel();
                    }
                    // Too close to the deadline for another window: stop and
                    // send what was committed.
                    if due.is_some_and(|d| Instant::now() + Duration::from_millis(200) >= d) {
                        late = true;
                        cancel.cancel();
                    }
                };
                let rolling = RollingOptions {
                    warm_start: !call.cold_windows,
                    lower_bound: call.lower_bound,
                    ..RollingOptions::new(horizon, commit, options)
                };
                let outcome = volta_dispatch::rolling_horizon(&case, &rolling, &mut progress);
                if gone {
                    return;
                }
                let event = outcome.map_err(|e| errors::dispatch(&e)).map(|result| {
                    // Cancelled by this handler for the deadline: a time limit.
                    let stopped = late && result.status == volta_dispatch::Status::Interrupted;
                    let status = stopped.then_some(pb::SolveStatus::TimeLimit);
                    pb::RollingHorizonResponse {
                        event: Some(Event::Summary(convert::rolling_summary(&result, status))),
                    }
                });
                // Nobody to tell if the client is gone.
                let _ = tx.blocking_send(event);
            }));
            if let Err(payload) = run {
                metrics_on_panic.panicked(&crate::telemetry::panic_message(payload.as_ref()));
                let _ = failed.blocking_send(Err(errors::error(
                    Reason::Internal,
                    "internal error in the rolling horizon (logged on the server)",
                )));
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}
