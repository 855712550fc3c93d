//! Logs, per-call spans and Prometheus metrics.
//!
//! Every gRPC call passes through [`Observe`], a tower layer that
//! - answers UNIMPLEMENTED for a method no service serves, before any other
//!   check (authentication included), and counts it under `unknown`, so
//!   that callers cannot grow the metrics' label sets;
//! - admits at most `limits.max_concurrent_calls` Volta calls at once; the
//!   others wait, before their request is read, until a place frees or
//!   their deadline nears (health and reflection are never held back);
//! - gives each Volta call a deadline of at most `limits.max_call_seconds`
//!   (the caller's own when it is sooner);
//! - opens a `grpc` span (method, request id) around the call, logs one line
//!   when it ends (code, latency) and counts it;
//! - turns a panic inside a call into INTERNAL for that call alone (no panic
//!   text to the caller; a log line and `volta_panics_total`).
//!
//! [`Metrics`] is served as Prometheus text on `GET /metrics` of a separate
//! HTTP port ([`serve_metrics`]).

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;
use tracing::Instrument as _;
use volta_api::status::Reason;

use crate::budget::{Admission, Arrival, reply_due, timeout_header};
use crate::config::LogFormat;
use crate::otlp::{CallSpan, SpanOutcomes, Spans, TraceContext};

/// Installs the global log subscriber on stderr.
///
/// # Errors
/// An invalid filter directive (named), or a subscriber already installed.
pub fn init_logs(format: LogFormat, level: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level).with_context(|| format!("log level {level:?}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Labels of a finished call, as gRPC's conventions name them.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    grpc_service: String,
    grpc_method: String,
    grpc_code: String,
}

/// Labels of a latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_service: String,
    grpc_method: String,
}

/// Labels of a solve's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    status: String,
}

/// Labels of a table.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

/// Labels of the build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// A method path's service and method (`unknown` for both when the path
/// is not one of `/package.Service/Method`).
fn service_and_method(path: &str) -> (String, String) {
    match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
    }
}

/// A code as gRPC's documents spell it: `OK`, `INVALID_ARGUMENT`, ...
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Labels of a message route's metrics: `settlement`, `positions`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Labels of the message counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    route: String,
    status: String,
}

