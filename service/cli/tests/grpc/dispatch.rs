//! DispatchService over gRPC: the library's numbers, field violations,
//! deadlines and shedding, Pareto fronts and rolling horizons, and the CLI
//! and gRPC reading a request alike.

use std::process::Command;
use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;
use volta_api::pb::dispatch::rolling_horizon_response::Event;

use super::{Server, case_json, close, invalid_case, length, library_case, metrics, once_a_slot_frees, pb, reason};

#[tokio::test]
async fn health_validate_and_schedule_give_the_library_numbers() {
    let server = Server::start(&[]);
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: "volta.dispatch.v1.DispatchService".into() })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    // What grpcurl sees: every service, through reflection.
    let mut reflection =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(server.channel().await);
    let list = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut replies =
        reflection.server_reflection_info(tokio_stream::iter([list])).await.expect("reflect").into_inner();
    let reply = replies.message().await.expect("reply").expect("a reply");
    let Some(tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(services)) =
        reply.message_response
    else {
        panic!("not a service list");
    };
    let mut names: Vec<String> = services.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "volta.contracts.v1.ContractService",
            "volta.dispatch.v1.DispatchService",
            "volta.forecast.v1.ForecastService",
            "volta.planning.v1.PlanningService",
            "volta.trading.v1.TradingService",
        ]
    );

    let mut client = server.client().await;
    let ok = client.validate(pb::ValidateRequest { case: Some(case_json("campus.toml")) }).await.expect("validate");
    assert!(ok.get_ref().ok && ok.get_ref().summary.contains("13 assets"));
    let bad = client.validate(pb::ValidateRequest { case: Some(invalid_case()) }).await.expect("validate");
    let paths: Vec<&str> = bad.get_ref().problems.iter().map(|p| p.path.as_str()).collect();
    assert!(!bad.get_ref().ok && paths.contains(&"case.assets.turbine.type"), "{paths:?}");

    let request = pb::ScheduleRequest {
        case: Some(case_json("benchmarks/kazarlis10.toml")),
        mip_gap: Some(1e-6),
        ..pb::ScheduleRequest::default()
    };
    let reply = client.schedule(request).await.expect("schedule").into_inner();
    let options = volta_dispatch::Options { mip_gap: Some(1e-6), ..volta_dispatch::Options::default() };
    let library = volta_dispatch::schedule(&library_case("benchmarks/kazarlis10.toml"), &options).expect("library");
    assert_eq!(reply.status(), pb::SolveStatus::Optimal);
    let (a, b) = (reply.objective.expect("objective"), library.objective.expect("objective"));
    assert!(close(a, b, 1e-9), "{a} vs {b}");
    assert!(reply.costs.iter().any(|c| c.category == "startup"), "{:?}", reply.costs);
    let by_category: f64 = reply.costs.iter().map(|c| c.cost).sum();
    assert!(close(by_category, reply.cost.expect("cost"), 1e-9), "the categories add up to the cost");
    // The quadratic fuel curves' exact cost and bound, as the library gives them.
    let exact = library.exact.expect("exact");
    assert!(close(reply.exact_cost.expect("exact cost"), exact.cost, 1e-9));
    assert!(close(reply.exact_lower_bound.expect("exact bound"), exact.lower_bound.expect("bound"), 1e-9));
    // The schedule itself: 24 hourly steps on the case's grid, every unit's
    // output and on/off, balanced.
    let plan = reply.schedule.expect("schedule");
    let grid = plan.grid.clone().expect("grid");
    let library_grid = library_case("benchmarks/kazarlis10.toml").grid().clone();
    assert_eq!(grid.steps, 24);
    assert_eq!(grid.step, Some(length("1h")));
    assert_eq!(grid.start.expect("start").seconds, library_grid.instant(0).as_second());
    assert_eq!(grid.time_zone, library_grid.time_zone_name());
    let mut injected = [0.0; 24];
    for asset in &plan.assets {
        for flow in &asset.flows {
            assert_eq!(flow.power_kw.len(), 24, "{}", asset.id);
            injected.iter_mut().zip(&flow.power_kw).for_each(|(sum, kw)| *sum += kw);
        }
    }
    let unserved = &plan.buses[0].unserved_kw;
    for (t, (sum, lost)) in injected.iter().zip(unserved).enumerate() {
        assert!((sum + lost).abs() < 1e-6, "step {t}: the flows sum to {sum}");
    }
    // Every asset has a kind, and the units are thermal.
    assert!(plan.assets.iter().all(|a| a.kind() != pb::AssetKind::Unspecified), "{:?}", plan.assets);
    let unit = plan.assets.iter().find(|a| a.kind() == pb::AssetKind::Thermal).expect("a unit");
    assert!(unit.details.iter().any(|s| s.name == "on"), "{:?}", unit.details);

    // A caller may ask for some assets' schedules only, or for none.
    let one = pb::ScheduleRequest {
        case: Some(case_json("benchmarks/kazarlis10.toml")),
        asset_ids: vec![unit.id.clone()],
        ..pb::ScheduleRequest::default()
    };
    let reply = client.schedule(one.clone()).await.expect("schedule").into_inner();
    let ids: Vec<String> = reply.schedule.expect("schedule").assets.into_iter().map(|a| a.id).collect();
    assert_eq!(ids, std::slice::from_ref(&unit.id));
    let summary = pb::ScheduleRequest { view: pb::ScheduleView::Summary.into(), asset_ids: Vec::new(), ..one.clone() };
    let reply = client.schedule(summary).await.expect("schedule").into_inner();
    assert!(reply.schedule.is_none() && reply.cost.is_some());
    let err = client
        .schedule(pb::ScheduleRequest { asset_ids: vec![unit.id.clone(), "nope".into()], ..one })
        .await
        .expect_err("an unknown asset");
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "asset_ids[1]", "{err:?}");
}

