//! The platform's load test: Volta deployed as several processes on this
//! machine, as the production layout runs them on Kubernetes, with the seed
//! platform's load profiles replayed through a client-side balancer.
//!
//! The deployment: PostgreSQL and NATS as they run here; `volta migrate`
//! once; `--replicas` replicas of the stateless services (`dispatch`,
//! `forecast`, `contracts`, sharing the market ledger's partitions) and one
//! trading process (the markets' leader); the small contract portfolio
//! (`datasets/contracts/small`) imported, a forecasting model trained and a
//! continuous market opened.
//!
//! The clients: each has a balanced channel (tonic's `balance_channel`)
//! over the replicas, fed by a discovery task that checks each replica's
//! `grpc.health.v1` status every 250 ms, as a headless Service's resolver
//! would; a call that fails because its replica went is retried on another
//! (a fail-over), a call shed with RESOURCE_EXHAUSTED is retried after the
//! server's delay. Latency is the user's: from the first attempt to the
//! answer.
//!
//! Profiles, each for `--seconds`:
//! - `read`: 200 clients read a stored forecasting model (`GetModel`);
//! - `statistics`: 100 clients ask a contract's April by day
//!   (`VolumeStatistics`);
//! - `mixed`: 100 clients, each in one role: 47 send orders to the market
//!   and 40 ask volume statistics, as fast as they are answered; 10
//!   forecast with the stored model every 2 s and 3 schedule the campus's
//!   day ahead (96 quarter-hours, CHP under commitment) every 3 s.
//!
//! With `--kill`, replica 0 is killed (SIGKILL) half-way through each
//! profile. At the end: every acknowledged order is in the market's order
//! list, and the ledger's positions equal the trade tape's, summed here.
//! Per process: CPU (share of one core) and peak resident memory, from each
//! server's metrics every 5 s. With `--out DIR`: the latency of every
//! second as CSV and a plot per profile.
//!
//! `deploy/local/run.sh` runs it (it creates the database); by hand:
//! `platform-load --database postgres://.../fresh --nats nats://127.0.0.1:4222 [--kill] [--seconds 300]`

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tokio::sync::mpsc::Sender;
use tonic::Code;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use volta_api::pb::common;
use volta_api::pb::contracts as cpb;
use volta_api::pb::dispatch as dpb;
use volta_api::pb::forecast as fpb;
use volta_api::pb::trading as tpb;
use volta_benches::check::{Positions, add_tape, ledger};
use volta_benches::flags::Flags;
use volta_benches::load::{Server, continuous_rules, value};

type Contracts = cpb::contract_service_client::ContractServiceClient<Channel>;
type Forecasts = fpb::forecast_service_client::ForecastServiceClient<Channel>;
type Dispatch = dpb::dispatch_service_client::DispatchServiceClient<Channel>;
type Trading = tpb::trading_service_client::TradingServiceClient<Channel>;

/// The seed platform's figures (two 8-core machines, 5 minutes each).
const SEED_READ: &str = "0.269 s mean, 200 users";
const SEED_STATISTICS: &str = "0.879 s mean, 100 users";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    Read,
    Statistics,
    Mixed,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Statistics => "statistics",
            Self::Mixed => "mixed",
        }
    }

    fn clients(self) -> usize {
        match self {
            Self::Read => 200,
            Self::Statistics | Self::Mixed => 100,
        }
    }
}

struct Args {
    database: String,
    nats: String,
    replicas: usize,
    seconds: f64,
    profiles: Vec<Profile>,
    kill: bool,
    out: Option<PathBuf>,
    volta: PathBuf,
}