/// Labels of the work histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabels {
    kind: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Buckets for the messaging path: fine where its targets are (tens of
/// milliseconds), coarse beyond.
fn messaging_seconds() -> Histogram {
    Histogram::new([
        0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0,
        30.0, 60.0,
    ])
}

fn seconds_histogram() -> Histogram {
    // 1 ms to about 9 minutes.
    Histogram::new(exponential_buckets(0.001, 2.0, 20))
}

/// The server's metrics, registered once and shared by every call.
pub struct Metrics {
    registry: Registry,
    requests: Family<CallLabels, Counter>,
    latency: Histograms<MethodLabels>,
    work: Histograms<WorkLabels>,
    in_flight: Gauge,
    connections: Counter,
    slots_busy: Gauge,
    slots: Gauge,
    waiting: Gauge,
    panics: Counter,
    solves: Family<OutcomeLabels, Counter>,
    orders: Family<OutcomeLabels, Counter>,
    trades: Counter,
    auctions: Counter,
    forwarded: Family<OutcomeLabels, Counter>,
    messages: Family<MessageLabels, Counter>,
    settlement_latency: Histogram,
    relay_round: Histogram,
    relay_send: Histogram,
    relay_batch: Histogram,
    drift: Family<RouteLabels, Gauge>,
    backlog: Gauge,
    dead_letters: Family<RouteLabels, Gauge>,
    partitions_held: Family<RouteLabels, Gauge>,
    pruned: Family<TableLabels, Counter>,
    batches: Histogram,
    spans: SpanOutcomes,
    resident_bytes: Gauge,
    cpu_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    open_fds: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").field("in_flight", &self.in_flight.get()).finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every Volta metric.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("volta");
        let requests = Family::<CallLabels, Counter>::default();
        registry.register(
            "grpc_server_handled",
            "gRPC calls finished, by service, method and status code",
            requests.clone(),
        );
        let latency: Histograms<MethodLabels> = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "grpc_server_handling_seconds",
            "Time from a call's request to its end (a stream's last message and status)",
            latency.clone(),
        );
        let work: Histograms<WorkLabels> = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "work_duration_seconds",
            "CPU-heavy work on the solver pool (schedule, pareto, rolling window, train, forecast, backtest)",
            work.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("grpc_in_flight", "gRPC calls being served", in_flight.clone());
        let connections = Counter::default();
        registry.register(
            "grpc_connections",
            "Client connections accepted (a client reconnects after server.max_connection_age_seconds)",
            connections.clone(),
        );
        let slots_busy = Gauge::default();
        registry.register("solver_slots_busy", "Solver slots in use", slots_busy.clone());
        let slots = Gauge::default();
        registry.register("solver_slots", "Solver slots in all (server.solver_slots)", slots.clone());
        let waiting = Gauge::default();
        registry.register("grpc_waiting", "Calls waiting for admission (limits.max_concurrent_calls)", waiting.clone());
        let panics = Counter::default();
        registry.register("panics", "Calls that panicked: answered INTERNAL, the server kept serving", panics.clone());
        let solves = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "solves",
            "Solves by outcome (optimal, within_gap, time_limit, infeasible, ...): schedules, front points, windows",
            solves.clone(),
        );
        let orders = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "trading_orders",
            "Order submissions answered, by status: accepted (new) or replayed (a client order id seen before)",
            orders.clone(),
        );
        let trades = Counter::default();
        registry.register("trading_trades", "Trades made by the markets, continuous and call auctions", trades.clone());
        let auctions = Counter::default();
        registry.register("trading_auctions", "Call auctions cleared at gate closure", auctions.clone());
        let forwarded = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "trading_forwarded",
            "Calls for a market another replica leads, forwarded to it, by status: answered (by the leader, OK or \
             not) or unreachable",
            forwarded.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Messages between services by route (settlement: trades to the market ledger; positions: contract \
             changes to trading) and outcome: published (carrier acknowledged), applied, duplicate (ignored), \
             deferred (before its predecessor), failed, dead, repaired (sent again by the reconciler), \
             retried (a dead letter applied on an operator's retry)",
            messages.clone(),
        );
        let settlement_latency = messaging_seconds();
        registry.register(
            "settlement_latency_seconds",
            "From a trade to its settlement in the market ledger",
            settlement_latency.clone(),
        );
        let relay_round = messaging_seconds();
        registry.register(
            "messaging_relay_round_seconds",
            "A relay's round that moved messages: read the outbox, hand the batch to the carrier, mark what it \
             acknowledged (on PostgreSQL under the relays' lock, one transaction)",
            relay_round.clone(),
        );
        let relay_send = messaging_seconds();
        registry.register(
            "messaging_relay_send_seconds",
            "The carrier's part of a relay round: from handing over the batch to its last acknowledgement",
            relay_send.clone(),
        );
        let relay_batch = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register("messaging_relay_batch_messages", "Messages a relay round moved", relay_batch.clone());
        let drift = Family::<RouteLabels, Gauge>::default();
        registry.register(
            "messaging_drift",
            "Messages published over messaging.resend_after_seconds ago that the route's consumer has not \
             handled (last reconciliation)",
            drift.clone(),
        );
        let backlog = Gauge::default();
        registry.register("messaging_backlog", "Outbox messages not yet published", backlog.clone());
        let dead_letters = Family::<RouteLabels, Gauge>::default();
        registry.register("messaging_dead_letters", "Messages a route's consumer gave up on", dead_letters.clone());
        let pruned = Family::<TableLabels, Counter>::default();
        registry.register(
            "messaging_pruned",
            "Rows of handled messages deleted after messaging.retain_hours, by table (outbox, inbox)",
            pruned.clone(),
        );
        let partitions_held = Family::<RouteLabels, Gauge>::default();
        registry.register(
            "messaging_partitions_held",
            "Partitions of a route this process consumes now (over NATS)",
            partitions_held.clone(),
        );
        let batches = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "trading_batch_commands",
            "Commands a market's sequencer stored in one transaction (group commit)",
            batches.clone(),
        );
        let spans = SpanOutcomes::default();
        spans.register(&mut registry);
        let build = Family::<BuildLabels, Gauge>::default();
        build.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION").to_owned() }).set(1);
        registry.register("build_info", "The running build: 1, with its version as a label", build);
        let resident_bytes = Gauge::default();
        registry.register("process_resident_memory_bytes", "Resident memory of the server", resident_bytes.clone());
        let cpu_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register("process_cpu_seconds", "CPU time of the server, user and system", cpu_seconds.clone());
        let open_fds = Gauge::default();
        registry.register("process_open_fds", "Open file descriptors of the server", open_fds.clone());
        Self {
            registry,
            requests,
            latency,
            work,
            in_flight,
            connections,
            slots_busy,
            slots,
            waiting,
            panics,
            solves,
            orders,
            trades,
            auctions,
            forwarded,
            messages,
            settlement_latency,
            relay_round,
            relay_send,
            relay_batch,
            drift,
            backlog,
            dead_letters,
            partitions_held,
            pruned,
            batches,
            spans,
            resident_bytes,
            cpu_seconds,
            open_fds,
        }
    }

    /// Records a panic inside a call (its message goes to the log only).
    pub fn panicked(&self, message: &str) {
        self.panics.inc();
        tracing::error!(panic = message, "a call panicked; it was answered INTERNAL");
    }

    /// Counts an answered order submission and the trades it made.
    pub fn traded(&self, accepted: bool, trades: usize) {
        let status = if accepted { "accepted" } else { "replayed" };
        self.orders.get_or_create(&OutcomeLabels { status: status.to_owned() }).inc();
        if accepted {
            self.trades.inc_by(u64::try_from(trades).unwrap_or(0));
        }
    }

    /// Counts call auctions cleared at gate closure and the trades they made.
    pub fn trading_closed(&self, auctions: usize, trades: usize) {
        self.auctions.inc_by(u64::try_from(auctions).unwrap_or(0));
        self.trades.inc_by(u64::try_from(trades).unwrap_or(0));
    }

    /// Counts a call forwarded to a market's leader: `answered` or
    /// `unreachable`.
    pub fn forwarded(&self, status: &str) {
        self.forwarded.get_or_create(&OutcomeLabels { status: status.to_owned() }).inc();
    }

    /// Counts a message's outcome on `route`.
    pub fn message(&self, route: &str, outcome: &str) {
        self.messages.get_or_create(&MessageLabels { route: route.to_owned(), status: outcome.to_owned() }).inc();
    }

    /// Counts messages of `route` the carrier acknowledged.
    pub fn messages_published(&self, route: &str, n: usize) {
        if n > 0 {
            self.messages
                .get_or_create(&MessageLabels { route: route.to_owned(), status: "published".to_owned() })
                .inc_by(n as u64);
        }
    }

    /// Counts messages of `route` the reconciler sent again.
    pub fn messages_repaired(&self, route: &str, n: usize) {
        self.messages
            .get_or_create(&MessageLabels { route: route.to_owned(), status: "repaired".to_owned() })
            .inc_by(n as u64);
    }

    /// Records a trade's time to settlement.
    pub fn settled(&self, seconds: f64) {
        self.settlement_latency.observe(seconds.max(0.0));
    }

    /// Records a relay round that moved `messages`, the whole of it and the
    /// carrier's part.
    pub fn relayed(&self, messages: usize, round: Duration, send: Duration) {
        self.relay_batch.observe(messages as f64);
        self.relay_round.observe(round.as_secs_f64());
        self.relay_send.observe(send.as_secs_f64());
    }

    /// Sets the drift the reconciler of `route` found.
    pub fn set_drift(&self, route: &str, n: usize) {
        self.drift.get_or_create(&RouteLabels { route: route.to_owned() }).set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Sets the outbox backlog and the dead letters of `route`.
    pub fn set_messaging(&self, route: &str, backlog: u64, dead: u64) {
        self.backlog.set(i64::try_from(backlog).unwrap_or(i64::MAX));
        self.dead_letters
            .get_or_create(&RouteLabels { route: route.to_owned() })
            .set(i64::try_from(dead).unwrap_or(i64::MAX));
    }

    /// Counts rows of handled messages pruned from `table`.
    pub fn pruned(&self, table: &str, rows: u64) {
        if rows > 0 {
            self.pruned.get_or_create(&TableLabels { table: table.to_owned() }).inc_by(rows);
        }
    }

    /// Counts an accepted client connection.
    pub fn connection(&self) {
        self.connections.inc();
    }

    /// Counts a partition of `route` this process took. The gauge moves by
    /// one atomically (never set from a count read earlier), so replicas
    /// taking and giving partitions at once cannot leave it stale.
    pub fn partition_taken(&self, route: &str) {
        self.partitions_held.get_or_create(&RouteLabels { route: route.to_owned() }).inc();
    }

    /// Counts a partition of `route` this process gave up or lost.
    pub fn partition_given(&self, route: &str) {
        self.partitions_held.get_or_create(&RouteLabels { route: route.to_owned() }).dec();
    }

    /// Records a stored batch of a market's sequencer.
    pub fn batch(&self, commands: usize) {
        self.batches.observe(commands as f64);
    }

    /// Sets the solver pool's size.
    pub fn set_slots(&self, slots: usize) {
        self.slots.set(i64::try_from(slots).unwrap_or(i64::MAX));
    }

    /// Counts a solve that ended with `status` (`optimal`, `time_limit`, ...).
    pub fn solved(&self, status: &str) {
        self.solves.get_or_create(&OutcomeLabels { status: status.to_owned() }).inc();
    }

    /// Where the span exporter counts what became of the spans.
    #[must_use]
    pub fn span_outcomes(&self) -> SpanOutcomes {
        self.spans.clone()
    }

    /// Records `seconds` of CPU-heavy work of `kind`.
    pub fn observe_work(&self, kind: &str, seconds: f64) {
        self.work.get_or_create(&WorkLabels { kind: kind.to_owned() }).observe(seconds);
    }

    /// Marks a solver slot taken; the slot is returned when the guard drops.
    #[must_use]
    pub fn slot_taken(self: &Arc<Self>) -> SlotGuard {
        self.slots_busy.inc();
        SlotGuard(self.clone())
    }

    /// The metrics in the OpenMetrics text format, process metrics read now.
    #[must_use]
    pub fn encode(&self) -> String {
        self.read_process();
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// Reads the process's memory, CPU time and open files from /proc (left
    /// at zero where there is none).
    fn read_process(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
        // The fields after the command's closing parenthesis; utime and stime
        // are the 12th and 13th of them, rss the 22nd (in pages).
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
        let number = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // Linux's USER_HZ is 100 and its pages 4 KiB on every platform Volta ships for.
        self.cpu_seconds.set((number(11) + number(12)) as f64 / 100.0);
        self.resident_bytes.set(i64::try_from(number(21).saturating_mul(4096)).unwrap_or(i64::MAX));
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count);
        self.open_fds.set(i64::try_from(fds).unwrap_or(i64::MAX));
    }

    fn finish(&self, method: &str, code: tonic::Code, seconds: f64) {
        let (grpc_service, grpc_method) = service_and_method(method);
        let labels = CallLabels {
            grpc_service: grpc_service.clone(),
            grpc_method: grpc_method.clone(),
            grpc_code: code_name(code),
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&MethodLabels { grpc_service, grpc_method }).observe(seconds);
    }
}

