//! The load generators' harness: a `volta serve` to load, client phases
//! run back to back for a fixed time, and their tally.

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `volta serve` on an ephemeral port, killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `http://127.0.0.1:PORT/metrics`, when started with `--metrics-listen`.
    pub metrics: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts `volta` on `database`, or on a throwaway SQLite file.
    ///
    /// # Panics
    /// If the server cannot start.
    #[must_use]
    pub fn start(volta: &std::path::Path, database: Option<&str>) -> Self {
        Self::start_with(volta, database, &[])
    }

    /// Starts `volta` on `database` (or a throwaway SQLite file) with
    /// `extra` arguments (`--config FILE`).
    ///
    /// # Panics
    /// If the server cannot start.
    #[must_use]
    pub fn start_with(volta: &std::path::Path, database: Option<&str>, extra: &[&str]) -> Self {
        use std::io::BufRead as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let throwaway = format!("sqlite://{}", dir.path().join("volta.db").display());
        let db = database.unwrap_or(&throwaway);
        let mut child = Command::new(volta)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database",
                db,
                "--log",
                "warn,volta_server=info,volta_server::telemetry=warn",
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", volta.display()));
        let mut reader = std::io::BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        let (addr, metrics) = loop {
            line.clear();
            assert!(reader.read_line(&mut line).expect("log") > 0, "volta serve exited");
            let json: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
            if let Some(addr) = json["addr"].as_str() {
                let metrics = json["metrics"].as_str().filter(|m| m.starts_with("http")).map(str::to_owned);
                break (addr.to_owned(), metrics);
            }
        };
        std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        Self { child, url: format!("http://{addr}"), metrics, _dir: Some(dir) }
    }

    /// The server's Prometheus text (empty without a metrics endpoint).
    pub async fn scrape(&self) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let Some(url) = &self.metrics else { return String::new() };
        let addr = url.trim_start_matches("http://").trim_end_matches("/metrics");
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else { return String::new() };
        let mut text = String::new();
        if stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: volta\r\n\r\n").await.is_err()
            || stream.read_to_string(&mut text).await.is_err()
        {
            return String::new();
        }
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one phase measured.
#[derive(Debug, Default)]
pub struct Tally {
    /// Latencies of answered calls.
    pub latencies: Vec<Duration>,
    /// Calls shed (RESOURCE_EXHAUSTED).
    pub shed: usize,
    /// Calls that failed otherwise.
    pub errors: usize,
}

impl Tally {
    /// One answered call.
    #[must_use]
    pub fn ok(latency: Duration) -> Self {
        Self { latencies: vec![latency], ..Self::default() }
    }

    /// Adds `other`.
    pub fn merge(&mut self, other: Self) {
        self.latencies.extend(other.latencies);
        self.shed += other.shed;
        self.errors += other.errors;
    }

    /// The table's header.
    pub fn header(peer: &str) {
        println!(
            "{:>16} | {:>7} | {:>8} | {:>8} | {:>8} | {:>8} | {:>7} | {:>8} | {:>8} | {peer}",
            "rpc", "clients", "ok/s", "mean s", "p50 s", "p99 s", "ok", "shed", "errors"
        );
    }

    /// One row of the table.
    pub fn report(&mut self, name: &str, clients: usize, wall: Duration, peer: &str) {
        self.latencies.sort();
        let n = self.latencies.len();
        let pct = |p: f64| {
            self.latencies
                .get(((n as f64 * p).ceil() as usize).saturating_sub(1))
                .map_or(f64::NAN, Duration::as_secs_f64)
        };
        let mean = self.latencies.iter().map(Duration::as_secs_f64).sum::<f64>() / n.max(1) as f64;
        let attempts = n + self.shed + self.errors;
        println!(
            "{name:>16} | {clients:>7} | {:>8.1} | {:>8.4} | {:>8.4} | {:>8.4} | {:>7} | {:>6.1} % | {:>6.1} % | {peer}",
            n as f64 / wall.as_secs_f64(),
            mean,
            pct(0.5),
            pct(0.99),
            n,
            100.0 * self.shed as f64 / attempts.max(1) as f64,
            100.0 * self.errors as f64 / attempts.max(1) as f64,
        );
    }
}

