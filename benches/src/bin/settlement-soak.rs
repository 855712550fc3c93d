//! Settlement soak: the trading and contract services run as separate
//! processes (replicas of each, sharing PostgreSQL and NATS JetStream)
//! under a steady order flow, while a random process is killed (SIGKILL)
//! and started again every few seconds. At the end, with every process
//! running again, the history checker compares the trade tapes with the
//! contract service's market ledger, participant by participant and
//! exactly: every trade stored is settled once, nothing is settled that was
//! not traded.
//!
//! Beside the orders, a contract writer moves contracts between the
//! participants along their lifecycle (signed, then active and suspended
//! in turn) through the contract processes, so contract changes cross the
//! other route, to the trading service's view of positions, while the same
//! kills happen. The checker then asks the trading service's view for every
//! contract: it must hold the last change acknowledged (the contract's
//! version counts every change once) in the state the contract service
//! holds.
//!
//! Clients submit with a client order id and send the same order again
//! after any failure (the process died, or another replica now runs the
//! market), to the next trading process: submission is idempotent, so a
//! retry never makes a second order.
//!
//! It reports the orders acknowledged and retried, the processes killed,
//! the messages applied, the duplicates the inbox suppressed, the
//! deliveries deferred (before their predecessor), the reconciler's
//! repairs, and the trade-to-ledger latency p50 and p99 (upper bounds of the
//! histogram's buckets). Counters are summed over every incarnation of every
//! process from its last scrape (once a second), so what a process counted
//! in the second before it was killed is missing from them; the checker's
//! verdict does not depend on them.
//!
//! `cargo run --release -p volta-benches --bin settlement-soak -- --database postgres://postgres@127.0.0.1/soak
//! --nats nats://127.0.0.1:4222 [--seconds 60] [--kill-every 4] [--trading 2] [--ledgers 2] [--contracts 4]`

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use tonic::transport::Channel;
use volta_api::pb::contracts as cpb;
use volta_api::pb::trading as tpb;
use volta_benches::check::{Positions, add_tape, bucket_quantile, latency_buckets, ledger as ledger_positions};
use volta_benches::flags::Flags;
use volta_benches::load::{Server, continuous_rules, value};

type Trading = tpb::trading_service_client::TradingServiceClient<Channel>;
type Ledger = cpb::contract_service_client::ContractServiceClient<Channel>;

struct Args {
    database: String,
    nats: String,
    volta: std::path::PathBuf,
    seconds: u64,
    kill_every: f64,
    clients: usize,
    markets: usize,
    trading: usize,
    ledgers: usize,
    contracts: usize,
    seed: u64,
}

const USAGE: &str = "\
usage: settlement-soak --database postgres://... --nats URL [--seconds S] [--kill-every S]
    [--clients N] [--markets N] [--trading N] [--ledgers N] [--contracts N] [--seed N]
    [--volta PATH]";

fn args() -> Result<Args, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut args = Args {
        database: String::new(),
        nats: String::new(),
        volta: exe.with_file_name("volta"),
        seconds: 60,
        kill_every: 4.0,
        clients: 16,
        markets: 8,
        trading: 2,
        ledgers: 2,
        contracts: 4,
        seed: 7,
    };
    let mut flags = Flags::new(USAGE);
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--database" => args.database = flags.value(&flag),
            "--nats" => args.nats = flags.value(&flag),
            "--volta" => args.volta = flags.value::<String>(&flag).into(),
            "--seconds" => args.seconds = flags.value(&flag),
            "--kill-every" => args.kill_every = flags.value(&flag),
            "--clients" => args.clients = flags.value::<usize>(&flag).max(1),
            "--markets" => args.markets = flags.value::<usize>(&flag).max(1),
            "--trading" => args.trading = flags.value::<usize>(&flag).max(1),
            "--ledgers" => args.ledgers = flags.value::<usize>(&flag).max(1),
            "--contracts" => args.contracts = flags.value::<usize>(&flag),
            "--seed" => args.seed = flags.value(&flag),
            other => flags.unknown(other),
        }
    }
    if !args.database.starts_with("postgres") || args.nats.is_empty() {
        return Err("settlement-soak needs --database postgres://... and --nats URL (the processes share them)".into());
    }
    Ok(args)
}

