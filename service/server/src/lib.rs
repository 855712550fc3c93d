//! Volta's gRPC server runtime: the services of the `volta-api` contract
//! over the same library calls as the CLI, with what a server needs around
//! them: configuration ([`config`]), bearer-token authentication
//! ([`auth`]), the model store ([`store`]: SQLite or PostgreSQL), logs and
//! metrics ([`telemetry`]), trace export ([`otlp`]), and the budgets of a call.
//!
//! - CPU-heavy work (solves, fits) runs on tokio's blocking pool behind a
//!   semaphore of solver slots ([`Shared::offload`]); a call that finds every
//!   slot taken is shed at once with RESOURCE_EXHAUSTED instead of queueing
//!   without bound.
//! - A call's deadline (`grpc-timeout`) becomes the solver's time limit, and
//!   a call dropped by its client (cancelled, or past its deadline) cancels
//!   its work, which stops at its next phase.
//! - Every call passes the [`Observe`](crate::telemetry::Observe) layer
//!   (span, log line, metrics) and the [`Authenticator`].
//!
//! To add a service: write its proto under `service/api/proto/volta/<name>/v1/`,
//! list it in `service/api/build.rs`, implement it over a [`Shared`] in a
//! module of its own here, and add it in [`run`].

pub mod auth;
mod budget;
pub mod config;
mod contracts;
mod dead_letters;
mod dispatch;
mod failpoint;
mod forecast;
mod messaging;
pub mod otlp;
mod planning;
pub mod projection;
mod routing;
pub mod store;
pub mod telemetry;
mod trading;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tokio_stream::StreamExt as _;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use volta_api::pb;
use volta_api::status::{Reason, shed};
use volta_engine::Cancel;

use crate::auth::Authenticator;
use crate::budget::Budget;
use crate::config::{Config, Limits};
use crate::store::{Migrate, ModelStore, SchemaVersion, Store};
use crate::telemetry::{Metrics, Observe};

/// The longest request id (idempotency key) a call may carry.
pub(crate) const MAX_REQUEST_ID_CHARS: usize = 128;

/// Calls open at once on one connection (more wait in the client).
const STREAMS_PER_CONNECTION: u32 = 32;

/// A call's HTTP/2 receive window, bytes.
const STREAM_WINDOW: u32 = 1 << 20;

/// What every service shares: the solver pool, the metrics, the stores and
/// the budgets of a call.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    models: Arc<dyn ModelStore>,
    limits: Arc<Limits>,
}

/// Cancels a call's work if the call is dropped before it is disarmed.
struct CancelOnDrop(Option<Cancel>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(cancel) = self.0.take() {
            cancel.cancel();
        }
    }
}

impl Shared {
    /// A solver slot, or RESOURCE_EXHAUSTED at once if every one is busy.
    fn slot(&self) -> Result<(tokio::sync::OwnedSemaphorePermit, telemetry::SlotGuard), Status> {
        let permit = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| shed("every solver slot is busy; retry with backoff", Duration::from_millis(250)))?;
        Ok((permit, self.metrics.slot_taken()))
    }

    /// Runs `work` on the blocking pool in a solver slot, inside the call's
    /// span, timing it as `kind`. If the call is dropped meanwhile, `cancel`
    /// is cancelled so that the work stops at its next phase; the slot stays
    /// taken until the work has really stopped. If the work is still running
    /// when the reply is due (shortly before the call's deadline), it is
    /// cancelled and the call answered DEADLINE_EXCEEDED in time. A panic in
    /// the work is INTERNAL for this call alone, its message logged.
    async fn offload<T: Send + 'static>(
        &self,
        kind: &'static str,
        cancel: &Cancel,
        budget: &Budget,
        work: impl FnOnce() -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let slot = self.slot()?;
        let span = tracing::Span::current();
        let metrics = self.metrics.clone();
        let mut guard = CancelOnDrop(Some(cancel.clone()));
        let admission = budget.admission();
        let task = tokio::task::spawn_blocking(move || {
            let (_slot, _admission) = (slot, admission);
            let _entered = span.enter();
            let start = Instant::now();
            let out = work();
            metrics.observe_work(kind, start.elapsed().as_secs_f64());
            out
        });
        // On DEADLINE_EXCEEDED the guard cancels the work as it drops.
        let out = self.reply_by_deadline(kind, budget, task).await;
        guard.0 = None;
        out?
    }

    /// Runs light work (reading a case) on the blocking pool without a
    /// solver slot, answered by the call's deadline like [`Self::offload`].
    async fn unslotted<T: Send + 'static>(
        &self,
        kind: &'static str,
        budget: &Budget,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Status> {
        let admission = budget.admission();
        let span = tracing::Span::current();
        let task = tokio::task::spawn_blocking(move || {
            let (_admission, _entered) = (admission, span.enter());
            work()
        });
        self.reply_by_deadline(kind, budget, task).await
    }

    /// The task's result, or DEADLINE_EXCEEDED when the reply is due first
    /// (the task goes on until it stops, holding its slot and its place).
    async fn reply_by_deadline<T>(
        &self,
        kind: &'static str,
        budget: &Budget,
        task: tokio::task::JoinHandle<T>,
    ) -> Result<T, Status> {
        let joined = match budget.reply_due() {
            Some(due) => tokio::time::timeout_at(due.into(), task).await.map_err(|_| {
                volta_api::status::error(
                    Reason::DeadlineExceeded,
                    format!("the deadline came before the {kind} finished; allow more time, or set a time limit"),
                )
            })?,
            None => task.await,
        };
        joined.map_err(|e| self.task_failed(kind, e))
    }

    /// INTERNAL for a blocking task that panicked (or was aborted); the
    /// panic's text goes to the log, never to the caller.
    fn task_failed(&self, kind: &str, error: tokio::task::JoinError) -> Status {
        match error.try_into_panic() {
            Ok(payload) => self.metrics.panicked(&telemetry::panic_message(payload.as_ref())),
            Err(error) => tracing::error!(error = %error, kind, "task failed"),
        }
        volta_api::status::error(Reason::Internal, format!("internal error in the {kind} (logged on the server)"))
    }
}