/// Runs `call` back to back on every client for `seconds`; each client
/// is its own connection. Returns the tally and the wall time.
pub async fn phase<C, F, Fut>(clients: Vec<C>, seconds: f64, call: F) -> (Tally, Duration)
where
    C: Send + 'static,
    F: Fn(C, usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (C, Tally)> + Send,
{
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let total = each_client(clients, call, move |i, mut client, call| async move {
        let mut tally = Tally::default();
        let mut k = i;
        while Instant::now() < until {
            let (back, one) = call(client, k).await;
            client = back;
            tally.merge(one);
            k = k.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        }
        tally
    })
    .await;
    (total, start.elapsed())
}

/// Offers `rate` calls a second in all for `seconds`, spread evenly over
/// the clients (client `i`'s call `k` is due at `(k * clients + i) / rate`
/// after the start), each made when it is due whether or not the client's
/// earlier calls have been answered: an open loop, where a slow server
/// meets more calls in flight rather than fewer (in [`phase`]'s closed
/// loop the clients wait, and the latency is the clients' count divided by
/// the throughput whatever the server does). `call` gets the instant its
/// call was due and measures latency from it, so a generator that falls
/// behind charges its delay to the server instead of hiding it. Returns
/// the tally and the wall time until the last answer.
pub async fn open_phase<C, F, Fut>(clients: Vec<C>, seconds: f64, rate: f64, call: F) -> (Tally, Duration)
where
    C: Clone + Send + 'static,
    F: Fn(C, usize, Instant) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Tally> + Send + 'static,
{
    let n = clients.len().max(1);
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let total = each_client(clients, call, move |i, client, call| async move {
        let mut calls = Vec::new();
        for k in 0.. {
            let due = start + Duration::from_secs_f64((k * n + i) as f64 / rate);
            if due >= until {
                break;
            }
            tokio::time::sleep_until(due.into()).await;
            calls.push(tokio::spawn(call(client.clone(), k, due)));
        }
        gather(calls).await
    })
    .await;
    (total, start.elapsed())
}

/// Runs `client_loop(i, client, call)` for every client on a task of its
/// own, all sharing `call`, and adds up their tallies.
async fn each_client<C, F, L, Fut>(clients: Vec<C>, call: F, client_loop: L) -> Tally
where
    L: Fn(usize, C, Arc<F>) -> Fut,
    Fut: Future<Output = Tally> + Send + 'static,
{
    let call = Arc::new(call);
    let tasks = clients.into_iter().enumerate().map(|(i, client)| tokio::spawn(client_loop(i, client, call.clone())));
    gather(tasks.collect()).await
}

/// The tallies of `tasks`, added up.
async fn gather(tasks: Vec<tokio::task::JoinHandle<Tally>>) -> Tally {
    let mut total = Tally::default();
    for task in tasks {
        total.merge(task.await.expect("a load task"));
    }
    total
}

/// A series of a server's Prometheus text (0 when absent).
#[must_use]
pub fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The continuous market the load generators trade on: Berlin's quarter
/// hours, gates open 48 h before delivery and closing 5 min before.
#[must_use]
pub fn continuous_rules() -> volta_api::pb::trading::MarketRules {
    use jiff::SignedDuration;
    volta_api::pb::trading::MarketRules {
        time_zone: "Europe/Berlin".into(),
        interval_minutes: 15,
        gate_opens_before: Some(volta_api::time::duration(SignedDuration::from_hours(48))),
        gate_closes_before: Some(volta_api::time::duration(SignedDuration::from_mins(5))),
        min_price: "-0.5".into(),
        max_price: "4".into(),
        matching: volta_api::pb::trading::Matching::Continuous.into(),
        grid_fee: String::new(),
        network: None,
        day_ahead_gate: String::new(),
    }
}
