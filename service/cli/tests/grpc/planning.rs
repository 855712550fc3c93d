//! PlanningService over gRPC: a model trained and stored by the forecast
//! service drives a site's day-ahead plan, whose numbers the dispatch
//! service recomputes; bad requests name their field.

use tonic::Code;
use volta_api::pb::planning as ppb;
use volta_engine::{SeriesField, SeriesRef};

use super::{Server, at, close, field, fpb, library_case, pb, reason, victoria};
use ppb::planning_service_client::PlanningServiceClient;

/// The site of `datasets/cases/site_day.toml` (12 November 2014, hourly).
fn site() -> pb::CaseText {
    let text = std::fs::read_to_string(volta_datasets::case("site_day.toml")).expect("site_day.toml");
    pb::CaseText { format: Some(pb::case_text::Format::Toml(text)) }
}

fn issue() -> prost_types::Timestamp {
    at("2014-11-12T00:00:00+10:00")
}

/// A linear model of Victoria's demand with P10/P50/P90, trained on the
/// data before the planned day and stored: its resource name.
async fn stored_model(server: &Server) -> String {
    let mut forecaster = server.forecaster().await;
    let request = fpb::TrainRequest {
        series: Some(victoria()),
        options: Some(fpb::ModelOptions {
            horizon_steps: Some(48),
            model: fpb::ModelKind::Linear.into(),
            quantiles: vec![0.1, 0.5, 0.9],
            ..Default::default()
        }),
        train_until: Some(issue()),
        display_name: "victoria".into(),
        request_id: String::new(),
    };
    forecaster.train(request).await.expect("train").into_inner().model.expect("model").name
}

/// The site's load from `model`, Victoria's GW scaled to the site's kW.
fn source(model: &str) -> ppb::ForecastSource {
    ppb::ForecastSource {
        series: "site.demand_kw".into(),
        model: model.to_owned(),
        history: Some(victoria()),
        scale: Some(150.0),
    }
}

