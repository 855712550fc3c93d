//! ForecastService over gRPC: backtests with the CLI's numbers, and long
//! work that stops when its caller leaves.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;

use super::{Server, fpb, once_a_slot_frees, victoria, victoria_backtest};

#[tokio::test]
async fn forecast_backtests_give_the_cli_numbers_and_name_bad_columns() {
    let server = Server::start(&[]);
    let mut client = server.forecaster().await;
    let request = victoria_backtest(r#"{"horizon": 48, "model": "naive_week", "quantiles": [0.1, 0.9]}"#, 0);
    let series = request.series.clone().expect("series");
    let reply = client.backtest(request.clone()).await.expect("backtest").into_inner();
    assert_eq!(reply.model, "naive_week");
    assert_eq!(reply.n_forecasts, 61);
    assert!((reply.mape - 7.197).abs() < 0.01, "{}", reply.mape);
    assert!(reply.interval_coverage.is_some() && reply.coverage.contains_key("0.9"));
    let err = client
        .backtest(fpb::BacktestRequest {
            series: Some(fpb::Series { target: "demand_mw".into(), ..series }),
            ..request.clone()
        })
        .await
        .expect_err("missing column");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("demand_mw"), "{}", err.message());
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "series.csv[demand_mw]");
    let err = client
        .backtest(fpb::BacktestRequest { options_json: r#"{"horizon": 48, "modle": "gbdt"}"#.into(), ..request })
        .await
        .expect_err("unknown option");
    assert!(err.message().contains("modle"), "{}", err.message());
}

#[tokio::test]
async fn a_dropped_backtest_stops_at_its_next_forecast_and_frees_its_slot() {
    let server = Server::start(&["--solver-slots", "1"]);
    let client = server.forecaster().await;
    // GBDT refitted before each of 61 issues: minutes of work.
    let long = victoria_backtest(r#"{"horizon": 48, "model": "gbdt", "quantiles": [0.1, 0.9]}"#, 1);
    let quick = victoria_backtest(r#"{"horizon": 48, "model": "naive_week"}"#, 0);
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
    assert_eq!(reply.into_inner().n_forecasts, 61);
}

#[tokio::test]
async fn a_dropped_train_stops_at_its_next_tree_and_frees_its_slot() {
    let server = Server::start(&["--solver-slots", "1"]);
    let client = server.forecaster().await;
    // Seven fits of 5,000 trees (six-fold calibration and the final model):
    // about 25 s on two cores uncancelled.
    let (series, options_json) =
        victoria(r#"{"horizon": 48, "model": "gbdt", "trees": 5000, "quantiles": [0.1, 0.9], "calibration_folds": 6}"#);
    let train =
        fpb::TrainRequest { series: Some(series), options_json, train_until: "2014-10-31".into(), name: String::new() };
    let mut background = client.clone();
    let call = tokio::spawn(async move { background.train(train).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!call.is_finished(), "the long fit ended early: {:?}", call.await);
    call.abort();
    // Before, the fit ran to its end holding the only slot.
    let quick = victoria_backtest(r#"{"horizon": 48, "model": "naive_week"}"#, 0);
    let freed = once_a_slot_frees(150, || {
        let (mut probe, quick) = (client.clone(), quick.clone());
        async move { probe.backtest(quick).await }
    })
    .await;
    assert!(freed.is_some(), "the abandoned fit still holds its slot after 15 s");
}