/// A process slot: what it serves, its running incarnation, and the last
/// metrics text of each incarnation it had.
struct Slot {
    services: &'static str,
    server: Option<Server>,
    scrapes: Vec<String>,
}

/// Every process, and the trading processes' URLs for the clients.
struct Fleet {
    slots: Vec<Slot>,
    trading_urls: Arc<Mutex<Vec<String>>>,
    contract_urls: Arc<Mutex<Vec<String>>>,
    database: String,
    config: String,
    args_volta: std::path::PathBuf,
    nats: String,
}

impl Fleet {
    fn start(&mut self, i: usize) {
        let extra = [
            "--config",
            &self.config,
            "--services",
            self.slots[i].services,
            "--nats-url",
            &self.nats,
            "--metrics-listen",
            "127.0.0.1:0",
        ];
        let server = Server::start_with(&self.args_volta, Some(&self.database), &extra);
        self.slots[i].scrapes.push(String::new());
        self.slots[i].server = Some(server);
        self.publish_urls();
    }

    fn kill(&mut self, i: usize) {
        // Drop sends SIGKILL and reaps the process.
        drop(self.slots[i].server.take());
        self.publish_urls();
    }

    fn publish_urls(&self) {
        let urls = |services: &str| {
            self.slots
                .iter()
                .filter(|s| s.services == services)
                .filter_map(|s| s.server.as_ref().map(|p| p.url.clone()))
                .collect()
        };
        *self.trading_urls.lock().expect("urls") = urls("trading");
        *self.contract_urls.lock().expect("urls") = urls("contracts");
    }

    async fn scrape(&mut self) {
        for slot in &mut self.slots {
            if let Some(server) = &slot.server {
                let text = server.scrape().await;
                if !text.is_empty()
                    && let Some(last) = slot.scrapes.last_mut()
                {
                    *last = text;
                }
            }
        }
    }

    /// A counter summed over every incarnation of every process.
    fn total(&self, series: &str) -> f64 {
        self.slots.iter().flat_map(|s| &s.scrapes).map(|t| value(t, series)).sum()
    }

    /// The settlement latency histogram summed over every incarnation.
    fn buckets(&self) -> Vec<(f64, f64)> {
        latency_buckets(self.slots.iter().flat_map(|s| &s.scrapes))
    }
}

/// What the clients did.
#[derive(Default)]
struct Flow {
    acknowledged: AtomicU64,
    retries: AtomicU64,
    refused: AtomicU64,
}

