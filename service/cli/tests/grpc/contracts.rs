//! ContractService over gRPC: a contract from its TOML terms to its
//! settlement, readings streamed in chunks (all or nothing), statistics
//! that add up to what was loaded, idempotent changes, roles, tenants and
//! limits.

use jiff::SignedDuration;
use jiff::civil::date;
use jiff::tz::TimeZone;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt as _;
use volta_api::pb::common;
use volta_api::pb::contracts as cpb;

use super::{SECRET, Server, reason, token, with_token};
use cpb::contract_service_client::ContractServiceClient;

const TERMS: &str = r#"
kind = "fixed_price"
delivery_first = "2024-01-01"
delivery_last = "2024-12-31"
currency = "EUR"
decimals = 2

[price]
rule = "fixed"
price = "0.25"

[quantity]
basis = "daily"
energy = 1000

[shape]
shape = "flat"

[band]
granularity = "month"
lower = 3
upper = 5

[penalty]
base = "contract_price"
multiplier = "0.05"
applies_to = "both"
"#;

fn day(y: i32, m: i32, d: i32) -> Option<common::Date> {
    Some(common::Date { year: y, month: m, day: d })
}

/// Every quarter hour of January 2024 in Berlin at `wh`, as readings.
fn january(wh: i64) -> Vec<cpb::Reading> {
    let zone = TimeZone::get("Europe/Berlin").expect("zone");
    let month = volta_contracts::Period::month_of(date(2024, 1, 1));
    month
        .intervals(&zone, SignedDuration::from_mins(15))
        .expect("grid")
        .instants()
        .map(|start| cpb::Reading {
            meter_id: "m1".into(),
            start: Some(volta_api::time::timestamp(start)),
            energy_wh: wh,
            quality: cpb::Quality::Measured.into(),
        })
        .collect()
}

/// `readings` as a stream of chunks of `size`.
fn chunks(readings: &[cpb::Reading], size: usize) -> Vec<cpb::LoadReadingsRequest> {
    readings
        .chunks(size)
        .enumerate()
        .map(|(i, c)| cpb::LoadReadingsRequest {
            source: if i == 0 { "january.csv".into() } else { String::new() },
            readings: c.to_vec(),
        })
        .collect()
}

fn bearer(tenant: &str, role: &str) -> String {
    token(&serde_json::json!({"sub": "t", "tenant": tenant, "roles": [role], "exp": 4_000_000_000_u64}))
}

/// Puts the parties `grid` (retailer) and `shop` (consumer) and returns
/// shop's quarter-hour meter `m1` in Berlin, not yet stored.
async fn grid_shop_and_meter(client: &mut ContractServiceClient<Channel>, operator: &str) -> cpb::MeteringPoint {
    for (id, role) in [("grid", cpb::PartyRole::Retailer), ("shop", cpb::PartyRole::Consumer)] {
        let party = cpb::Party { id: id.into(), name: id.into(), role: role.into() };
        client.put_party(with_token(cpb::PutPartyRequest { party: Some(party) }, operator)).await.expect("party");
    }
    cpb::MeteringPoint {
        id: "m1".into(),
        party_id: "shop".into(),
        interval_minutes: 15,
        time_zone: "Europe/Berlin".into(),
        location: Some(cpb::metering_point::Location::Zone("de".into())),
        technology: cpb::Technology::Load.into(),
    }
}

