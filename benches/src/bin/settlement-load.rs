//! Settlement benchmark: trades made over gRPC reach the contract
//! service's market ledger, in one process or over NATS JetStream between
//! processes, measured end to end (a trade's time to its ledger rows, from
//! the ledger's `volta_settlement_latency_seconds`) and checked (the ledger
//! holds each trade's two sides once).
//!
//! Two phases:
//! 1. **Flow.** `--clients` clients trade on `--markets` markets for
//!    `--seconds` while the ledger keeps up: trades/s made, settlements/s
//!    applied, latency p50 and p99 (upper bounds of the histogram's buckets).
//! 2. **Backlog** (over NATS only). The ledger processes are stopped, the
//!    clients trade for `--seconds` more (the messages wait in the stream),
//!    then `--ledgers` ledger processes start together: how fast they drain
//!    the backlog is the ledger's capacity (settlements/s).
//!
//! With `--rate R` (over NATS), the flow is not made over gRPC: the bench
//! writes `R` trades a second straight into the trading store, each batch
//! with its outbox messages in one transaction as the trading service
//! writes them, on markets it leads itself (`d0`, `d1`, ...), so that the
//! settlement path is measured at a rate the order path of this machine
//! cannot make. The relay of the trading process hears of them through
//! PostgreSQL's notifications. There is no backlog phase then.
//!
//! `cargo run --release -p volta-benches --bin settlement-load` (one process, SQLite);
//! `... -- --database postgres://postgres@127.0.0.1/test --nats nats://127.0.0.1:4222 --ledgers 3`;
//! `... --rate 5000`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tonic::transport::Channel;
use volta_api::pb::contracts as cpb;
use volta_api::pb::trading as tpb;
use volta_benches::check::{bucket_quantile, buckets, latency_buckets};
use volta_benches::flags::Flags;
use volta_benches::load::{Server, Tally, continuous_rules, phase, value};

type Trading = tpb::trading_service_client::TradingServiceClient<Channel>;
type Ledger = cpb::contract_service_client::ContractServiceClient<Channel>;

struct Args {
    database: Option<String>,
    nats: Option<String>,
    volta: std::path::PathBuf,
    seconds: f64,
    clients: usize,
    markets: usize,
    ledgers: usize,
    rate: Option<f64>,
}

const USAGE: &str = "\
usage: settlement-load [--database URL] [--nats URL] [--ledgers N] [--volta PATH]
    [--seconds S] [--clients N] [--markets N] [--rate TRADES_PER_S]";

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args {
        database: None,
        nats: None,
        volta: exe.with_file_name("volta"),
        seconds: 15.0,
        clients: 64,
        markets: 8,
        ledgers: 1,
        rate: None,
    };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--database" => args.database = Some(flags.value(&flag)),
            "--nats" => args.nats = Some(flags.value(&flag)),
            "--volta" => args.volta = flags.value::<String>(&flag).into(),
            "--seconds" => args.seconds = flags.value(&flag),
            "--clients" => args.clients = flags.value::<usize>(&flag),
            "--markets" => args.markets = flags.value::<usize>(&flag).max(1),
            "--ledgers" => args.ledgers = flags.value::<usize>(&flag).max(1),
            "--rate" => args.rate = Some(flags.value(&flag)),
            other => flags.unknown(other),
        }
    }
    if args.rate.is_some() && args.nats.is_none() {
        return Err("--rate needs --nats (and --database postgres://...)".to_owned());
    }
    if args.nats.is_some() && !args.database.as_deref().is_some_and(|d| d.starts_with("postgres")) {
        return Err("--nats needs --database postgres://... (the processes share it)".to_owned());
    }
    Ok(args)
}

/// The sum over `ledgers` of the messages counted as `status`.
async fn applied(ledgers: &[Server], status: &str) -> f64 {
    let mut sum = 0.0;
    for l in ledgers {
        sum += value(&l.scrape().await, &format!("volta_messages_total{{route=\"settlement\",status=\"{status}\"}}"));
    }
    sum
}

/// The metrics text of each of `servers`.
async fn scrape_all(servers: &[&Server]) -> Vec<String> {
    let mut texts = Vec::with_capacity(servers.len());
    for s in servers {
        texts.push(s.scrape().await);
    }
    texts
}

/// Starts a `volta serve` of `services`.
fn process(args: &Args, database: &str, config: &str, services: &str) -> Server {
    let mut extra = vec!["--config", config, "--services", services, "--metrics-listen", "127.0.0.1:0"];
    if let Some(nats) = &args.nats {
        extra.extend(["--nats-url", nats.as_str()]);
    }
    Server::start_with(&args.volta, Some(database), &extra)
}