const USAGE: &str = "\
usage: platform-load --database postgres://... [--nats URL] [--replicas N] [--seconds S]
    [--profiles read,statistics,mixed] [--kill] [--out DIR] [--volta PATH]";

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args {
        database: String::new(),
        nats: "nats://127.0.0.1:4222".into(),
        replicas: 3,
        seconds: 300.0,
        profiles: vec![Profile::Read, Profile::Statistics, Profile::Mixed],
        kill: false,
        out: None,
        volta: exe.with_file_name("volta"),
    };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--kill" => args.kill = true,
            "--database" => args.database = flags.value(&flag),
            "--nats" => args.nats = flags.value(&flag),
            "--replicas" => args.replicas = flags.value(&flag),
            "--seconds" => args.seconds = flags.value(&flag),
            "--out" => args.out = Some(flags.value::<String>(&flag).into()),
            "--volta" => args.volta = flags.value::<String>(&flag).into(),
            "--profiles" => {
                args.profiles = flags
                    .value::<String>(&flag)
                    .split(',')
                    .map(|p| match p {
                        "read" => Ok(Profile::Read),
                        "statistics" => Ok(Profile::Statistics),
                        "mixed" => Ok(Profile::Mixed),
                        other => Err(format!("--profiles: {other:?} is not read, statistics or mixed")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            other => flags.unknown(other),
        }
    }
    if !args.database.starts_with("postgres") {
        return Err("give --database postgres://... (the processes share it)".to_owned());
    }
    if args.replicas < 2 {
        return Err("--replicas: at least 2, so that one can be killed".to_owned());
    }
    Ok(args)
}

/// Runs a `volta` command to its end.
fn volta(args: &Args, command: &[&str]) {
    let out = Command::new(&args.volta).args(command).output().expect("volta runs");
    assert!(
        out.status.success(),
        "volta {}: {}{}",
        command.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which replicas answer their health checks, told to every client's
/// balanced channel as it changes. A replica started again in a killed
/// one's place (at another port) takes its place in the list.
struct Discovery {
    urls: Mutex<Vec<String>>,
    live: Mutex<HashSet<usize>>,
    channels: Mutex<Vec<Sender<Change<usize, Endpoint>>>>,
}

impl Discovery {
    fn new(urls: Vec<String>) -> Self {
        Self { urls: Mutex::new(urls), live: Mutex::default(), channels: Mutex::default() }
    }

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::from_shared(url.to_owned())
            .expect("url")
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
    }

    /// Puts a new process in replica `i`'s place.
    fn replace(&self, i: usize, url: String) {
        self.urls.lock().expect("lock")[i] = url;
    }

    /// A balanced channel over the live replicas, kept up to date.
    async fn channel(&self) -> Channel {
        let (channel, changes) = Channel::balance_channel(16);
        let live: Vec<(usize, String)> = {
            let urls = self.urls.lock().expect("lock");
            self.live.lock().expect("lock").iter().map(|&i| (i, urls[i].clone())).collect()
        };
        for (i, url) in live {
            let _ = changes.send(Change::Insert(i, Self::endpoint(&url))).await;
        }
        self.channels.lock().expect("lock").push(changes);
        channel
    }

    /// Tells every channel.
    async fn tell(&self, change: impl Fn() -> Change<usize, Endpoint>) {
        let senders: Vec<_> = self.channels.lock().expect("lock").clone();
        for s in senders {
            let _ = s.send(change()).await;
        }
    }

    /// Watches the replicas until the process ends.
    async fn watch(self: Arc<Self>) {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::health_client::HealthClient;
        let mut probes: Vec<(String, HealthClient<Channel>)> = Vec::new();
        loop {
            let urls = self.urls.lock().expect("lock").clone();
            for (i, url) in urls.iter().enumerate() {
                if probes.get(i).is_none_or(|(u, _)| u != url) {
                    let probe = (url.clone(), HealthClient::new(Self::endpoint(url).connect_lazy()));
                    if i < probes.len() {
                        probes[i] = probe;
                        // A new process in the place: out until it answers.
                        if self.live.lock().expect("lock").remove(&i) {
                            self.tell(|| Change::Remove(i)).await;
                        }
                    } else {
                        probes.push(probe);
                    }
                }
                let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
                let serving = tokio::time::timeout(Duration::from_millis(500), probes[i].1.clone().check(request))
                    .await
                    .is_ok_and(|r| r.is_ok_and(|r| r.get_ref().status() == ServingStatus::Serving));
                let changed = {
                    let mut live = self.live.lock().expect("lock");
                    if serving { live.insert(i) } else { live.remove(&i) }
                };
                if changed {
                    self.tell(|| if serving { Change::Insert(i, Self::endpoint(url)) } else { Change::Remove(i) })
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// One answered call: when it started (s into the profile), how long it
/// took, its kind.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    seconds: f64,
    kind: &'static str,
}

/// What one client saw.
#[derive(Debug, Default)]
struct Seen {
    samples: Vec<Sample>,
    shed: usize,
    failovers: usize,
    errors: usize,
    orders: Vec<i64>,
}

impl Seen {
    fn merge(&mut self, other: Self) {
        self.samples.extend(other.samples);
        self.shed += other.shed;
        self.failovers += other.failovers;
        self.errors += other.errors;
        self.orders.extend(other.orders);
    }
}

/// Calls until answered: a shed call is retried after the server's delay
/// (for up to a minute), a call whose replica went is retried at once on
/// another (up to 5 times); latency from the first attempt.
async fn call<T, F, Fut>(seen: &mut Seen, started: Instant, kind: &'static str, mut attempt: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let first = Instant::now();
    let mut failovers = 0;
    while failovers < 5 && first.elapsed() < Duration::from_secs(60) {
        match attempt().await {
            Ok(reply) => {
                seen.samples.push(Sample {
                    at: first.duration_since(started).as_secs_f64(),
                    seconds: first.elapsed().as_secs_f64(),
                    kind,
                });
                return Some(reply.into_inner());
            }
            Err(s) if s.code() == Code::ResourceExhausted => {
                seen.shed += 1;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            // A replica gone, or a call that met its connection's GOAWAY
            // (hyper's client fails such a call with a protocol error
            // instead of retrying it: hyperium/hyper#2500).
            Err(s)
                if matches!(s.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
                    || (s.code() == Code::Internal && s.message().contains("h2 protocol error")) =>
            {
                seen.failovers += 1;
                failovers += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(s) => {
                eprintln!("{kind}: {:?} {}", s.code(), s.message());
                break;
            }
        }
    }
    seen.errors += 1;
    None
}

/// What the profiles call with.
struct World {
    model: String,
    issue_time: prost_types::Timestamp,
    history: fpb::SeriesData,
    contracts: Vec<String>,
    case: dpb::CaseText,
    products: Vec<Timestamp>,
}

/// One client of `profile`: calls back to back until `until`.
async fn client(
    profile: Profile,
    id: usize,
    world: Arc<World>,
    channel: Channel,
    trading: Channel,
    started: Instant,
    until: Instant,
) -> Seen {
    let mut seen = Seen::default();
    let contracts = Contracts::new(channel.clone());
    let forecasts = Forecasts::new(channel.clone()).max_decoding_message_size(64 << 20);
    let dispatch = Dispatch::new(channel);
    let market = Trading::new(trading);
    let mut k = id;
    while Instant::now() < until {
        k = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        // The mix: each client has one role; schedules and forecasts come
        // at a platform's pace (an operator's plan, a site's forecast),
        // orders and statistics as fast as they are answered.
        let (what, pace) = match profile {
            Profile::Read => (9, None),
            Profile::Statistics => (7, None),
            Profile::Mixed => match id % 100 {
                0..=2 => (4, Some(Duration::from_secs(3))),
                3..=12 => (5, Some(Duration::from_secs(2))),
                13..=59 => (0, None),
                _ => (7, None),
            },
        };
        let began = Instant::now();
        match what {
            0..=3 => {
                let n = seen.samples.len() + seen.errors;
                let side = if n.is_multiple_of(2) { tpb::Side::Buy } else { tpb::Side::Sell };
                let tick = i64::try_from(n % 9).unwrap_or(0) - 4;
                let request = tpb::SubmitOrderRequest {
                    market_id: "park".into(),
                    client_order_id: format!("{id}-{n}"),
                    participant_id: format!("p{id}"),
                    delivery_start: Some(volta_api::time::timestamp(world.products[n / 2 % world.products.len()])),
                    side: side.into(),
                    quantity_wh: 500,
                    limit_price: format!("{:.3}", 0.2 + 0.002 * tick as f64),
                    time_in_force: tpb::TimeInForce::Gtc.into(),
                    node: String::new(),
                    block: Vec::new(),
                    curve: Vec::new(),
                };
                let reply = call(&mut seen, started, "order", || {
                    let (mut c, r) = (market.clone(), request.clone());
                    async move { c.submit_order(r).await }
                })
                .await;
                if let Some(order) = reply.and_then(|r| r.order) {
                    seen.orders.push(order.order_id);
                }
            }
            4 => {
                let request = dpb::ScheduleRequest {
                    case: Some(world.case.clone()),
                    view: dpb::ScheduleView::Summary.into(),
                    ..Default::default()
                };
                call(&mut seen, started, "schedule", || {
                    let (mut c, r) = (dispatch.clone(), request.clone());
                    async move { c.schedule(r).await }
                })
                .await;
            }
            5 | 6 => {
                let request = fpb::ForecastRequest {
                    model: world.model.clone(),
                    series: Some(world.history.clone()),
                    issue_time: Some(world.issue_time),
                };
                call(&mut seen, started, "forecast", || {
                    let (mut c, r) = (forecasts.clone(), request.clone());
                    async move { c.forecast(r).await }
                })
                .await;
            }
            7 | 8 => {
                let contract = &world.contracts[(k >> 40) % world.contracts.len()];
                let request = statistics(contract);
                call(&mut seen, started, "statistics", || {
                    let (mut c, r) = (contracts.clone(), request.clone());
                    async move { c.volume_statistics(r).await }
                })
                .await;
            }
            _ => {
                let request = fpb::GetModelRequest { name: world.model.clone() };
                call(&mut seen, started, "read", || {
                    let (mut c, r) = (forecasts.clone(), request.clone());
                    async move { c.get_model(r).await }
                })
                .await;
            }
        }
        if let Some(pace) = pace {
            let next = (began + pace).min(until);
            tokio::time::sleep_until(next.into()).await;
        }
    }
    seen
}

/// The campus case's first day at 15-minute steps, as JSON: each hourly
/// value held for four quarter-hours.
fn day_ahead() -> String {
    fn quarter(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Array(items) if items.len() == 168 && items.iter().all(serde_json::Value::is_number) => {
                *items = items[..24].iter().flat_map(|x| std::iter::repeat_n(x.clone(), 4)).collect();
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(quarter),
            serde_json::Value::Object(map) => map.values_mut().for_each(quarter),
            serde_json::Value::Null
            | serde_json::Value::Bool(_)
            | serde_json::Value::Number(_)
            | serde_json::Value::String(_) => {}
        }
    }
    let case = volta_engine::Case::from_path(volta_datasets::case("campus.toml")).expect("campus case");
    let mut doc: serde_json::Value = serde_json::from_str(&case.to_json().expect("json")).expect("json");
    quarter(&mut doc);
    doc["time"] = serde_json::json!({
        "start": "2014-11-03T00:00", "timezone": "Australia/Melbourne", "step": "15min", "steps": 96
    });
    doc.to_string()
}

/// A contract's April 2024, day by day.
fn statistics(contract: &str) -> cpb::VolumeStatisticsRequest {
    cpb::VolumeStatisticsRequest {
        scope: Some(cpb::volume_statistics_request::Scope::ContractId(contract.to_owned())),
        first: Some(common::Date { year: 2024, month: 4, day: 1 }),
        last: Some(common::Date { year: 2024, month: 4, day: 30 }),
        granularity: cpb::Granularity::Day.into(),
        page_size: 0,
        page_token: String::new(),
    }
}

/// CPU seconds and peak resident bytes of a process (or of the processes
/// that took its place), from its metrics.
#[derive(Debug, Default, Clone)]
struct Usage {
    last_cpu: Option<f64>,
    cpu: f64,
    peak_bytes: f64,
}

impl Usage {
    fn sample(&mut self, cpu: f64, bytes: f64) {
        match self.last_cpu {
            // A process started in its place counts from zero.
            Some(last) if cpu >= last => self.cpu += cpu - last,
            Some(_) => self.cpu += cpu,
            None => {}
        }
        self.last_cpu = Some(cpu);
        self.peak_bytes = self.peak_bytes.max(bytes);
    }
}

/// The q-quantile of sorted `values`.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    sorted.get(((n as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// The ledger's positions over the market's products (none when it cannot
/// be read yet).
async fn from_ledger(client: &mut Contracts, products: &[Timestamp]) -> Positions {
    let day = SignedDuration::from_hours(24);
    ledger(client, products[0] - day, products[products.len() - 1] + day).await.unwrap_or_default()
}

/// Every order id the market lists.
async fn listed_orders(client: &mut Trading) -> HashSet<i64> {
    let mut ids = HashSet::new();
    let mut token = String::new();
    loop {
        let request = tpb::ListOrdersRequest {
            market_id: "park".into(),
            participant_id: String::new(),
            resting_only: false,
            page_size: 1000,
            page_token: token,
        };
        let page = client.list_orders(request).await.expect("orders").into_inner();
        ids.extend(page.orders.iter().map(|o| o.order_id));
        if page.next_page_token.is_empty() {
            return ids;
        }
        token = page.next_page_token;
    }
}

/// The latency plot of a profile: p50 and p99 of each second.
fn plot(path: &Path, title: &str, seconds: &[(f64, f64, f64, usize)], kill_at: Option<f64>) -> Result<(), String> {
    use plotters::prelude::*;
    volta_benches::plot::register_font();
    let root = BitMapBackend::new(path, (1000, 480)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let top = seconds.iter().map(|s| s.2).fold(0.01_f64, f64::max) * 1.1;
    let end = seconds.last().map_or(1.0, |s| s.0 + 1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top * 1000.0)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("seconds into the run")
        .y_desc("latency, ms")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|x| e(&x))?;
    let series = [("p50", 1, RGBColor(31, 119, 180)), ("p99", 2, RGBColor(214, 39, 40))];
    for (label, column, color) in series {
        chart
            .draw_series(LineSeries::new(
                seconds.iter().map(|s| (s.0, if column == 1 { s.1 } else { s.2 } * 1000.0)),
                color.stroke_width(2),
            ))
            .map_err(|x| e(&x))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    if let Some(at) = kill_at {
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(at, 0.0), (at, top * 1000.0)], BLACK.stroke_width(1))))
            .map_err(|x| e(&x))?
            .label("replica killed")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE)
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))
}

/// Samples each process's CPU and memory (a killed replica is skipped).
async fn sample(usage: &mut [Usage], replicas: &[Option<Server>], trading: &Server) {
    let servers = replicas.iter().map(Option::as_ref).chain(std::iter::once(Some(trading)));
    for (slot, server) in usage.iter_mut().zip(servers) {
        let Some(server) = server else { continue };
        let text = server.scrape().await;
        if !text.is_empty() {
            let cpu = value(&text, "volta_process_cpu_seconds_total").max(value(&text, "volta_process_cpu_seconds"));
            slot.sample(cpu, value(&text, "volta_process_resident_memory_bytes"));
        }
    }
}

#[tokio::main]
#[allow(clippy::too_many_lines)]
async fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("volta.toml");
    let stream = format!("VOLTA_PLATFORM_{}", std::process::id());
    // The production layout's settings, on loopback (no auth).
    std::fs::write(
        &config,
        format!(
            "[server]\nmax_connection_age_seconds = 300\n\n[storage]\nmigrate = false\n\n[limits]\nmax_call_seconds = \
             300\nmax_concurrent_calls = 256\n\n[messaging]\nstream = \"{stream}\"\npartitions = 8\n\
             resend_after_seconds = 5\n"
        ),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8").to_owned();
    let db = args.database.as_str();

    // The deployment: migrate once, import the portfolio, start the processes.
    volta(&args, &["migrate", "--database", db]);
    let portfolio = volta_datasets::small_portfolio();
    let file = |name: &str| portfolio.join(name).display().to_string();
    volta(&args, &["contracts", "--database", db, "apply", &file("portfolio.toml")]);
    volta(&args, &["contracts", "--database", db, "import", "prices", "spot", &file("spot.csv")]);
    volta(&args, &["contracts", "--database", db, "import", "readings", &file("readings-2024-04.csv")]);
    let serve = |services: &str| {
        Server::start_with(
            &args.volta,
            Some(db),
            &["--config", &config, "--services", services, "--nats-url", &args.nats, "--metrics-listen", "127.0.0.1:0"],
        )
    };
    let mut replicas: Vec<Option<Server>> =
        (0..args.replicas).map(|_| Some(serve("dispatch,forecast,contracts"))).collect();
    let trading = serve("trading");
    let urls: Vec<String> = replicas.iter().flatten().map(|s| s.url.clone()).collect();
    let discovery = Arc::new(Discovery::new(urls));
    tokio::spawn(discovery.clone().watch());
    while discovery.live.lock().expect("lock").len() < args.replicas {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // What the calls need: a model, the portfolio's contracts, a market.
    let csv = std::fs::read_to_string(volta_datasets::raw("vic_elecdemand_2014_halfhourly.csv")).expect("history");
    let history = fpb::SeriesData {
        source: Some(fpb::series_data::Source::Csv(csv)),
        target: "demand_gw".into(),
        time_column: "period_start_aest_assumed".into(),
        exog_columns: vec!["temperature_c".into()],
        known_ahead_columns: vec!["temperature_c".into()],
        time_zone: "Australia/Brisbane".into(),
        cleaning: None,
    };
    let setup = discovery.channel().await;
    // 2014-11-01T00:00+10:00: training ends, forecasts start.
    let issue_time = prost_types::Timestamp { seconds: 1_414_764_000, nanos: 0 };
    let trained = Forecasts::new(setup.clone())
        .train(fpb::TrainRequest {
            series: Some(history.clone()),
            options: Some(fpb::ModelOptions {
                horizon_steps: Some(48),
                model: fpb::ModelKind::Linear.into(),
                ..Default::default()
            }),
            train_until: Some(issue_time),
            display_name: "victoria".into(),
            request_id: "platform-load".into(),
        })
        .await
        .expect("train")
        .into_inner();
    let model = trained.model.expect("model").name;
    let store = volta_server::store::Store::connect(db).await.expect("database");
    let contracts: Vec<String> =
        sqlx::query_scalar("SELECT id FROM contracts_contracts WHERE tenant = 'default' ORDER BY id")
            .fetch_all(store.pool())
            .await
            .expect("contracts");
    let case = dpb::CaseText { format: Some(dpb::case_text::Format::Json(day_ahead())) };
    let leader = Channel::from_shared(trading.url.clone()).expect("url").connect().await.expect("trading");
    let rules = continuous_rules();
    Trading::new(leader.clone())
        .create_market(tpb::CreateMarketRequest { market_id: "park".into(), rules: Some(rules) })
        .await
        .expect("market");
    let first = (Timestamp::now().as_second() / 3600 + 3) * 3600;
    let products: Vec<Timestamp> = (0..4).map(|i| Timestamp::from_second(first + i * 900).expect("instant")).collect();
    let world = Arc::new(World { model, issue_time, history, contracts, case, products: products.clone() });

    println!(
        "platform: {} replicas (dispatch, forecast, contracts) + 1 trading process, PostgreSQL {}, NATS {}; \
         {} s per profile{}; {cores} cores, one machine (load generator, PostgreSQL and NATS included)\n",
        args.replicas,
        volta_server::store::redacted(db),
        args.nats,
        args.seconds,
        if args.kill { "; replica 0 killed half-way" } else { "" },
    );
    println!(
        "{:>10} | {:>7} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>6} | {:>9} | {:>6} | seed",
        "profile", "clients", "calls/s", "mean ms", "p50 ms", "p95 ms", "p99 ms", "shed", "failovers", "errors"
    );
    let mut acknowledged: Vec<i64> = Vec::new();
    let mut usages = Vec::new();
    for &profile in &args.profiles {
        let mut usage: Vec<Usage> = vec![Usage::default(); args.replicas + 1];
        sample(&mut usage, &replicas, &trading).await;
        let clients = profile.clients();
        let mut channels = Vec::with_capacity(clients);
        for _ in 0..clients {
            channels.push(discovery.channel().await);
        }
        let started = Instant::now();
        let until = started + Duration::from_secs_f64(args.seconds);
        let tasks: Vec<_> = channels
            .into_iter()
            .enumerate()
            .map(|(i, channel)| {
                tokio::spawn(client(profile, i, world.clone(), channel, leader.clone(), started, until))
            })
            .collect();
        // Sample the processes' usage every 5 s; kill replica 0 half-way.
        let mut killed_at = None;
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(5).min(until.saturating_duration_since(Instant::now()))).await;
            sample(&mut usage, &replicas, &trading).await;
            if args.kill && killed_at.is_none() && started.elapsed().as_secs_f64() >= args.seconds / 2.0 {
                killed_at = Some(started.elapsed().as_secs_f64());
                drop(replicas[0].take());
            }
        }
        let mut seen = Seen::default();
        for task in tasks {
            seen.merge(task.await.expect("client"));
        }
        sample(&mut usage, &replicas, &trading).await;
        usages.push((profile, started.elapsed().as_secs_f64(), usage));
        acknowledged.extend(&seen.orders);
        let wall = started.elapsed().as_secs_f64();
        let mut latencies: Vec<f64> = seen.samples.iter().map(|s| s.seconds).collect();
        latencies.sort_by(f64::total_cmp);
        let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
        let seed = match profile {
            Profile::Read => SEED_READ,
            Profile::Statistics => SEED_STATISTICS,
            Profile::Mixed => "(none)",
        };
        println!(
            "{:>10} | {clients:>7} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>6} | {:>9} | {:>6} | {seed}",
            profile.name(),
            latencies.len() as f64 / wall,
            mean * 1000.0,
            quantile(&latencies, 0.5) * 1000.0,
            quantile(&latencies, 0.95) * 1000.0,
            quantile(&latencies, 0.99) * 1000.0,
            seen.shed,
            seen.failovers,
            seen.errors,
        );
        if profile == Profile::Mixed {
            for kind in ["order", "forecast", "statistics", "schedule"] {
                let mut of: Vec<f64> = seen.samples.iter().filter(|s| s.kind == kind).map(|s| s.seconds).collect();
                of.sort_by(f64::total_cmp);
                println!(
                    "{:>10} | {:>7} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} |",
                    kind,
                    "",
                    of.len() as f64 / wall,
                    of.iter().sum::<f64>() / of.len().max(1) as f64 * 1000.0,
                    quantile(&of, 0.5) * 1000.0,
                    quantile(&of, 0.95) * 1000.0,
                    quantile(&of, 0.99) * 1000.0,
                );
            }
        }
        if let Some(out) = &args.out {
            std::fs::create_dir_all(out).expect("--out");
            let mut by_second: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
            for s in &seen.samples {
                by_second.entry(s.at as u64).or_default().push(s.seconds);
            }
            let rows: Vec<(f64, f64, f64, usize)> = by_second
                .into_iter()
                .map(|(second, mut v)| {
                    v.sort_by(f64::total_cmp);
                    (second as f64, quantile(&v, 0.5), quantile(&v, 0.99), v.len())
                })
                .collect();
            let suffix = if args.kill { "-kill" } else { "" };
            let csv: String = std::iter::once("second,p50_s,p99_s,calls\n".to_owned())
                .chain(rows.iter().map(|r| format!("{},{:.6},{:.6},{}\n", r.0, r.1, r.2, r.3)))
                .collect();
            std::fs::write(out.join(format!("{}{suffix}.csv", profile.name())), csv).expect("csv");
            let title = format!(
                "{}: {clients} clients, {} replicas{}",
                profile.name(),
                args.replicas,
                if args.kill { ", replica 0 killed" } else { "" }
            );
            if let Err(e) = plot(&out.join(format!("{}{suffix}.png", profile.name())), &title, &rows, killed_at) {
                eprintln!("plot: {e}");
            }
        }
        // Bring the killed replica back for the next profile.
        if replicas[0].is_none() {
            let again = serve("dispatch,forecast,contracts");
            discovery.replace(0, again.url.clone());
            replicas[0] = Some(again);
        }
    }

    println!("\nper process: CPU (cores, mean over the profile) and peak resident memory (MiB)");
    let names: Vec<String> =
        (0..args.replicas).map(|i| format!("replica {i}")).chain(std::iter::once("trading".to_owned())).collect();
    println!("{:>10} | {}", "profile", names.iter().map(|n| format!("{n:>16}")).collect::<Vec<_>>().join(" | "));
    for (profile, wall, usage) in &usages {
        let cells: Vec<String> = usage
            .iter()
            .map(|u| format!("{:>5.2} c, {:>5.0} MiB", u.cpu / wall, u.peak_bytes / f64::from(1 << 20)))
            .collect();
        println!("{:>10} | {}", profile.name(), cells.join(" | "));
    }

    // Nothing accepted is lost: every acknowledged order is listed, and the
    // ledger matches the tape.
    let mut market = Trading::new(leader);
    let listed = listed_orders(&mut market).await;
    let lost = acknowledged.iter().filter(|id| !listed.contains(id)).count();
    let mut tape = Positions::new();
    let trades = add_tape(&mut market, "park", &mut tape).await.expect("the trade tape");
    let live = replicas.iter().flatten().next().expect("a replica").url.clone();
    let mut ledger = Contracts::new(Channel::from_shared(live).expect("url").connect().await.expect("replica"));
    let started = Instant::now();
    let mut matched = false;
    while started.elapsed() < Duration::from_secs(120) {
        if from_ledger(&mut ledger, &products).await == tape {
            matched = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "\norders: {} acknowledged, {lost} missing from the market's list; trades: {trades}, the ledger {} the tape{}",
        acknowledged.len(),
        if matched { "matches" } else { "DOES NOT match" },
        if matched {
            format!(" ({:.1} s after the last profile)", started.elapsed().as_secs_f64())
        } else {
            String::new()
        },
    );
    let client = async_nats::connect(args.nats.as_str()).await;
    if let Ok(client) = client {
        let _ = async_nats::jetstream::new(client).delete_stream(&stream).await;
    }
    if lost > 0 || !matched {
        std::process::exit(1);
    }
}