/// Every method path the server serves (`/package.Service/Method`), from
/// the descriptors of its protos, health and reflection included.
fn known_methods() -> anyhow::Result<HashSet<String>> {
    use prost::Message as _;
    let sets = [
        pb::DESCRIPTOR,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = HashSet::new();
    for bytes in sets {
        let set = prost_types::FileDescriptorSet::decode(bytes).context("descriptor set")?;
        for file in &set.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    let service_name = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    methods.insert(format!("/{service_name}/{}", method.name()));
                }
            }
        }
    }
    Ok(methods)
}

/// Logs panics as structured lines (with where they happened) instead of
/// the default hook's bare text on stderr.
fn log_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!(panic = telemetry::panic_message(info.payload()), location, "panic");
    }));
}

/// The reflection builder of both protocol versions; each lists both.
/// Brings the database's schema up to date (`volta migrate`), or with
/// `check` only reads where it stands. Returns each service's version
/// before and after.
///
/// # Errors
/// An unsupported URL, an unreachable database, or a failed migration.
pub fn migrate(url: &str, check: bool) -> anyhow::Result<(Vec<SchemaVersion>, Vec<SchemaVersion>)> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(async {
        let store = Store::connect(url).await?;
        let before = store.versions().await?;
        if !check {
            store.migrate().await?;
        }
        let after = store.versions().await?;
        Ok((before, after))
    })
}

fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .include_reflection_service(false)
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// Runs the server until SIGTERM or Ctrl-C, then reports NOT_SERVING, stops
/// accepting calls and lets in-flight calls finish.
///
/// # Errors
/// Invalid settings, an address in use, an unreachable database.
pub fn serve(config: &Config) -> anyhow::Result<()> {
    config.check()?;
    telemetry::init_logs(config.log.format, &config.log.level)?;
    log_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(run(config.clone()))
}