/// Clients trading for `seconds`: each its own participant, alternately
/// buying and selling across the markets at prices that cross.
async fn trade(url: &str, args: &Args, products: &Arc<Vec<Timestamp>>, from: usize) -> (Tally, Duration, u64) {
    let mut clients = Vec::with_capacity(args.clients);
    for i in 0..args.clients {
        let channel = Channel::from_shared(url.to_owned()).expect("url").connect().await.expect("connect");
        clients.push((i, from, Trading::new(channel)));
    }
    let trades = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = trades.clone();
    let markets = args.markets;
    let products = products.clone();
    let (tally, wall) = phase(clients, args.seconds, move |(i, k, mut client): (usize, usize, Trading), _| {
        let (products, counted) = (products.clone(), counted.clone());
        async move {
            let start = Instant::now();
            let side = if k.is_multiple_of(2) { tpb::Side::Buy } else { tpb::Side::Sell };
            let tick = i64::try_from((i + k) % 9).unwrap_or(0) - 4;
            let request = tpb::SubmitOrderRequest {
                market_id: format!("m{}", (i + k / 2) % markets),
                client_order_id: format!("{i}-{k}"),
                participant_id: format!("p{i}"),
                delivery_start: Some(volta_api::time::timestamp(products[(k / 2) % products.len()])),
                side: side.into(),
                quantity_wh: 500,
                limit_price: format!("{:.3}", 0.2 + 0.002 * tick as f64),
                time_in_force: tpb::TimeInForce::Gtc.into(),
                node: String::new(),
                block: Vec::new(),
                curve: Vec::new(),
            };
            let one = match client.submit_order(request).await {
                Ok(reply) => {
                    let made = reply.into_inner().trades.len() as u64;
                    counted.fetch_add(made, std::sync::atomic::Ordering::Relaxed);
                    Tally::ok(start.elapsed())
                }
                Err(s) if s.code() == tonic::Code::ResourceExhausted => Tally { shed: 1, ..Tally::default() },
                Err(_) => Tally { errors: 1, ..Tally::default() },
            };
            ((i, k + 1, client), one)
        }
    })
    .await;
    (tally, wall, trades.load(std::sync::atomic::Ordering::Relaxed))
}

