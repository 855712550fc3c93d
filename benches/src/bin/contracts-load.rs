//! Load benchmark of the contract service: the seed platform's heaviest
//! query, "contract electricity volume statistics", replayed over loopback
//! gRPC on an imported portfolio, beside the same numbers computed by
//! scanning the raw readings in the database.
//!
//! Phases, each for `--seconds` with `--clients` concurrent clients (one
//! connection each):
//! 1. `contract-month`: `VolumeStatistics` of a random contract over a
//!    random month of `--year` (one monthly bucket);
//! 2. `portfolio-year`: `VolumeStatistics` of the whole portfolio over the
//!    year, by month (twelve buckets).
//!
//! Then, with one client, the contract-month query by the service (from
//! rollups) against a plain SQL scan of the raw readings (latest revision
//! per interval), the same random contract-months, checking that both
//! give the same delivered energy.
//!
//! The portfolio must be in `--database` already (`volta contracts apply`
//! and `import`, tenant `default`); the server is started on it.
//!
//! `cargo run --release -p volta-benches --bin contracts-load -- --database sqlite://portfolio.db`

use std::time::{Duration, Instant};

use jiff::civil::date;
use sqlx::Row as _;
use tonic::transport::Channel;
use volta_api::pb::common;
use volta_api::pb::contracts as cpb;
use volta_benches::flags::Flags;
use volta_benches::load::{Server, Tally, phase};
use volta_contracts::Period;

type Client = cpb::contract_service_client::ContractServiceClient<Channel>;

struct Args {
    database: String,
    volta: std::path::PathBuf,
    seconds: f64,
    clients: usize,
    year: i16,
    zone: String,
    samples: usize,
}

const USAGE: &str = "\
usage: contracts-load --database URL [--volta PATH] [--seconds S] [--clients N] [--year Y]
    [--zone TZ] [--samples N]";

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args {
        database: String::new(),
        volta: exe.with_file_name("volta"),
        seconds: 20.0,
        clients: 100,
        year: 2024,
        zone: "Australia/Melbourne".into(),
        samples: 200,
    };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--database" => args.database = flags.value(&flag),
            "--volta" => args.volta = flags.value::<String>(&flag).into(),
            "--seconds" => args.seconds = flags.value(&flag),
            "--clients" => args.clients = flags.value(&flag),
            "--year" => args.year = flags.value(&flag),
            "--zone" => args.zone = flags.value(&flag),
            "--samples" => args.samples = flags.value(&flag),
            other => flags.unknown(other),
        }
    }
    if args.database.is_empty() {
        return Err("give --database URL (a database with an imported portfolio)".into());
    }
    Ok(args)
}