/// The way to the other replicas, and where they reach this one: the
/// configured URL, or the listening address unless it is every address.
fn router(config: &Config, local: std::net::SocketAddr) -> anyhow::Result<routing::Router> {
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let own = config.server.advertise_url.clone().or_else(|| {
        let url = (!local.ip().is_unspecified()).then(|| format!("{scheme}://{local}"));
        if url.is_none() {
            tracing::info!(
                "listening on every address with no server.advertise_url: other replicas answer NOT_LEADER for the \
                 markets this one leads instead of forwarding to it"
            );
        }
        url
    });
    let ca = match &config.tls {
        Some(tls) => {
            Some(std::fs::read(&tls.cert_file).with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?)
        }
        None => None,
    };
    Ok(routing::Router::new(own, ca))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let auth = match &config.auth {
        Some(auth) => Authenticator::from_config(auth)?,
        None => Authenticator::disabled(),
    };
    let migrate = if config.storage.migrate { Migrate::Apply } else { Migrate::Verify };
    let store = Store::open_with(&config.storage.url, migrate).await?;
    let metrics = Arc::new(Metrics::new());
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let slots = config.server.solver_slots.unwrap_or(cores);
    metrics.set_slots(slots);
    let shared = Shared {
        slots: Arc::new(Semaphore::new(slots)),
        metrics: metrics.clone(),
        models: Arc::new(store.clone()),
        limits: Arc::new(config.limits.clone()),
    };
    let max_bytes = config.server.max_request_mib.saturating_mul(1 << 20);

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        // An error means the sender is gone: the server is stopping anyway.
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let metrics_addr = match config.server.metrics_listen {
        Some(addr) => Some(telemetry::serve_metrics(addr, metrics.clone(), stopped(stop_rx.clone())).await?),
        None => None,
    };

    let dispatch = InterceptedService::new(
        pb::dispatch::dispatch_service_server::DispatchServiceServer::new(dispatch::Dispatch::new(shared.clone()))
            .max_decoding_message_size(max_bytes),
        auth.clone(),
    );
    let outbox = messaging(&config, &store, &metrics, &stop_rx).await?;
    let contract_service = InterceptedService::new(
        pb::contracts::contract_service_server::ContractServiceServer::new(contracts::Contracts::new(
            shared.clone(),
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            outbox.clone(),
        ))
        .max_decoding_message_size(max_bytes),
        auth.clone(),
    );
    // Bound before the trading service starts: a market's leader records
    // where the other replicas reach it.
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let local = listener.local_addr()?;
    let trading_service = InterceptedService::new(
        pb::trading::trading_service_server::TradingServiceServer::new(trading::Trading::new(
            shared.clone(),
            Arc::new(store.clone()),
            Arc::new(store.clone()),
            stop_rx.clone(),
            outbox,
            router(&config, local)?,
        ))
        .max_decoding_message_size(max_bytes),
        auth.clone(),
    );
    let forecast = InterceptedService::new(
        pb::forecast::forecast_service_server::ForecastServiceServer::new(forecast::Forecast::new(shared.clone()))
            .max_decoding_message_size(max_bytes),
        auth.clone(),
    );
    let planning = InterceptedService::new(
        pb::planning::planning_service_server::PlanningServiceServer::new(planning::Planning::new(shared.clone()))
            .max_decoding_message_size(max_bytes),
        auth.clone(),
    );
    let (reporter, health) = tonic_health::server::health_reporter();
    let served = |service: &str| config.server.serves(service);
    let names: Vec<&'static str> = [
        ("dispatch", <pb::dispatch::dispatch_service_server::DispatchServiceServer<dispatch::Dispatch> as tonic::server::NamedService>::NAME),
        ("forecast", <pb::forecast::forecast_service_server::ForecastServiceServer<forecast::Forecast> as tonic::server::NamedService>::NAME),
        ("planning", <pb::planning::planning_service_server::PlanningServiceServer<planning::Planning> as tonic::server::NamedService>::NAME),
        ("contracts", <pb::contracts::contract_service_server::ContractServiceServer<contracts::Contracts> as tonic::server::NamedService>::NAME),
        ("trading", <pb::trading::trading_service_server::TradingServiceServer<trading::Trading> as tonic::server::NamedService>::NAME),
    ]
    .into_iter()
    .filter(|(service, _)| served(service))
    .map(|(_, name)| name)
    .collect();
    for &name in &names {
        reporter.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    // Both reflection protocols: grpcurl before 1.8.8 and Python's
    // grpcio-reflection speak only v1alpha.
    let reflection = reflection_builder().build_v1().context("reflection")?;
    let reflection_alpha = reflection_builder().build_v1alpha().context("reflection")?;
    let (spans, exporter) = otlp::Exporter::start(&config.otlp, metrics.span_outcomes())?;
    let observe_metrics = metrics.clone();
    let observe = Observe::new(
        metrics,
        known_methods()?,
        config.limits.max_concurrent_calls,
        Duration::from_secs(config.limits.max_call_seconds),
    )
    .exporting(spans);

    let signals = StopSignals::install()?;
    // HTTP/2 flow control against head-of-line blocking: a call waiting for
    // admission is not read, so its data sits in the connection's window. With
    // a connection window of every stream's window added up, waiting calls
    // can never starve the admitted ones of the same connection; and a
    // connection holds at most that much unread data.
    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(STREAMS_PER_CONNECTION)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(STREAM_WINDOW * STREAMS_PER_CONNECTION);
    if let Some(age) = config.server.max_connection_age_seconds {
        // A connection past its age is told GOAWAY and closes once its calls
        // in flight have finished (each bounded by its deadline). No grace
        // is set: with one, tonic 0.14 skips the GOAWAY and cuts the
        // connection at age + grace instead.
        builder = builder.max_connection_age(Duration::from_secs(age));
    }
    if let Some(tls) = &config.tls {
        let cert =
            std::fs::read(&tls.cert_file).with_context(|| format!("tls.cert_file {}", tls.cert_file.display()))?;
        let key = std::fs::read(&tls.key_file).with_context(|| format!("tls.key_file {}", tls.key_file.display()))?;
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)).context("tls")?;
    }
    tracing::info!(
        addr = %local,
        tls = config.tls.is_some(),
        auth = auth.is_enabled(),
        solver_slots = slots,
        storage = %store::redacted(&config.storage.url),
        metrics = %metrics_addr.map_or_else(|| "off".to_owned(), |a| format!("http://{a}/metrics")),
        "listening on {local}{}",
        if auth.is_enabled() { "" } else { " (loopback only: no authentication configured)" }
    );

    let accepted = observe_metrics.clone();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |c| {
        if c.is_ok() {
            accepted.connection();
        }
        c
    });
    let shutdown = async move {
        signals.wait().await;
        tracing::info!("shutting down: NOT_SERVING, in-flight calls finish");
        for &name in &names {
            reporter.set_service_status(name, tonic_health::ServingStatus::NotServing).await;
        }
        // Give health checkers a moment to see NOT_SERVING.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop_tx.send(true);
    };
    builder
        .layer(observe)
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .add_optional_service(served("dispatch").then_some(dispatch))
        .add_optional_service(served("forecast").then_some(forecast))
        .add_optional_service(served("planning").then_some(planning))
        .add_optional_service(served("contracts").then_some(contract_service))
        .add_optional_service(served("trading").then_some(trading_service))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .context("server")?;
    if let Some(exporter) = exporter {
        exporter.shutdown(Duration::from_secs(5)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the messaging between the services this process serves: the
/// consumers of the routes whose service is here (the market ledger where
/// contracts are, the view of contract positions where trading is) with
/// their reconcilers, and a relay for the outbox (woken by the returned
/// notifier after every stored trade or contract change, and on PostgreSQL
/// by any process's outbox writes), delivering in
/// this process or over NATS JetStream. The JetStream consumers are bound
/// before the server reports SERVING.
async fn messaging(
    config: &Config,
    store: &Store,
    metrics: &Arc<Metrics>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Arc<tokio::sync::Notify>> {
    let outbox = Arc::new(tokio::sync::Notify::new());
    let (trading, contracts) = (config.server.serves("trading"), config.server.serves("contracts"));
    // Only the processes that produce or consume messages talk to NATS.
    if !trading && !contracts {
        return Ok(outbox);
    }
    let jetstream = match &config.messaging.nats_url {
        Some(url) => {
            Some(messaging::nats::JetStream::connect(url, &config.messaging.stream, config.messaging.partitions).await?)
        }
        None => None,
    };
    let routes = [(contracts, messaging::SETTLEMENT), (trading, messaging::POSITIONS)];
    let inboxes: Vec<messaging::Inbox> = routes
        .into_iter()
        .filter(|(served, _)| *served)
        .map(|(_, route)| messaging::Inbox::new(route, Arc::new(store.clone()), metrics.clone()))
        .collect();
    let grace = Duration::from_secs(config.messaging.resend_after_seconds);
    let retain = Duration::from_secs(config.messaging.retain_hours.saturating_mul(3600));
    for inbox in &inboxes {
        if let Some(js) = &jetstream {
            let consumer = Arc::new(inbox.clone());
            messaging::nats::consume_route(js.clone(), store.clone(), consumer, metrics.clone(), stop.clone()).await?;
        }
        let route = *inbox.route();
        tokio::spawn(messaging::reconcile(
            route,
            Arc::new(store.clone()),
            metrics.clone(),
            grace,
            retain,
            stop.clone(),
        ));
    }
    let carrier: Arc<dyn messaging::Carrier> = match jetstream {
        Some(js) => Arc::new(js),
        None => Arc::new(messaging::InProcess { consumers: inboxes }),
    };
    let relay = messaging::Relay {
        store: Arc::new(store.clone()),
        carrier,
        name: format!("{}/{}", hostname(), std::process::id()),
        metrics: metrics.clone(),
    };
    tokio::spawn(relay.run(outbox.clone(), stop.clone()));
    if store.is_postgres() {
        tokio::spawn(messaging::announcements(config.storage.url.clone(), outbox.clone(), stop.clone()));
    }
    tracing::info!(
        carrier = if config.messaging.nats_url.is_some() { "nats" } else { "in-process" },
        ledger = contracts,
        positions = trading,
        "messaging started"
    );
    Ok(outbox)
}

/// This machine's name, for the relay's claims (`HOSTNAME`, else `volta`).
fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "volta".to_owned())
}

/// SIGTERM and SIGINT (Ctrl-C), registered when made, so that a signal that
/// arrives the moment the server says it is listening is not lost (it would
/// otherwise kill the process before the shutdown future is first polled).
#[cfg(unix)]
struct StopSignals {
    term: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct StopSignals;

#[cfg(not(unix))]
impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        Ok(Self)
    }

    async fn wait(self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