/// Waits until the ledgers have applied `target` messages in all; the time
/// it took, or none after a minute without progress.
async fn drained(ledgers: &[Server], target: f64) -> Option<Duration> {
    let start = Instant::now();
    let (mut last, mut since) = (-1.0, Instant::now());
    loop {
        let now = applied(ledgers, "applied").await;
        if now >= target {
            return Some(start.elapsed());
        }
        if now > last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() > Duration::from_secs(60) {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes `rate` trades a second for `seconds` straight into the trading
/// store, spread over `markets` markets the bench creates and leads
/// (`d0`, `d1`, ...): every 5 ms, per market, the trades due as one batch
/// (a resting sell and a buy that takes it, per trade) stored with their
/// outbox messages in one transaction. Returns the trades written and the
/// wall time.
async fn write_trades(database: &str, args: &Args, rate: f64, products: &[Timestamp]) -> (u64, Duration) {
    use volta_server::store::trading::TradingStore as _;
    use volta_trading::{Kind, Market, NewOrder, Side, TimeInForce};
    let store = volta_server::store::Store::open(database).await.expect("open the store");
    let tenant = volta_server::auth::DEFAULT_TENANT;
    // The rules the gRPC markets of the flow get, read as the API reads them.
    let rules = volta_api::trading::rules(Some(continuous_rules())).expect("rules");
    let now = Timestamp::now();
    let mut markets = Vec::with_capacity(args.markets);
    for m in 0..args.markets {
        let id = format!("d{m}");
        store.create_market(tenant, &id, &rules, now).await.expect("market");
        let leader = store.lead(tenant, &id).await.expect("lead").expect("a market nobody leads");
        markets.push((id, leader, Market::new(rules.clone(), 0, 0).expect("market")));
    }
    // Order `id` of trade `k`, on the product trade `k` is for.
    let order = |k: u64, id: u64, who: &str, side: Side, price: &str| NewOrder {
        client_order_id: format!("{id}"),
        participant: volta_contracts::PartyId::new(who).expect("id"),
        delivery_start: products[usize::try_from(k).unwrap_or(0) % products.len()],
        side,
        kind: Kind::Limit { price: price.parse().expect("price"), time_in_force: TimeInForce::Gtc },
        quantity: volta_contracts::Energy::from_wh(500),
        node: None,
        shape: None,
    };
    let start = Instant::now();
    let (mut written, mut k) = (0_u64, 0_u64);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while start.elapsed().as_secs_f64() < args.seconds {
        tick.tick().await;
        let due = (rate * start.elapsed().as_secs_f64()) as u64;
        let batch = due.saturating_sub(written);
        let per_market = batch.div_ceil(args.markets as u64);
        for (id, leader, market) in &mut markets {
            let n = per_market.min(due.saturating_sub(written));
            if n == 0 {
                break;
            }
            let mut changes = volta_trading::Changes::default();
            let now = Timestamp::now();
            for _ in 0..n {
                k += 1;
                let seller = format!("s{}", k % 16);
                let sell = market.submit(order(k, 2 * k, &seller, Side::Sell, "0.20"), now).expect("sell");
                let buyer = format!("b{}", k % 16);
                let buy = market.submit(order(k, 2 * k + 1, &buyer, Side::Buy, "0.21"), now).expect("buy");
                for part in [sell, buy] {
                    // An order's latest state only (the sell rests, then fills).
                    for entry in part.orders {
                        changes.orders.retain(|e: &volta_trading::Entry| e.order.id != entry.order.id);
                        changes.orders.push(entry);
                    }
                    changes.trades.extend(part.trades);
                }
            }
            store.apply(tenant, id, leader.epoch, &changes, now).await.expect("store trades");
            written += n;
        }
    }
    (written, start.elapsed())
}

#[tokio::main]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    let stream = format!("VOLTA_BENCH_{}", std::process::id());
    std::fs::write(
        &config,
        format!("[limits]\nmax_concurrent_calls = {}\n\n[messaging]\nstream = \"{stream}\"\n", args.clients + 8),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8").to_owned();
    let sqlite = format!("sqlite://{}", dir.path().join("settlement.db").display());
    let database = args.database.clone().unwrap_or(sqlite);
    let over_nats = args.nats.is_some();
    let (trading, mut ledgers) = if over_nats {
        let trading = process(&args, &database, &config, "trading");
        let ledgers: Vec<Server> = (0..args.ledgers).map(|_| process(&args, &database, &config, "contracts")).collect();
        (trading, ledgers)
    } else {
        let all = process(&args, &database, &config, "trading,contracts");
        (all, Vec::new())
    };

    let channel = Channel::from_shared(trading.url.clone()).expect("url").connect().await.expect("connect");
    let mut admin = Trading::new(channel);
    let rules = continuous_rules();
    for m in 0..args.markets {
        admin
            .create_market(tpb::CreateMarketRequest { market_id: format!("m{m}"), rules: Some(rules.clone()) })
            .await
            .expect("market");
    }
    let first = (Timestamp::now().as_second() / 3600 + 3) * 3600;
    let products: Arc<Vec<Timestamp>> =
        Arc::new((0..4).map(|i| Timestamp::from_second(first + i * 900).expect("instant")).collect());
    let carrier = if over_nats {
        format!("NATS JetStream, {} ledger process(es)", args.ledgers)
    } else {
        "in process".to_owned()
    };
    println!(
        "settlement {carrier}; {} on {}; {} clients on {} markets, {} s per phase; {} cores",
        trading.url,
        volta_server::store::redacted(&database),
        args.clients,
        args.markets,
        args.seconds,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );

    // Phase 1: the flow.
    let ledger_servers: Vec<&Server> = if over_nats { ledgers.iter().collect() } else { vec![&trading] };
    let before = scrape_all(&ledger_servers).await;
    let applied_before: f64 =
        before.iter().map(|t| value(t, "volta_messages_total{route=\"settlement\",status=\"applied\"}")).sum();
    let (wall, trades) = match args.rate {
        Some(rate) => {
            let (written, wall) = write_trades(&database, &args, rate, &products).await;
            println!("direct: {written} trades written to the store in {:.1} s", wall.as_secs_f64());
            (wall, written)
        }
        None => {
            let (mut tally, wall, trades) = trade(&trading.url, &args, &products, 0).await;
            Tally::header("");
            tally.report("Submit (flow)", args.clients, wall, "");
            (wall, trades)
        }
    };
    let during: f64 = scrape_all(&ledger_servers)
        .await
        .iter()
        .map(|t| value(t, "volta_messages_total{route=\"settlement\",status=\"applied\"}"))
        .sum::<f64>()
        - applied_before;
    let settle_start = Instant::now();
    let mut caught_up = None;
    while settle_start.elapsed() < Duration::from_secs(120) {
        let texts = scrape_all(&ledger_servers).await;
        let applied: f64 =
            texts.iter().map(|t| value(t, "volta_messages_total{route=\"settlement\",status=\"applied\"}")).sum();
        if applied - applied_before >= trades as f64 {
            caught_up = Some(settle_start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let texts = scrape_all(&ledger_servers).await;
    let histogram = latency_buckets(&texts);
    println!(
        "\nflow: {trades} trades ({:.0}/s); {during:.0} settled during the phase ({:.0}/s); the rest {}; \
         trade to ledger p50 <= {:.3} s, p99 <= {:.3} s; duplicates {:.0}, deferred {:.0}",
        trades as f64 / wall.as_secs_f64(),
        during / wall.as_secs_f64(),
        caught_up.map_or_else(
            || "NOT settled within 120 s".to_owned(),
            |d| format!("within {:.2} s after", d.as_secs_f64())
        ),
        bucket_quantile(&histogram, 0.5),
        bucket_quantile(&histogram, 0.99),
        texts.iter().map(|t| value(t, "volta_messages_total{route=\"settlement\",status=\"duplicate\"}")).sum::<f64>(),
        texts.iter().map(|t| value(t, "volta_messages_total{route=\"settlement\",status=\"deferred\"}")).sum::<f64>(),
    );
    // The relays' side of it (every process runs one; over NATS the
    // trading process's carries the trades).
    let mut all: Vec<&Server> = ledger_servers.clone();
    if over_nats {
        all.push(&trading);
    }
    let texts = scrape_all(&all).await;
    let rounds = buckets("volta_messaging_relay_round_seconds", &texts);
    let sends = buckets("volta_messaging_relay_send_seconds", &texts);
    let count: f64 = texts.iter().map(|t| value(t, "volta_messaging_relay_batch_messages_count")).sum();
    let moved: f64 = texts.iter().map(|t| value(t, "volta_messaging_relay_batch_messages_sum")).sum();
    println!(
        "relays: {count:.0} rounds, {:.1} messages a round; round p50 <= {:.3} s, p99 <= {:.3} s; \
         carrier's part p50 <= {:.3} s, p99 <= {:.3} s",
        moved / count.max(1.0),
        bucket_quantile(&rounds, 0.5),
        bucket_quantile(&rounds, 0.99),
        bucket_quantile(&sends, 0.5),
        bucket_quantile(&sends, 0.99),
    );

    // Phase 2: a backlog in the stream, drained by fresh ledger processes.
    if over_nats && args.rate.is_none() {
        drop(std::mem::take(&mut ledgers));
        let (_, wall, backlog) = trade(&trading.url, &args, &products, 1_000_000).await;
        println!("\nbacklog: {backlog} trades made in {:.1} s while no ledger ran", wall.as_secs_f64());
        let fresh: Vec<Server> = (0..args.ledgers).map(|_| process(&args, &database, &config, "contracts")).collect();
        match drained(&fresh, backlog as f64).await {
            Some(took) => println!(
                "backlog: {} ledger process(es) applied {backlog} settlements in {:.2} s: {:.0} settlements/s \
                 (target 5,000/s)",
                args.ledgers,
                took.as_secs_f64(),
                backlog as f64 / took.as_secs_f64()
            ),
            None => println!("backlog: NOT drained (no progress for 60 s)"),
        }
        ledgers = fresh;
    }

    // The check: every trade's two sides in the ledger, once.
    let url = ledgers.first().map_or_else(|| trading.url.clone(), |l| l.url.clone());
    let channel = Channel::from_shared(url).expect("url").connect().await.expect("connect");
    let mut ledger = Ledger::new(channel);
    let day = SignedDuration::from_hours(24);
    let start = products[0];
    let positions = ledger
        .market_positions(cpb::MarketPositionsRequest {
            participant_id: String::new(),
            delivery_from: Some(volta_api::time::timestamp(start - day)),
            delivery_until: Some(volta_api::time::timestamp(start + day)),
        })
        .await
        .expect("positions")
        .into_inner()
        .positions;
    let sides: i64 = positions.iter().map(|p| p.trades).sum();
    let (bought, sold): (i64, i64) = positions.iter().fold((0, 0), |(b, s), p| (b + p.bought_wh, s + p.sold_wh));
    // The trades written straight to the store, and those on the tapes.
    let mut tape = if args.rate.is_some() { i64::try_from(trades).unwrap_or(0) } else { 0 };
    for m in 0..args.markets {
        let mut after = 0;
        loop {
            let page = admin
                .list_trades(tpb::ListTradesRequest {
                    market_id: format!("m{m}"),
                    after_trade_id: after,
                    page_size: 1000,
                })
                .await
                .expect("trades")
                .into_inner();
            tape += i64::try_from(page.trades.len()).unwrap_or(0);
            match page.trades.last() {
                Some(t) => after = t.trade_id,
                None => break,
            }
        }
    }
    println!(
        "\ncheck: {tape} trades on the tapes, {sides} trade sides in the ledger, bought {bought} Wh = sold {sold} Wh: {}",
        if sides == 2 * tape && bought == sold { "every trade settled once" } else { "MISMATCH" }
    );
    if let Some(nats) = &args.nats
        && let Ok(client) = async_nats_connect(nats).await
    {
        let _ = client.delete_stream(&stream).await;
    }
}

/// JetStream, to delete the benchmark's stream.
async fn async_nats_connect(url: &str) -> Result<async_nats::jetstream::Context, async_nats::ConnectError> {
    Ok(async_nats::jetstream::new(async_nats::connect(url).await?))
}
