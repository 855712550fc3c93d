//! Logs, per-call spans and Prometheus metrics.
//!
//! Every gRPC call passes through [`Observe`], a tower layer that opens a
//! `grpc` span (method, request id) around the call, logs one line when it
//! ends (code, latency) and counts it. [`Metrics`] is served as Prometheus
//! text on `GET /metrics` of a separate HTTP port ([`serve_metrics`]).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tracing::Instrument as _;

use crate::config::LogFormat;

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

/// Labels of a finished call.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: String,
}

/// Labels of a latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

/// Labels of the work histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkLabels {
    kind: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

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
    slots_busy: Gauge,
    next_id: AtomicU64,
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
        registry.register("grpc_requests", "gRPC calls finished, by method and status code", requests.clone());
        let latency: Histograms<MethodLabels> = Family::new_with_constructor(seconds_histogram);
        registry.register("grpc_request_duration_seconds", "Time from request to response headers", latency.clone());
        let work: Histograms<WorkLabels> = Family::new_with_constructor(seconds_histogram);
        registry.register(
            "work_duration_seconds",
            "CPU-heavy work on the solver pool (schedule, pareto, rolling window, train, forecast, backtest)",
            work.clone(),
        );
        let in_flight = Gauge::default();
        registry.register("grpc_in_flight", "gRPC calls being served", in_flight.clone());
        let slots_busy = Gauge::default();
        registry.register("solver_slots_busy", "Solver slots in use", slots_busy.clone());
        Self { registry, requests, latency, work, in_flight, slots_busy, next_id: AtomicU64::new(1) }
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

    /// The metrics in Prometheus' text format.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    fn finish(&self, method: &str, code: tonic::Code, seconds: f64) {
        // Unknown paths share one label, so that callers cannot grow the series.
        let method = if code == tonic::Code::Unimplemented { "unknown" } else { method };
        self.requests.get_or_create(&CallLabels { method: method.to_owned(), code: format!("{code:?}") }).inc();
        self.latency.get_or_create(&MethodLabels { method: method.to_owned() }).observe(seconds);
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
            async move {
                ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], metrics.encode())
            }
        }),
    );
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            tracing::error!(error = %e, "metrics endpoint stopped");
        }
    });
    Ok(local)
}

/// The tower layer that observes every call (span, log line, metrics).
#[derive(Debug, Clone)]
pub struct Observe {
    metrics: Arc<Metrics>,
}

impl Observe {
    /// Observes calls into `metrics`.
    #[must_use]
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for Observe {
    type Service = Observed<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observed { inner, metrics: self.metrics.clone() }
    }
}

/// A service wrapped by [`Observe`].
#[derive(Debug, Clone)]
pub struct Observed<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// Counts a call in flight; a call dropped before its response (the client
/// went away) is recorded as CANCELLED.
struct InFlight {
    metrics: Arc<Metrics>,
    method: String,
    start: Instant,
    done: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
        if !self.done {
            self.metrics.finish(&self.method, tonic::Code::Cancelled, self.start.elapsed().as_secs_f64());
            tracing::info!(code = "Cancelled", "call dropped by the client");
        }
    }
}

impl<S, B, R> tower::Service<http::Request<B>> for Observed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let method = request.uri().path().to_owned();
        let id = request
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map_or_else(|| format!("{:016x}", self.metrics.next_id.fetch_add(1, Ordering::Relaxed)), str::to_owned);
        let span = tracing::info_span!("grpc", method = %method, request_id = %id, subject = tracing::field::Empty);
        let metrics = self.metrics.clone();
        Box::pin(
            async move {
                metrics.in_flight.inc();
                let mut guard = InFlight { metrics: metrics.clone(), method, start: Instant::now(), done: false };
                let result = inner.call(request).await;
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|s| s.parse::<i32>().ok())
                        .map_or(tonic::Code::Ok, tonic::Code::from),
                    Err(_) => tonic::Code::Unknown,
                };
                let seconds = guard.start.elapsed().as_secs_f64();
                metrics.finish(&guard.method, code, seconds);
                guard.done = true;
                tracing::info!(code = ?code, latency_ms = seconds * 1e3, "call");
                result
            }
            .instrument(span),
        )
    }
}
