//! `volta.dispatch.v1.DispatchService`.

use std::pin::Pin;
use std::time::{Duration, Instant};

use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use volta_api::dispatch::{self as convert, cost_by_category, explanation, objective};
use volta_api::pb::dispatch as pb;
use volta_api::status::{self as errors, problems};
use volta_dispatch::{Objective, Options, RollingOptions, WindowReport};
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
fn authorised_case(caller: &Caller, case: Option<pb::CaseText>, limits: &Limits) -> Result<Case, Status> {
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
fn solve_options(
    objective: Objective,
    gap: Option<f64>,
    limit: Option<f64>,
    budget: &Budget,
) -> Result<Options, Status> {
    if let Some(gap) = gap.filter(|g| !(0.0..1.0).contains(g)) {
        return Err(errors::invalid("gap", format!("{gap:?} is not a relative gap in [0, 1)")));
    }
    if let Some(limit) = limit.filter(|l| !(l.is_finite() && *l > 0.0)) {
        return Err(errors::invalid("time_limit_seconds", format!("{limit:?} is not a positive number of seconds")));
    }
    Ok(Options {
        objective,
        mip_gap: gap,
        time_limit_s: budget.time_limit(limit),
        cancel: Cancel::new(),
        ..Options::default()
    })
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::RollingHorizonEvent, Status>> + Send>>;

#[tonic::async_trait]
impl pb::dispatch_service_server::DispatchService for Dispatch {
    async fn validate(&self, request: Request<pb::ValidateRequest>) -> Result<Response<pb::ValidateResponse>, Status> {
        Caller::of(&request)?.require(Role::Viewer)?;
        let budget = Budget::of(&request);
        let case = request.into_inner().case;
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
                problems: problems(&err),
                warnings: Vec::new(),
            },
        }))
    }

    async fn schedule(&self, request: Request<pb::ScheduleRequest>) -> Result<Response<pb::ScheduleResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        let objective = objective(req.objective, req.co2_price)?;
        let options = solve_options(objective, req.gap, req.time_limit_seconds, &budget)?;
        let (case, summary_only, cancel) = (req.case, req.summary_only, options.cancel.clone());
        let limits = self.shared.limits.clone();
        let reply = self
            .shared
            .offload("schedule", &cancel, &budget, move || {
                let case = authorised_case(&caller, case, &limits)?;
                let solved = volta_dispatch::schedule(&case, &options).map_err(|e| errors::dispatch(&e))?;
                let plan = solved.schedule.as_ref();
                Ok(pb::ScheduleResponse {
                    status: solved.status.name().to_owned(),
                    objective: solved.objective,
                    best_bound: solved.best_bound,
                    gap: solved.gap,
                    cost: plan.map(|p| p.cost),
                    co2_kg: plan.map(|p| p.co2_kg),
                    cost_by_category: cost_by_category(plan),
                    infeasibility: explanation(solved.infeasibility.as_ref()),
                    solve_seconds: solved.stats.solve_seconds,
                    schedule: plan.filter(|_| !summary_only).map(convert::schedule),
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    async fn pareto(&self, request: Request<pb::ParetoRequest>) -> Result<Response<pb::ParetoResponse>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        let limits = self.shared.limits.clone();
        let points = usize::try_from(req.points).unwrap_or(usize::MAX);
        if !(2..=limits.max_pareto_points).contains(&points) {
            let message =
                format!("{points}; a front has 2 to {} points (limits.max_pareto_points)", limits.max_pareto_points);
            return Err(errors::invalid("points", message));
        }
        // Pareto ignores the objective: it solves for cost and for CO2.
        let options = solve_options(Objective::Cost, req.gap, req.time_limit_seconds, &budget)?;
        let (case, cancel) = (req.case, options.cancel.clone());
        let reply = self
            .shared
            .offload("pareto", &cancel, &budget, move || {
                let case = authorised_case(&caller, case, &limits)?;
                let front = volta_dispatch::pareto(&case, points, &options).map_err(|e| errors::dispatch(&e))?;
                Ok(pb::ParetoResponse {
                    points: front
                        .points
                        .iter()
                        .map(|p| pb::ParetoPoint {
                            co2_cap_kg: p.co2_cap_kg,
                            cost: p.cost,
                            co2_kg: p.co2_kg,
                            status: p.status.name().to_owned(),
                        })
                        .collect(),
                    dropped: u32::try_from(front.dropped).unwrap_or(u32::MAX),
                })
            })
            .await?;
        Ok(Response::new(reply))
    }

    type RollingHorizonStream = EventStream;

    async fn rolling_horizon(
        &self,
        request: Request<pb::RollingHorizonRequest>,
    ) -> Result<Response<Self::RollingHorizonStream>, Status> {
        let caller = Caller::of(&request)?;
        caller.require(Role::Operator)?;
        let budget = Budget::of(&request);
        let req = request.into_inner();
        let objective = objective(req.objective, req.co2_price)?;
        let options = solve_options(objective, req.gap, req.time_limit_seconds, &budget)?;
        let cancel = options.cancel.clone();
        // Reading a case is CPU work: off the async executor, as every handler's.
        let limits = self.shared.limits.clone();
        let case =
            self.shared.unslotted("case", &budget, move || authorised_case(&caller, req.case, &limits)).await??;
        let steps = |hours: f64, field: &str| {
            Some(hours).filter(|h| h.is_finite()).and_then(|h| case.grid().steps_in(h)).filter(|n| *n > 0).ok_or_else(
                || {
                    let message =
                        format!("{hours} h is not a positive whole number of {} steps", case.grid().step_text());
                    errors::invalid(field, message)
                },
            )
        };
        let horizon = steps(req.horizon_hours, "horizon_hours")?;
        let commit = req.commit_hours.map(|h| steps(h, "commit_hours")).transpose()?;
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
                let grid = case.grid().clone();
                let mut index = 0_u32;
                let mut progress = |report: &WindowReport, total: usize| {
                    metrics.observe_work("rolling_window", report.solve_seconds + report.build_seconds);
                    let event = pb::WindowResult {
                        index,
                        windows: u32::try_from(total).unwrap_or(u32::MAX),
                        start_step: u32::try_from(report.start).unwrap_or(u32::MAX),
                        start_time: grid.stamp(report.start),
                        steps: u32::try_from(report.len).unwrap_or(u32::MAX),
                        status: report.status.name().to_owned(),
                        objective: report.objective,
                        solve_seconds: report.solve_seconds,
                        build_seconds: report.build_seconds,
                    };
                    index += 1;
                    let event =
                        pb::RollingHorizonEvent { event: Some(pb::rolling_horizon_event::Event::Window(event)) };
                    // A closed stream: the client went away; stop before the next window.
                    if tx.blocking_send(Ok(event)).is_err() {
                        cancel.cancel();
                    }
                    if due.is_some_and(|d| Instant::now() + Duration::from_millis(200) >= d) {
                        cancel.cancel();
                    }
                };
                let rolling = RollingOptions::new(horizon, commit, options);
                let outcome = volta_dispatch::rolling_horizon(&case, &rolling, &mut progress);
                let event = match outcome {
                    Ok(result) => {
                        let plan = result.schedule.as_ref();
                        Ok(pb::RollingHorizonEvent {
                            event: Some(pb::rolling_horizon_event::Event::Summary(pb::RollingHorizonSummary {
                                status: result.status.name().to_owned(),
                                cost: plan.map(|p| p.cost),
                                co2_kg: plan.map(|p| p.co2_kg),
                                cost_by_category: cost_by_category(plan),
                                infeasibility: explanation(result.infeasibility.as_ref()),
                                steps: plan.map_or(0, |p| u32::try_from(p.grid.len()).unwrap_or(u32::MAX)),
                            })),
                        })
                    }
                    Err(volta_dispatch::DispatchError::Cancelled) if due.is_some() => {
                        Err(Status::deadline_exceeded("the deadline passed between windows"))
                    }
                    Err(e) => Err(errors::dispatch(&e)),
                };
                // Nobody to tell if the client is gone.
                let _ = tx.blocking_send(event);
            }));
            if let Err(payload) = run {
                metrics_on_panic.panicked(&crate::telemetry::panic_message(payload.as_ref()));
                let _ = failed.blocking_send(Err(Status::internal(
                    "internal error in the rolling horizon (logged on the server)",
                )));
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }
}
