//! Regression tests of the attacks and careless calls of issue 13: each
//! failed on the server before it was hardened. The server must refuse with
//! a clear error naming the field or the limit, say nothing about its own
//! filesystem, and keep serving.

use std::time::{Duration, Instant};

use tonic::Code;

use super::{
    SECRET, Server, at, case_json, field, field_exists, fpb, metrics, model, pb, token, victoria, victoria_backtest,
    victoria_train_until, with_token,
};

/// The server still answers a health check.
async fn alive(server: &Server) {
    let mut health = tonic_health::pb::health_client::HealthClient::new(server.channel().await);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .expect("the server still serves");
    assert_eq!(reply.into_inner().status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
}

fn toml_case(text: &str) -> pb::CaseText {
    pb::CaseText { format: Some(pb::case_text::Format::Toml(text.to_owned())) }
}

/// A small valid case; `{load}` and `{extra}` are filled in by the tests.
const SMALL_CASE: &str = r#"
name = "small"
[time]
start = "2025-01-01T00:00"
timezone = "Europe/Berlin"
step = "1h"
steps = STEPS
[[buses]]
id = "ac"
carrier = "electricity"
[[assets]]
id = "load"
type = "load"
bus = "ac"
demand_kw = LOAD
[[assets]]
id = "grid"
type = "grid"
bus = "ac"
import_limit_kw = CAPACITY
import_price = PRICE
"#;

fn small_case(steps: &str, load: &str, capacity: &str, price: &str) -> pb::CaseText {
    toml_case(
        &SMALL_CASE.replace("STEPS", steps).replace("LOAD", load).replace("CAPACITY", capacity).replace("PRICE", price),
    )
}

#[tokio::test]
async fn no_remote_request_reads_a_file_of_the_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("secret.csv");
    std::fs::write(&secret, "2014-12-25 the-secret-first-line\n").expect("write");
    let missing = dir.path().join("secreX.csv");
    let server = Server::start(&[]);
    let mut client = server.forecaster().await;

    // Holidays: a path is never opened, whether it exists or not; the
    // answer is the same for both and carries nothing of the file.
    let mut messages = Vec::new();
    let naive_week = || model(fpb::ModelKind::NaiveWeek);
    for path in [&secret, &missing] {
        let options = fpb::ModelOptions { holiday_calendar: path.display().to_string(), ..naive_week() };
        let err = client.backtest(victoria_backtest(options, 0)).await.expect_err("a path is refused");
        assert_eq!(field(&err), "options.holiday_calendar", "{err:?}");
        assert!(!err.message().contains("the-secret"), "{}", err.message());
        messages.push(err.message().replace(&secret.display().to_string(), "PATH"));
    }
    let unknown = messages[1].replace(&missing.display().to_string(), "PATH");
    assert_eq!(messages[0], unknown, "an existing file must not be told from a missing one");
    assert!(unknown.contains("AU-VIC"), "the error teaches the built-in calendars: {unknown}");

    // Built-in calendars and inline dates work.
    let builtin = fpb::ModelOptions { holiday_calendar: "AU-VIC".into(), ..naive_week() };
    client.backtest(victoria_backtest(builtin, 0)).await.expect("a built-in calendar");
    let date = |year, month, day| volta_api::pb::common::Date { year, month, day };
    let inline = fpb::ModelOptions { holiday_dates: vec![date(2014, 11, 4), date(2014, 12, 25)], ..naive_week() };
    client.backtest(victoria_backtest(inline, 0)).await.expect("inline dates");
    let bad = fpb::ModelOptions { holiday_dates: vec![date(2014, 11, 4), date(2014, 2, 30)], ..naive_week() };
    let err = client.backtest(victoria_backtest(bad, 0)).await.expect_err("not a date");
    assert_eq!(field(&err), "options.holiday_dates[1]", "{err:?}");

    // Case series: `file =` is refused at its field, and the filesystem is
    // not looked at (an existing CSV and a missing one read the same).
    let mut dispatch = server.client().await;
    let existing = volta_datasets::case("islanded_profiles.csv");
    let mut answers = Vec::new();
    for path in [existing.display().to_string(), "../../../../etc/passwd".to_owned(), "/nope/x.csv".to_owned()] {
        let load = format!(r#"{{ file = {path:?}, column = "load_kw", time_column = "timestamp" }}"#);
        let case = small_case("24", &load, "1000", "0.2");
        let reply = dispatch.validate(pb::ValidateRequest { case: Some(case.clone()) }).await.expect("validate");
        let reply = reply.into_inner();
        assert!(!reply.ok);
        let problem = reply.problems.iter().find(|p| p.path.contains("demand_kw")).expect("the field is named");
        assert!(problem.message.contains("inline"), "{problem:?}");
        answers.push(problem.message.replace(&path, "PATH"));
        let err = dispatch
            .schedule(pb::ScheduleRequest { case: Some(case), ..Default::default() })
            .await
            .expect_err("a file reference");
        assert!(field(&err).contains("demand_kw"), "{err:?}");
        assert!(!err.message().contains("timestamp,"), "no header row: {}", err.message());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    alive(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sizes_are_refused_before_work_naming_the_limit() {
    let server = Server::start(&[]);
    let mut dispatch = server.client().await;
    let mut forecaster = server.forecaster().await;
    let started = Instant::now();

    // Each of these once aborted the server or held gigabytes.
    let err = dispatch
        .pareto(pb::ParetoRequest { case: Some(case_json("islanded.toml")), points: i32::MAX, ..Default::default() })
        .await
        .expect_err("2147483647 points");
    assert_eq!(field(&err), "points");
    assert!(err.message().contains("max_pareto_points"), "{}", err.message());

    let huge_case = small_case("1000000", "100", "1000", "0.2");
    let err = dispatch
        .schedule(pb::ScheduleRequest { case: Some(huge_case), ..Default::default() })
        .await
        .expect_err("a million steps");
    assert_eq!(field(&err), "case.time");
    assert!(err.message().contains("max_case_cells"), "{}", err.message());

    let gbdt = || model(fpb::ModelKind::Gbdt);
    let options = [
        (fpb::ModelOptions { regime_bins: Some(i32::MAX), ..gbdt() }, "options.regime_bins"),
        (fpb::ModelOptions { lag_days: vec![i32::MAX], ..gbdt() }, "options.lag_days[0]"),
        (fpb::ModelOptions { lag_days: vec![-1], ..gbdt() }, "options.lag_days[0]"),
        (fpb::ModelOptions { horizon_steps: Some(i32::MAX), ..gbdt() }, "options.horizon_steps"),
        (fpb::ModelOptions { horizon_steps: Some(-5), ..gbdt() }, "options.horizon_steps"),
        (fpb::ModelOptions { trees: Some(1_000_000_000), ..gbdt() }, "options.trees"),
        (fpb::ModelOptions { lag_days: (1..=20).collect(), ..gbdt() }, "options.lag_days"),
    ];
    for (options, named) in options {
        let err = forecaster.backtest(victoria_backtest(options.clone(), 0)).await.expect_err(named);
        assert_eq!(field(&err), named, "{options:?}: {err:?}");
        assert!(!err.message().contains("panicked"), "{}", err.message());
    }

    // Four rows one second apart, then one a year and a half later: 47
    // million grid steps once; now refused by the grid budget.
    let csv = "t,y\n2020-01-01T00:00:00,1\n2020-01-01T00:00:01,2\n2020-01-01T00:00:02,3\n2021-07-01T00:00:00,4\n";
    let sparse = fpb::BacktestRequest {
        series: Some(fpb::SeriesData {
            source: Some(fpb::series_data::Source::Csv(csv.into())),
            target: "y".into(),
            time_column: "t".into(),
            ..Default::default()
        }),
        options: Some(fpb::ModelOptions { horizon_steps: Some(2), ..model(fpb::ModelKind::NaiveDay) }),
        train_until: Some(at("2020-06-01T00:00:00Z")),
        refit_every: 0,
    };
    let err = forecaster.backtest(sparse).await.expect_err("47 million steps");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("limit"), "{}", err.message());

    // Forecasts issued outside the data: year 9999 once overflowed after
    // 25 s and 3 GB; a far-future time from a viewer cost as much.
    let train = fpb::TrainRequest {
        series: Some(victoria()),
        options: Some(model(fpb::ModelKind::NaiveWeek)),
        train_until: Some(victoria_train_until()),
        display_name: "n".repeat(100_000),
        request_id: String::new(),
    };
    let stored = forecaster.train(train.clone()).await.expect("train").into_inner().model.expect("model");
    assert!(stored.display_name.len() <= 200, "names are bounded");
    let err = forecaster
        .train(fpb::TrainRequest { request_id: "r".repeat(129), ..train })
        .await
        .expect_err("a long request id");
    assert_eq!(field(&err), "request_id");
    for issue_time in ["9999-12-30T00:00:00Z", "2016-06-01T00:00:00Z", "1900-01-01T00:00:00Z"] {
        let request = fpb::ForecastRequest {
            model: stored.name.clone(),
            series: Some(fpb::SeriesData { target: String::new(), ..victoria() }),
            issue_time: Some(at(issue_time)),
        };
        let err = forecaster.forecast(request).await.expect_err(issue_time);
        assert_eq!(field(&err), "issue_time", "{issue_time}: {err:?}");
    }
    let request = fpb::ForecastRequest {
        model: stored.name.clone(),
        series: Some(victoria()),
        issue_time: Some(prost_types::Timestamp { seconds: i64::MAX, nanos: 0 }),
    };
    let err = forecaster.forecast(request).await.expect_err("past the year 9999");
    assert_eq!(field(&err), "issue_time", "{err:?}");

    // Names of any length are not echoed back whole.
    let long = format!("tenants/default/models/{}", "x".repeat(100_000));
    let err = forecaster.delete_model(fpb::DeleteModelRequest { name: long }).await.expect_err("no such model");
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.message().len() < 200, "{} bytes", err.message().len());

    // Every refusal came before any real work (generous: a loaded CI box).
    assert!(started.elapsed() < Duration::from_secs(120), "{:?}", started.elapsed());
    alive(&server).await;
    let text = metrics(&server).await;
    assert!(text.contains("volta_panics_total 0"), "{text}");
}

#[tokio::test]
async fn extreme_numbers_are_invalid_arguments_naming_the_field() {
    let server = Server::start(&[]);
    let mut dispatch = server.client().await;
    for (capacity, price, named) in
        [("1e308", "0.2", "import_limit_kw"), ("1000", "1e300", "import_price"), ("1000", "-1e12", "import_price")]
    {
        let case = small_case("24", "100", capacity, price);
        let err = dispatch
            .schedule(pb::ScheduleRequest { case: Some(case), ..Default::default() })
            .await
            .expect_err("extreme");
        assert!(field(&err).ends_with(named), "{named}: {err:?}");
    }
    let profile = format!("[{}]", ["100"; 23].join(", ") + ", 1e15");
    let case = small_case("24", &profile, "1000", "0.2");
    let err =
        dispatch.schedule(pb::ScheduleRequest { case: Some(case), ..Default::default() }).await.expect_err("1e15 kW");
    assert!(field(&err).ends_with("demand_kw"), "{err:?}");
    assert!(err.message().contains("step 23"), "{}", err.message());
    // A gap or time limit that is not a number is refused, not passed on.
    let err = dispatch
        .schedule(pb::ScheduleRequest {
            case: Some(small_case("24", "100", "1000", "0.2")),
            mip_gap: Some(f64::NAN),
            ..Default::default()
        })
        .await
        .expect_err("NaN gap");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    alive(&server).await;
}

#[tokio::test]
async fn odd_deadlines_neither_panic_nor_hang() {
    let server = Server::start(&[]);
    let mut dispatch = server.client().await;
    let request = pb::ValidateRequest { case: Some(case_json("campus.toml")) };
    for header in ["9999999999999999H", "99999999H", "0n", "1u", "-5S", "S", "12x"] {
        let mut call = tonic::Request::new(request.clone());
        call.metadata_mut().insert("grpc-timeout", header.parse().expect("ascii"));
        match dispatch.validate(call).await {
            Ok(reply) => assert!(reply.get_ref().ok, "{header}"),
            Err(status) if status.code() == Code::DeadlineExceeded => {}
            // The client keeps the deadline too: with 0 ns or 1 us it gives up first.
            Err(status) if header.len() == 2 => assert_eq!(status.code(), Code::Cancelled, "{header}: {status:?}"),
            Err(status) => panic!("{header}: {status:?}"),
        }
    }
    alive(&server).await;
    let text = metrics(&server).await;
    assert!(text.contains("volta_panics_total 0"), "{text}");
}

/// A unary call to `path` that no service defines.
async fn call_unknown(channel: tonic::transport::Channel, path: &str, bearer: Option<&str>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("ready");
    let mut request = tonic::Request::new(fpb::ListModelsRequest::default());
    if let Some(bearer) = bearer {
        request.metadata_mut().insert("authorization", bearer.parse().expect("ascii"));
    }
    let codec = tonic_prost::ProstCodec::<fpb::ListModelsRequest, fpb::ListModelsResponse>::default();
    let path = http::uri::PathAndQuery::try_from(path).expect("path");
    grpc.unary(request, path, codec).await.expect_err("no such method")
}

#[tokio::test]
async fn unknown_methods_are_unimplemented_before_auth_under_one_label() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let server = Server::start_with(&["--database", &db], &[("VOLTA_JWT_HS256_SECRET", SECRET)]);
    let channel = server.channel().await;
    for i in 0..50 {
        let path = format!("/volta.made.up.v{i}.Nope/Method{i}");
        let status = call_unknown(channel.clone(), &path, None).await;
        assert_eq!(status.code(), Code::Unimplemented, "{path}: {status:?}");
    }
    let status = call_unknown(channel.clone(), "/volta.forecast.v1.ForecastService/Nope", Some("Bearer x")).await;
    assert_eq!(status.code(), Code::Unimplemented);
    // A known method still asks for a token.
    let err = server.forecaster().await.list_models(fpb::ListModelsRequest::default()).await.expect_err("no token");
    assert_eq!(err.code(), Code::Unauthenticated);

    let text = metrics(&server).await;
    assert!(!text.contains("Nope"), "made-up names became labels");
    let unknown =
        r#"volta_grpc_server_handled_total{grpc_service="unknown",grpc_method="unknown",grpc_code="UNIMPLEMENTED"} 51"#;
    assert!(text.contains(unknown), "{text}");
    // A token that is not yet valid (nbf in the future) is refused.
    let exp = 4_000_000_000_u64;
    let early = token(&serde_json::json!({"sub": "a", "tenant": "t", "roles": ["admin"], "nbf": exp - 1, "exp": exp}));
    let err = server
        .forecaster()
        .await
        .list_models(with_token(fpb::ListModelsRequest::default(), &early))
        .await
        .expect_err("not before");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("ImmatureSignature"), "{}", err.message());
}