/// A busy solver slot, counted in `volta_solver_slots_busy` until dropped.
#[derive(Debug)]
pub struct SlotGuard(Arc<Metrics>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.slots_busy.dec();
    }
}

/// The content type of the OpenMetrics text format that `encode` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listen` until `shutdown` resolves; returns the
/// bound address at once and runs in the background.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve_metrics(
    listen: SocketAddr,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} for metrics"))?;
    let local = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { ([(http::header::CONTENT_TYPE, OPENMETRICS)], metrics.encode()) }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(local)
}

/// The text of a panic's payload.
#[must_use]
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// The label a method path is counted under: itself when a service serves
/// it, `unknown` otherwise.
const UNKNOWN: &str = "unknown";

/// Calls allowed to wait for admission at once; beyond them a call is shed.
const MAX_WAITING: i64 = 1024;

/// The tower layer that observes every call: method check, admission,
/// span, log line, metrics, panic containment (see the module docs).
#[derive(Debug, Clone)]
pub struct Observe {
    metrics: Arc<Metrics>,
    spans: Spans,
    known: Arc<HashSet<String>>,
    admission: Arc<Semaphore>,
    max_call: Duration,
}

impl Observe {
    /// Observes calls into `metrics`; `known` are the method paths
    /// (`/package.Service/Method`) the server serves, and at most
    /// `max_concurrent` calls outside `/grpc.*` are served at once, each
    /// for at most `max_call` (its deadline when it sets none or a later one).
    #[must_use]
    pub fn new(metrics: Arc<Metrics>, known: HashSet<String>, max_concurrent: usize, max_call: Duration) -> Self {
        Self {
            metrics,
            spans: Spans::off(),
            known: Arc::new(known),
            admission: Arc::new(Semaphore::new(max_concurrent.max(1))),
            max_call,
        }
    }

