//! `volta serve` over real loopback gRPC, called with tonic clients.

mod fuzz;
mod security;

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;
use volta_service::grpc::pb::dispatch as pb;
use volta_service::grpc::pb::forecast as fpb;

use fpb::forecast_service_client::ForecastServiceClient;
use pb::dispatch_service_client::DispatchServiceClient;

const SECRET: &str = "a test secret of at least thirty-two bytes";

/// A running `volta serve` on an ephemeral loopback port with its own
/// SQLite file; killed on drop.
struct Server {
    child: Child,
    url: String,
    metrics: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = format!("sqlite://{}", dir.path().join("volta.db").display());
        let mut server = Self::start_with(&[&["--database", &db], extra].concat(), &[]);
        server._dir = Some(dir);
        server
    }

    fn start_with(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_volta"))
            .args(["serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(args)
            .envs(env.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .expect("volta serve starts");
        let mut reader = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        let started = loop {
            line.clear();
            if reader.read_line(&mut line).expect("log line") == 0 {
                panic!("volta serve exited before listening");
            }
            let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
            if json["message"].as_str().is_some_and(|m| m.starts_with("listening on")) {
                break json;
            }
        };
        // Keep draining the server's log so that it never writes to a closed pipe.
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        let scheme = if started["tls"].as_bool() == Some(true) { "https" } else { "http" };
        Self {
            child,
            url: format!("{scheme}://{}", started["addr"].as_str().expect("addr")),
            metrics: started["metrics"].as_str().filter(|m| *m != "off").map(str::to_owned),
            _dir: None,
        }
    }

    /// The server's peak resident memory (VmHWM) in KiB, or 0 where /proc
    /// does not say.
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Whether the server process is still up (not exited, not a zombie).
    fn is_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).is_ok_and(|stat| !stat.contains(") Z"))
    }

    async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone()).expect("url").connect().await.expect("connect")
    }

    async fn client(&self) -> DispatchServiceClient<Channel> {
        DispatchServiceClient::new(self.channel().await)
    }

    async fn forecaster(&self) -> ForecastServiceClient<Channel> {
        ForecastServiceClient::new(self.channel().await)
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

fn library_case(rel: &str) -> volta_engine::Case {
    volta_engine::Case::from_path(volta_datasets::case(rel)).expect("case")
}

fn close(a: f64, b: f64, rtol: f64) -> bool {
    (a - b).abs() <= rtol * b.abs().max(1.0)
}

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
            "volta.dispatch.v1.DispatchService",
            "volta.forecast.v1.ForecastService"
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
        gap: Some(1e-6),
        ..pb::ScheduleRequest::default()
    };
    let reply = client.schedule(request).await.expect("schedule").into_inner();
    let options = volta_dispatch::Options { mip_gap: Some(1e-6), ..volta_dispatch::Options::default() };
    let library = volta_dispatch::schedule(&library_case("benchmarks/kazarlis10.toml"), &options).expect("library");
    assert_eq!(reply.status, "optimal");
    let (a, b) = (reply.objective.expect("objective"), library.objective.expect("objective"));
    assert!(close(a, b, 1e-9), "{a} vs {b}");
    assert!(reply.cost_by_category.contains_key("startup"));
    // The schedule itself: 24 steps, every unit's output and on/off, balanced.
    let plan = reply.schedule.expect("schedule");
    assert_eq!(plan.times.len(), 24);
    assert!(plan.times[0].starts_with("20") && plan.times[0].contains('T'), "{}", plan.times[0]);
    let mut injected = [0.0; 24];
    for asset in &plan.assets {
        for flow in &asset.flows {
            assert_eq!(flow.kw.len(), 24, "{}", asset.id);
            injected.iter_mut().zip(&flow.kw).for_each(|(sum, kw)| *sum += kw);
        }
    }
    let unserved = &plan.buses[0].unserved_kw;
    for (t, (sum, lost)) in injected.iter().zip(unserved).enumerate() {
        assert!((sum + lost).abs() < 1e-6, "step {t}: the flows sum to {sum}");
    }
    let unit = plan.assets.iter().find(|a| a.kind == "thermal").expect("a unit");
    assert!(unit.detail.iter().any(|s| s.name == "on"), "{:?}", unit.detail);
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
    let fields = err.get_details_bad_request().expect("details").field_violations;
    assert_eq!(fields[0].field, "co2_price");
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
        gap: Some(0.0),
        summary_only: true,
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
    for call in calls {
        match call.await.expect("task") {
            Ok(reply) => {
                // A 3 s deadline became the solver's time limit: the plan comes back,
                // optimal or with the time limit's incumbent.
                assert!(matches!(reply.get_ref().status.as_str(), "optimal" | "time_limit"), "{:?}", reply.get_ref());
                assert!(reply.get_ref().schedule.is_none(), "summary_only");
                answered += 1;
            }
            Err(status) if status.code() == Code::ResourceExhausted => {
                // The client is told when to try again.
                let retry = status.get_details_retry_info().and_then(|r| r.retry_delay);
                assert!(retry.is_some_and(|d| d > Duration::ZERO), "{status:?}");
                shed += 1;
            }
            // On a loaded machine the solve may not finish in time: the server
            // then answers DEADLINE_EXCEEDED itself, before the caller's deadline
            // (the client's own timer would say CANCELLED, "Timeout expired").
            Err(status) if status.code() == Code::DeadlineExceeded => {
                assert!(status.message().contains("deadline came"), "{status:?}");
                answered += 1;
            }
            Err(status) => panic!("unexpected {status:?}"),
        }
    }
    assert!(shed >= 1 && answered >= 1, "shed {shed}, answered {answered}");
    let text = metrics(&server).await;
    assert!(text.contains(r#"code="ResourceExhausted""#), "{text}");
    assert!(text.contains(r#"volta_work_duration_seconds_count{kind="schedule"}"#), "{text}");
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
        case: Some(text),
        horizon_hours: 8.0,
        commit_hours: Some(4.0),
        ..Default::default()
    };
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let mut windows = Vec::new();
    let mut summary = None;
    while let Some(event) = stream.message().await.expect("event") {
        match event.event.expect("event") {
            pb::rolling_horizon_event::Event::Window(w) => windows.push(w),
            pb::rolling_horizon_event::Event::Summary(s) => summary = Some(s),
        }
    }
    let summary = summary.expect("a summary ends the stream");
    let rolling = volta_dispatch::RollingOptions { horizon_steps: 16, commit_steps: 8, options };
    let library = volta_dispatch::rolling_horizon(&case, &rolling, &mut |_, _| {}).expect("library rolling");
    assert_eq!(windows.len(), library.windows.len());
    assert_eq!(windows.len(), 6);
    assert_eq!((windows[1].start_step, windows[1].windows, windows[5].index), (8, 6, 5));
    assert_eq!(windows[1].start_time, "2014-07-14T04:00:00+10:00");
    let plan = library.schedule.expect("stitched");
    assert!(close(summary.cost.expect("cost"), plan.cost, 1e-9), "{summary:?} vs {}", plan.cost);
    assert_eq!(summary.steps, 48);

    let err = client
        .rolling_horizon(pb::RollingHorizonRequest { horizon_hours: 0.75, ..Default::default() })
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
        horizon_hours: 8.0,
        commit_hours: Some(4.0),
        ..Default::default()
    };
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let first = stream.message().await.expect("event").expect("a first window");
    assert!(matches!(first.event, Some(pb::rolling_horizon_event::Event::Window(ref w)) if w.windows == 42));
    drop(stream);
    // The one slot comes free once the run stops at its next window.
    let small = pb::ValidateRequest { case: Some(case_json("benchmarks/kazarlis10.toml")) };
    let kazarlis = pb::ScheduleRequest { case: small.case.clone(), summary_only: true, ..Default::default() };
    let mut freed = false;
    for _ in 0..100 {
        match client.schedule(kazarlis.clone()).await {
            Ok(_) => {
                freed = true;
                break;
            }
            Err(s) if s.code() == Code::ResourceExhausted => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert!(freed, "the cancelled run still holds its slot after 10 s");
    let text = metrics(&server).await;
    let windows: f64 = text
        .lines()
        .find(|l| l.starts_with(r#"volta_work_duration_seconds_count{kind="rolling_window"}"#))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("rolling windows counted");
    assert!(windows < 42.0, "{windows} windows ran after the client left");
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

fn victoria(options_json: &str) -> (fpb::Series, String) {
    let csv = std::fs::read_to_string(volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv")).expect("csv");
    let series = fpb::Series {
        csv,
        target: "demand_gw".into(),
        time_column: "period_start_aest_assumed".into(),
        exog: vec!["temperature_c".into()],
        known_ahead: vec!["temperature_c".into()],
        timezone: "Australia/Brisbane".into(),
    };
    (series, options_json.to_owned())
}

/// A backtest of the issue's protocol (train to 2014-10-31) on Victoria.
fn victoria_backtest(options_json: &str, refit_every: u32) -> fpb::BacktestRequest {
    let (series, options_json) = victoria(options_json);
    fpb::BacktestRequest { series: Some(series), options_json, train_until: "2014-10-31".into(), refit_every }
}

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
    let mut freed = false;
    for _ in 0..150 {
        match probe.backtest(quick.clone()).await {
            Ok(reply) => {
                assert_eq!(reply.into_inner().n_forecasts, 61);
                freed = true;
                break;
            }
            Err(s) if s.code() == Code::ResourceExhausted => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert!(freed, "the abandoned backtest still holds its slot after 15 s");
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
    let mut probe = client.clone();
    let mut freed = false;
    for _ in 0..150 {
        match probe.backtest(quick.clone()).await {
            Ok(_) => {
                freed = true;
                break;
            }
            Err(s) if s.code() == Code::ResourceExhausted => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert!(freed, "the abandoned fit still holds its slot after 15 s");
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
        gap: Some(1e-6),
        summary_only: true,
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
    let request =
        pb::RollingHorizonRequest { case: Some(case_json("campus.toml")), horizon_hours: 48.0, ..Default::default() };
    let mut stream = client.rolling_horizon(request).await.expect("rolling").into_inner();
    let mut windows = 0;
    let mut cost = None;
    while let Some(event) = stream.message().await.expect("event") {
        match event.event {
            Some(pb::rolling_horizon_event::Event::Window(w)) => windows = w.windows,
            Some(pb::rolling_horizon_event::Event::Summary(s)) => cost = s.cost,
            None => {}
        }
    }
    assert_eq!(u64::from(windows), cli["rolling"]["windows"].as_u64().expect("windows"));
    let (a, b) = (cli["cost"].as_f64().expect("cost"), cost.expect("cost"));
    assert!(close(a, b, 1e-6), "CLI {a} vs gRPC {b}");
    // Weighted without a price is refused alike.
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["schedule", &campus, "--objective", "weighted"])
        .output()
        .expect("volta");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--co2-price: the weighted objective needs a CO2 price"));
}

fn token(claims: &serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    format!("Bearer {}", jsonwebtoken::encode(&jsonwebtoken::Header::default(), claims, &key).expect("sign"))
}

fn with_token<T>(message: T, bearer: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", bearer.parse().expect("ascii"));
    request
}

#[tokio::test]
async fn models_are_stored_by_id_per_tenant_and_auth_rejects_wrong_tokens_and_tenants() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let env = [("VOLTA_JWT_HS256_SECRET", SECRET)];
    let server = Server::start_with(&["--database", &db], &env);
    let exp = 4_000_000_000_u64;
    let acme = token(&serde_json::json!({"sub": "ana", "tenant": "acme", "roles": ["operator"], "exp": exp}));
    let acme_admin = token(&serde_json::json!({"sub": "al", "tenant": "acme", "roles": ["admin"], "exp": exp}));
    let other = token(&serde_json::json!({"sub": "bo", "tenant": "globex", "roles": ["admin"], "exp": exp}));
    let viewer = token(&serde_json::json!({"sub": "vi", "tenant": "acme", "roles": ["viewer"], "exp": exp}));
    let harbour = token(
        &serde_json::json!({"sub": "ha", "tenant": "acme", "roles": ["operator"], "sites": ["harbour"], "exp": exp}),
    );
    let forged = {
        let key = jsonwebtoken::EncodingKey::from_secret(b"not the server's secret, though long enough");
        let claims = serde_json::json!({"sub": "eve", "tenant": "acme", "roles": ["admin"], "exp": exp});
        format!("Bearer {}", jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key).expect("sign"))
    };

    let mut dispatch = server.client().await;
    let validate = pb::ValidateRequest { case: Some(case_json("benchmarks/kazarlis10.toml")) };
    let err = dispatch.validate(validate.clone()).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = dispatch.validate(with_token(validate.clone(), &forged)).await.expect_err("forged");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("InvalidSignature"), "{}", err.message());
    dispatch.validate(with_token(validate.clone(), &viewer)).await.expect("a viewer may validate");
    let schedule =
        pb::ScheduleRequest { case: validate.case.clone(), summary_only: true, ..pb::ScheduleRequest::default() };
    let err = dispatch.schedule(with_token(schedule.clone(), &viewer)).await.expect_err("viewer");
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = dispatch.schedule(with_token(schedule.clone(), &harbour)).await.expect_err("another site");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("kazarlis10"), "{}", err.message());
    dispatch.schedule(with_token(schedule, &acme)).await.expect("an operator schedules any site");

    let mut client = server.forecaster().await;
    let (series, options_json) = victoria(r#"{"horizon": 48, "model": "linear", "quantiles": [0.1, 0.5, 0.9]}"#);
    let train = fpb::TrainRequest {
        series: Some(series.clone()),
        options_json,
        train_until: "2014-10-31".into(),
        name: "victoria".into(),
    };
    let trained = client.train(with_token(train, &acme)).await.expect("train").into_inner();
    let model = trained.model.expect("model");
    assert_eq!((model.name.as_str(), model.model.as_str(), model.horizon), ("victoria", "linear", 48));
    let forecast = fpb::ForecastRequest {
        model_id: model.id.clone(),
        series: Some(fpb::Series { target: String::new(), ..series }),
        issue_time: "2014-11-05T00:00".into(),
    };
    let reply = client.forecast(with_token(forecast.clone(), &viewer)).await.expect("forecast").into_inner();
    assert_eq!(reply.point.len(), 48);
    assert_eq!(reply.times[0], "2014-11-05T00:00:00+10:00");
    assert_eq!(reply.quantiles.len(), 3);
    for k in 0..48 {
        let (lo, mid, hi) = (reply.quantiles[0].values[k], reply.quantiles[1].values[k], reply.quantiles[2].values[k]);
        assert!(lo <= mid && mid <= hi && (3.0..9.0).contains(&reply.point[k]), "lead {k}: {lo} {mid} {hi}");
    }

    // Another tenant sees nothing of acme's: not its list, not its model.
    let err = client.forecast(with_token(forecast.clone(), &other)).await.expect_err("other tenant");
    assert_eq!(err.code(), Code::NotFound);
    let listed = client.list_models(with_token(fpb::ListModelsRequest {}, &other)).await.expect("list");
    assert!(listed.into_inner().models.is_empty());
    let err = client
        .delete_model(with_token(fpb::DeleteModelRequest { id: model.id.clone() }, &other))
        .await
        .expect_err("other tenant");
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .delete_model(with_token(fpb::DeleteModelRequest { id: model.id.clone() }, &acme))
        .await
        .expect_err("operators do not delete");
    assert_eq!(err.code(), Code::PermissionDenied);

    // Nothing is lost across a restart: the model is still there.
    drop(server);
    let server = Server::start_with(&["--database", &db], &env);
    let mut client = server.forecaster().await;
    let listed = client.list_models(with_token(fpb::ListModelsRequest {}, &viewer)).await.expect("list");
    assert_eq!(listed.into_inner().models.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), [model.id.as_str()]);
    let again = client.forecast(with_token(forecast.clone(), &acme)).await.expect("forecast").into_inner();
    assert_eq!(again.point, reply.point);
    client
        .delete_model(with_token(fpb::DeleteModelRequest { id: model.id.clone() }, &acme_admin))
        .await
        .expect("delete");
    let err = client.forecast(with_token(forecast, &acme)).await.expect_err("deleted");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn tls_from_config_serves_https_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (cert_file, key_file) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_file, cert.pem()).expect("write");
    std::fs::write(&key_file, signing_key.serialize_pem()).expect("write");
    let config = dir.path().join("volta.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://{}\"\n[tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n[log]\nlevel = \"debug\"\n",
            dir.path().join("volta.db").display(),
            cert_file.display(),
            key_file.display()
        ),
    )
    .expect("write");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let port = server.url.rsplit(':').next().expect("port");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(cert.pem()))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("a TLS connection");
    let mut client = DispatchServiceClient::new(channel);
    let ok = client.validate(pb::ValidateRequest { case: Some(case_json("campus.toml")) }).await.expect("validate");
    assert!(ok.get_ref().ok);
    // Plaintext gRPC gets nowhere.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}")).expect("url").connect().await;
    if let Ok(channel) = plain {
        let err = DispatchServiceClient::new(channel)
            .validate(pb::ValidateRequest { case: Some(case_json("campus.toml")) })
            .await
            .expect_err("plaintext");
        assert_ne!(err.code(), Code::Ok);
    }
}

#[test]
fn bad_configuration_is_named_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    std::fs::write(&config, "[server]\nlisten = \"127.0.0.1:0\"\nslots = 4\n").expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--config", config.to_str().expect("utf-8")])
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("slots") && stderr.contains("volta.toml"), "{stderr}");
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database", "mysql://x@y/z"])
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("postgres://"));
}

/// The server's Prometheus text, fetched with a bare HTTP/1.0 GET.
async fn metrics(server: &Server) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let url = server.metrics.as_deref().expect("metrics endpoint");
    let addr = url.trim_start_matches("http://").trim_end_matches("/metrics");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: volta\r\n\r\n").await.expect("write");
    let mut text = String::new();
    stream.read_to_string(&mut text).await.expect("read");
    assert!(text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"), "{text}");
    text
}
