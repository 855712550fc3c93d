//! ForecastService over gRPC: backtests with the CLI's numbers, and long
//! work that stops when its caller leaves.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;

use super::{
    Server, fpb, model, once_a_slot_frees, reason, victoria, victoria_backtest, victoria_train_until, with_quantiles,
};

#[tokio::test]
async fn forecast_backtests_give_the_cli_numbers_and_name_bad_columns() {
    let server = Server::start(&[]);
    let mut client = server.forecaster().await;
    let request = victoria_backtest(with_quantiles(model(fpb::ModelKind::NaiveWeek)), 0);
    let series = request.series.clone().expect("series");
    let reply = client.backtest(request.clone()).await.expect("backtest").into_inner();
    assert_eq!(reply.model(), fpb::ModelKind::NaiveWeek);
    assert_eq!(reply.forecasts, 61);
    assert!((reply.mape - 7.197).abs() < 0.01, "{}", reply.mape);
    assert!(reply.interval_coverage.is_some());
    let levels: Vec<f64> = reply.coverages.iter().map(|c| c.level).collect();
    assert_eq!(levels, [0.1, 0.9]);
    let err = client
        .backtest(fpb::BacktestRequest {
            series: Some(fpb::SeriesData { target: "demand_mw".into(), ..series }),
            ..request.clone()
        })
        .await
        .expect_err("missing column");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("demand_mw"), "{}", err.message());
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "series.csv[demand_mw]");
    assert_eq!(reason(&err), "INVALID_FIELD");
    let options = fpb::ModelOptions { model: 99, ..model(fpb::ModelKind::Gbdt) };
    let err = client
        .backtest(fpb::BacktestRequest { options: Some(options), ..request })
        .await
        .expect_err("unknown model kind");
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "options.model", "{err:?}");
}

#[tokio::test]
async fn a_dropped_backtest_stops_at_its_next_forecast_and_frees_its_slot() {
    let server = Server::start(&["--solver-slots", "1"]);
    let client = server.forecaster().await;
    // GBDT refitted before each of 61 issues: minutes of work.
    let long = victoria_backtest(with_quantiles(model(fpb::ModelKind::Gbdt)), 1);
    let quick = victoria_backtest(model(fpb::ModelKind::NaiveWeek), 0);
    let mut background = client.clone();
    let call = tokio::spawn(async move { background.backtest(long).await });
    // The long backtest takes the one slot as it arrives (a probe sent too
    // early would take it first and have the long call shed).
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!call.is_finished(), "the long backtest ended early: {:?}", call.await);
    let mut probe = client.clone();
    let err = probe.backtest(quick.clone()).await.expect_err("slot taken");
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    call.abort();
    let reply = once_a_slot_frees(150, || {
        let (mut probe, quick) = (probe.clone(), quick.clone());
        async move { probe.backtest(quick).await }
    })
    .await
    .expect("the abandoned backtest still holds its slot after 15 s");
    assert_eq!(reply.into_inner().forecasts, 61);
}