    /// Hands each call's span to `spans` when the call ends.
    #[must_use]
    pub fn exporting(mut self, spans: Spans) -> Self {
        self.spans = spans;
        self
    }
}

impl<S> tower::Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed { inner, layer: self.clone() }
    }
}

/// A service wrapped by [`Observe`].
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
    layer: Observe,
}

/// Counts a call in flight until it ends: with its status, from the
/// response's headers or trailers, or dropped before either (the client
/// went away), recorded as CANCELLED.
struct InFlight {
    metrics: Arc<Metrics>,
    method: String,
    start: Instant,
    done: bool,
    /// The call's span, sent to `spans` when it ends.
    trace: TraceContext,
    wall_start: SystemTime,
    request_id: String,
    spans: Spans,
}

impl InFlight {
    /// Counts and logs the call's end: its code, its time from request to
    /// last byte, and the message of an error.
    fn finish(&mut self, code: tonic::Code, message: Option<&str>) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        let seconds = elapsed.as_secs_f64();
        self.metrics.finish(&self.method, code, seconds);
        self.span(code, message, elapsed);
        match message.filter(|_| code != tonic::Code::Ok) {
            Some(message) => tracing::info!(code = ?code, latency_ms = seconds * 1e3, error = message, "call"),
            None => tracing::info!(code = ?code, latency_ms = seconds * 1e3, "call"),
        }
    }

    /// Hands the call's span to the exporter.
    fn span(&self, code: tonic::Code, message: Option<&str>, elapsed: Duration) {
        self.spans.record(CallSpan {
            context: self.trace,
            method: self.method.clone(),
            start: self.wall_start,
            end: self.wall_start + elapsed,
            code,
            message: message.map(str::to_owned),
            request_id: self.request_id.clone(),
        });
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
        if !self.done {
            self.done = true;
            let elapsed = self.start.elapsed();
            self.metrics.finish(&self.method, tonic::Code::Cancelled, elapsed.as_secs_f64());
            self.span(tonic::Code::Cancelled, Some("dropped by the client"), elapsed);
            tracing::info!(code = "Cancelled", "call dropped by the client");
        }
    }
}