/// Identical units form a fleet unless the caller asks for every unit on
/// its own; either way each unit has its own schedule and the optimum is
/// the same (Kazarlis 20: two copies of each unit).
#[tokio::test]
async fn identical_units_are_one_fleet_unless_asked_apart() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    let request = |separate_units| pb::ScheduleRequest {
        case: Some(case_json("benchmarks/kazarlis20.toml")),
        mip_gap: Some(1e-3),
        separate_units,
        ..pb::ScheduleRequest::default()
    };
    let mut costs = Vec::new();
    for apart in [false, true] {
        let reply = client.schedule(request(apart)).await.expect("schedule").into_inner();
        let plan = reply.schedule.expect("schedule");
        let units = plan.assets.iter().filter(|a| a.kind() == pb::AssetKind::Thermal).count();
        assert_eq!(units, 20, "every unit has its own schedule (apart: {apart})");
        costs.push(reply.cost.expect("cost"));
    }
    assert!(close(costs[0], costs[1], 2e-3), "{costs:?}");
}

/// A solver strategy in the request is the one used, reported back with
/// every part set; the optimum is the same; a bad one is refused by field.
#[tokio::test]
async fn a_solver_strategy_is_used_and_reported_and_a_bad_one_refused_by_field() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    let request = |strategy| pb::ScheduleRequest {
        case: Some(case_json("benchmarks/kazarlis10.toml")),
        mip_gap: Some(1e-6),
        view: pb::ScheduleView::Summary.into(),
        strategy,
        ..pb::ScheduleRequest::default()
    };
    let chosen = client.schedule(request(None)).await.expect("schedule").into_inner();
    let used = chosen.strategy.expect("the strategy used");
    assert_ne!(used.lp_method(), pb::LpMethod::Unspecified);
    assert!(used.presolve.is_some() && used.heuristic_effort.is_some(), "{used:?}");
    assert_ne!(used.mip_start(), pb::MipStart::Unspecified);
    let asked = pb::SolverStrategy {
        lp_method: pb::LpMethod::Ipm.into(),
        presolve: Some(false),
        heuristic_effort: Some(0.3),
        mip_start: pb::MipStart::Rounding.into(),
    };
    let set = client.schedule(request(Some(asked))).await.expect("schedule").into_inner();
    assert_eq!(set.strategy, Some(asked));
    assert!(close(set.cost.expect("cost"), chosen.cost.expect("cost"), 1e-6), "{set:?}");
    for (wrong, wanted) in [
        (pb::SolverStrategy { heuristic_effort: Some(1.5), ..asked }, "strategy.heuristic_effort"),
        (pb::SolverStrategy { heuristic_effort: Some(f64::NAN), ..asked }, "strategy.heuristic_effort"),
        (pb::SolverStrategy { lp_method: 7, ..asked }, "strategy.lp_method"),
        (pb::SolverStrategy { mip_start: -1, ..asked }, "strategy.mip_start"),
    ] {
        let err = client.schedule(request(Some(wrong))).await.expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(super::field(&err), wanted, "{err:?}");
    }
}