/// A client: its own participant, alternately buying and selling across
/// the markets; every order sent until acknowledged, to the next trading
/// process after a failure.
async fn client(
    i: usize,
    markets: usize,
    products: Arc<Vec<Timestamp>>,
    urls: Arc<Mutex<Vec<String>>>,
    flow: Arc<Flow>,
    until: Instant,
) {
    let mut k = 0_usize;
    let mut pick = i;
    let mut connected: Option<(String, Trading)> = None;
    while Instant::now() < until {
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
        // The same order until it is acknowledged (or the soak ends).
        loop {
            if Instant::now() >= until + Duration::from_secs(30) {
                return;
            }
            let url = {
                let urls = urls.lock().expect("urls");
                if urls.is_empty() { None } else { Some(urls[pick % urls.len()].clone()) }
            };
            let Some(url) = url else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if connected.as_ref().is_none_or(|(u, _)| *u != url) {
                connected = match Channel::from_shared(url.clone()).expect("url").connect().await {
                    Ok(channel) => Some((url, Trading::new(channel))),
                    Err(_) => None,
                };
            }
            let Some((_, trading)) = connected.as_mut() else {
                pick += 1;
                flow.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            match trading.submit_order(request.clone()).await {
                Ok(_) => {
                    flow.acknowledged.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(s) if matches!(s.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition) => {
                    // A product whose gate closed, or a refusal: not retried.
                    flow.refused.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                Err(_) => {
                    // Dead, not the leader, shedding: the next process.
                    flow.retries.fetch_add(1, Ordering::Relaxed);
                    connected = None;
                    pick += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        k += 1;
    }
}

/// What the contract writer did.
#[derive(Default)]
struct Writes {
    acknowledged: AtomicU64,
    retries: AtomicU64,
}

/// Calls to whichever contract process is alive: a call that fails for
/// want of a process (dead, shedding, its database gone) goes to the next
/// one; every change carries a request id, so a retry never makes a second
/// change.
struct Contracts {
    urls: Arc<Mutex<Vec<String>>>,
    pick: usize,
    connected: Option<(String, Ledger)>,
    writes: Arc<Writes>,
}

impl Contracts {
    /// `call` answered; an error for a refusal, or for no answer by
    /// `deadline`.
    async fn call<T, F, Fut>(&mut self, what: &str, deadline: Instant, call: F) -> Result<T, String>
    where
        F: Fn(Ledger) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        while Instant::now() < deadline {
            let url = {
                let urls = self.urls.lock().expect("urls");
                if urls.is_empty() { None } else { Some(urls[self.pick % urls.len()].clone()) }
            };
            let Some(url) = url else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            if self.connected.as_ref().is_none_or(|(u, _)| *u != url) {
                self.connected = match Channel::from_shared(url.clone()).expect("url").connect().await {
                    Ok(channel) => Some((url, Ledger::new(channel))),
                    Err(_) => None,
                };
            }
            let answer = match &self.connected {
                Some((_, client)) => call(client.clone()).await,
                None => Err(tonic::Status::unavailable("not connected")),
            };
            match answer {
                Ok(response) => return Ok(response.into_inner()),
                Err(s)
                    if !matches!(
                        s.code(),
                        tonic::Code::Unavailable
                            | tonic::Code::Unknown
                            | tonic::Code::Cancelled
                            | tonic::Code::DeadlineExceeded
                            | tonic::Code::ResourceExhausted
                            | tonic::Code::Internal
                    ) =>
                {
                    return Err(format!("{what}: {} {}", s.code(), s.message()));
                }
                Err(_) => {
                    self.writes.retries.fetch_add(1, Ordering::Relaxed);
                    self.connected = None;
                    self.pick += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        Err(format!("{what}: no contract process answered"))
    }
}

/// A contract the writer changed: its buyer, and how many changes were
/// acknowledged (the contract's version), or why the writer gave up.
struct Written {
    id: String,
    buyer: String,
    changes: Result<i64, String>,
}

/// The terms of the writer's contracts: 100 kWh a day over `year`.
fn terms(year: i16) -> cpb::ContractTerms {
    let text = format!(
        "kind = \"fixed_price\"\ndelivery_first = \"{year}-01-01\"\ndelivery_last = \"{year}-12-31\"\n\
         currency = \"EUR\"\ndecimals = 2\n[price]\nrule = \"fixed\"\nprice = \"0.25\"\n[quantity]\n\
         basis = \"daily\"\nenergy = 100\n[shape]\nshape = \"flat\"\n"
    );
    cpb::ContractTerms { format: Some(cpb::contract_terms::Format::Toml(text)) }
}

/// Contract `c{j}` from participant `p{2j}` to `p{2j+1}`, over `year`:
/// created, signed, activated, then suspended and activated in turn every
/// 200 ms until `until`. A change in flight at `until` is carried through.
async fn contract_writer(j: usize, mut contracts: Contracts, year: i16, until: Instant) -> Written {
    let (id, seller, buyer) = (format!("c{j}"), format!("p{}", 2 * j), format!("p{}", 2 * j + 1));
    let changes = write_contract(&mut contracts, &id, &seller, &buyer, year, until).await;
    Written { id, buyer, changes }
}

async fn write_contract(
    contracts: &mut Contracts,
    id: &str,
    seller: &str,
    buyer: &str,
    year: i16,
    until: Instant,
) -> Result<i64, String> {
    let give_up = until + Duration::from_secs(60);
    for (party, role) in [(seller, cpb::PartyRole::Generator), (buyer, cpb::PartyRole::Consumer)] {
        let party = cpb::Party { id: party.to_owned(), name: party.to_owned(), role: role.into() };
        let request = cpb::PutPartyRequest { party: Some(party) };
        contracts
            .call("a party", give_up, |mut c: Ledger| {
                let r = request.clone();
                async move { c.put_party(r).await }
            })
            .await?;
    }
    let meter = cpb::MeteringPoint {
        id: format!("meter-{id}"),
        party_id: buyer.to_owned(),
        interval_minutes: 15,
        time_zone: "Europe/Berlin".into(),
        location: Some(cpb::metering_point::Location::Zone("de".into())),
        technology: cpb::Technology::Load.into(),
    };
    let request = cpb::PutMeterRequest { meter: Some(meter) };
    contracts
        .call("a meter", give_up, |mut c: Ledger| {
            let r = request.clone();
            async move { c.put_meter(r).await }
        })
        .await?;
    let create = cpb::CreateContractRequest {
        request_id: format!("{id}-0"),
        contract_id: id.to_owned(),
        seller_id: seller.to_owned(),
        buyer_id: buyer.to_owned(),
        meter_ids: vec![format!("meter-{id}")],
        terms: Some(terms(year)),
    };
    contracts
        .call("the creation", give_up, |mut c: Ledger| {
            let r = create.clone();
            async move { c.create_contract(r).await }
        })
        .await?;
    contracts.writes.acknowledged.fetch_add(1, Ordering::Relaxed);
    let mut changes = 1;
    while Instant::now() < until {
        let transition = match changes {
            1 => cpb::Transition::Sign,
            n if n % 2 == 0 => cpb::Transition::Activate,
            _ => cpb::Transition::Suspend,
        };
        let request = cpb::ChangeContractStateRequest {
            request_id: format!("{id}-{changes}"),
            contract_id: id.to_owned(),
            transition: transition.into(),
            effective: None,
        };
        contracts
            .call("a change of state", give_up, |mut c: Ledger| {
                let r = request.clone();
                async move { c.change_contract_state(r).await }
            })
            .await?;
        contracts.writes.acknowledged.fetch_add(1, Ordering::Relaxed);
        changes += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(changes)
}

/// The trading service's view of contract `w`, once it has the change
/// the writer made last (by `deadline`): its change and state, against the
/// contract service's state.
async fn view_of(
    trading: &mut Trading,
    ledger: &mut Ledger,
    w: &Written,
    day: jiff::civil::Date,
    deadline: Instant,
) -> Result<(), String> {
    let expected = w.changes.clone()?;
    let date = Some(volta_api::pb::common::Date {
        year: i32::from(day.year()),
        month: i32::from(day.month()),
        day: i32::from(day.day()),
    });
    let request = tpb::ContractPositionsRequest {
        market_id: "m0".into(),
        participant_id: w.buyer.clone(),
        first: date,
        last: date,
    };
    let held = ledger
        .get_contract(cpb::GetContractRequest { contract_id: w.id.clone() })
        .await
        .map_err(|e| format!("contract {}: {}", w.id, e.message()))?
        .into_inner()
        .contract
        .map(|c| c.state().as_str_name().trim_start_matches("CONTRACT_STATE_").to_lowercase())
        .unwrap_or_default();
    loop {
        let seen = trading.contract_positions(request.clone()).await.map_err(|e| e.message().to_owned())?;
        let seen = seen.into_inner().contracts.into_iter().find(|c| c.contract_id == w.id);
        if let Some(c) = &seen
            && c.change == expected
        {
            return if c.state == held {
                Ok(())
            } else {
                Err(format!("contract {}: the view has it {}, the contract service {held}", w.id, c.state))
            };
        }
        if Instant::now() >= deadline {
            let change = seen.map_or(0, |c| c.change);
            return Err(format!("contract {}: the view has change {change}, the writer made {expected}", w.id));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A small deterministic generator for the victims (xorshift).
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
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
    let stream = format!("VOLTA_SOAK_{}", std::process::id());
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_concurrent_calls = {}\n\n[messaging]\nstream = \"{stream}\"\nresend_after_seconds = 5\n",
            args.clients + 16
        ),
    )
    .expect("config");
    let mut fleet = Fleet {
        slots: Vec::new(),
        trading_urls: Arc::new(Mutex::new(Vec::new())),
        contract_urls: Arc::new(Mutex::new(Vec::new())),
        database: args.database.clone(),
        config: config.to_str().expect("utf-8").to_owned(),
        args_volta: args.volta.clone(),
        nats: args.nats.clone(),
    };
    for _ in 0..args.trading {
        fleet.slots.push(Slot { services: "trading", server: None, scrapes: Vec::new() });
    }
    for _ in 0..args.ledgers {
        fleet.slots.push(Slot { services: "contracts", server: None, scrapes: Vec::new() });
    }
    for i in 0..fleet.slots.len() {
        fleet.start(i);
    }
    let first_url = fleet.trading_urls.lock().expect("urls")[0].clone();
    let mut admin = Trading::new(Channel::from_shared(first_url).expect("url").connect().await.expect("connect"));
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
    println!(
        "settlement soak: {} trading and {} contract process(es) on {} and NATS {}; {} clients on {} markets for \
         {} s, a random process killed every {} s (seed {}); {} cores",
        args.trading,
        args.ledgers,
        volta_server::store::redacted(&args.database),
        args.nats,
        args.clients,
        args.markets,
        args.seconds,
        args.kill_every,
        args.seed,
        std::thread::available_parallelism().map_or(0, std::num::NonZeroUsize::get)
    );

    let flow = Arc::new(Flow::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let clients: Vec<_> = (0..args.clients)
        .map(|i| {
            tokio::spawn(client(i, args.markets, products.clone(), fleet.trading_urls.clone(), flow.clone(), until))
        })
        .collect();
    let writes = Arc::new(Writes::default());
    let today = products[0].to_zoned_datetime(jiff::tz::TimeZone::get("Europe/Berlin").expect("zone")).date();
    let writers: Vec<_> = (0..args.contracts.min(args.clients / 2))
        .map(|j| {
            let contracts =
                Contracts { urls: fleet.contract_urls.clone(), pick: j, connected: None, writes: writes.clone() };
            tokio::spawn(contract_writer(j, contracts, today.year(), until))
        })
        .collect();

    // The killer: a random process, every few seconds; started again a
    // second later. Metrics are scraped every second.
    let mut state = args.seed.max(1);
    let mut kills: HashMap<&'static str, usize> = HashMap::new();
    let mut next_kill = started + Duration::from_secs_f64(args.kill_every);
    let mut dead: Option<(usize, Instant)> = None;
    while Instant::now() < until {
        fleet.scrape().await;
        if let Some((i, since)) = dead
            && since.elapsed() >= Duration::from_secs(1)
        {
            fleet.start(i);
            dead = None;
        }
        if dead.is_none() && Instant::now() >= next_kill {
            let victim = usize::try_from(next(&mut state) % fleet.slots.len() as u64).unwrap_or(0);
            *kills.entry(fleet.slots[victim].services).or_default() += 1;
            println!(
                "{:>5.1} s: kill -9 a {} process ({} acknowledged orders so far)",
                started.elapsed().as_secs_f64(),
                fleet.slots[victim].services,
                flow.acknowledged.load(Ordering::Relaxed)
            );
            fleet.kill(victim);
            dead = Some((victim, Instant::now()));
            next_kill = Instant::now() + Duration::from_secs_f64(args.kill_every);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if let Some((i, _)) = dead {
        fleet.start(i);
    }
    for c in clients {
        let _ = c.await;
    }
    let mut written = Vec::new();
    for w in writers {
        written.push(w.await.expect("a contract writer"));
    }
    let flowed = started.elapsed();

    // Every process runs again: the ledger catches up with the tapes.
    let url = fleet.trading_urls.lock().expect("urls")[0].clone();
    let mut trading = Trading::new(Channel::from_shared(url).expect("url").connect().await.expect("connect"));
    let ledger_url = fleet
        .slots
        .iter()
        .find(|s| s.services == "contracts")
        .and_then(|s| s.server.as_ref())
        .map(|s| s.url.clone())
        .expect("a ledger");
    let mut ledger = Ledger::new(Channel::from_shared(ledger_url).expect("url").connect().await.expect("connect"));
    let settle = Instant::now();
    let mut tape = Positions::new();
    let mut trades = 0;
    for m in 0..args.markets {
        trades += add_tape(&mut trading, &format!("m{m}"), &mut tape).await.expect("a tape");
    }
    let day = SignedDuration::from_hours(24);
    let (from, until) = (products[0] - day, products[0] + day);
    let mut positions = ledger_positions(&mut ledger, from, until).await.expect("the ledger");
    while positions != tape && settle.elapsed() < Duration::from_secs(180) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        positions = ledger_positions(&mut ledger, from, until).await.expect("the ledger");
    }
    let caught_up = settle.elapsed();
    let mut views = Vec::new();
    for w in &written {
        views.push(view_of(&mut trading, &mut ledger, w, today, settle + Duration::from_secs(180)).await);
    }
    fleet.scrape().await;

    let route =
        |status: &str| fleet.total(&format!("volta_messages_total{{route=\"settlement\",status=\"{status}\"}}"));
    let histogram = fleet.buckets();
    println!(
        "\nflow: {} orders acknowledged in {:.0} s ({:.0}/s), {} retries, {} refused; {} kills ({} trading, {} \
         contracts)",
        flow.acknowledged.load(Ordering::Relaxed),
        flowed.as_secs_f64(),
        flow.acknowledged.load(Ordering::Relaxed) as f64 / flowed.as_secs_f64(),
        flow.retries.load(Ordering::Relaxed),
        flow.refused.load(Ordering::Relaxed),
        kills.values().sum::<usize>(),
        kills.get("trading").copied().unwrap_or(0),
        kills.get("contracts").copied().unwrap_or(0),
    );
    println!(
        "messages (summed over incarnations, from their last scrape): {:.0} published, {:.0} applied, {:.0} \
         duplicates suppressed, {:.0} deferred (redelivered later), {:.0} repaired by the reconciler, {:.0} dead; \
         trade to ledger p50 <= {:.3} s, p99 <= {:.3} s",
        route("published"),
        route("applied"),
        route("duplicate"),
        route("deferred"),
        route("repaired"),
        route("dead"),
        bucket_quantile(&histogram, 0.5),
        bucket_quantile(&histogram, 0.99),
    );
    let sides: i64 = tape.values().map(|p| p.4).sum();
    let verdict = if positions == tape {
        format!("every one of {trades} trades ({sides} sides) settled exactly once, nothing else settled")
    } else {
        let differ: Vec<&String> =
            tape.keys().chain(positions.keys()).filter(|k| tape.get(*k) != positions.get(*k)).collect();
        format!("MISMATCH after {:.0} s: participants {differ:?}", caught_up.as_secs_f64())
    };
    println!(
        "check (tapes against the ledger, per participant, exact; {:.1} s after the flow): {verdict}",
        caught_up.as_secs_f64()
    );
    let positions_route =
        |status: &str| fleet.total(&format!("volta_messages_total{{route=\"positions\",status=\"{status}\"}}"));
    println!(
        "contracts: {} changes acknowledged over {} contracts, {} retries; the view applied {:.0}, suppressed {:.0} \
         duplicates, deferred {:.0}, {:.0} repaired by the reconciler, {:.0} dead",
        writes.acknowledged.load(Ordering::Relaxed),
        written.len(),
        writes.retries.load(Ordering::Relaxed),
        positions_route("applied"),
        positions_route("duplicate"),
        positions_route("deferred"),
        positions_route("repaired"),
        positions_route("dead"),
    );
    let wrong: Vec<&String> = views.iter().filter_map(|v| v.as_ref().err()).collect();
    if wrong.is_empty() {
        println!(
            "check (the trading service's view against the contract service, per contract): every contract at the \
             last change made, in the state the contract service holds"
        );
    } else {
        println!("check (the view of contracts): MISMATCH: {wrong:?}");
    }
    if let Ok(client) = async_nats::connect(args.nats.as_str()).await {
        let _ = async_nats::jetstream::new(client).delete_stream(&stream).await;
    }
    if positions != tape || !wrong.is_empty() {
        std::process::exit(1);
    }
}
