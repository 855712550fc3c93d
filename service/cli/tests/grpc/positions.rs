//! Contract positions over gRPC: every contract change the contract service
//! commits reaches the trading service's view once and in order, in one
//! process and across processes over NATS (also when the trading process
//! is killed while contracts change); the positions computed from the view
//! equal the contract terms (a flat daily volume over the market's quarter
//! hours, 23-hour DST days included), beside what the participant traded in
//! the market; who may read what.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use volta_api::pb::common;
use volta_api::pb::contracts as cpb;
use volta_api::pb::trading as tpb;

use super::settlement::Split;
use super::trading::{as_party, create_park, delivery, order};
use super::{SECRET, Server, reason, with_token};
use cpb::contract_service_client::ContractServiceClient;
use tpb::trading_service_client::TradingServiceClient;

/// 1,000 kWh a day from the grid to the shop through 2024, flat.
fn terms(daily_kwh: u32) -> cpb::ContractTerms {
    let text = format!(
        "kind = \"fixed_price\"\ndelivery_first = \"2024-01-01\"\ndelivery_last = \"2024-12-31\"\ncurrency = \"EUR\"\n\
         decimals = 2\n[price]\nrule = \"fixed\"\nprice = \"0.25\"\n[quantity]\nbasis = \"daily\"\n\
         energy = {daily_kwh}\n[shape]\nshape = \"flat\"\n"
    );
    cpb::ContractTerms { format: Some(cpb::contract_terms::Format::Toml(text)) }
}

fn day(y: i32, m: i32, d: i32) -> Option<common::Date> {
    Some(common::Date { year: y, month: m, day: d })
}

/// The parties, shop's meter and the contract `shop-2024` (a draft).
async fn draft(contracts: &mut ContractServiceClient<Channel>, admin: &str) {
    for (id, role) in [("grid", cpb::PartyRole::Retailer), ("shop", cpb::PartyRole::Consumer)] {
        let party = cpb::Party { id: id.into(), name: id.into(), role: role.into() };
        contracts.put_party(with_token(cpb::PutPartyRequest { party: Some(party) }, admin)).await.expect("party");
    }
    let meter = cpb::MeteringPoint {
        id: "m1".into(),
        party_id: "shop".into(),
        interval_minutes: 15,
        time_zone: "Europe/Berlin".into(),
        location: Some(cpb::metering_point::Location::Zone("de".into())),
        technology: cpb::Technology::Load.into(),
    };
    contracts.put_meter(with_token(cpb::PutMeterRequest { meter: Some(meter) }, admin)).await.expect("meter");
    let create = cpb::CreateContractRequest {
        request_id: "create-1".into(),
        contract_id: "shop-2024".into(),
        seller_id: "grid".into(),
        buyer_id: "shop".into(),
        meter_ids: vec!["m1".into()],
        terms: Some(terms(1_000)),
    };
    contracts.create_contract(with_token(create, admin)).await.expect("create");
}

async fn change_state(contracts: &mut ContractServiceClient<Channel>, admin: &str, step: cpb::Transition) {
    let request = cpb::ChangeContractStateRequest {
        request_id: String::new(),
        contract_id: "shop-2024".into(),
        transition: step.into(),
        effective: None,
    };
    contracts.change_contract_state(with_token(request, admin)).await.expect("state");
}

/// Doubles the volume from 1 March 2024.
async fn amend(contracts: &mut ContractServiceClient<Channel>, admin: &str) {
    let request = cpb::AmendContractRequest {
        request_id: "amend-1".into(),
        contract_id: "shop-2024".into(),
        valid_from: day(2024, 3, 1),
        terms: Some(terms(2_000)),
    };
    contracts.amend_contract(with_token(request, admin)).await.expect("amend");
}

fn ask(participant: &str, first: Option<common::Date>, last: Option<common::Date>) -> tpb::ContractPositionsRequest {
    tpb::ContractPositionsRequest { market_id: "park".into(), participant_id: participant.into(), first, last }
}