#[tokio::test]
async fn a_contract_from_its_terms_to_its_settlement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    std::fs::write(&config, "[limits]\nmax_load_readings = 3000\n").expect("config");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let server = Server::start_with(
        &["--database", &db, "--config", config.to_str().expect("utf-8")],
        &[("VOLTA_JWT_HS256_SECRET", SECRET)],
    );
    let channel: Channel = server.channel().await;
    let mut client = ContractServiceClient::new(channel);
    let operator = bearer("acme", "operator");
    let viewer = bearer("acme", "viewer");

    let meter = grid_shop_and_meter(&mut client, &operator).await;
    client.put_meter(with_token(cpb::PutMeterRequest { meter: Some(meter.clone()) }, &operator)).await.expect("meter");
    let bad_zone = cpb::MeteringPoint { time_zone: "Mars/Olympus".into(), ..meter };
    let error = client
        .put_meter(with_token(cpb::PutMeterRequest { meter: Some(bad_zone) }, &operator))
        .await
        .expect_err("zone");
    assert_eq!(field(&error), "meter.time_zone");

    let create = |terms: &str, key: &str| cpb::CreateContractRequest {
        request_id: key.into(),
        contract_id: "shop-2024".into(),
        seller_id: "grid".into(),
        buyer_id: "shop".into(),
        meter_ids: vec!["m1".into()],
        terms: Some(cpb::ContractTerms { format: Some(cpb::contract_terms::Format::Toml(terms.into())) }),
    };
    let typo = TERMS.replace("multiplier", "multiplyer");
    let error = client.create_contract(with_token(create(&typo, ""), &operator)).await.expect_err("typo");
    assert_eq!(error.code(), Code::InvalidArgument);
    assert!(field(&error).starts_with("terms"), "{error:?}");
    assert!(error.message().contains("multiplyer"), "{error:?}");
    let error = client.create_contract(with_token(create(TERMS, ""), &viewer)).await.expect_err("a viewer");
    assert_eq!(error.code(), Code::PermissionDenied);
    let made = client.create_contract(with_token(create(TERMS, "k1"), &operator)).await.expect("create").into_inner();
    assert!(made.created);
    let again = client.create_contract(with_token(create(TERMS, "k1"), &operator)).await.expect("again").into_inner();
    assert!(!again.created);
    let error = client.create_contract(with_token(create(TERMS, ""), &operator)).await.expect_err("exists");
    assert_eq!((error.code(), reason(&error).as_str()), (Code::AlreadyExists, "ALREADY_EXISTS"));

    // A hostile allocation (100 000 claims) is refused by its size, at once.
    let claims = (0..100_000)
        .map(|i| cpb::Claim {
            contract_id: format!("c{i}"),
            take: cpb::Take::UpToContracted.into(),
            share_percent: String::new(),
        })
        .collect();
    let error = client
        .set_allocation(with_token(cpb::SetAllocationRequest { meter_id: "m1".into(), claims }, &operator))
        .await
        .expect_err("too many claims");
    assert_eq!(field(&error), "claims");

    // Lifecycle: sign once; a second sign is the contract's rule, not the caller's syntax.
    let sign = |key: &str| cpb::ChangeContractStateRequest {
        request_id: key.into(),
        contract_id: "shop-2024".into(),
        transition: cpb::Transition::Sign.into(),
        effective: None,
    };
    assert!(client.change_contract_state(with_token(sign("s1"), &operator)).await.expect("sign").into_inner().changed);
    assert!(
        !client.change_contract_state(with_token(sign("s1"), &operator)).await.expect("retry").into_inner().changed
    );
    let error = client.change_contract_state(with_token(sign(""), &operator)).await.expect_err("twice");
    assert_eq!((error.code(), reason(&error).as_str()), (Code::FailedPrecondition, "CONTRACT_RULE"));

    // A load over the limit, and one with a bad reading in its second chunk, keep nothing.
    let mut too_many = january(1_500);
    too_many.extend(january(1_500).into_iter().take(100));
    let error = client
        .load_readings(with_token(tokio_stream::iter(chunks(&too_many, 1000)), &operator))
        .await
        .expect_err("limit");
    assert_eq!(reason(&error), "OVER_LIMIT");
    let mut bad = january(1_500);
    bad[1500].energy_wh = -5;
    let error =
        client.load_readings(with_token(tokio_stream::iter(chunks(&bad, 1000)), &operator)).await.expect_err("bad");
    assert_eq!(field(&error), "readings[1500].energy_wh");
    let mut off_grid = january(1_500);
    if let Some(start) = off_grid[2000].start.as_mut() {
        start.seconds += 60;
    }
    let error = client
        .load_readings(with_token(tokio_stream::iter(chunks(&off_grid, 700)), &operator))
        .await
        .expect_err("grid");
    assert_eq!(field(&error), "readings[2000].start");
    // January: 2 976 quarter hours at 1.5 kWh = 4 464 kWh against 31 000 contracted.
    let load = client
        .load_readings(with_token(tokio_stream::iter(chunks(&january(1_500), 1000)), &operator))
        .await
        .expect("load");
    let load = load.into_inner();
    assert_eq!((load.revision, load.readings, load.contracts), (1, 2976, 1), "failed loads took no revision");

    let stats = cpb::VolumeStatisticsRequest {
        scope: Some(cpb::volume_statistics_request::Scope::ContractId("shop-2024".into())),
        first: day(2024, 1, 1),
        last: day(2024, 12, 31),
        granularity: cpb::Granularity::Month.into(),
        page_size: 5,
        page_token: String::new(),
    };
    let page = client.volume_statistics(with_token(stats.clone(), &viewer)).await.expect("stats").into_inner();
    assert_eq!(page.buckets.len(), 5);
    assert_eq!(page.next_page_token, "5");
    let jan = &page.buckets[0];
    assert_eq!((jan.label.as_str(), jan.contracted_wh, jan.delivered_wh), ("2024-01", 31_000_000, 4_464_000));
    assert_eq!(jan.completion_percent, "14.40");
    assert_eq!(page.buckets[1].contracted_wh, 29_000_000, "a leap February");
    let rest = cpb::VolumeStatisticsRequest { page_token: page.next_page_token.clone(), page_size: 100, ..stats };
    let rest = client.volume_statistics(with_token(rest, &viewer)).await.expect("page 2").into_inner();
    assert_eq!((rest.buckets.len(), rest.next_page_token.as_str()), (7, ""));

    // Settle January: far below the band (31 000 x 0.97 = 30 070 kWh):
    // 25 606 kWh short at 0.25 x 0.05 = 320.075; energy 4 464 x 0.25 = 1 116.
    let settle = |dry_run: bool| cpb::SettleRequest {
        contract_id: "shop-2024".into(),
        first: day(2024, 1, 1),
        last: day(2024, 1, 31),
        dry_run,
    };
    let preview = client.settle(with_token(settle(true), &viewer)).await.expect("dry run").into_inner();
    let s = preview.settlement.expect("settlement");
    assert_eq!((s.penalty_kwh.as_str(), s.penalty_amount.as_str()), ("25606", "320.075"));
    let statement = s.statement.expect("statement");
    assert_eq!(
        (statement.energy.as_str(), statement.penalty.as_str(), statement.total.as_str()),
        ("1116.00", "320.08", "1436.08")
    );
    assert_eq!(s.sequence, 0);
    let error = client.settle(with_token(settle(false), &viewer)).await.expect_err("a viewer cannot store");
    assert_eq!(error.code(), Code::PermissionDenied);
    let stored = client.settle(with_token(settle(false), &operator)).await.expect("settle").into_inner();
    assert!(stored.created);
    let same = client.settle(with_token(settle(false), &operator)).await.expect("again").into_inner();
    assert!(!same.created);
    assert_eq!(same.settlement.as_ref().map(|s| s.sequence), Some(1));
    let runs = client
        .list_settlements(with_token(cpb::ListSettlementsRequest { contract_id: "shop-2024".into() }, &viewer))
        .await
        .expect("runs")
        .into_inner();
    assert_eq!(runs.settlements.len(), 1);

    // Another tenant sees nothing.
    let other = bearer("globex", "admin");
    let error = client
        .get_contract(with_token(cpb::GetContractRequest { contract_id: "shop-2024".into() }, &other))
        .await
        .expect_err("another tenant's");
    assert_eq!((error.code(), reason(&error).as_str()), (Code::NotFound, "CONTRACT_NOT_FOUND"));
    let error = client
        .get_contract(with_token(cpb::GetContractRequest { contract_id: "../x".into() }, &operator))
        .await
        .expect_err("not an id");
    assert_eq!(field(&error), "contract_id");
}