/// A week in three blocks: the relaxation is the best bound, the gap the
/// distance to it, as the library's decomposition reports them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_in_blocks_gives_the_library_numbers_and_refuses_by_field() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    let request = pb::ScheduleRequest {
        case: Some(case_json("campus.toml")),
        blocks: Some(3),
        view: pb::ScheduleView::Summary.into(),
        ..pb::ScheduleRequest::default()
    };
    let reply = client.schedule(request.clone()).await.expect("schedule").into_inner();
    let case = library_case("campus.toml");
    let library = volta_dispatch::decompose(
        &case,
        &volta_dispatch::Decomposition::new(3, volta_dispatch::Options::default()),
        &|_| {},
    )
    .expect("decomposes");
    assert!(matches!(reply.status(), pb::SolveStatus::Optimal | pb::SolveStatus::WithinGap), "{reply:?}");
    let (cost, bound) = (reply.cost.expect("cost"), reply.best_bound.expect("the relaxation"));
    assert!(close(cost, library.schedule.expect("stitched").cost, 1e-6), "{cost}");
    assert!(close(bound, library.lower_bound.expect("bound"), 1e-9), "{bound}");
    assert_eq!(reply.objective, Some(cost));
    let gap = reply.mip_gap.expect("gap");
    assert!(bound < cost && (gap - (cost - bound) / cost).abs() < 1e-12 && gap < 0.05, "{reply:?}");

    for (wrong, wanted) in [
        (pb::ScheduleRequest { blocks: Some(0), ..request.clone() }, "blocks"),
        (pb::ScheduleRequest { blocks: Some(u32::MAX), ..request.clone() }, "blocks"),
        (pb::ScheduleRequest { blocks: Some(4), ..request.clone() }, "blocks"),
        (pb::ScheduleRequest { seam_steps: Some(2), ..request.clone() }, "seam_steps"),
        (pb::ScheduleRequest { seam_steps: Some(0), ..request.clone() }, "seam_steps"),
        (pb::ScheduleRequest { blocks: None, seam_steps: Some(24), ..request.clone() }, "seam_steps"),
        (pb::ScheduleRequest { objective: pb::Objective::Co2.into(), ..request.clone() }, "objective"),
    ] {
        let err = client.schedule(wrong).await.expect_err("refused");
        assert_eq!(super::field(&err), wanted, "{err:?}");
    }
}