#[tokio::test]
async fn reflection_speaks_v1alpha_too() {
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1alpha::{ServerReflectionRequest, ServerReflectionResponse};

    let server = Server::start(&[]);
    let mut reflection = ServerReflectionClient::new(server.channel().await);
    let list = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies =
        reflection.server_reflection_info(tokio_stream::iter([list])).await.expect("v1alpha").into_inner();
    let reply: ServerReflectionResponse = replies.message().await.expect("reply").expect("a reply");
    let Some(MessageResponse::ListServicesResponse(services)) = reply.message_response else {
        panic!("not a service list");
    };
    let names: Vec<String> = services.service.into_iter().map(|s| s.name).collect();
    assert!(names.iter().any(|n| n == "volta.dispatch.v1.DispatchService"), "{names:?}");
    assert!(names.iter().any(|n| n == "volta.forecast.v1.ForecastService"), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrency_limit_wait_then_meet_their_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    std::fs::write(
        &config,
        format!(
            "[storage]\nurl = \"sqlite://{}\"\n[server]\nsolver_slots = 2\n[limits]\nmax_concurrent_calls = 1\n",
            dir.path().join("volta.db").display()
        ),
    )
    .expect("write");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    let client = server.forecaster().await;
    // GBDT refitted before each of 61 issues: minutes of work, one place.
    let long = victoria_backtest(model(fpb::ModelKind::Gbdt), 1);
    let mut background = client.clone();
    let call = tokio::spawn(async move { background.backtest(long).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(!call.is_finished(), "the long backtest ended early: {:?}", call.await);
    // Even Validate waits for a place now, and answers by its deadline.
    let mut dispatch = server.client().await;
    let mut request = tonic::Request::new(pb::ValidateRequest { case: Some(case_json("campus.toml")) });
    request.set_timeout(Duration::from_secs(4));
    let err = dispatch.validate(request).await.expect_err("no place");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert!(err.message().contains("waiting"), "{}", err.message());
    // Health is never held back.
    alive(&server).await;
    let text = metrics(&server).await;
    assert!(text.contains("volta_grpc_waiting"), "{text}");
    call.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_validations_at_once_stay_within_a_memory_ceiling() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    let limits = "[limits]\nmax_concurrent_calls = 4\n";
    std::fs::write(&config, format!("[storage]\nurl = \"sqlite://{}\"\n{limits}", dir.path().join("v.db").display()))
        .expect("write");
    let server = Server::start_with(&["--config", config.to_str().expect("utf-8")], &[]);
    // A 24-step case whose load profile has 1.4 million values (7 MiB of
    // TOML, the costliest format to read): wrong length, so every call
    // reads it all and then refuses it.
    let values = vec!["12.5"; 1_400_000].join(",");
    let case = small_case("24", &format!("[{values}]"), "1000", "0.2");
    let bytes = match &case.format {
        Some(pb::case_text::Format::Toml(text)) => text.len(),
        _ => 0,
    };
    // Past limits.max_case_mib (8), a case is refused before it is parsed.
    let mut client = server.client().await;
    let larger = small_case("24", &format!("[{}]", vec!["12.5"; 1_800_000].join(",")), "1000", "0.2");
    let err = client.validate(pb::ValidateRequest { case: Some(larger) }).await.expect_err("9 MiB");
    assert_eq!(field(&err), "case");
    assert!(err.message().contains("max_case_mib"), "{}", err.message());
    let before = server.peak_kib() / 1024;
    let channel = server.channel().await;
    let calls: Vec<_> = (0..12)
        .map(|_| {
            let (channel, case) = (channel.clone(), case.clone());
            tokio::spawn(async move {
                let mut client = pb::dispatch_service_client::DispatchServiceClient::new(channel);
                let mut request = tonic::Request::new(pb::ValidateRequest { case: Some(case) });
                request.set_timeout(Duration::from_secs(120));
                client.validate(request).await
            })
        })
        .collect();
    for call in calls {
        let reply = call.await.expect("task").expect("validate").into_inner();
        assert!(!reply.ok && reply.problems[0].message.contains("1400000"), "{:?}", reply.problems);
    }
    let peak = server.peak_kib() / 1024;
    println!("12 validations of {} MiB of TOML, 4 at once: server peak {before} -> {peak} MiB", bytes >> 20);
    // Four at a time, each about 43 times its text: about 1.2 GiB, not 12 times 300 MiB.
    assert!(peak < 1800, "peak {peak} MiB");
    alive(&server).await;
}

#[tokio::test]
async fn errors_name_fields_that_exist_in_the_proto() {
    let server = Server::start(&[]);
    let mut forecaster = server.forecaster().await;
    let err = forecaster
        .forecast(fpb::ForecastRequest { model: String::new(), ..Default::default() })
        .await
        .expect_err("no model");
    assert_eq!(field(&err), "model");
    assert!(field_exists("volta.forecast.v1.ForecastRequest", "model"));
    let err = forecaster.delete_model(fpb::DeleteModelRequest { name: " ".into() }).await.expect_err("no name");
    assert_eq!(field(&err), "name");
    let err = forecaster.get_model(fpb::GetModelRequest { name: "models/1".into() }).await.expect_err("bad name");
    assert_eq!(field(&err), "name");
    let mut request = victoria_backtest(model(fpb::ModelKind::NaiveWeek), 0);
    request.train_until = Some(prost_types::Timestamp { seconds: 0, nanos: 2_000_000_000 });
    let err = forecaster.backtest(request.clone()).await.expect_err("not a timestamp");
    assert_eq!(field(&err), "train_until");
    request.train_until = None;
    let err = forecaster.backtest(request.clone()).await.expect_err("no end of training");
    assert_eq!(field(&err), "train_until");
    // Library option names come back as the request's fields.
    request.train_until = Some(victoria_train_until());
    request.options = Some(fpb::ModelOptions { temperature_column: "nope".into(), ..model(fpb::ModelKind::Gbdt) });
    let err = forecaster.backtest(request.clone()).await.expect_err("no such column");
    assert_eq!(field(&err), "options.temperature_column");
    request.series = Some(fpb::SeriesData { time_zone: "Mars/Olympus".into(), ..victoria() });
    let err = forecaster.backtest(request).await.expect_err("no such zone");
    assert_eq!(field(&err), "series.time_zone");
    let mut dispatch = server.client().await;
    let err = dispatch
        .schedule(pb::ScheduleRequest {
            case: Some(case_json("campus.toml")),
            mip_gap: Some(2.0),
            ..Default::default()
        })
        .await
        .expect_err("gap 2");
    assert_eq!(field(&err), "mip_gap");
    let err = dispatch
        .schedule(pb::ScheduleRequest {
            case: Some(case_json("campus.toml")),
            time_limit: Some(prost_types::Duration { seconds: -1, nanos: 0 }),
            ..Default::default()
        })
        .await
        .expect_err("a negative time limit");
    assert_eq!(field(&err), "time_limit");
    let err = dispatch
        .schedule(pb::ScheduleRequest {
            case: Some(case_json("campus.toml")),
            objective: pb::Objective::Co2 as i32,
            co2_price: Some(0.1),
            ..Default::default()
        })
        .await
        .expect_err("a price with co2");
    assert_eq!(field(&err), "co2_price");
}
