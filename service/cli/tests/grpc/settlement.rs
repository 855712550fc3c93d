//! Settlement over gRPC: every trade the trading service stores reaches
//! the contract service's market ledger exactly once, also when the server
//! is killed in the middle of a stream of trades, checked against the trade
//! tape recomputed here; a poison message ends in the dead letters; who may
//! read what.

use std::collections::BTreeMap;
use std::time::Duration;

use rust_decimal::Decimal;
use tonic::Code;
use tonic::transport::Channel;
use volta_api::pb::contracts as cpb;
use volta_api::pb::trading as tpb;

use super::trading::{as_party, create_park, delivery, nth, order, rules};
use super::{SECRET, Server, reason, with_token};
use cpb::contract_service_client::ContractServiceClient;
use tpb::trading_service_client::TradingServiceClient;

/// Bought Wh, sold Wh, paid, received, trade sides: per participant.
type Positions = BTreeMap<String, (i64, i64, Decimal, Decimal, i64)>;

fn money(text: &str) -> Decimal {
    text.parse().expect("a decimal amount")
}

/// The positions the whole trade tape makes, summed here (the admin sees
/// both sides of every trade).
async fn from_tape(client: &mut TradingServiceClient<Channel>, admin: &str) -> (Positions, usize) {
    let mut positions = Positions::new();
    let mut after = 0;
    let mut count = 0;
    loop {
        let request = tpb::ListTradesRequest { market_id: "park".into(), after_trade_id: after, page_size: 1000 };
        let page = client.list_trades(with_token(request, admin)).await.expect("trades").into_inner();
        for t in &page.trades {
            count += 1;
            let buyer = positions.entry(t.buyer_id.clone()).or_default();
            buyer.0 += t.quantity_wh;
            buyer.2 += money(&t.amount);
            buyer.4 += 1;
            let seller = positions.entry(t.seller_id.clone()).or_default();
            seller.1 += t.quantity_wh;
            seller.3 += money(&t.seller_amount);
            seller.4 += 1;
        }
        match page.trades.last() {
            Some(last) => after = last.trade_id,
            None => break,
        }
    }
    (positions, count)
}

fn window() -> (Option<prost_types::Timestamp>, Option<prost_types::Timestamp>) {
    let start = delivery();
    let day = jiff::SignedDuration::from_hours(24);
    (Some(volta_api::time::timestamp(start - day)), Some(volta_api::time::timestamp(start + day)))
}

/// The trades a fault test's flow makes at least, so that the history
/// checker judges thousands of messages.
const THOUSANDS: usize = 1_000;

/// The market ledger's positions, as the contract service reads them.
async fn from_ledger(client: &mut ContractServiceClient<Channel>, who: &str) -> Positions {
    let (delivery_from, delivery_until) = window();
    let request = cpb::MarketPositionsRequest { participant_id: String::new(), delivery_from, delivery_until };
    let reply = client.market_positions(with_token(request, who)).await.expect("positions").into_inner();
    reply
        .positions
        .into_iter()
        .map(|p| (p.participant_id, (p.bought_wh, p.sold_wh, money(&p.paid), money(&p.received), p.trades)))
        .collect()
}

/// Waits until the ledger holds what the tape makes (settlement is
/// asynchronous), or fails after a minute with both.
async fn settled(server: &Server, admin: &str) -> usize {
    settled_between(server, server, admin).await
}

