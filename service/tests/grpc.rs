//! `volta serve` over real loopback gRPC, called with a tonic client.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt as _;

mod pb {
    #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
    tonic::include_proto!("volta.dispatch.v1");

    pub mod forecast {
        #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
        tonic::include_proto!("volta.forecast.v1");
    }
}

use pb::dispatch_service_client::DispatchServiceClient;

/// A running `volta serve` on an ephemeral loopback port; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_volta"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .expect("volta serve starts");
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = BufReader::new(stderr);
        let mut line = String::new();
        reader.read_line(&mut line).expect("first line");
        // Keep draining the server's log so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let addr = line.split("listening on ").nth(1).and_then(|s| s.split_whitespace().next()).expect(&line);
        Self { child, url: format!("http://{addr}") }
    }

    async fn client(&self) -> DispatchServiceClient<tonic::transport::Channel> {
        DispatchServiceClient::connect(self.url.clone()).await.expect("connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn case_json(rel: &str) -> pb::CaseText {
    let case = volta_engine::Case::from_path(volta_datasets::case(rel)).expect("case");
    pb::CaseText { format: Some(pb::case_text::Format::Json(case.to_json().expect("json"))) }
}

fn invalid_case() -> pb::CaseText {
    let text = std::fs::read_to_string(volta_datasets::invalid_cases().join("structure.toml")).expect("invalid");
    pb::CaseText { format: Some(pb::case_text::Format::Toml(text)) }
}

#[tokio::test]
async fn health_validate_and_schedule_give_the_library_numbers() {
    let server = Server::start(&[]);
    let channel = tonic::transport::Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("c");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);

    let mut client = server.client().await;
    let ok = client.validate(pb::ValidateRequest { case: Some(case_json("campus.toml")) }).await.expect("validate");
    assert!(ok.get_ref().ok && ok.get_ref().summary.contains("13 assets"));
    let bad = client.validate(pb::ValidateRequest { case: Some(invalid_case()) }).await.expect("validate");
    let paths: Vec<&str> = bad.get_ref().problems.iter().map(|p| p.path.as_str()).collect();
    assert!(!bad.get_ref().ok && paths.contains(&"case.assets.turbine.type"), "{paths:?}");

    let request = pb::ScheduleRequest {
        case: Some(case_json("benchmarks/kazarlis10.toml")),
        gap: Some(1e-6),
        ..pb::ScheduleRequest::default()
    };
    let reply = client.schedule(request).await.expect("schedule").into_inner();
    let case = volta_engine::Case::from_path(volta_datasets::case("benchmarks/kazarlis10.toml")).expect("case");
    let options = volta_dispatch::Options { mip_gap: Some(1e-6), ..volta_dispatch::Options::default() };
    let library = volta_dispatch::schedule(&case, &options).expect("library");
    assert_eq!(reply.status, "optimal");
    let (a, b) = (reply.objective.expect("objective"), library.objective.expect("objective"));
    assert!((a - b).abs() <= 1e-9 * b.abs(), "{a} vs {b}");
    assert!(reply.cost_by_category.contains_key("startup"));
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
    let err = client
        .schedule(pb::ScheduleRequest {
            case: Some(case_json("campus.toml")),
            objective: pb::Objective::Weighted as i32,
            ..pb::ScheduleRequest::default()
        })
        .await
        .expect_err("weighted without a price");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("co2_price"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_bounds_the_solve_and_overload_is_shed() {
    let server = Server::start(&["--solver-slots", "1"]);
    let campus = pb::ScheduleRequest { case: Some(case_json("campus.toml")), gap: Some(0.0), ..Default::default() };
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
    for call in calls {
        match call.await.expect("task") {
            Ok(reply) => {
                // A 3 s deadline became the solver's time limit: the plan comes back,
                // optimal or with the time limit's incumbent.
                assert!(matches!(reply.get_ref().status.as_str(), "optimal" | "time_limit"), "{:?}", reply.get_ref());
                answered += 1;
            }
            Err(status) if status.code() == Code::ResourceExhausted => shed += 1,
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert!(shed >= 1 && answered >= 1, "shed {shed}, answered {answered}");
}

#[test]
fn sigterm_stops_the_server_cleanly_and_public_addresses_are_refused() {
    let server = Server::start(&[]);
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
    let mut server = server;
    let exit = server.child.wait().expect("exit");
    assert!(exit.success(), "{exit:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}

#[tokio::test]
async fn forecast_backtests_give_the_cli_numbers_and_name_bad_columns() {
    use pb::forecast::forecast_service_client::ForecastServiceClient;
    let server = Server::start(&[]);
    let mut client = ForecastServiceClient::connect(server.url.clone()).await.expect("connect");
    let csv = std::fs::read_to_string(volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv")).expect("csv");
    let request = pb::forecast::BacktestRequest {
        data_csv: csv,
        target: "demand_gw".into(),
        time_column: "period_start_aest_assumed".into(),
        exog: vec!["temperature_c".into()],
        known_ahead: vec!["temperature_c".into()],
        timezone: "Australia/Brisbane".into(),
        options_json: r#"{"horizon": 48, "model": "naive_week", "quantiles": [0.1, 0.9]}"#.into(),
        train_until: "2014-10-31".into(),
        refit_every: 0,
    };
    let reply = client.backtest(request.clone()).await.expect("backtest").into_inner();
    assert_eq!(reply.model, "naive_week");
    assert_eq!(reply.n_forecasts, 61);
    assert!((reply.mape - 7.197).abs() < 0.01, "{}", reply.mape);
    assert!(reply.interval_coverage.is_some() && reply.coverage.contains_key("0.9"));
    let err = client
        .backtest(pb::forecast::BacktestRequest { target: "demand_mw".into(), ..request.clone() })
        .await
        .expect_err("missing column");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("demand_mw"), "{}", err.message());
    let err = client
        .backtest(pb::forecast::BacktestRequest {
            options_json: r#"{"horizon": 48, "modle": "gbdt"}"#.into(),
            ..request
        })
        .await
        .expect_err("unknown option");
    assert!(err.message().contains("modle"), "{}", err.message());
}
