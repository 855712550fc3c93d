//! Load benchmark of the trading service: many clients submitting orders
//! to one continuous market over loopback gRPC, every order stored before
//! its reply (group commit by the market's sequencer).
//!
//! One phase of `--seconds` with `--clients` concurrent clients (one
//! connection each, one participant each): limit orders (four in five good
//! till cancelled, one immediate or cancel) around 0.20 per kWh over eight
//! quarter-hour products, so that books cross and trade all the time; every
//! fourth call of a client cancels its last order that rested instead.
//! Then the store is read back: every acknowledged order must be there.
//!
//! With `--rate R` the clients offer `R` calls a second in all, each when
//! it is due whether or not their earlier calls are answered (an open
//! loop), and latency counts from when a call was due. Without it each
//! client calls back to back (a closed loop): the throughput is then the
//! server's at that concurrency, but by Little's law the mean latency is
//! the clients' count over the throughput (200 clients at 5,000 orders/s
//! wait 40 ms on average whatever the server does), so the tail at a
//! given rate is read from the open loop.
//!
//! `cargo run --release -p volta-benches --bin trading-load -- --clients 200 --seconds 20 [--rate 5000]`
//! (`--database postgres://...` for PostgreSQL; default: a SQLite file).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

use jiff::Timestamp;
use tonic::transport::Channel;
use volta_api::pb::trading as tpb;
use volta_benches::flags::Flags;
use volta_benches::load::{Server, Tally, continuous_rules, open_phase, phase};

type Client = tpb::trading_service_client::TradingServiceClient<Channel>;

struct Args {
    database: Option<String>,
    volta: std::path::PathBuf,
    seconds: f64,
    clients: usize,
    rate: Option<f64>,
}

const USAGE: &str = "\
usage: trading-load [--database URL] [--volta PATH] [--seconds S] [--clients N] [--rate
    CALLS_PER_S]";

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args { database: None, volta: exe.with_file_name("volta"), seconds: 20.0, clients: 200, rate: None };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--database" => args.database = Some(flags.value(&flag)),
            "--volta" => args.volta = flags.value::<String>(&flag).into(),
            "--seconds" => args.seconds = flags.value(&flag),
            "--clients" => args.clients = flags.value(&flag),
            "--rate" => {
                let rate: f64 = flags.value(&flag);
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(format!("--rate: {rate} is not a positive number of calls a second"));
                }
                args.rate = Some(rate);
            }
            other => flags.unknown(other),
        }
    }
    Ok(args)
}

/// Order `k` of client `client`.
fn order(client: usize, k: usize, products: &[Timestamp]) -> tpb::SubmitOrderRequest {
    let side = if (client + k).is_multiple_of(2) { tpb::Side::Buy } else { tpb::Side::Sell };
    let tick = i64::try_from(k % 21).unwrap_or(0) - 10;
    let tif = if k % 5 == 4 { tpb::TimeInForce::Ioc } else { tpb::TimeInForce::Gtc };
    tpb::SubmitOrderRequest {
        market_id: "load".into(),
        client_order_id: format!("{client}-{k}"),
        participant_id: format!("p{client}"),
        delivery_start: Some(volta_api::time::timestamp(products[k % products.len()])),
        side: side.into(),
        quantity_wh: 250 + i64::try_from(k % 8).unwrap_or(0) * 125,
        limit_price: format!("{:.3}", 0.2 + 0.001 * tick as f64),
        time_in_force: tif.into(),
        node: String::new(),
        block: Vec::new(),
        curve: Vec::new(),
    }
}

/// One client: its connection, its participant, and its last order that
/// rested (the next cancel's target).
#[derive(Clone)]
struct Participant {
    index: usize,
    client: Client,
    resting: Arc<AtomicI64>,
}

/// What the clients share: the market, its products and the counts.
struct Flow {
    market: String,
    products: Arc<Vec<Timestamp>>,
    trades: AtomicU64,
    cancels: AtomicU64,
}