/// [`settled`], with the market on `trading` and the ledger on `ledger`.
async fn settled_between(trading: &Server, ledger: &Server, admin: &str) -> usize {
    let mut contracts = ContractServiceClient::new(ledger.channel().await);
    let mut trading = TradingServiceClient::new(trading.channel().await);
    let (expected, trades) = from_tape(&mut trading, admin).await;
    for _ in 0..600 {
        if from_ledger(&mut contracts, admin).await == expected {
            eprintln!("the ledger matches the tape: {trades} trades");
            return trades;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ledger = from_ledger(&mut contracts, admin).await;
    panic!("the ledger never matched the tape:\nledger {ledger:?}\ntape   {expected:?}");
}

/// A market with a grid fee: a bid within the fee of an ask rests beside
/// it; one that covers both trades, the buyer paying the ask and the fee
/// and the seller receiving its ask, and the ledger books each side so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grid_fee_is_what_the_buyer_pays_above_what_the_seller_receives() {
    let server = Server::start_in_temp(&[], &[("VOLTA_JWT_HS256_SECRET", SECRET)]);
    let mut trading = TradingServiceClient::new(server.channel().await);
    let admin = as_party("acme", "ops", "admin");
    let (alice, bob) = (as_party("acme", "alice", "operator"), as_party("acme", "bob", "operator"));
    let rules = tpb::MarketRules { grid_fee: "0.03".into(), ..rules() };
    let create = tpb::CreateMarketRequest { market_id: "park".into(), rules: Some(rules.clone()) };
    let made = trading.create_market(with_token(create, &admin)).await.expect("market").into_inner();
    assert_eq!(made.market.and_then(|m| m.rules).map(|r| r.grid_fee).as_deref(), Some("0.03"));
    let bad = tpb::CreateMarketRequest {
        market_id: "negative".into(),
        rules: Some(tpb::MarketRules { grid_fee: "-0.01".into(), ..rules }),
    };
    let refused = trading.create_market(with_token(bad, &admin)).await.expect_err("a negative fee");
    assert_eq!((refused.code(), super::field(&refused).as_str()), (Code::InvalidArgument, "rules.grid_fee"));

    let start = delivery();
    let (buy, sell) = (tpb::Side::Buy, tpb::Side::Sell);
    let submit = |client: &str, side, wh, price: &str| order(client, side, wh, price, start);
    let ask = trading.submit_order(with_token(submit("a1", sell, 2_000, "0.10"), &alice)).await.expect("ask");
    assert!(ask.into_inner().trades.is_empty());
    // 0.12 does not cover the ask and the fee (0.13): it rests too.
    let low = trading.submit_order(with_token(submit("b1", buy, 4_000, "0.12"), &bob)).await.expect("bid");
    assert!(low.into_inner().trades.is_empty());
    let took = trading.submit_order(with_token(submit("b2", buy, 2_000, "0.13"), &bob)).await.expect("bid");
    let trades = took.into_inner().trades;
    assert_eq!(trades.len(), 1);
    let t = &trades[0];
    let shown = (t.price.as_str(), t.seller_price.as_str(), t.grid_fee.as_str());
    assert_eq!(shown, ("0.13", "0.1", "0.03"));
    let amounts = (t.amount.as_str(), t.seller_amount.as_str(), t.grid_fee_amount.as_str());
    assert_eq!(amounts, ("0.26", "0.2", "0.06"));

    // The ledger: bob paid 0.26 for 2 kWh, alice received 0.20.
    settled(&server, &admin).await;
    let mut contracts = ContractServiceClient::new(server.channel().await);
    let ledger = from_ledger(&mut contracts, &admin).await;
    assert_eq!(ledger["bob"], (2_000, 0, money("0.26"), Decimal::ZERO, 1));
    assert_eq!(ledger["alice"], (0, 2_000, Decimal::ZERO, money("0.2"), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_trade_is_settled_once_through_a_kill_and_a_poison_message_dies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let env = [("VOLTA_JWT_HS256_SECRET", SECRET)];
    let mut server = Server::start_with(&["--database", &db], &env);
    let channel = server.channel().await;
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(channel.clone()), &admin).await;
    let start = delivery();

    // Eight participants trade until the server is killed under them
    // (SIGKILL: trades stored, their settlement anywhere on its way).
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for p in 0..8 {
        let mut client = TradingServiceClient::new(channel.clone());
        let (admin, answered) = (admin.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0.. {
                if client.submit_order(with_token(nth(p, k, start), &admin)).await.is_err() {
                    break;
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    while answered.load(std::sync::atomic::Ordering::Relaxed) < 2_400 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().expect("SIGKILL");
    let _ = server.child.wait();
    for task in tasks {
        task.await.expect("client");
    }
    drop(server);

    // A message no consumer can read, put in the outbox as a broken
    // producer would.
    {
        let store = volta_server::store::Store::open(&db).await.expect("open the store");
        sqlx::query(
            "INSERT INTO messaging_outbox (id, tenant, aggregate, seq, kind, payload, headers, created_at) \
             VALUES ('trade/acme/broken/1', 'acme', 'trading/acme/broken', 1, 'volta.trading.trade.v1', \
             '{\"tenant\": \"acme\", \"trade\": 17}', '{}', '2026-01-01T00:00:00.000000Z')",
        )
        .execute(store.pool())
        .await
        .expect("the poison message");
        store.pool().close().await;
    }

    let server = Server::start_with(&["--database", &db], &env);
    let trades = settled(&server, &admin).await;
    assert!(trades >= THOUSANDS, "the flow should trade thousands: {trades}");
    let mut contracts = ContractServiceClient::new(server.channel().await);
    let mut dead = Vec::new();
    for _ in 0..300 {
        let request = cpb::ListDeadLettersRequest { page_size: 10 };
        dead = contracts.list_dead_letters(with_token(request, &admin)).await.expect("dead").into_inner().dead_letters;
        if !dead.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(dead.len(), 1, "the poison message, and only it, is dead");
    assert_eq!((dead[0].message_id.as_str(), dead[0].attempts), ("trade/acme/broken/1", 5));
    assert!(dead[0].error.contains("not a trade message"), "{}", dead[0].error);
    let metrics = super::metrics(&server).await;
    assert!(metrics.contains(r#"volta_messages_total{route="settlement",status="dead"} 1"#), "{metrics}");

    // Who reads what: an operator its own position, not another's; a
    // viewer nothing; dead letters are the admin's.
    let (delivery_from, delivery_until) = window();
    let p1 = as_party("acme", "p1", "operator");
    let own = cpb::MarketPositionsRequest { participant_id: String::new(), delivery_from, delivery_until };
    let mine = contracts.market_positions(with_token(own.clone(), &p1)).await.expect("own").into_inner();
    assert_eq!(mine.positions.len(), 1);
    assert_eq!(mine.positions[0].participant_id, "p1");
    let other = cpb::MarketPositionsRequest { participant_id: "p2".into(), ..own.clone() };
    let refused = contracts.market_positions(with_token(other, &p1)).await.expect_err("another's");
    assert_eq!(reason(&refused), "ROLE_REQUIRED");
    let viewer = as_party("acme", "eve", "viewer");
    let refused = contracts.market_positions(with_token(own.clone(), &viewer)).await.expect_err("viewer");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = contracts
        .list_dead_letters(with_token(cpb::ListDeadLettersRequest { page_size: 0 }, &p1))
        .await
        .expect_err("operator");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let backwards = cpb::MarketPositionsRequest { delivery_from: delivery_until, delivery_until: delivery_from, ..own };
    let refused = contracts.market_positions(with_token(backwards, &admin)).await.expect_err("backwards");
    assert_eq!(super::field(&refused), "delivery_until");
    let globex = as_party("globex", "ops", "admin");
    assert!(from_ledger(&mut contracts, &globex).await.is_empty(), "another tenant's ledger");

    // The admin retries the dead letter: as received it fails again and
    // stays dead; with a corrected payload it is applied, once.
    let retry = |payload: String| cpb::RetryDeadLetterRequest { message_id: "trade/acme/broken/1".into(), payload };
    let again = contracts.retry_dead_letter(with_token(retry(String::new()), &admin)).await.expect("retry");
    let again = again.into_inner();
    assert!(!again.applied && again.error.contains("not a trade message"), "{again:?}");
    let listed = contracts.list_dead_letters(with_token(cpb::ListDeadLettersRequest { page_size: 10 }, &admin)).await;
    assert_eq!(listed.expect("dead").into_inner().dead_letters[0].attempts, 6);
    let refused = contracts.retry_dead_letter(with_token(retry(String::new()), &p1)).await.expect_err("operator");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let nameless = cpb::RetryDeadLetterRequest { message_id: String::new(), payload: String::new() };
    let refused = contracts.retry_dead_letter(with_token(nameless, &admin)).await.expect_err("no id");
    assert_eq!(super::field(&refused), "message_id");
    let before = from_ledger(&mut contracts, &admin).await;
    let corrected = corrected_trade(start);
    let fixed = contracts.retry_dead_letter(with_token(retry(corrected), &admin)).await.expect("retry").into_inner();
    assert!(fixed.applied, "{fixed:?}");
    let after = from_ledger(&mut contracts, &admin).await;
    assert_eq!(after["p1"].0 - before["p1"].0, 1_000, "the buyer's side, once");
    assert_eq!(after["p2"].1 - before["p2"].1, 1_000, "the seller's side, once");
    let listed = contracts.list_dead_letters(with_token(cpb::ListDeadLettersRequest { page_size: 10 }, &admin)).await;
    assert!(listed.expect("dead").into_inner().dead_letters.is_empty(), "no longer dead");
    let gone = contracts.retry_dead_letter(with_token(retry(String::new()), &admin)).await.expect_err("twice");
    assert_eq!(reason(&gone), "MESSAGE_NOT_FOUND");
    let metrics = super::metrics(&server).await;
    assert!(metrics.contains(r#"volta_messages_total{route="settlement",status="retried"} 1"#), "{metrics}");
}

/// A trade message for the poison message's place (`trading/acme/broken`,
/// number 1): p1 buys 1 kWh from p2 at 0.20.
fn corrected_trade(start: jiff::Timestamp) -> String {
    let price: volta_trading::Price = "0.20".parse().expect("price");
    let party = |id: &str| volta_contracts::PartyId::new(id).expect("id");
    let body = volta_server::store::messaging::TradeMessage {
        tenant: "acme".into(),
        market: "broken".into(),
        trade: volta_trading::TradeRecord {
            id: 1,
            trade: volta_trading::Trade {
                product: volta_trading::ProductId::of(start, 15),
                buy: 2,
                sell: 1,
                buyer: party("p1"),
                seller: party("p2"),
                quantity: volta_contracts::Energy::from_wh(1_000),
                buyer_price: price,
                seller_price: price,
                grid_fee: volta_trading::Price::ZERO,
            },
            delivery_start: start,
            delivery_end: start + jiff::SignedDuration::from_mins(15),
            aggressor: Some(volta_trading::Side::Buy),
            at: jiff::Timestamp::now(),
        },
    };
    serde_json::to_string(&body).expect("JSON")
}

/// Trades with eight participants until the server is gone; returns the
/// calls answered.
async fn trade_until_gone(server: &Server, admin: &str) -> usize {
    let channel = server.channel().await;
    create_park(&mut TradingServiceClient::new(channel.clone()), admin).await;
    let start = delivery();
    let mut tasks = Vec::new();
    for p in 0..8 {
        let mut client = TradingServiceClient::new(channel.clone());
        let admin = admin.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            for k in 0..2_000 {
                if client.submit_order(with_token(nth(p, k, start), &admin)).await.is_err() {
                    break;
                }
                answered += 1;
            }
            answered
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await.expect("client");
    }
    answered
}

/// The server aborts at `point` (as under `kill -9`) on its `nth` pass
/// under a flow of orders; a restart without the failpoint settles every
/// trade once, also those of a second flow after it.
async fn crash_at(point: &str, nth: usize) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = format!("sqlite://{}", dir.path().join("volta.db").display());
    let admin = as_party("acme", "ops", "admin");
    let failing = [("VOLTA_JWT_HS256_SECRET", SECRET), ("VOLTA_FAILPOINTS", &format!("{point}@{nth}"))];
    let mut server = Server::start_with(&["--database", &db], &failing);
    let answered = trade_until_gone(&server, &admin).await;
    aborted_at_failpoint(&mut server, &format!("{point}: the server"));
    assert!(answered < 16_000, "{point}: the failpoint was never reached");
    drop(server);

    let server = Server::start_with(&["--database", &db], &[("VOLTA_JWT_HS256_SECRET", SECRET)]);
    let before = settled(&server, &admin).await;
    assert!(trade(&server, &admin, 2_000, 150).await > 0);
    let trades = settled(&server, &admin).await;
    assert!(trades >= THOUSANDS, "{point}: the flows should trade thousands: {trades} ({before} before the crash)");
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_the_commit_before_the_relay_loses_no_settlement() {
    crash_at("outbox.after_commit", 300).await;
}

/// In one process a relay round applies its batch and marks it published
/// in one transaction: a crash after the effects are written and before
/// the commit leaves the batch as it was, so it is applied once, after the
/// restart, and never comes again as a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_after_applying_before_the_mark_settles_nothing_twice() {
    let server = crash_at("relay.after_send", 100).await;
    settled(&server, &as_party("acme", "ops", "admin")).await;
    let metrics = super::metrics(&server).await;
    assert!(counter(&metrics, r#"volta_messages_total{route="settlement",status="applied"}"#) > 0, "{metrics}");
    assert_eq!(
        counter(&metrics, r#"volta_messages_total{route="settlement",status="duplicate"}"#),
        0,
        "a batch applied in place came again:\n{metrics}"
    );
}

/// Trades ten orders per participant at a time on `trading` until `dying`
/// (which may be the same process) has stopped at its failpoint; returns
/// the orders per participant sent.
async fn trade_until_stopped(trading: &Server, dying: &Server, admin: &str) -> usize {
    let mut round = 0;
    while dying.is_running() {
        assert!(round < 200, "the failpoint was never reached");
        trade(trading, admin, round, 10).await;
        round += 10;
    }
    round
}

/// Waits for `server` to exit and checks that it aborted at its failpoint
/// (SIGABRT: as abruptly as `kill -9`); `who` names it in the failure.
fn aborted_at_failpoint(server: &mut Server, who: &str) {
    use std::os::unix::process::ExitStatusExt as _;
    let status = tokio::task::block_in_place(|| server.child.wait()).expect("exit");
    assert_eq!(status.signal(), Some(6), "{who} aborted at the failpoint ({status})");
}

/// Trades `orders` orders per participant, eight at once; returns the
/// calls answered.
async fn trade(server: &Server, admin: &str, from: usize, orders: usize) -> usize {
    // Connected on the first call: a process that dies at its failpoint
    // (the trading process itself, in some fault tests) fails the calls,
    // which count as unanswered, rather than the test.
    let channel = Channel::from_shared(server.url.clone()).expect("url").connect_lazy();
    let start = delivery();
    let mut tasks = Vec::new();
    for p in 0..8 {
        let mut client = TradingServiceClient::new(channel.clone());
        let admin = admin.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut answered = 0;
            for k in from..from + orders {
                if client.submit_order(with_token(nth(p, k, start), &admin)).await.is_ok() {
                    answered += 1;
                }
            }
            answered
        }));
    }
    let mut answered = 0;
    for task in tasks {
        answered += task.await.expect("client");
    }
    answered
}

/// The processes of one test as separate `volta serve --services ...`,
/// sharing a PostgreSQL database, a JetStream stream and a config of their
/// own (`[messaging]` with `extra` lines).
pub(super) struct Split {
    pub(super) nats: String,
    pub(super) db: super::trading::Postgres,
    stream: String,
    config: String,
    _dir: tempfile::TempDir,
}

impl Split {
    /// On the suite's NATS and PostgreSQL; `None`, the reason printed, when
    /// either is not configured.
    pub(super) fn new(tag: &str, extra: &str) -> Option<Self> {
        let Ok(nats) = std::env::var("VOLTA_TEST_NATS_URL") else {
            eprintln!("VOLTA_TEST_NATS_URL is not set: NATS not tested (scripts/test.sh sets it)");
            return None;
        };
        let Some(db) = super::trading::Postgres::create(tag) else {
            eprintln!("VOLTA_TEST_POSTGRES_URL is not set: the processes need a shared PostgreSQL");
            return None;
        };
        Some(Self::on(nats, db, tag, extra))
    }

    /// On `nats` and `db`.
    pub(super) fn on(nats: String, db: super::trading::Postgres, tag: &str, extra: &str) -> Self {
        let stream = format!("VOLTA_TEST_{}_{}", tag.to_uppercase(), std::process::id());
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("volta.toml");
        let text = format!("[messaging]\nstream = \"{stream}\"\nresend_after_seconds = 2\n{extra}");
        std::fs::write(&config, text).expect("config");
        Self { nats, db, stream, config: config.display().to_string(), _dir: dir }
    }

    /// A process serving `services`.
    pub(super) fn process(&self, services: &str) -> Server {
        self.process_with(services, &[])
    }

    /// A process serving `services` with `env` added.
    pub(super) fn process_with(&self, services: &str, env: &[(&str, &str)]) -> Server {
        Server::start_with(
            &["--config", &self.config, "--database", &self.db.url, "--nats-url", &self.nats, "--services", services],
            &[&[("VOLTA_JWT_HS256_SECRET", SECRET)], env].concat(),
        )
    }

    /// JetStream on the test's NATS.
    pub(super) async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(async_nats::connect(self.nats.as_str()).await.expect("NATS"))
    }

    /// Its stream.
    pub(super) async fn stream(&self) -> async_nats::jetstream::stream::Stream {
        self.jetstream().await.get_stream(&self.stream).await.expect("the test stream")
    }

    /// Deletes its stream (at the end of the test).
    pub(super) async fn delete_stream(&self) {
        let _ = self.jetstream().await.delete_stream(&self.stream).await;
    }
}

/// A counter of the metrics text, 0 when absent.
fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .map_or(0, |n| n as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_killed_ledger_and_a_stream_that_lost_everything_still_settle_every_trade_once() {
    let Some(split) = Split::new("settlement", "") else { return };
    let process = |services: &str| split.process(services);
    let mut ledger = process("contracts");
    let trading = process("trading");
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(trading.channel().await), &admin).await;
    // Each process serves its own service only.
    let (from, until) = window();
    let ask = cpb::MarketPositionsRequest { participant_id: String::new(), delivery_from: from, delivery_until: until };
    let elsewhere = ContractServiceClient::new(trading.channel().await)
        .market_positions(with_token(ask, &admin))
        .await
        .expect_err("contracts on the trading process");
    assert_eq!(elsewhere.code(), Code::Unimplemented);

    // Trades settle across the processes through JetStream.
    assert!(trade(&trading, &admin, 0, 150).await > 0);
    let first = settled_between(&trading, &ledger, &admin).await;
    assert!(first > 20, "the flow should trade: {first}");

    // The ledger is killed while trades go on; then the stream loses every
    // message it holds (as JetStream may lose acknowledged ones): the
    // reconciler finds what the ledger never handled and has it sent again.
    ledger.child.kill().expect("SIGKILL");
    let _ = tokio::task::block_in_place(|| ledger.child.wait());
    drop(ledger);
    assert!(trade(&trading, &admin, 150, 150).await > 0);
    let purged = split.stream().await.purge().await.expect("purge");
    assert!(purged.purged > 0, "the trades made while the ledger was down were in the stream");
    let ledger = process("contracts");
    let all = settled_between(&trading, &ledger, &admin).await;
    assert!(all > first && all >= THOUSANDS, "{all} trades, {first} before the kill");
    let metrics = super::metrics(&ledger).await;
    assert!(
        counter(&metrics, r#"volta_messages_total{route="settlement",status="repaired"}"#) > 0,
        "nothing repaired:\n{metrics}"
    );
    let relayed = super::metrics(&trading).await;
    assert_eq!(
        counter(&relayed, r#"volta_messages_total{route="settlement",status="applied"}"#),
        0,
        "the trading process applies nothing itself"
    );
    drop((trading, ledger));
    split.delete_stream().await;
}

/// Over NATS, the ledger process dies (as under `kill -9`) after applying
/// a batch and before acknowledging it to JetStream: the batch comes again
/// to the restarted process, whose inbox knows it, and every trade is
/// settled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_crash_after_applying_before_the_ack_settles_nothing_twice() {
    let Some(split) = Split::new("after_apply", "") else { return };
    let mut ledger = split.process_with("contracts", &[("VOLTA_FAILPOINTS", "consumer.after_apply@3")]);
    let trading = split.process("trading");
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(trading.channel().await), &admin).await;
    let round = trade_until_stopped(&trading, &ledger, &admin).await;
    aborted_at_failpoint(&mut ledger, "the ledger");
    drop(ledger);
    let ledger = split.process("contracts");
    assert!(trade(&trading, &admin, round, 250).await > 0);
    let trades = settled_between(&trading, &ledger, &admin).await;
    assert!(trades >= THOUSANDS, "the flows should trade thousands: {trades}");
    // JetStream delivers the unacknowledged batch again after its ack wait
    // (30 s): the inbox ignores it, and the ledger still matches the tape.
    let duplicates = |metrics: &str| counter(metrics, r#"volta_messages_total{route="settlement",status="duplicate"}"#);
    let mut metrics = super::metrics(&ledger).await;
    for _ in 0..600 {
        if duplicates(&metrics) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        metrics = super::metrics(&ledger).await;
    }
    assert!(duplicates(&metrics) > 0, "the applied, unacknowledged batch never came again:\n{metrics}");
    assert_eq!(settled_between(&trading, &ledger, &admin).await, trades);
    drop((trading, ledger));
    split.delete_stream().await;
}

/// Over NATS, the trading process dies (as under `kill -9`) after
/// JetStream has acknowledged a batch and before the relay marks it
/// published: the restarted relay sends the batch again under the same
/// message ids, and every trade is still settled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_a_crash_after_sending_before_the_mark_settles_nothing_twice() {
    let Some(split) = Split::new("after_send", "") else { return };
    let ledger = split.process("contracts");
    let mut trading = split.process_with("trading", &[("VOLTA_FAILPOINTS", "relay.after_send@3")]);
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(trading.channel().await), &admin).await;
    let round = trade_until_stopped(&trading, &trading, &admin).await;
    aborted_at_failpoint(&mut trading, "the trading process");
    drop(trading);
    let trading = split.process("trading");
    assert!(trade(&trading, &admin, round, 250).await > 0);
    let trades = settled_between(&trading, &ledger, &admin).await;
    assert!(trades >= THOUSANDS, "the flows should trade thousands: {trades}");
    // The batch sent again reached the stream as repeats (dropped there) or
    // the inbox as duplicates; either way the ledger matches the tape.
    let relayed = super::metrics(&trading).await;
    assert!(
        counter(&relayed, r#"volta_messages_total{route="settlement",status="published"}"#) > 0,
        "the restarted relay published nothing:\n{relayed}"
    );
    drop((trading, ledger));
    split.delete_stream().await;
}

/// Waits until a gauge of each server reads as wanted (60 s at most: the
/// replicas rebalance every 2 s).
async fn until_held(servers: &[&Server], wanted: &[u64]) {
    let mut held = Vec::new();
    for _ in 0..600 {
        held.clear();
        for server in servers {
            held.push(counter(&super::metrics(server).await, r#"volta_messaging_partitions_held{route="settlement"}"#));
        }
        if held == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("partitions held {held:?}, not {wanted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_nats_ledger_replicas_share_the_partitions_and_take_over_a_dead_ones() {
    let Some(split) = Split::new("partitions", "partitions = 4\n") else { return };
    let process = |services: &str| split.process(services);
    // One replica takes every partition; a second gets half of them.
    let first = process("contracts");
    until_held(&[&first], &[4]).await;
    let second = process("contracts");
    until_held(&[&first, &second], &[2, 2]).await;

    let trading = process("trading");
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(trading.channel().await), &admin).await;
    assert!(trade(&trading, &admin, 0, 150).await > 0);
    let before = settled_between(&trading, &first, &admin).await;
    assert!(before > 20, "the flow should trade: {before}");

    // The replica that consumes the market's partition is killed; the other
    // takes every partition, and what the dead one had pulled and not
    // acknowledged comes again (JetStream's ack wait, or the reconciler).
    let applied = |metrics: &str| counter(metrics, r#"volta_messages_total{route="settlement",status="applied"}"#);
    let (a, b) = (applied(&super::metrics(&first).await), applied(&super::metrics(&second).await));
    assert!((a > 0) != (b > 0), "one replica consumes the market's partition: {a} and {b} applied");
    let (mut owner, survivor) = if a > 0 { (first, second) } else { (second, first) };
    owner.child.kill().expect("SIGKILL");
    let _ = tokio::task::block_in_place(|| owner.child.wait());
    drop(owner);
    until_held(&[&survivor], &[4]).await;
    assert!(trade(&trading, &admin, 150, 150).await > 0);
    let all = settled_between(&trading, &survivor, &admin).await;
    assert!(all > before && all >= THOUSANDS, "{all} trades, {before} before the kill");

    drop((trading, survivor));
    split.delete_stream().await;
}

/// Stops or starts this machine's NATS server (as scripts/services.sh does).
fn local_nats(start: bool) {
    let mut command = std::process::Command::new("start-stop-daemon");
    if start {
        command.args(["--start", "--oknodo", "--background", "--exec", "/usr/sbin/nats-server", "--"]).args([
            "-a",
            "127.0.0.1",
            "-p",
            "4222",
            "-js",
            "-sd",
            "/var/lib/nats-server",
            "-l",
            "/var/log/nats-server.log",
        ]);
    } else {
        command.args(["--stop", "--oknodo", "--retry", "10", "--exec", "/usr/sbin/nats-server"]);
    }
    let status = command.status().expect("start-stop-daemon");
    assert!(status.success(), "start-stop-daemon {}: {status}", if start { "--start" } else { "--stop" });
    if start {
        for _ in 0..100 {
            if std::net::TcpStream::connect("127.0.0.1:4222").is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("NATS did not come back on 127.0.0.1:4222");
    }
}

/// Restarts the machine's NATS server while trades flow between the
/// processes: what the relay could not publish meanwhile waits in the
/// outbox, what was in flight is delivered again or re-sent, and the
/// ledger still holds every trade once. It stops the shared NATS server,
/// so scripts/test.sh runs it alone, after the rest (`restart_of_`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_nats_under_a_flow_of_trades_settles_every_trade_once() {
    let nats = std::env::var("VOLTA_TEST_NATS_URL").unwrap_or_default();
    if nats != "nats://127.0.0.1:4222" || !std::path::Path::new("/usr/sbin/nats-server").exists() {
        eprintln!("no local nats-server on 127.0.0.1:4222 to restart: not tested");
        return;
    }
    let Some(db) = super::trading::Postgres::create("nats_restart") else {
        eprintln!("VOLTA_TEST_POSTGRES_URL is not set: the processes need a shared PostgreSQL");
        return;
    };
    let split = Split::on(nats, db, "nats_restart", "");
    let process = |services: &str| split.process(services);
    let ledger = process("contracts");
    let trading = process("trading");
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(trading.channel().await), &admin).await;
    assert!(trade(&trading, &admin, 0, 20).await > 0);

    // NATS goes down while orders keep coming (trading needs only the
    // database), and comes back.
    let flow = {
        let admin = admin.clone();
        let url = trading.url.clone();
        tokio::spawn(async move {
            let channel = Channel::from_shared(url).expect("url").connect().await.expect("connect");
            let mut client = TradingServiceClient::new(channel);
            let start = delivery();
            let mut answered = 0;
            for k in 20..320 {
                for p in 0..8 {
                    if client.submit_order(with_token(nth(p, k, start), &admin)).await.is_ok() {
                        answered += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            answered
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| local_nats(false));
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| local_nats(true));
    assert!(flow.await.expect("flow") > 0);
    let trades = settled_between(&trading, &ledger, &admin).await;
    assert!(trades >= THOUSANDS, "the flow should trade thousands: {trades}");
    split.delete_stream().await;
}

/// Restarts this machine's PostgreSQL (fast: its connections are cut), as
/// the machine's notes start it.
fn restart_local_postgres() {
    let version = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .expect("a PostgreSQL cluster");
    let status = std::process::Command::new("pg_ctlcluster")
        .args(["--skip-systemctl-redirect", &version, "main", "restart", "-m", "fast"])
        .status()
        .expect("pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster restart: {status}");
    for _ in 0..100 {
        if std::process::Command::new("pg_isready").args(["-q", "-h", "127.0.0.1"]).status().is_ok_and(|s| s.success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("PostgreSQL did not come back on 127.0.0.1");
}

/// Restarts the machine's PostgreSQL, the record of every service, while
/// orders flow: calls during the restart fail and are retried, the market's
/// leader loses its lock with its connection and leads again (a new epoch)
/// from the store, the ledger's partitions are taken again; afterwards
/// every acknowledged order is stored and the ledger holds every trade
/// once. It restarts the shared PostgreSQL, so scripts/test.sh runs it
/// alone, after the rest (`restart_of_`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_of_postgres_under_a_flow_of_orders_loses_no_order_and_settles_every_trade_once() {
    let nats = std::env::var("VOLTA_TEST_NATS_URL").unwrap_or_default();
    let local = std::env::var("VOLTA_TEST_POSTGRES_URL").is_ok_and(|u| u.contains("@127.0.0.1:5432/"));
    if !local || nats.is_empty() || !std::path::Path::new("/etc/postgresql").exists() {
        eprintln!("no local PostgreSQL cluster (and NATS) to restart: not tested");
        return;
    }
    let Some(db) = super::trading::Postgres::create("pg_restart") else { return };
    let split = Split::on(nats, db, "pg_restart", "");
    let process = |services: &str| split.process(services);
    let ledger = process("contracts");
    let trading = process("trading");
    let admin = as_party("acme", "ops", "admin");
    create_park(&mut TradingServiceClient::new(trading.channel().await), &admin).await;

    // Orders flow; each is retried until answered (an idempotent client
    // order id makes a retry safe), through the restart.
    let flow = {
        let admin = admin.clone();
        let url = trading.url.clone();
        tokio::spawn(async move {
            let channel = Channel::from_shared(url).expect("url").connect().await.expect("connect");
            let mut client = TradingServiceClient::new(channel);
            let start = delivery();
            let (mut acknowledged, mut retried) = (Vec::new(), 0);
            for k in 0..350 {
                for p in 0..6 {
                    for _ in 0..300 {
                        match client.submit_order(with_token(nth(p, k, start), &admin)).await {
                            Ok(reply) => {
                                acknowledged.extend(reply.into_inner().order.map(|o| o.order_id));
                                break;
                            }
                            Err(_) => {
                                retried += 1;
                                tokio::time::sleep(Duration::from_millis(50)).await;
                            }
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (acknowledged, retried)
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    tokio::task::block_in_place(restart_local_postgres);
    let (acknowledged, retried) = flow.await.expect("flow");
    assert_eq!(acknowledged.len(), 2_100, "every order answered in the end ({retried} retries)");

    // Every acknowledged order is stored.
    let mut client = TradingServiceClient::new(trading.channel().await);
    let mut listed = std::collections::HashSet::new();
    let mut token = String::new();
    loop {
        let request = tpb::ListOrdersRequest {
            market_id: "park".into(),
            participant_id: String::new(),
            resting_only: false,
            page_size: 1000,
            page_token: token,
        };
        let page = client.list_orders(with_token(request, &admin)).await.expect("orders").into_inner();
        listed.extend(page.orders.iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let lost: Vec<_> = acknowledged.iter().filter(|id| !listed.contains(id)).collect();
    assert!(lost.is_empty(), "acknowledged and not stored: {lost:?}");
    let trades = settled_between(&trading, &ledger, &admin).await;
    assert!(trades >= THOUSANDS, "the flow should trade thousands: {trades}");
    // The restart cut the leader's lock: it led again, under a new epoch.
    let epoch = std::process::Command::new("psql")
        .args([&split.db.url, "-tAq", "-c", "SELECT leader_epoch FROM trading_markets WHERE id = 'park'"])
        .output()
        .expect("psql");
    let epoch: i64 = String::from_utf8_lossy(&epoch.stdout).trim().parse().expect("an epoch");
    assert!(epoch >= 2, "the market was led once only (epoch {epoch}): did the restart happen during the flow?");
    eprintln!("{retried} calls retried through the restart; the market's epoch is {epoch}");
    split.delete_stream().await;
}