/// The field of a status's first BadRequest violation.
fn field(status: &tonic::Status) -> String {
    let details = status.get_details_bad_request().unwrap_or_else(|| panic!("no BadRequest on {status:?}"));
    details.field_violations.first().map(|v| v.field.clone()).unwrap_or_default()
}

/// A load at meter `m1` for quarter hour `k` of day `day` (days counted
/// from 2024-01-01): a daily level that wanders from day to day, a day
/// shape, weekends lower; about 10.4 kWh a quarter hour.
fn wandering(day: usize, k: usize, level: f64) -> i64 {
    let shape = if (32..80).contains(&k) { 1.25 } else { 0.75 };
    let weekend = if (day + 1) % 7 >= 5 { 0.8 } else { 1.0 };
    (level * shape * weekend * 10_400.0).round() as i64
}

/// Every quarter hour from 2024-01-01 to `last` in Berlin, as readings.
fn wandering_readings(last: jiff::civil::Date) -> Vec<cpb::Reading> {
    let zone = TimeZone::get("Europe/Berlin").expect("zone");
    let mut state = 5_u64;
    let mut level = 1.0_f64;
    let mut out = Vec::new();
    let mut day = date(2024, 1, 1);
    let mut n = 0;
    while day <= last {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        level = (level + ((state >> 33) as f64 / f64::from(1u32 << 31) - 0.5) * 0.12).clamp(0.7, 1.3);
        let grid = volta_contracts::Period::day(day).intervals(&zone, SignedDuration::from_mins(15)).expect("grid");
        for (k, start) in grid.instants().enumerate() {
            out.push(cpb::Reading {
                meter_id: "m1".into(),
                start: Some(volta_api::time::timestamp(start)),
                energy_wh: wandering(n, k, level),
                quality: cpb::Quality::Measured.into(),
            });
        }
        day = day.tomorrow().expect("day");
        n += 1;
    }
    out
}