/// The gRPC status in `headers` (or trailers), with its decoded message.
fn status_of(headers: &http::HeaderMap) -> Option<(tonic::Code, Option<String>)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    let message = headers.get("grpc-message").map(|m| percent_decoded(m.as_bytes()));
    Some((tonic::Code::from(code), message))
}

/// A response body that ends its call's record when its trailers pass (a
/// stream's status is only known then), or when it ends or is dropped.
pub struct ObservedBody<B> {
    inner: B,
    guard: Option<InFlight>,
    span: tracing::Span,
}

impl<B> ObservedBody<B> {
    fn end(&mut self, code: tonic::Code, message: Option<&str>) {
        if let Some(mut guard) = self.guard.take() {
            let _entered = self.span.enter();
            guard.finish(code, message);
        }
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        // A body dropped before its trailers: the client went away.
        if let Some(guard) = self.guard.take() {
            let _entered = self.span.enter();
            drop(guard);
        }
    }
}

impl<B> http_body::Body for ObservedBody<B>
where
    B: http_body::Body + Unpin,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some((code, message)) = frame.trailers_ref().and_then(status_of) {
                    this.end(code, message.as_deref());
                }
            }
            Poll::Ready(Some(Err(_))) => this.end(tonic::Code::Unknown, Some("the response body failed")),
            // Ended without trailers: gRPC has no status then.
            Poll::Ready(None) => this.end(tonic::Code::Unknown, Some("the response ended without a status")),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Counts a call waiting for admission.
struct Waiting<'a>(&'a Observe);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.metrics.waiting.dec();
    }
}