fn request(model: &str, scenarios: u32) -> ppb::PlanRequest {
    ppb::PlanRequest {
        case: Some(site()),
        issue_time: Some(issue()),
        forecasts: vec![source(model)],
        scenarios,
        imbalance_penalty: Some(0.1),
        mip_gap: Some(0.0),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_stored_model_drives_a_plan_that_the_dispatch_service_recomputes() {
    let server = Server::start(&[]);
    let model = stored_model(&server).await;
    let mut planner = PlanningServiceClient::new(server.channel().await);

    // Deterministic: the case scheduled on the point forecast.
    let point_plan = planner.plan(request(&model, 0)).await.expect("plan").into_inner();
    assert_eq!(point_plan.status(), pb::SolveStatus::Optimal);
    let forecast = &point_plan.forecasts[0];
    assert_eq!((forecast.series.as_str(), forecast.model.as_str()), ("site.demand_kw", model.as_str()));
    assert_eq!(forecast.point.len(), 24);
    let levels: Vec<f64> = forecast.quantiles.iter().map(|q| q.level).collect();
    assert_eq!(levels, [0.1, 0.5, 0.9]);
    assert!(forecast.paths > 100, "{} past-day paths", forecast.paths);
    // Victoria's November demand of 3-7 GW is 450-1,050 kW at the site.
    assert!(forecast.point.iter().all(|kw| (400.0..1100.0).contains(kw)), "{:?}", forecast.point);
    let series = SeriesRef::new("site", SeriesField::DemandKw);
    let point_case = library_case("site_day.toml").with_series(&series, forecast.point.clone()).expect("point case");
    let mut dispatcher = server.client().await;
    let direct = dispatcher
        .schedule(pb::ScheduleRequest {
            case: Some(pb::CaseText { format: Some(pb::case_text::Format::Json(point_case.to_json().expect("json"))) }),
            mip_gap: Some(0.0),
            view: pb::ScheduleView::Summary.into(),
            ..Default::default()
        })
        .await
        .expect("schedule")
        .into_inner();
    let (planned, scheduled) = (point_plan.objective.expect("objective"), direct.objective.expect("objective"));
    assert!(close(planned, scheduled, 1e-6), "plan {planned} vs schedule {scheduled}");
    assert_eq!(point_plan.scenarios.len(), 1);
    assert_eq!(point_plan.grid.as_ref().map(|g| g.steps), Some(24));

    // Two-stage stochastic over 6 scenarios, with their schedules.
    let stochastic = ppb::PlanRequest { schedules: true, ..request(&model, 6) };
    let plan = planner.plan(stochastic).await.expect("stochastic plan").into_inner();
    assert_eq!(plan.scenarios.len(), 6);
    let total: f64 = plan.scenarios.iter().map(|s| s.probability).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    let expected: f64 = plan.scenarios.iter().map(|s| s.probability * s.cost).sum();
    assert!(close(plan.expected_cost.expect("expected"), expected, 1e-12));
    assert!(close(plan.objective.expect("objective"), expected, 1e-6), "no risk measure: the objective is E[cost]");
    let cost = plan.cost.expect("distribution");
    assert!(cost.p10 <= cost.p50 && cost.p50 <= cost.p90 && cost.p90 <= cost.cvar, "{cost:?}");
    assert_eq!(cost.cvar_alpha, 0.9);
    assert_eq!(plan.commitment.len(), 1);
    assert_eq!((plan.commitment[0].asset.as_str(), plan.commitment[0].on.len()), ("engine", 24));
    assert_eq!((plan.nominations[0].asset.as_str(), plan.nominations[0].net_import_kw.len()), ("grid", 24));
    for outcome in &plan.scenarios {
        let schedule = outcome.schedule.as_ref().expect("schedules asked for");
        assert_eq!(schedule.grid.as_ref().map(|g| g.steps), Some(24));
        assert_eq!(schedule.assets.len(), 3);
    }
    // Without the flag, no schedules.
    let lean = planner.plan(request(&model, 6)).await.expect("plan").into_inner();
    assert!(lean.scenarios.iter().all(|s| s.schedule.is_none()));

    // The same scenarios by progressive hedging: its bounds hold the extensive optimum.
    let hedged = ppb::PlanRequest {
        hedging: Some(ppb::Hedging { max_iterations: 30, ..Default::default() }),
        ..request(&model, 6)
    };
    let hedged = planner.plan(hedged).await.expect("hedged plan").into_inner();
    let report = hedged.hedging.expect("hedging report");
    let optimum = plan.objective.expect("objective");
    assert!(report.lower_bound <= optimum * (1.0 + 1e-7) && report.upper_bound >= optimum * (1.0 - 1e-7), "{report:?}");
    assert!(plan.hedging.is_none());
}

#[tokio::test]
async fn bad_plans_name_their_field_and_other_models_are_not_found() {
    let server = Server::start(&[]);
    let model = stored_model(&server).await;
    let planner = PlanningServiceClient::new(server.channel().await);
    let refused = |request: ppb::PlanRequest| {
        let mut planner = planner.clone();
        async move { planner.plan(request).await.expect_err("refused") }
    };

    // A model this tenant does not have.
    let unknown =
        ppb::PlanRequest { forecasts: vec![source("tenants/default/models/0123456789abcdef")], ..request(&model, 0) };
    let err = refused(unknown).await;
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert_eq!(reason(&err), "MODEL_NOT_FOUND");
    assert!(err.message().starts_with("forecasts[0].model:"), "{}", err.message());

    // A series the case does not have, a series twice, a bad scale.
    let wrong = ppb::PlanRequest {
        forecasts: vec![ppb::ForecastSource { series: "grid.demand_kw".into(), ..source(&model) }],
        ..request(&model, 0)
    };
    let err = refused(wrong).await;
    assert_eq!(field(&err), "forecasts[0].series");
    assert!(err.message().contains("only a load has demand_kw"), "{}", err.message());
    let twice = ppb::PlanRequest { forecasts: vec![source(&model), source(&model)], ..request(&model, 0) };
    assert_eq!(field(&refused(twice).await), "forecasts[1].series");
    let scale = ppb::PlanRequest {
        forecasts: vec![ppb::ForecastSource { scale: Some(-1.0), ..source(&model) }],
        ..request(&model, 0)
    };
    assert_eq!(field(&refused(scale).await), "forecasts[0].scale");

    // History without the model's target: the column, under the source's history.
    let mut history = victoria();
    if let Some(fpb::series_data::Source::Csv(csv)) = &mut history.source {
        *csv = csv.replacen("demand_gw", "demand_mw", 1);
    }
    let renamed = ppb::PlanRequest {
        forecasts: vec![ppb::ForecastSource { history: Some(history), ..source(&model) }],
        ..request(&model, 0)
    };
    let err = refused(renamed).await;
    assert_eq!(field(&err), "forecasts[0].history.csv[demand_gw]", "{err:?}");

    // Issued inside the model's training data: a day it has seen.
    let seen = ppb::PlanRequest { issue_time: Some(at("2014-11-11T12:00:00+10:00")), ..request(&model, 0) };
    let err = refused(seen).await;
    assert_eq!(field(&err), "forecasts[0].model");
    assert!(err.message().contains("would have seen the day it plans"), "{}", err.message());

    // Options: too many scenarios, CVaR out of range, CVaR with hedging, no issue time.
    assert_eq!(field(&refused(request(&model, 1001)).await), "scenarios");
    let cvar = ppb::PlanRequest { cvar: Some(ppb::Cvar { alpha: 1.0, weight: 0.5 }), ..request(&model, 6) };
    assert_eq!(field(&refused(cvar).await), "cvar.alpha");
    let both = ppb::PlanRequest {
        cvar: Some(ppb::Cvar { alpha: 0.9, weight: 0.5 }),
        hedging: Some(ppb::Hedging { max_iterations: 10, ..Default::default() }),
        ..request(&model, 6)
    };
    assert_eq!(field(&refused(both).await), "cvar");
    let no_issue = ppb::PlanRequest { issue_time: None, ..request(&model, 0) };
    assert_eq!(field(&refused(no_issue).await), "issue_time");
    let none = ppb::PlanRequest { forecasts: Vec::new(), ..request(&model, 0) };
    assert_eq!(field(&refused(none).await), "forecasts");
}

#[tokio::test]
async fn scenarios_count_against_the_case_cell_budget_before_any_solve() {
    // 24 steps x 3 assets = 72 cells a copy; a budget of 1,000 cells holds
    // 13 scenarios, not 14.
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    let db = dir.path().join("volta.db");
    std::fs::write(
        &config,
        format!("[storage]\nurl = \"sqlite://{}\"\n[limits]\nmax_case_cells = 1000\n", db.display()),
    )
    .expect("write");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    let model = stored_model(&server).await;
    let mut planner = PlanningServiceClient::new(server.channel().await);
    let err = planner.plan(request(&model, 14)).await.expect_err("over the budget");
    assert_eq!(field(&err), "scenarios");
    assert_eq!(reason(&err), "OVER_LIMIT");
    assert!(err.message().contains("14 scenarios x 24 steps x 3 assets = 1008 cells"), "{}", err.message());
    let within = planner.plan(request(&model, 13)).await.expect("within the budget").into_inner();
    assert_eq!(within.scenarios.len(), 13);
}