#[tokio::test]
async fn a_projection_settles_the_rest_of_the_month_under_each_scenario() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let server = Server::start_with(&["--database", &db], &[("VOLTA_JWT_HS256_SECRET", SECRET)]);
    let mut client = ContractServiceClient::new(server.channel().await);
    let operator = bearer("acme", "operator");
    let viewer = bearer("acme", "viewer");
    let meter = grid_shop_and_meter(&mut client, &operator).await;
    client.put_meter(with_token(cpb::PutMeterRequest { meter: Some(meter) }, &operator)).await.expect("meter");
    let create = cpb::CreateContractRequest {
        request_id: String::new(),
        contract_id: "shop-2024".into(),
        seller_id: "grid".into(),
        buyer_id: "shop".into(),
        meter_ids: vec!["m1".into()],
        terms: Some(cpb::ContractTerms { format: Some(cpb::contract_terms::Format::Toml(TERMS.into())) }),
    };
    client.create_contract(with_token(create, &operator)).await.expect("create");
    // Read up to 20 March: the rest of March (11 days, one of 23 hours) is to project.
    let readings = wandering_readings(date(2024, 3, 20));
    let stream = tokio_stream::iter(chunks(&readings, 20_000));
    client.load_readings(with_token(stream, &operator)).await.expect("load");

    let ask = |as_of: Option<&str>, levels: Vec<f64>, model: &str, history_days: u32| cpb::ProjectDeviationRequest {
        contract_id: "shop-2024".into(),
        first: day(2024, 3, 1),
        last: day(2024, 3, 31),
        as_of: as_of.map(|t| volta_api::time::timestamp(t.parse().expect("instant"))),
        levels,
        model: model.into(),
        history_days,
    };
    let p = client
        .project_deviation(with_token(ask(None, vec![], "", 60), &viewer))
        .await
        .expect("projection")
        .into_inner();
    // Where the readings stop: 21 March, 00:00 in Berlin.
    assert_eq!(p.as_of, Some(volta_api::time::timestamp("2024-03-20T23:00:00Z".parse().expect("instant"))));
    let read: i64 = readings
        .iter()
        .filter(|r| r.start.as_ref().is_some_and(|s| s.seconds >= 1_709_247_600))
        .map(|r| r.energy_wh)
        .sum();
    assert_eq!(p.delivered_to_date_wh, read, "1 to 20 March as loaded");
    assert_eq!((p.contracted_wh, p.contracted_to_date_wh), (31_000_000, 20_000_000), "1 000 kWh a day");
    assert_eq!(p.model, "linear");
    assert_eq!(p.history_from, day(2024, 1, 21));
    assert_eq!(p.currency, "EUR");
    assert_eq!(p.rule, "monthly band -3 % / +5 %, penalty 0.05 x the contract price on both sides (version 1)");

    // Every level is its own quantity's order statistic of the scenarios.
    let n = p.scenarios.len();
    assert_eq!(p.analogs.len(), n);
    assert!(n >= 20, "{n} scenarios");
    let levels: Vec<f64> = p.levels.iter().map(|l| l.level).collect();
    assert_eq!(levels, [0.1, 0.5, 0.9]);
    let mut delivered: Vec<i64> = p.scenarios.iter().map(|s| s.delivered_wh).collect();
    delivered.sort_unstable();
    let amounts: Vec<rust_decimal::Decimal> =
        p.scenarios.iter().map(|s| s.penalty_amount.parse().expect("decimal")).collect();
    let mut sorted = amounts.clone();
    sorted.sort_unstable();
    for level in &p.levels {
        let k = ((level.level * n as f64).ceil() as usize).clamp(1, n) - 1;
        let outcome = level.outcome.as_ref().expect("outcome");
        assert_eq!(outcome.delivered_wh, delivered[k], "P{}", level.level);
        assert_eq!(outcome.penalty_amount.parse::<rust_decimal::Decimal>().expect("decimal"), sorted[k]);
    }
    let mean = amounts.iter().sum::<rust_decimal::Decimal>() / rust_decimal::Decimal::from(n);
    assert_eq!(p.expected_penalty, mean.round_dp(6).normalize().to_string());
    let paying = amounts.iter().filter(|a| !a.is_zero()).count();
    let share = rust_decimal::Decimal::from(paying) / rust_decimal::Decimal::from(n);
    assert_eq!(p.penalty_probability, share.round_dp(6).normalize().to_string());
    // Each scenario settles the month: what was read plus its projection.
    let expected = p.expected.as_ref().expect("expected");
    assert!(expected.delivered_wh > p.delivered_to_date_wh);
    assert!(delivered[0] < expected.delivered_wh && expected.delivered_wh < delivered[n - 1]);

    // A caller names a time: the same projection from 15 March on.
    let earlier = client
        .project_deviation(with_token(ask(Some("2024-03-14T23:00:00Z"), vec![0.5], "naive_week", 80), &viewer))
        .await
        .expect("as of 15 March")
        .into_inner();
    assert!(earlier.delivered_to_date_wh < p.delivered_to_date_wh);
    assert_eq!(earlier.levels.len(), 1);

    // Refusals name their field, before any work.
    let refusals = [
        (ask(None, vec![0.5, 0.5], "", 60), "levels[1]"),
        (ask(None, vec![1.5], "", 60), "levels[0]"),
        (ask(None, vec![], "prophet", 60), "model"),
        (ask(None, vec![], "", 5000), "history_days"),
        (ask(Some("2024-04-05T00:00:00Z"), vec![], "", 60), "as_of"),
        (ask(Some("2024-03-14T23:07:00Z"), vec![], "", 60), "as_of"),
        (ask(None, vec![], "", 3), "history_days"),
        // Eleven days left need 7 + 4 x 11 = 51 days of readings.
        (ask(None, vec![], "", 50), "history_days"),
    ];
    for (request, expected_field) in refusals {
        let error = client.project_deviation(with_token(request, &viewer)).await.expect_err("refused");
        assert_eq!(error.code(), Code::InvalidArgument, "{expected_field}: {error:?}");
        assert_eq!(field(&error), expected_field, "{error:?}");
    }
    // Another tenant has no such contract.
    let error = client
        .project_deviation(with_token(ask(None, vec![], "", 60), &bearer("other", "viewer")))
        .await
        .expect_err("another tenant");
    assert_eq!((error.code(), reason(&error).as_str()), (Code::NotFound, "CONTRACT_NOT_FOUND"));
}