impl Observe {
    /// A place among the calls served at once, waiting for one until
    /// `deadline` nears.
    async fn admit(&self, deadline: Option<Instant>) -> Result<tokio::sync::OwnedSemaphorePermit, tonic::Status> {
        if let Ok(permit) = self.admission.clone().try_acquire_owned() {
            return Ok(permit);
        }
        // The gauge is the count: `inc` returns the number waiting before.
        if self.metrics.waiting.inc() >= MAX_WAITING {
            self.metrics.waiting.dec();
            return Err(volta_api::status::shed("the server is busy; retry with backoff", Duration::from_secs(1)));
        }
        let _waiting = Waiting(self);
        let acquire = self.admission.clone().acquire_owned();
        let permit = match deadline {
            Some(deadline) => {
                // Leave time to answer before the caller gives up.
                tokio::time::timeout_at(reply_due(deadline).into(), acquire).await.map_err(|_| {
                    volta_api::status::error(
                        Reason::DeadlineExceeded,
                        "the deadline passed while waiting for the server to be free",
                    )
                })?
            }
            None => acquire.await,
        };
        permit.map_err(|_| volta_api::status::error(Reason::ShuttingDown, "the server is stopping"))
    }
}

/// A call's id: the caller's `x-request-id` when it is 1 to 64 characters
/// of `[A-Za-z0-9._:-]`, else a fresh random one (unique across restarts).
fn request_id(header: Option<&http::HeaderValue>) -> String {
    let ok = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-');
    match header.map(http::HeaderValue::as_bytes) {
        Some(v) if (1..=64).contains(&v.len()) && v.iter().copied().all(ok) => String::from_utf8_lossy(v).into_owned(),
        Some(_) | None => uuid::Uuid::new_v4().simple().to_string(),
    }
}

/// tonic answers a request that is not valid protobuf (bad wire format,
/// a string that is not UTF-8) with INTERNAL, as gRPC's status code table
/// has it. But INTERNAL means "a bug of ours" to the people who watch this
/// server, and the fault is the caller's: it becomes INVALID_ARGUMENT with
/// the reason MALFORMED_REQUEST, and the decoder's message (which names the
/// field).
fn undecodable_is_invalid_argument<R>(response: &mut http::Response<R>) {
    const DECODE: &str = "failed%20to%20decode%20Protobuf%20message";
    let headers = response.headers_mut();
    let internal = headers.get("grpc-status").is_some_and(|v| v.as_bytes() == b"13");
    let undecodable = headers.get("grpc-message").is_some_and(|v| v.as_bytes().starts_with(DECODE.as_bytes()));
    if internal && undecodable {
        let message = headers.get("grpc-message").map(|v| percent_decoded(v.as_bytes())).unwrap_or_default();
        let status = volta_api::status::error(Reason::MalformedRequest, message);
        let mut replacement = http::HeaderMap::new();
        if status.add_header(&mut replacement).is_ok() {
            for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
                headers.remove(name);
            }
            headers.extend(replacement);
        }
    }
}