#[tokio::test]
async fn a_dropped_train_stops_at_its_next_tree_and_frees_its_slot() {
    let server = Server::start(&["--solver-slots", "1"]);
    let client = server.forecaster().await;
    // Seven fits of 5,000 trees (six-fold calibration and the final model):
    // about 25 s on two cores uncancelled.
    let options = fpb::ModelOptions {
        trees: Some(5000),
        calibration_folds: Some(6),
        ..with_quantiles(model(fpb::ModelKind::Gbdt))
    };
    let train = fpb::TrainRequest {
        series: Some(victoria()),
        options: Some(options),
        train_until: Some(victoria_train_until()),
        ..Default::default()
    };
    let mut background = client.clone();
    let call = tokio::spawn(async move { background.train(train).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!call.is_finished(), "the long fit ended early: {:?}", call.await);
    call.abort();
    // Before, the fit ran to its end holding the only slot.
    let quick = victoria_backtest(model(fpb::ModelKind::NaiveWeek), 0);
    let freed = once_a_slot_frees(150, || {
        let (mut probe, quick) = (client.clone(), quick.clone());
        async move { probe.backtest(quick).await }
    })
    .await;
    assert!(freed.is_some(), "the abandoned fit still holds its slot after 15 s");
}

#[tokio::test]
async fn train_is_idempotent_by_request_id_and_models_list_in_pages() {
    let server = Server::start(&[]);
    let mut client = server.forecaster().await;
    let train = |kind: fpb::ModelKind, request_id: &str| fpb::TrainRequest {
        series: Some(victoria()),
        options: Some(model(kind)),
        train_until: Some(victoria_train_until()),
        display_name: format!("{kind:?}"),
        request_id: request_id.to_owned(),
    };
    let first = client.train(train(fpb::ModelKind::NaiveWeek, "r-1")).await.expect("train").into_inner();
    // The retry of a call whose answer was lost: the same model, not a second one.
    let retry = client.train(train(fpb::ModelKind::NaiveWeek, "r-1")).await.expect("retry").into_inner();
    assert_eq!(retry.model, first.model);
    assert_eq!(retry.fit_time.map(|d| (d.seconds, d.nanos)), Some((0, 0)));
    client.train(train(fpb::ModelKind::NaiveDay, "r-2")).await.expect("train");
    client.train(train(fpb::ModelKind::Linear, "")).await.expect("train");
    client.train(train(fpb::ModelKind::Linear, "")).await.expect("without a request id, two models");

    let list = |page_size: i32, page_token: String, filter: &str| fpb::ListModelsRequest {
        page_size,
        page_token,
        filter: filter.to_owned(),
    };
    let all = client.list_models(list(0, String::new(), "")).await.expect("list").into_inner();
    assert_eq!(all.models.len(), 4);
    assert!(all.next_page_token.is_empty());
    // Pages of 3 then 1 give the same models in the same order, newest first.
    let page = client.list_models(list(3, String::new(), "")).await.expect("page").into_inner();
    assert_eq!(page.models.len(), 3);
    let rest = client.list_models(list(3, page.next_page_token.clone(), "")).await.expect("page").into_inner();
    assert!(rest.next_page_token.is_empty());
    let paged: Vec<_> = page.models.iter().chain(&rest.models).cloned().collect();
    assert_eq!(paged, all.models);
    let created: Vec<_> = all.models.iter().map(|m| m.create_time.map(|t| (t.seconds, t.nanos))).collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
    // Filters.
    let linear = client.list_models(list(0, String::new(), r#"kind = "MODEL_KIND_LINEAR""#)).await.expect("filter");
    assert_eq!(linear.into_inner().models.len(), 2);
    let named = r#"display_name = "NaiveDay" AND target = "demand_gw""#;
    let one = client.list_models(list(0, String::new(), named)).await.expect("filter").into_inner();
    assert_eq!(one.models.len(), 1);
    for (request, field) in [
        (list(0, String::new(), "owner = \"x\""), "filter"),
        (list(0, "not a token".to_owned(), ""), "page_token"),
        (list(-1, String::new(), ""), "page_size"),
        (list(5000, String::new(), ""), "page_size"),
    ] {
        let err = client.list_models(request).await.expect_err(field);
        let fields = err.get_details_bad_request().expect("details").field_violations;
        assert_eq!(fields[0].field, field, "{err:?}");
    }
}

#[tokio::test]
async fn dirty_series_are_cleaned_by_the_requested_policies_and_the_flags_come_back() {
    let server = Server::start(&[]);
    let mut client = server.forecaster().await;
    let request = victoria_backtest(model(fpb::ModelKind::Linear), 0);
    let mut series = request.series.clone().expect("series");
    let Some(fpb::series_data::Source::Csv(csv)) = &series.source else { panic!("csv") };
    // An inf in training, a spike on a test day, and a conflicting repeat.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let set = |line: &str, value: &str| {
        let mut cells: Vec<&str> = line.split(',').collect();
        cells[2] = value;
        cells.join(",")
    };
    lines[1 + 48 * 280] = set(&lines[1 + 48 * 280], "inf");
    lines[1 + 48 * 320 + 20] = set(&lines[1 + 48 * 320 + 20], "1e12");
    let repeat = set(&lines[1 + 1000], "9.5");
    lines.push(repeat);
    series.source = Some(fpb::series_data::Source::Csv(lines.join("\n")));
    let dirty = fpb::BacktestRequest { series: Some(series.clone()), ..request.clone() };

    // By default the conflicting repeat is refused, naming both rows.
    let err = client.backtest(dirty.clone()).await.expect_err("conflicting duplicate");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("rows 1001 and 17521"), "{}", err.message());

    let cleaning = fpb::Cleaning { duplicates: fpb::DuplicatePolicy::Mean.into(), ..Default::default() };
    let merged = fpb::SeriesData { cleaning: Some(cleaning), ..series.clone() };
    let reply = client
        .backtest(fpb::BacktestRequest { series: Some(merged), ..request.clone() })
        .await
        .expect("backtest")
        .into_inner();
    let clean = client.backtest(request.clone()).await.expect("clean").into_inner();
    let quality = reply.data_quality.expect("data quality");
    let counts: Vec<(fpb::FlagKind, i32)> = quality.flag_counts.iter().map(|c| (c.kind(), c.count)).collect();
    // Two outliers: the spike, and the merged repeat (half of it is 9.5 GW
    // on a 5 GW evening).
    for (kind, n) in [(fpb::FlagKind::NonFinite, 1), (fpb::FlagKind::Outlier, 2), (fpb::FlagKind::Duplicate, 1)] {
        assert!(counts.contains(&(kind, n)), "{kind:?} in {counts:?}");
    }
    assert_eq!((quality.duplicates_merged, quality.excluded), (1, 3));
    let spike = quality.flags.iter().find(|f| f.value == 1e12).expect("the spike");
    assert_eq!((spike.kind(), spike.action()), (fpb::FlagKind::Outlier, fpb::FlagAction::Excluded));
    assert!(spike.expected.is_some_and(|e| (3.0..8.0).contains(&e)), "{spike:?}");
    assert_eq!(reply.flagged_not_scored, 1);
    assert!((reply.mape - clean.mape).abs() <= 0.02 * clean.mape, "{} vs {}", reply.mape, clean.mape);

    // A policy the proto does not define is named.
    let bad = fpb::SeriesData { cleaning: Some(fpb::Cleaning { outliers: 9, ..Default::default() }), ..series };
    let err = client.backtest(fpb::BacktestRequest { series: Some(bad), ..request }).await.expect_err("bad policy");
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "series.cleaning.outliers", "{err:?}");
}