#[tokio::test]
async fn an_invalid_case_is_invalid_argument_with_field_violations() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    let err = client
        .schedule(pb::ScheduleRequest { case: Some(invalid_case()), ..pb::ScheduleRequest::default() })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    let violations = err.get_details_bad_request().expect("bad request details").field_violations;
    let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    assert!(fields.contains(&"case.assets.battery.energy_capacity_kwh"), "{fields:?}");
    assert!(fields.len() >= 5, "{fields:?}");
    assert_eq!(reason(&err), "INVALID_CASE");
    let err = client
        .schedule(pb::ScheduleRequest {
            case: Some(case_json("campus.toml")),
            objective: pb::Objective::Weighted as i32,
            ..pb::ScheduleRequest::default()
        })
        .await
        .expect_err("weighted without a price");
    assert_eq!(err.code(), Code::InvalidArgument);
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "co2_price");
    assert_eq!(reason(&err), "INVALID_FIELD");
    let err = client
        .pareto(pb::ParetoRequest { case: Some(case_json("islanded.toml")), points: 1, ..Default::default() })
        .await
        .expect_err("one point");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("2 to 32 points"), "{}", err.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_the_solve_and_overload_is_shed() {
    let server = Server::start(&["--solver-slots", "1"]);
    let campus = pb::ScheduleRequest {
        case: Some(case_json("campus.toml")),
        mip_gap: Some(0.0),
        view: pb::ScheduleView::Summary.into(),
        ..Default::default()
    };
    // One slot: of three concurrent solves, at least one is shed at once.
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.client().await);
    }
    let calls = clients.into_iter().map(|mut c| {
        let mut request = tonic::Request::new(campus.clone());
        request.set_timeout(Duration::from_secs(3));
        tokio::spawn(async move { c.schedule(request).await })
    });
    let calls: Vec<_> = calls.collect(); // start all three before waiting for any
    let mut shed = 0;
    let mut answered = 0;
    let mut solved = 0;
    for call in calls {
        match call.await.expect("task") {
            Ok(reply) => {
                // A 3 s deadline became the solver's time limit: the plan comes back,
                // optimal or with the time limit's incumbent.
                let status = reply.get_ref().status();
                assert!(
                    matches!(status, pb::SolveStatus::Optimal | pb::SolveStatus::TimeLimit),
                    "{:?}",
                    reply.get_ref()
                );
                assert!(reply.get_ref().schedule.is_none(), "the summary view");
                answered += 1;
                solved += 1;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                // The client is told when to try again.
                let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
                assert!(retry.is_some_and(|d| d > Duration::ZERO), "{status:?}");
                assert_eq!(reason(&status), "OVERLOADED");
                shed += 1;
            }
            // On a loaded machine the solve may not finish in time: the server
            // then answers DEADLINE_EXCEEDED itself, before the caller's deadline
            // (the client's own timer would say CANCELLED, "Timeout expired").
            Err(status) if status.code() == Code::DeadlineExceeded => {
                assert!(status.message().contains("deadline came"), "{status:?}");
                assert_eq!(reason(&status), "DEADLINE_EXCEEDED");
                answered += 1;
            }
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert!(shed >= 1 && answered >= 1, "shed {shed}, answered {answered}");
    // A solve past its deadline goes on until it stops at its next phase;
    // its work is timed then (a loaded machine may take a while).
    let mut text = metrics(&server).await;
    for _ in 0..600 {
        if text.contains(r#"volta_work_duration_seconds_count{kind="schedule"}"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = metrics(&server).await;
    }
    assert!(text.contains(r#"grpc_method="Schedule",grpc_code="RESOURCE_EXHAUSTED""#), "{text}");
    assert!(text.contains("volta_solver_slots 1"), "{text}");
    assert!(text.contains(r#"volta_work_duration_seconds_count{kind="schedule"}"#), "{text}");
    if solved > 0 {
        // A plan came back: its solve was counted before the reply.
        assert!(text.contains(r#"volta_solves_total{status="#), "{text}");
    }
}

/// The islanded microgrid cut to its first day (48 half-hour steps), so
/// that its unit-commitment solves take seconds.
fn islanded_day() -> volta_engine::Case {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["islanded.toml", "islanded_profiles.csv"] {
        let text = std::fs::read_to_string(volta_datasets::case(name)).expect("read");
        std::fs::write(dir.path().join(name), text.replace("days = 3", "days = 1")).expect("write");
    }
    volta_engine::Case::from_path(dir.path().join("islanded.toml")).expect("case")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pareto_and_rolling_horizon_give_the_library_numbers() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    let case = islanded_day();
    let text = pb::CaseText { format: Some(pb::case_text::Format::Json(case.to_json().expect("json"))) };

    let request = pb::ParetoRequest { case: Some(text.clone()), points: 3, ..Default::default() };
    let options = volta_dispatch::Options::default();
    let library = {
        let (case, options) = (case.clone(), options.clone());
        tokio::task::spawn_blocking(move || volta_dispatch::pareto(&case, 3, &options).expect("library front"))
    };
    let front = client.pareto(request).await.expect("pareto").into_inner();
    let library = library.await.expect("library");
    assert_eq!(front.points.len(), library.points.len());
    assert!(front.points.len() >= 2, "{front:?}");
    for (got, want) in front.points.iter().zip(&library.points) {
        assert!(close(got.cost, want.cost, 1e-9) && close(got.co2_kg, want.co2_kg, 1e-9), "{got:?} vs {want:?}");
    }
    assert!(front.points.windows(2).all(|w| w[0].cost <= w[1].cost && w[0].co2_kg >= w[1].co2_kg));

    let request = pb::RollingHorizonRequest {
        case: Some(text.clone()),
        horizon: Some(length("8h")),
        commit: Some(length("4h")),
        lower_bound: true,
        ..Default::default()
    };
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let mut windows = Vec::new();
    let mut summary = None;
    while let Some(event) = stream.message().await.expect("event") {
        match event.event.expect("event") {
            Event::Window(w) => windows.push(w),
            Event::Summary(s) => summary = Some(s),
        }
    }
    let summary = summary.expect("a summary ends the stream");
    let rolling = volta_dispatch::RollingOptions {
        lower_bound: true,
        ..volta_dispatch::RollingOptions::new(16, Some(8), options)
    };
    let library = volta_dispatch::rolling_horizon(&case, &rolling, &mut |_, _, _| {}).expect("library rolling");
    assert_eq!(windows.len(), library.windows.len());
    assert_eq!(windows.len(), 6);
    for (sent, solved) in windows.iter().zip(&library.windows) {
        assert_eq!(usize::try_from(sent.warm_start_columns).ok(), Some(solved.warm_start), "{sent:?}");
        assert_eq!(sent.proven_by_relaxation, solved.proven_by_relaxation, "{sent:?}");
    }
    assert_eq!((windows[1].start_step, windows[1].windows, windows[5].index), (8, 6, 5));
    let plan = library.schedule.expect("stitched");
    // Each window sends the steps it commits: together, the stitched plan.
    for (k, window) in windows.iter().enumerate() {
        let committed = window.committed.as_ref().expect("committed steps");
        let grid = committed.grid.as_ref().expect("grid");
        assert_eq!(grid.steps, 8);
        assert_eq!(grid.start.expect("start").seconds, case.grid().instant(8 * k).as_second());
        for (piece, whole) in committed.assets.iter().zip(&plan.assets) {
            assert_eq!(piece.id, whole.id.as_str());
            for (p, w) in piece.flows.iter().zip(&whole.flows) {
                assert_eq!(p.power_kw.as_slice(), &w.kw[8 * k..8 * (k + 1)], "{} in window {k}", piece.id);
            }
        }
    }
    assert!(close(summary.cost.expect("cost"), plan.cost, 1e-9), "{summary:?} vs {}", plan.cost);
    assert_eq!(summary.steps, 48);
    // The whole horizon's relaxation, as the library finds it, below the stitched cost.
    let bound = summary.lower_bound.expect("a lower bound was asked for");
    assert!(close(bound, library.lower_bound.expect("library bound"), 1e-9) && bound <= plan.cost, "{summary:?}");
    let err = client
        .rolling_horizon(pb::RollingHorizonRequest {
            case: Some(text),
            horizon: Some(length("8h")),
            objective: pb::Objective::Co2 as i32,
            lower_bound: true,
            ..Default::default()
        })
        .await
        .expect_err("a bound of the cost only");
    assert_eq!((err.code(), super::field(&err)), (Code::InvalidArgument, "lower_bound".to_owned()), "{err:?}");

    let err = client
        .rolling_horizon(pb::RollingHorizonRequest { horizon: Some(length("45m")), ..Default::default() })
        .await
        .expect_err("no case");
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_rolling_horizon_stops_between_windows_and_frees_its_slot() {
    let server = Server::start(&["--solver-slots", "1"]);
    let mut client = server.client().await;
    // The campus week in 4-hour windows: 42 windows, far longer than the test.
    let request = pb::RollingHorizonRequest {
        case: Some(case_json("campus.toml")),
        horizon: Some(length("8h")),
        commit: Some(length("4h")),
        ..Default::default()
    };
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let first = stream.message().await.expect("event").expect("a first window");
    assert!(matches!(first.event, Some(Event::Window(ref w)) if w.windows == 42));
    drop(stream);
    // The one slot comes free once the run stops at its next window.
    let small = pb::ValidateRequest { case: Some(case_json("benchmarks/kazarlis10.toml")) };
    let kazarlis =
        pb::ScheduleRequest { case: small.case.clone(), view: pb::ScheduleView::Summary.into(), ..Default::default() };
    let freed = once_a_slot_frees(100, || {
        let (mut client, kazarlis) = (client.clone(), kazarlis.clone());
        async move { client.schedule(kazarlis).await }
    })
    .await;
    assert!(freed.is_some(), "the cancelled run still holds its slot after 10 s");
    let text = metrics(&server).await;
    let windows: f64 = text
        .lines()
        .find(|l| l.starts_with(r#"volta_work_duration_seconds_count{kind="rolling_window"}"#))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("rolling windows counted");
    assert!(windows < 42.0, "{windows} windows ran after the client left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_ends_a_rolling_horizon_with_a_time_limit_summary_of_what_was_committed() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    // The islanded microgrid's three days in 4-hour windows with unit
    // commitment: 18 windows of about a second each here, more than 8 s.
    let mut request = tonic::Request::new(pb::RollingHorizonRequest {
        case: Some(case_json("islanded.toml")),
        horizon: Some(length("8h")),
        commit: Some(length("4h")),
        ..Default::default()
    });
    request.set_timeout(Duration::from_secs(8));
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let mut committed = 0;
    let mut summary = None;
    while let Some(event) = stream.message().await.expect("the stream ends with a summary, not an error") {
        match event.event.expect("event") {
            Event::Window(w) => committed += w.committed.and_then(|c| c.grid).map_or(0, |g| g.steps),
            Event::Summary(s) => summary = Some(s),
        }
    }
    let summary = summary.expect("a summary ends the stream");
    assert_eq!(summary.status(), pb::SolveStatus::TimeLimit, "{summary:?}");
    assert!(summary.steps > 0 && summary.steps < 144, "{summary:?}");
    assert_eq!(summary.steps, committed, "the summary covers what the windows committed");
    assert!(summary.cost.is_some_and(f64::is_finite), "{summary:?}");
}

/// The CLI's JSON summary of `volta schedule ARGS`.
fn cli_schedule(args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_volta")).arg("schedule").args(args).output().expect("volta schedule");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.find('{').expect("a JSON summary");
    serde_json::from_str(&text[start..]).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_and_grpc_read_an_objective_and_a_rolling_default_alike() {
    let server = Server::start(&[]);
    let mut client = server.client().await;
    let campus = volta_datasets::case("campus.toml").display().to_string();
    // A CO2 price with the cost objective prices CO2 in both (it was dropped by the CLI).
    let cli = cli_schedule(&[&campus, "--co2-price", "0.05", "--gap", "1e-6"]);
    let request = pb::ScheduleRequest {
        case: Some(case_json("campus.toml")),
        co2_price: Some(0.05),
        mip_gap: Some(1e-6),
        view: pb::ScheduleView::Summary.into(),
        ..Default::default()
    };
    let grpc = client.schedule(request).await.expect("schedule").into_inner();
    assert_eq!(cli["objective_kind"], "weighted");
    let (a, b) = (cli["cost"].as_f64().expect("cost"), grpc.cost.expect("cost"));
    assert!(close(a, b, 1e-6), "CLI {a} vs gRPC {b}");
    // Without a commit length both keep half the window.
    let cli = cli_schedule(&[&campus, "--horizon-h", "48"]);
    assert_eq!(cli["rolling"]["commit_steps"], 24);
    assert_eq!(cli["objective_kind"], "cost", "a name under the same key as a single schedule's");
    let request = pb::RollingHorizonRequest {
        case: Some(case_json("campus.toml")),
        horizon: Some(length("48h")),
        ..Default::default()
    };
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let mut windows = 0;
    let mut cost = None;
    while let Some(event) = stream.message().await.expect("event") {
        match event.event {
            Some(Event::Window(w)) => windows = w.windows,
            Some(Event::Summary(s)) => cost = s.cost,
            None => {}
        }
    }
    assert_eq!(i64::from(windows), cli["rolling"]["windows"].as_i64().expect("windows"));
    let (a, b) = (cli["cost"].as_f64().expect("cost"), cost.expect("cost"));
    assert!(close(a, b, 1e-6), "CLI {a} vs gRPC {b}");
    // Weighted without a price is refused alike.
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["schedule", &campus, "--objective", "weighted"])
        .output()
        .expect("volta");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--co2-price: the weighted objective needs a CO2 price"));
}