/// A `grpc-message` header's text (percent-encoded on the wire).
fn percent_decoded(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A future whose panic becomes an `Err` with the panic's message.
struct CatchPanic<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.get_mut().0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(panic_message(payload.as_ref()))),
        }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Observed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + Unpin + 'static,
{
    type Response = http::Response<ObservedBody<R>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let arrival = Instant::now();
        let wall_start = SystemTime::now();
        let path = request.uri().path();
        let known = self.layer.known.contains(path);
        let method = if known { path.to_owned() } else { UNKNOWN.to_owned() };
        let admitted = known && !path.starts_with("/grpc.");
        let timeout = request.headers().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(timeout_header);
        // Health and reflection (a watch, a reflection session) may stay open.
        let longest = if admitted { Some(self.layer.max_call) } else { None };
        let deadline = match (timeout, longest) {
            (Some(t), Some(max)) => arrival.checked_add(t.min(max)),
            (t, max) => t.or(max).and_then(|d| arrival.checked_add(d)),
        };
        request.extensions_mut().insert(Arrival { deadline });
        let id = request_id(request.headers().get("x-request-id"));
        // Every log line of the call carries its trace id (the span's field).
        let trace = TraceContext::of(request.headers().get("traceparent").and_then(|v| v.to_str().ok()));
        let trace_id = trace.trace_hex();
        let traceparent = trace.traceparent();
        let span = tracing::info_span!(
            "grpc",
            method = %method,
            request_id = %id,
            trace_id = %trace_id,
            subject = tracing::field::Empty
        );
        let layer = self.layer.clone();
        let echo = id.clone();
        Box::pin(
            async move {
                let metrics = layer.metrics.clone();
                metrics.in_flight.inc();
                let mut guard = InFlight {
                    metrics: metrics.clone(),
                    method,
                    start: arrival,
                    done: false,
                    trace,
                    wall_start,
                    request_id: id,
                    spans: layer.spans.clone(),
                };
                let outcome = if !known {
                    Err(volta_api::status::error(Reason::UnknownMethod, "no such method"))
                } else if admitted {
                    layer.admit(deadline).await.map(Some)
                } else {
                    Ok(None)
                };
                let result = match outcome {
                    Err(status) => Ok(status.into_http()),
                    Ok(permit) => {
                        // Work that outlives the reply (past its deadline) keeps the place.
                        if let Some(permit) = permit {
                            request.extensions_mut().insert(Admission::new(permit));
                        }
                        match CatchPanic(Box::pin(inner.call(request))).await {
                            Ok(result) => result,
                            Err(message) => {
                                metrics.panicked(&message);
                                Ok(volta_api::status::error(Reason::Internal, "internal error (logged on the server)")
                                    .into_http())
                            }
                        }
                    }
                };
                let mut response = match result {
                    Ok(response) => response,
                    Err(error) => {
                        guard.finish(tonic::Code::Unknown, None);
                        return Err(error);
                    }
                };
                undecodable_is_invalid_argument(&mut response);
                // The id goes back, so that a caller can quote it, and the
                // trace context, so that a caller without one can find the trace.
                if let Ok(value) = http::HeaderValue::from_str(&echo) {
                    response.headers_mut().insert("x-request-id", value);
                }
                if let Ok(value) = http::HeaderValue::from_str(&traceparent) {
                    response.headers_mut().insert("traceparent", value);
                }
                // A trailers-only response (an error before any message) has
                // its status in the headers; any other carries it in the
                // trailers, which the body reports when the call ends.
                match status_of(response.headers()) {
                    Some((code, message)) => {
                        guard.finish(code, message.as_deref());
                        Ok(response.map(|inner| ObservedBody { inner, guard: None, span: tracing::Span::none() }))
                    }
                    None => Ok(response.map(|inner| ObservedBody {
                        inner,
                        guard: Some(guard),
                        span: tracing::Span::current(),
                    })),
                }
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tower::{Layer as _, Service as _};

    use super::{Metrics, Observe};

    /// A gRPC-like body: one message, then trailers with `status` (none:
    /// the body just ends).
    #[derive(Default)]
    struct Reply {
        data: Option<bytes::Bytes>,
        status: Option<&'static str>,
    }

    impl http_body::Body for Reply {
        type Data = bytes::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<bytes::Bytes>, Self::Error>>> {
            if let Some(data) = self.data.take() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(data))));
            }
            Poll::Ready(self.status.take().map(|code| {
                let mut trailers = http::HeaderMap::new();
                trailers.insert("grpc-status", http::HeaderValue::from_static(code));
                Ok(http_body::Frame::trailers(trailers))
            }))
        }
    }

    /// A service that panics while serving `Boom`, as a handler bug would,
    /// answers `Late` with DEADLINE_EXCEEDED in its trailers, and any other
    /// method with one message and OK.
    #[derive(Clone)]
    struct Panics;

    impl tower::Service<http::Request<()>> for Panics {
        type Response = http::Response<Reply>;
        type Error = std::convert::Infallible;
        type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<()>) -> Self::Future {
            Box::pin(async move {
                let path = request.uri().path().to_owned();
                assert!(path != "/volta.test.v1.Test/Boom", "secret detail {}", 42);
                let status = if path.ends_with("/Late") { "4" } else { "0" };
                Ok(http::Response::new(Reply { data: Some(bytes::Bytes::from_static(b"fine")), status: Some(status) }))
            })
        }
    }

    fn status_of<B>(response: &http::Response<B>) -> Option<&str> {
        response.headers().get("grpc-status").and_then(|v| v.to_str().ok())
    }

    /// Reads a body to its end: its data.
    async fn drain<B: http_body::Body<Data = bytes::Bytes> + Unpin>(mut body: B) -> Vec<u8> {
        let mut data = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            if let Ok(bytes) = frame.map(|f| f.into_data()) {
                data.extend(bytes.unwrap_or_default());
            }
        }
        data
    }

    #[tokio::test]
    async fn a_panicking_call_is_internal_for_itself_and_unknown_methods_share_one_label() {
        let metrics = Arc::new(Metrics::new());
        let known: HashSet<String> =
            ["/volta.test.v1.Test/Boom", "/volta.test.v1.Test/Fine", "/volta.test.v1.Test/Late"]
                .into_iter()
                .map(String::from)
                .collect();
        let mut service = Observe::new(metrics.clone(), known, 4, Duration::from_secs(60)).layer(Panics);
        let request = |path: &str| http::Request::builder().uri(path).body(()).expect("request");

        let response = service.call(request("/volta.test.v1.Test/Boom")).await.expect("a response");
        assert_eq!(status_of(&response), Some("13"));
        let message = response.headers().get("grpc-message").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(!message.contains("secret"), "{message}");
        // The layer keeps serving after the panic.
        let response = service.call(request("/volta.test.v1.Test/Fine")).await.expect("a response");
        assert_eq!(drain(response.into_body()).await, b"fine");
        for i in 0..20 {
            let response = service.call(request(&format!("/made.up{i}/X"))).await.expect("a response");
            assert_eq!(status_of(&response), Some("12"), "UNIMPLEMENTED");
        }
        // A status in the trailers is the call's, counted when the body ends;
        // a body dropped before its end is a call the client left.
        let late = service.call(request("/volta.test.v1.Test/Late")).await.expect("a response");
        let deadline = r#"grpc_service="volta.test.v1.Test",grpc_method="Late",grpc_code="DEADLINE_EXCEEDED"} 1"#;
        assert!(!metrics.encode().contains(deadline), "counted before its end");
        drain(late.into_body()).await;
        assert!(metrics.encode().contains(deadline), "{}", metrics.encode());
        drop(service.call(request("/volta.test.v1.Test/Late")).await.expect("a response"));
        let left = r#"grpc_method="Late",grpc_code="CANCELLED"} 1"#;
        assert!(metrics.encode().contains(left), "{}", metrics.encode());

        // Request ids: a caller's sound id is kept and echoed, anything else replaced.
        let with_id = |id: &str| {
            http::Request::builder()
                .uri("/volta.test.v1.Test/Fine")
                .header("x-request-id", id)
                .body(())
                .expect("request")
        };
        let response = service.call(with_id("order-42:retry.1")).await.expect("a response");
        assert_eq!(
            response.headers().get("x-request-id").map(http::HeaderValue::as_bytes),
            Some(&b"order-42:retry.1"[..])
        );
        let response = service.call(with_id(&"x".repeat(65))).await.expect("a response");
        let fresh = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(fresh.len() == 32 && fresh.bytes().all(|b| b.is_ascii_hexdigit()), "{fresh}");
        let again = service.call(request("/volta.test.v1.Test/Fine")).await.expect("a response");
        assert_ne!(again.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some(fresh.as_str()));

        // W3C trace context: a caller's trace continues; anything else starts one.
        let traced = |value: &str| {
            http::Request::builder()
                .uri("/volta.test.v1.Test/Fine")
                .header("traceparent", value)
                .body(())
                .expect("request")
        };
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let response = service.call(traced(caller)).await.expect("a response");
        let back = response.headers().get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert!(back.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-") && back.ends_with("-01"), "{back}");
        assert_ne!(back, caller, "this server's span is a child of the caller's");
        for bad in ["01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-0000-00f067aa0ba902b7-01", "x"] {
            let response = service.call(traced(bad)).await.expect("a response");
            let fresh = response.headers().get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default();
            assert!(fresh.len() == 55 && !fresh.contains("4bf92f35"), "{bad}: {fresh}");
        }

        let text = metrics.encode();
        assert!(text.contains("volta_panics_total 1"), "{text}");
        assert!(
            text.contains(r#"grpc_service="unknown",grpc_method="unknown",grpc_code="UNIMPLEMENTED"} 20"#),
            "{text}"
        );
        assert!(
            text.contains(r#"grpc_service="volta.test.v1.Test",grpc_method="Boom",grpc_code="INTERNAL"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"grpc_method="Fine",grpc_code="OK"} 1"#), "{text}");
        assert!(!text.contains("made.up"), "{text}");
        assert!(text.contains("volta_build_info{version="), "{text}");
    }
}