impl Participant {
    /// Call `k`: every fourth cancels the last order that rested (when
    /// one did), the others submit an order. Latency counts from `since`.
    async fn call(&self, k: usize, flow: &Flow, since: Instant) -> Tally {
        let mut client = self.client.clone();
        let resting = self.resting.load(Ordering::Relaxed);
        if k % 4 == 3 && resting > 0 {
            self.resting.store(0, Ordering::Relaxed);
            let request = tpb::CancelOrderRequest { market_id: flow.market.clone(), order_id: resting };
            return match client.cancel_order(request).await {
                Ok(_) => {
                    flow.cancels.fetch_add(1, Ordering::Relaxed);
                    Tally::ok(since.elapsed())
                }
                Err(status) if status.code() == tonic::Code::ResourceExhausted => Tally { shed: 1, ..Tally::default() },
                Err(_) => Tally { errors: 1, ..Tally::default() },
            };
        }
        let request =
            tpb::SubmitOrderRequest { market_id: flow.market.clone(), ..order(self.index, k, &flow.products) };
        match client.submit_order(request).await {
            Ok(reply) if reply.get_ref().accepted => {
                let latency = since.elapsed();
                let reply = reply.into_inner();
                flow.trades.fetch_add(reply.trades.len() as u64, Ordering::Relaxed);
                let order = reply.order.unwrap_or_default();
                if order.state() == tpb::OrderState::Resting {
                    self.resting.store(order.order_id, Ordering::Relaxed);
                }
                Tally::ok(latency)
            }
            Err(status) if status.code() == tonic::Code::ResourceExhausted => Tally { shed: 1, ..Tally::default() },
            Ok(_) | Err(_) => Tally { errors: 1, ..Tally::default() },
        }
    }
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
    // Order calls are small: admit every client at once.
    std::fs::write(&config, format!("[limits]\nmax_concurrent_calls = {}\n", args.clients + 8)).expect("config");
    let sqlite = format!("sqlite://{}", dir.path().join("trading.db").display());
    let database = args.database.clone().unwrap_or(sqlite);
    let server = Server::start_with(&args.volta, Some(&database), &["--config", config.to_str().expect("utf-8")]);
    let channel = Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect");
    let mut admin = Client::new(channel);
    let market = format!("load-{}", Timestamp::now().as_second());
    let rules = continuous_rules();
    admin
        .create_market(tpb::CreateMarketRequest { market_id: market.clone(), rules: Some(rules) })
        .await
        .expect("market");
    let first = (Timestamp::now().as_second() / 3600 + 3) * 3600;
    let products: Arc<Vec<Timestamp>> =
        Arc::new((0..8).map(|i| Timestamp::from_second(first + i * 900).expect("instant")).collect());
    println!(
        "volta serve at {} on {}; {} clients for {} s; {} cores",
        server.url,
        volta_server::store::redacted(&database),
        args.clients,
        args.seconds,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    let mut clients = Vec::with_capacity(args.clients);
    for index in 0..args.clients {
        let channel = Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect");
        clients.push(Participant { index, client: Client::new(channel), resting: Arc::new(AtomicI64::new(0)) });
    }
    let flow =
        Arc::new(Flow { market: market.clone(), products, trades: AtomicU64::new(0), cancels: AtomicU64::new(0) });
    let (mut tally, wall) = if let Some(rate) = args.rate {
        Tally::header(&format!("target: 5,000 orders/s stored, p99 < 50 ms; offered {rate:.0} calls/s"));
        let flow = flow.clone();
        open_phase(clients, args.seconds, rate, move |p: Participant, k, due| {
            let flow = flow.clone();
            async move { p.call(k, &flow, due).await }
        })
        .await
    } else {
        Tally::header("target: 5,000 orders/s stored, p99 < 50 ms");
        let flow = flow.clone();
        phase(clients.into_iter().map(|p| (p, 0)).collect(), args.seconds, move |(p, k): (Participant, usize), _| {
            let flow = flow.clone();
            async move {
                let one = p.call(k, &flow, Instant::now()).await;
                ((p, k + 1), one)
            }
        })
        .await
    };
    let calls = tally.latencies.len();
    let cancels = usize::try_from(flow.cancels.load(Ordering::Relaxed)).unwrap_or(0);
    let acknowledged = calls - cancels;
    tally.report("Submit+Cancel", args.clients, wall, "");
    drop(server);

    // Every acknowledged order is stored.
    let store = volta_server::store::Store::open(&database).await.expect("open the database");
    let stored: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM trading_orders WHERE market = $1")
        .bind(&market)
        .fetch_one(store.pool())
        .await
        .expect("count");
    let stored_trades: i64 =
        sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM trading_trades WHERE market = $1")
            .bind(&market)
            .fetch_one(store.pool())
            .await
            .expect("count");
    println!(
        "\nacknowledged {acknowledged} orders ({:.0}/s), {cancels} cancels and {} trades; stored {stored} orders and \
         {stored_trades} trades{}",
        acknowledged as f64 / wall.as_secs_f64(),
        flow.trades.load(Ordering::Relaxed),
        if usize::try_from(stored).unwrap_or(0) >= acknowledged { "" } else { " -- ORDERS LOST" }
    );
}