fn month_request(contract: &str, year: i16, month: i8) -> cpb::VolumeStatisticsRequest {
    let last = date(year, month, 1).last_of_month();
    cpb::VolumeStatisticsRequest {
        scope: Some(cpb::volume_statistics_request::Scope::ContractId(contract.to_owned())),
        first: Some(common::Date { year: i32::from(year), month: i32::from(month), day: 1 }),
        last: Some(common::Date { year: i32::from(year), month: i32::from(month), day: i32::from(last.day()) }),
        granularity: cpb::Granularity::Month.into(),
        page_size: 0,
        page_token: String::new(),
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
    let store = volta_server::store::Store::open(&args.database).await.expect("open the database");
    let contracts: Vec<String> =
        sqlx::query_scalar("SELECT id FROM contracts_contracts WHERE tenant = 'default' ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("contracts");
    let readings: i64 = sqlx::query_scalar("SELECT CAST(COUNT(*) AS BIGINT) FROM contracts_readings")
        .fetch_one(store.pool())
        .await
        .expect("count");
    assert!(!contracts.is_empty(), "no contracts of tenant `default` in {}", args.database);
    let server = Server::start(&args.volta, Some(&args.database));
    println!(
        "volta serve at {} on {}; {} contracts, {} readings; {} s per phase; {} cores\n",
        server.url,
        volta_server::store::redacted(&args.database),
        contracts.len(),
        readings,
        args.seconds,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );
    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let channel = Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect");
        clients.push(Client::new(channel));
    }
    Tally::header("seed platform: 0.879 s mean at 100 users on 2 x 8 cores");

    let ids = std::sync::Arc::new(contracts.clone());
    let year = args.year;
    let (mut tally, wall) = phase(clients, args.seconds, move |mut client: Client, k| {
        let ids = ids.clone();
        async move {
            let contract = &ids[k % ids.len()];
            let month = i8::try_from(k / ids.len() % 12 + 1).unwrap_or(1);
            let start = Instant::now();
            let one = match client.volume_statistics(month_request(contract, year, month)).await {
                Ok(reply) if reply.get_ref().buckets.len() == 1 => Tally::ok(start.elapsed()),
                Ok(_) | Err(_) => Tally { errors: 1, ..Tally::default() },
            };
            (client, one)
        }
    })
    .await;
    tally.report("contract-month", args.clients, wall, "0.879 s");

    let mut clients = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let channel = Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect");
        clients.push(Client::new(channel));
    }
    let year_request = cpb::VolumeStatisticsRequest {
        scope: Some(cpb::volume_statistics_request::Scope::Portfolio(true)),
        first: Some(common::Date { year: i32::from(year), month: 1, day: 1 }),
        last: Some(common::Date { year: i32::from(year), month: 12, day: 31 }),
        granularity: cpb::Granularity::Month.into(),
        page_size: 0,
        page_token: String::new(),
    };
    let (mut tally, wall) = phase(clients, args.seconds, move |mut client: Client, _| {
        let request = year_request.clone();
        async move {
            let start = Instant::now();
            let one = match client.volume_statistics(request).await {
                Ok(reply) if reply.get_ref().buckets.len() == 12 => Tally::ok(start.elapsed()),
                Ok(_) | Err(_) => Tally { errors: 1, ..Tally::default() },
            };
            (client, one)
        }
    })
    .await;
    tally.report("portfolio-year", args.clients, wall, "(no seed figure)");

    // One client: the service (rollups) against a plain scan of raw readings.
    let zone = jiff::tz::TimeZone::get(&args.zone).expect("zone");
    let channel = Channel::from_shared(server.url.clone()).expect("url").connect().await.expect("connect");
    let mut client = Client::new(channel);
    let (mut service, mut scan) = (Vec::new(), Vec::new());
    let mut disagreements = 0;
    for k in 0..args.samples {
        let contract = &contracts[(k * 7919) % contracts.len()];
        let month = i8::try_from(k % 12 + 1).unwrap_or(1);
        let start = Instant::now();
        let reply = client.volume_statistics(month_request(contract, year, month)).await.expect("stats").into_inner();
        service.push(start.elapsed());
        let period = Period::month_of(date(year, month, 1));
        let from = volta_contracts::calendar::local_midnight(period.first(), &zone).expect("zone").timestamp();
        let to = volta_contracts::calendar::local_midnight(period.end(), &zone).expect("zone").timestamp();
        let start = Instant::now();
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(r.energy_wh), 0) AS BIGINT) AS delivered FROM contracts_readings r \
             JOIN contracts_contract_meters cm ON cm.tenant = r.tenant AND cm.meter = r.meter \
             WHERE r.tenant = 'default' AND cm.contract = $1 AND r.start_s >= $2 AND r.start_s < $3 \
             AND r.revision = (SELECT MAX(x.revision) FROM contracts_readings x \
                 WHERE x.tenant = r.tenant AND x.meter = r.meter AND x.start_s = r.start_s)",
        )
        .bind(contract)
        .bind(from.as_second())
        .bind(to.as_second())
        .fetch_one(store.pool())
        .await
        .expect("scan");
        scan.push(start.elapsed());
        let delivered: i64 = row.try_get("delivered").expect("sum");
        if reply.buckets.first().map(|b| b.delivered_wh) != Some(delivered) {
            disagreements += 1;
        }
    }
    let mean = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len().max(1) as f64;
    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        v.get(v.len() / 2).map_or(f64::NAN, Duration::as_secs_f64)
    };
    let (service_mean, scan_mean) = (mean(&service), mean(&scan));
    println!(
        "\none client, {} contract-months: service (rollups) mean {:.4} s, p50 {:.4} s; raw scan in the database mean \
         {:.4} s, p50 {:.4} s; scan/service = {:.1}; delivered energy disagreements: {disagreements}",
        args.samples,
        service_mean,
        p50(&mut service),
        scan_mean,
        p50(&mut scan),
        scan_mean / service_mean.max(1e-9)
    );
}
