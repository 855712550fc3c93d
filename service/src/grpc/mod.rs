//! The gRPC layer: services over the same library calls as the CLI.
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
//! To add a service: write its proto under `proto/volta/<name>/v1/`, list it
//! in `build.rs`, implement it over a [`Shared`], and add it in [`run`].

mod dispatch;
mod errors;
mod forecast;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::sync::Semaphore;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use volta_dispatch::Cancel;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::store::{self, Store};
use crate::telemetry::{self, Metrics, Observe};

/// Generated protobuf types, service stubs and clients.
pub mod pb {
    /// `volta.dispatch.v1`.
    pub mod dispatch {
        #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
        tonic::include_proto!("volta.dispatch.v1");
    }

    /// `volta.forecast.v1`.
    pub mod forecast {
        #![allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic)]
        tonic::include_proto!("volta.forecast.v1");
    }

    /// The encoded descriptors of every Volta proto, for server reflection.
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("volta_descriptor");
}

/// What every service shares: the solver pool, the metrics and the store.
#[derive(Debug, Clone)]
pub(crate) struct Shared {
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    store: Store,
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
            .map_err(|_| Status::resource_exhausted("every solver slot is busy; retry with backoff"))?;
        Ok((permit, self.metrics.slot_taken()))
    }

    /// Runs `work` on the blocking pool in a solver slot, inside the call's
    /// span, timing it as `kind`. If the call is dropped meanwhile, `cancel`
    /// is cancelled so that the work stops at its next phase; the slot stays
    /// taken until the work has really stopped.
    async fn offload<T: Send + 'static>(
        &self,
        kind: &'static str,
        cancel: &Cancel,
        work: impl FnOnce() -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        let slot = self.slot()?;
        let span = tracing::Span::current();
        let metrics = self.metrics.clone();
        let mut guard = CancelOnDrop(Some(cancel.clone()));
        let joined = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let _entered = span.enter();
            let start = Instant::now();
            let out = work();
            metrics.observe_work(kind, start.elapsed().as_secs_f64());
            out
        })
        .await;
        guard.0 = None;
        joined.map_err(|e| Status::internal(format!("{kind} task failed: {e}")))?
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then reports NOT_SERVING, stops
/// accepting calls and lets in-flight calls finish.
///
/// # Errors
/// Invalid settings, an address in use, an unreachable database.
pub fn serve(config: &Config) -> anyhow::Result<()> {
    config.check()?;
    telemetry::init_logs(config.log.format, &config.log.level)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("tokio runtime")?;
    runtime.block_on(run(config.clone()))
}

async fn run(config: Config) -> anyhow::Result<()> {
    let auth = match &config.auth {
        Some(auth) => Authenticator::from_config(auth)?,
        None => Authenticator::disabled(),
    };
    let store = Store::open(&config.storage.url).await?;
    let metrics = Arc::new(Metrics::new());
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let slots = config.server.solver_slots.unwrap_or(cores);
    let shared = Shared { slots: Arc::new(Semaphore::new(slots)), metrics: metrics.clone(), store };
    let max_bytes = config.server.max_request_mib << 20;

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
    let forecast = InterceptedService::new(
        pb::forecast::forecast_service_server::ForecastServiceServer::new(forecast::Forecast::new(shared.clone()))
            .max_decoding_message_size(max_bytes),
        auth.clone(),
    );
    let (reporter, health) = tonic_health::server::health_reporter();
    let names = [
        <pb::dispatch::dispatch_service_server::DispatchServiceServer<dispatch::Dispatch> as tonic::server::NamedService>::NAME,
        <pb::forecast::forecast_service_server::ForecastServiceServer<forecast::Forecast> as tonic::server::NamedService>::NAME,
    ];
    for name in names {
        reporter.set_service_status(name, tonic_health::ServingStatus::Serving).await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("reflection")?;

    let signals = StopSignals::install()?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let local = listener.local_addr()?;
    let mut builder = tonic::transport::Server::builder();
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

    let shutdown = async move {
        signals.wait().await;
        tracing::info!("shutting down: NOT_SERVING, in-flight calls finish");
        for name in names {
            reporter.set_service_status(name, tonic_health::ServingStatus::NotServing).await;
        }
        // Give health checkers a moment to see NOT_SERVING.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = stop_tx.send(true);
    };
    builder
        .layer(Observe::new(metrics))
        .add_service(health)
        .add_service(reflection)
        .add_service(dispatch)
        .add_service(forecast)
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
        .await
        .context("server")?;
    tracing::info!("stopped");
    Ok(())
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

/// The remaining deadline of a call, from its `grpc-timeout` header.
pub(crate) fn deadline<T>(request: &tonic::Request<T>) -> Option<Duration> {
    let text = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The solver time limit of a call: the request's own limit, bounded by
/// the deadline less a margin for reading the case, building the model,
/// pricing and replying (15 %, at least 200 ms).
pub(crate) fn time_limit(requested: Option<f64>, deadline: Option<Duration>) -> Option<f64> {
    let budget = deadline.map(|d| {
        let margin = (d.mul_f64(0.15)).max(Duration::from_millis(200));
        d.saturating_sub(margin).as_secs_f64().max(0.05)
    });
    match (requested, budget) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn grpc_timeout_headers_become_durations() {
        let with = |value: &str| {
            let mut request = tonic::Request::new(());
            request.metadata_mut().insert("grpc-timeout", value.parse().expect("ascii"));
            super::deadline(&request)
        };
        assert_eq!(with("3S"), Some(Duration::from_secs(3)));
        assert_eq!(with("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(with("2M"), Some(Duration::from_secs(120)));
        assert_eq!(with("250u"), Some(Duration::from_micros(250)));
        assert_eq!(with("7x"), None);
        assert_eq!(with("S"), None);
        assert_eq!(super::deadline(&tonic::Request::new(())), None);
    }

    #[test]
    fn the_deadline_bounds_the_time_limit_with_a_margin() {
        assert_eq!(super::time_limit(None, None), None);
        assert_eq!(super::time_limit(Some(30.0), None), Some(30.0));
        assert_eq!(super::time_limit(None, Some(Duration::from_secs(1))), Some(0.8));
        assert_eq!(super::time_limit(None, Some(Duration::from_secs(10))), Some(8.5));
        assert_eq!(super::time_limit(Some(1.0), Some(Duration::from_secs(10))), Some(1.0));
        assert_eq!(super::time_limit(None, Some(Duration::from_millis(100))), Some(0.05));
    }
}