/// The positions once the view has seen change `change` of the contract
/// (30 s at most: a change reaches the view moments after its commit).
async fn seen(
    trading: &mut TradingServiceClient<Channel>,
    token: &str,
    request: &tpb::ContractPositionsRequest,
    change: i64,
) -> tpb::ContractPositionsResponse {
    for _ in 0..300 {
        let got = trading.contract_positions(with_token(request.clone(), token)).await.expect("positions").into_inner();
        if got.contracts.first().is_some_and(|c| c.change >= change) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("change {change} of the contract never reached the trading service's view");
}

/// Quarter hours of a day and their energy, and the day's total.
fn shape(got: &tpb::ContractPositionsResponse) -> (usize, i64, i64) {
    let max = got.intervals.iter().map(|i| i.contracted_wh).max().unwrap_or(0);
    (got.intervals.len(), max, got.contracted_wh)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_changes_reach_the_trading_positions_once_and_in_order() {
    let server = Server::start_in_temp(&[], &[("VOLTA_JWT_HS256_SECRET", SECRET)]);
    let admin = as_party("acme", "ops", "admin");
    let shop = as_party("acme", "shop", "operator");
    let mut contracts = ContractServiceClient::new(server.channel().await);
    let mut trading = TradingServiceClient::new(server.channel().await);
    create_park(&mut trading, &admin).await;
    draft(&mut contracts, &admin).await;
    let leap = ask("", day(2024, 2, 29), day(2024, 2, 29));

    // A draft is seen, not counted.
    let got = seen(&mut trading, &shop, &leap, 1).await;
    assert_eq!(got.contracts.len(), 1);
    let c = &got.contracts[0];
    assert_eq!((c.contract_id.as_str(), c.counterparty_id.as_str(), c.state.as_str()), ("shop-2024", "grid", "draft"));
    assert_eq!((c.side(), c.counted), (tpb::Side::Buy, false));
    assert_eq!(shape(&got), (96, 0, 0));

    // Signed: 1,000 kWh a day, spread over the quarter hours.
    change_state(&mut contracts, &admin, cpb::Transition::Sign).await;
    let got = seen(&mut trading, &shop, &leap, 2).await;
    assert!(got.contracts[0].counted);
    let (intervals, most, total) = shape(&got);
    assert_eq!((intervals, total), (96, 1_000_000));
    assert!(most <= 10_417, "a flat day: {most} Wh in one quarter hour");
    // The seller delivers it (the admin names the participant).
    let sold = seen(&mut trading, &admin, &ask("grid", day(2024, 2, 29), day(2024, 2, 29)), 2).await;
    assert_eq!((sold.contracted_wh, sold.contracts[0].side()), (-1_000_000, tpb::Side::Sell));

    // Amended from March: the view has the new version, February keeps the old.
    amend(&mut contracts, &admin).await;
    let march = seen(&mut trading, &shop, &ask("", day(2024, 2, 28), day(2024, 3, 2)), 3).await;
    assert_eq!(march.intervals.len(), 4 * 96);
    let per_day: Vec<i64> = march.intervals.chunks(96).map(|d| d.iter().map(|i| i.contracted_wh).sum()).collect();
    assert_eq!(per_day, [1_000_000, 1_000_000, 2_000_000, 2_000_000]);
    // The spring-forward day in Berlin has 23 hours: 92 quarter hours, the same energy.
    let dst = seen(&mut trading, &shop, &ask("", day(2024, 3, 31), day(2024, 3, 31)), 3).await;
    assert_eq!((dst.intervals.len(), dst.contracted_wh), (92, 2_000_000));

    // Active, then suspended: a suspended contract delivers nothing.
    change_state(&mut contracts, &admin, cpb::Transition::Activate).await;
    change_state(&mut contracts, &admin, cpb::Transition::Suspend).await;
    let paused = seen(&mut trading, &shop, &leap, 5).await;
    assert_eq!((paused.contracts[0].state.as_str(), paused.contracts[0].counted), ("suspended", false));
    assert_eq!(paused.contracted_wh, 0);
    let metrics = super::metrics(&server).await;
    assert!(metrics.contains(r#"volta_messages_total{route="positions",status="applied"} 5"#), "{metrics}");

    // What the market covered beside the contracts: the shop buys 1.5 kWh
    // from the grid for a quarter hour of today (the contract ended in 2024).
    let start = delivery();
    trading.submit_order(with_token(order("b1", tpb::Side::Buy, 2_000, "0.30", start), &shop)).await.expect("buy");
    let grid = as_party("acme", "grid", "operator");
    trading.submit_order(with_token(order("s1", tpb::Side::Sell, 1_500, "0.20", start), &grid)).await.expect("sell");
    let today = start.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone")).date();
    let today = day(i32::from(today.year()), i32::from(today.month()), i32::from(today.day()));
    let covered = trading.contract_positions(with_token(ask("", today, today), &shop)).await.expect("today");
    let covered = covered.into_inner();
    let at =
        |t: jiff::Timestamp| covered.intervals.iter().find(|i| i.delivery_start == Some(volta_api::time::timestamp(t)));
    assert_eq!(at(start).map(|i| (i.contracted_wh, i.market_wh)), Some((0, 1_500)));
    assert_eq!((covered.contracted_wh, covered.market_wh), (0, 1_500));
    let sold = trading.contract_positions(with_token(ask("", today, today), &grid)).await.expect("the seller's");
    assert_eq!(sold.into_inner().market_wh, -1_500);

    // Who may read what, and the budget.
    let viewer = as_party("acme", "v", "viewer");
    let error = trading.contract_positions(with_token(leap.clone(), &viewer)).await.map(drop).expect_err("a viewer");
    assert_eq!(error.code(), Code::PermissionDenied);
    let error = trading.contract_positions(with_token(ask("grid", day(2024, 2, 29), day(2024, 2, 29)), &shop)).await;
    assert_eq!(reason(&error.map(drop).expect_err("another's")), "ROLE_REQUIRED");
    let error = trading.contract_positions(with_token(ask("", day(2024, 1, 1), day(2025, 1, 1)), &shop)).await;
    let error = error.map(drop).expect_err("367 days");
    assert_eq!((error.code(), super::field(&error).as_str()), (Code::InvalidArgument, "last"));
    let error = trading.contract_positions(with_token(ask("", day(2024, 3, 2), day(2024, 3, 1)), &shop)).await;
    assert_eq!(super::field(&error.map(drop).expect_err("backwards")), "last");
    let year = trading.contract_positions(with_token(ask("", day(2024, 1, 1), day(2024, 12, 31)), &shop)).await;
    // 366 days of 96 quarter hours: spring's missing hour and autumn's extra one cancel.
    assert_eq!(year.expect("a leap year").into_inner().intervals.len(), 366 * 96);
    let nowhere = tpb::ContractPositionsRequest { market_id: "nowhere".into(), ..leap.clone() };
    let error = trading.contract_positions(with_token(nowhere, &shop)).await.map(drop).expect_err("no market");
    assert_eq!(reason(&error), "MARKET_NOT_FOUND");
    let other = as_party("globex", "shop", "operator");
    let error =
        trading.contract_positions(with_token(leap, &other)).await.map(drop).expect_err("another tenant's market");
    assert_eq!(reason(&error), "MARKET_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_contract_changes_reach_a_trading_process_that_was_killed_in_between() {
    let Some(split) = Split::new("positions", "") else { return };
    let process = |services: &str| split.process(services);
    let contract_process = process("contracts");
    let mut trading_process = process("trading");
    let admin = as_party("acme", "ops", "admin");
    let shop = as_party("acme", "shop", "operator");
    let mut contracts = ContractServiceClient::new(contract_process.channel().await);
    create_park(&mut TradingServiceClient::new(trading_process.channel().await), &admin).await;
    draft(&mut contracts, &admin).await;
    change_state(&mut contracts, &admin, cpb::Transition::Sign).await;
    let leap = ask("", day(2024, 2, 29), day(2024, 2, 29));
    let mut trading = TradingServiceClient::new(trading_process.channel().await);
    assert_eq!(seen(&mut trading, &shop, &leap, 2).await.contracted_wh, 1_000_000);

    // The trading process dies; the contract changes while it is down.
    trading_process.child.kill().expect("SIGKILL");
    let _ = tokio::task::block_in_place(|| trading_process.child.wait());
    drop(trading_process);
    amend(&mut contracts, &admin).await;
    change_state(&mut contracts, &admin, cpb::Transition::Activate).await;
    let trading_process = process("trading");
    let mut trading = TradingServiceClient::new(trading_process.channel().await);
    let march = seen(&mut trading, &shop, &ask("", day(2024, 3, 1), day(2024, 3, 1)), 4).await;
    assert_eq!((march.contracted_wh, march.contracts[0].state.as_str()), (2_000_000, "active"));
    let metrics = super::metrics(&trading_process).await;
    let applied = r#"volta_messages_total{route="positions",status="applied"} 2"#;
    assert!(metrics.contains(applied), "the restarted process applies the 2 changes it missed:\n{metrics}");
    let ledger = super::metrics(&contract_process).await;
    assert!(!ledger.contains(r#"route="positions",status="applied""#), "the contract process applies none:\n{ledger}");

    drop((trading_process, contract_process));
    split.delete_stream().await;
}

/// The outbox row of message `id`'s payload in the database at `url`.
async fn outbox_payload(url: &str, id: &str) -> String {
    let store = volta_server::store::Store::open(url).await.expect("open the store");
    let payload: String = sqlx::query_scalar("SELECT payload FROM messaging_outbox WHERE id = $1")
        .bind(id)
        .fetch_one(store.pool())
        .await
        .expect("the message");
    store.pool().close().await;
    payload
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contract_change_the_view_cannot_read_dies_and_the_admin_retries_it_corrected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let env = [("VOLTA_JWT_HS256_SECRET", SECRET)];
    let admin = as_party("acme", "ops", "admin");
    let shop = as_party("acme", "shop", "operator");
    let leap = ask("", day(2024, 2, 29), day(2024, 2, 29));
    let server = Server::start_with(&["--database", &db], &env);
    let mut contracts = ContractServiceClient::new(server.channel().await);
    let mut trading = TradingServiceClient::new(server.channel().await);
    create_park(&mut trading, &admin).await;
    draft(&mut contracts, &admin).await;
    change_state(&mut contracts, &admin, cpb::Transition::Sign).await;
    assert_eq!(seen(&mut trading, &shop, &leap, 2).await.contracted_wh, 1_000_000);
    drop((contracts, trading, server));

    // Change 3 of the contract, as a broken producer would write it.
    {
        let store = volta_server::store::Store::open(&db).await.expect("open the store");
        sqlx::query(
            "INSERT INTO messaging_outbox (id, tenant, aggregate, seq, kind, payload, headers, created_at) \
             VALUES ('contract/acme/shop-2024/3', 'acme', 'contracts/acme/shop-2024', 3, \
             'volta.contracts.contract.v1', '{\"tenant\": \"acme\", \"version\": 3}', '{}', \
             '2026-01-01T00:00:00.000000Z')",
        )
        .execute(store.pool())
        .await
        .expect("the poison message");
        store.pool().close().await;
    }
    let server = Server::start_with(&["--database", &db], &env);
    let mut trading = TradingServiceClient::new(server.channel().await);
    let list = |page_size| tpb::ListDeadLettersRequest { page_size };
    let mut dead = Vec::new();
    for _ in 0..300 {
        dead = trading.list_dead_letters(with_token(list(10), &admin)).await.expect("dead").into_inner().dead_letters;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "the poison message, and only it, is dead");
    let d = &dead[0];
    assert_eq!(
        (d.message_id.as_str(), d.aggregate.as_str(), d.sequence),
        ("contract/acme/shop-2024/3", "contracts/acme/shop-2024", 3)
    );
    assert_eq!((d.kind.as_str(), d.attempts), ("volta.contracts.contract.v1", 5));
    assert!(d.error.contains("not a contract message"), "{}", d.error);
    let metrics = super::metrics(&server).await;
    assert!(metrics.contains(r#"volta_messages_total{route="positions",status="dead"} 1"#), "{metrics}");
    // The view holds the contract as of its change before.
    let got = trading.contract_positions(with_token(leap.clone(), &shop)).await.expect("positions").into_inner();
    assert_eq!((got.contracts[0].change, got.contracted_wh), (2, 1_000_000));
    // Each service lists the dead letters of the route it consumes.
    let mut contracts = ContractServiceClient::new(server.channel().await);
    let ledger = contracts.list_dead_letters(with_token(cpb::ListDeadLettersRequest { page_size: 0 }, &admin)).await;
    assert!(ledger.expect("settlement's").into_inner().dead_letters.is_empty());

    // Dead letters are the admin's; ids and payloads are bounded.
    let refused = trading.list_dead_letters(with_token(list(0), &shop)).await.expect_err("operator");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = trading.list_dead_letters(with_token(list(1_001), &admin)).await.expect_err("a big page");
    assert_eq!(super::field(&refused), "page_size");
    let retry =
        |payload: String| tpb::RetryDeadLetterRequest { message_id: "contract/acme/shop-2024/3".into(), payload };
    let refused = trading.retry_dead_letter(with_token(retry(String::new()), &shop)).await.expect_err("operator");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let long = tpb::RetryDeadLetterRequest { message_id: "x".repeat(513), payload: String::new() };
    let refused = trading.retry_dead_letter(with_token(long, &admin)).await.expect_err("a long id");
    assert_eq!(super::field(&refused), "message_id");
    let refused = trading.retry_dead_letter(with_token(retry("{".repeat(65 * 1024)), &admin)).await;
    assert_eq!(super::field(&refused.expect_err("a big payload")), "payload");
    // Settlement's service does not know the positions route's dead letters.
    let elsewhere =
        cpb::RetryDeadLetterRequest { message_id: "contract/acme/shop-2024/3".into(), payload: String::new() };
    let refused = contracts.retry_dead_letter(with_token(elsewhere, &admin)).await.expect_err("another route's");
    assert_eq!(reason(&refused), "MESSAGE_NOT_FOUND");

    // As received it fails again; corrected (change 2's body as change 3)
    // it is applied, once.
    let again = trading.retry_dead_letter(with_token(retry(String::new()), &admin)).await.expect("retry").into_inner();
    assert!(!again.applied && again.error.contains("not a contract message"), "{again:?}");
    let listed = trading.list_dead_letters(with_token(list(10), &admin)).await.expect("dead").into_inner();
    assert_eq!(listed.dead_letters[0].attempts, 6);
    let before = outbox_payload(&db, "contract/acme/shop-2024/2").await;
    let corrected = before.replacen("\"version\":2", "\"version\":3", 1);
    assert_ne!(corrected, before, "change 2's body names its version: {before}");
    let fixed = trading.retry_dead_letter(with_token(retry(corrected), &admin)).await.expect("retry").into_inner();
    assert!(fixed.applied, "{fixed:?}");
    let got = trading.contract_positions(with_token(leap, &shop)).await.expect("positions").into_inner();
    assert_eq!((got.contracts[0].change, got.contracted_wh), (3, 1_000_000));
    let listed = trading.list_dead_letters(with_token(list(10), &admin)).await.expect("dead").into_inner();
    assert!(listed.dead_letters.is_empty(), "no longer dead");
    let gone = trading.retry_dead_letter(with_token(retry(String::new()), &admin)).await.expect_err("twice");
    assert_eq!(reason(&gone), "MESSAGE_NOT_FOUND");
    let metrics = super::metrics(&server).await;
    assert!(metrics.contains(r#"volta_messages_total{route="positions",status="retried"} 1"#), "{metrics}");
}
