//! Traces: one SERVER span per gRPC call, exported to an OpenTelemetry
//! collector over OTLP/gRPC when an endpoint is configured (`[otlp]
//! endpoint`, or the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
//! `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! A call's span continues the caller's W3C trace (`traceparent`) as its
//! child, or starts a trace; a caller that asked not to be sampled (flag
//! `00`) is not exported. The span is named and labelled as OpenTelemetry's
//! RPC conventions have it (`rpc.system`, `rpc.service`, `rpc.method`,
//! `rpc.grpc.status_code`) and carries the request id.
//!
//! A call never waits for the collector: its span goes into a bounded queue
//! and a background task sends batches (at most [`BATCH`] spans, at least
//! every [`BATCH_DELAY`]). A full queue, a failed export or a collector's
//! partial refusal drops spans, counted in `volta_otlp_spans_total` by
//! outcome, with one warning per outage. On shutdown the queue is flushed
//! within a grace period.

use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tonic::transport::{Channel, Endpoint};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::config::Otlp;

/// The messages and the client (and, for tests, the server) of OTLP's trace
/// endpoint, from `service/server/proto/otlp_trace.proto`.
#[allow(missing_docs, unused_qualifications, clippy::all, clippy::pedantic, reason = "generated code")]
pub mod wire {
    tonic::include_proto!("opentelemetry.proto.collector.trace.v1");
}

use wire::trace_service_client::TraceServiceClient;

/// Spans held for export at most; more are dropped (and counted).
const QUEUE: usize = 4096;

/// Spans sent in one export request at most.
pub const BATCH: usize = 512;

/// A span waits at most this long for its batch to fill.
pub const BATCH_DELAY: Duration = Duration::from_secs(1);

/// One export request's deadline.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// A call's W3C trace context: its trace, its own span, the caller's span
/// (when the caller sent a valid `traceparent`) and the trace flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace's id, continued from the caller or new.
    pub trace_id: [u8; 16],
    /// This server's span for the call.
    pub span_id: [u8; 8],
    /// The caller's span, when the trace came from it.
    pub parent_span_id: Option<[u8; 8]>,
    /// W3C trace flags; bit 0 is "sampled".
    pub flags: u8,
}

impl TraceContext {
    /// The context of a call with `header` as its `traceparent`: a valid
    /// version-00 header continues its trace as a child of the caller's
    /// span; anything else (none, malformed, all-zero ids) starts a sampled
    /// trace of its own.
    #[must_use]
    pub fn of(header: Option<&str>) -> Self {
        let span_id = random_id::<8>();
        let parsed = header.and_then(|value| {
            let parts: Vec<&str> = value.trim().split('-').collect();
            match parts.as_slice() {
                ["00", trace, parent, flags] => {
                    let trace = hex_id::<16>(trace)?;
                    let parent = hex_id::<8>(parent)?;
                    let flags = hex_id::<1>(flags)?;
                    Some((trace, parent, flags[0]))
                }
                _ => None,
            }
        });
        match parsed {
            Some((trace_id, parent, flags)) => Self { trace_id, span_id, parent_span_id: Some(parent), flags },
            None => Self { trace_id: random_id::<16>(), span_id, parent_span_id: None, flags: 0x01 },
        }
    }

    /// Whether the trace is sampled (exported).
    #[must_use]
    pub fn sampled(&self) -> bool {
        self.flags & 0x01 != 0
    }

    /// The trace id as 32 lowercase hex digits (as logs show it).
    #[must_use]
    pub fn trace_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` naming this server's span, to send back.
    #[must_use]
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.span_id), self.flags)
    }
}

/// `N` random bytes, never all zero (an invalid id in W3C and OTLP).
fn random_id<const N: usize>() -> [u8; N] {
    loop {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let mut id = [0; N];
        id.copy_from_slice(&bytes[..N]);
        if id.iter().any(|&b| b != 0) {
            return id;
        }
    }
}

/// `text` as `N` bytes of lowercase hex, not all zero (flags may be zero).
fn hex_id<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != 2 * N || !digits.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    let mut id = [0; N];
    for (byte, pair) in id.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    (N == 1 || id.iter().any(|&b| b != 0)).then_some(id)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A finished call, as its span is exported.
#[derive(Debug, Clone)]
pub struct CallSpan {
    /// Its trace context.
    pub context: TraceContext,
    /// The method path, `/package.Service/Method`.
    pub method: String,
    /// When the request arrived and when the call ended.
    pub start: SystemTime,
    /// When the last byte left, or the client went away.
    pub end: SystemTime,
    /// The call's status code.
    pub code: tonic::Code,
    /// The status message of an error.
    pub message: Option<String>,
    /// The request id (the caller's `x-request-id` or one made here).
    pub request_id: String,
}

/// Labels of a span's outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// Spans counted by what became of them (`exported`, `rejected`,
/// `dropped_queue_full`, `dropped_export_failed`); the metrics registry
/// serves them as `volta_otlp_spans_total`.
#[derive(Debug, Clone, Default)]
pub struct SpanOutcomes(Family<OutcomeLabels, Counter>);

impl SpanOutcomes {
    fn count(&self, outcome: &'static str, spans: u64) {
        self.0.get_or_create(&OutcomeLabels { outcome }).inc_by(spans);
    }

    /// Registers the counters in `registry` (as `otlp_spans`).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "otlp_spans",
            "Call spans for the OTLP collector by outcome (exported, rejected, dropped_queue_full, dropped_export_failed)",
            self.0.clone(),
        );
    }
}

/// Where calls hand their spans: a queue to the exporter, or nowhere.
#[derive(Debug, Clone, Default)]
pub struct Spans {
    queue: Option<(mpsc::Sender<CallSpan>, SpanOutcomes)>,
}

impl Spans {
    /// Spans go nowhere (no endpoint configured).
    #[must_use]
    pub fn off() -> Self {
        Self::default()
    }

    /// Hands `span` to the exporter when its trace is sampled; never waits.
    pub fn record(&self, span: CallSpan) {
        let Some((queue, outcomes)) = &self.queue else { return };
        if !span.context.sampled() {
            return;
        }
        if queue.try_send(span).is_err() {
            outcomes.count("dropped_queue_full", 1);
        }
    }
}

/// The background task that sends spans; [`Exporter::shutdown`] flushes it.
#[derive(Debug)]
pub struct Exporter {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Starts exporting to `settings.endpoint` (the connection is made on
    /// the first export, and remade after a failure); `Spans::off()` and no
    /// exporter when there is no endpoint. Must run inside tokio.
    ///
    /// # Errors
    /// An endpoint that is not an `http://` URI (named).
    pub fn start(settings: &Otlp, outcomes: SpanOutcomes) -> anyhow::Result<(Spans, Option<Self>)> {
        let Some(uri) = settings.endpoint_uri()? else { return Ok((Spans::off(), None)) };
        let url = uri.to_string();
        let endpoint = Endpoint::from(uri).connect_timeout(Duration::from_secs(5)).timeout(EXPORT_TIMEOUT);
        let client = TraceServiceClient::new(endpoint.connect_lazy());
        let (queue, spans) = mpsc::channel(QUEUE);
        let (stop, stopped) = oneshot::channel();
        let resource = resource(&settings.service_name);
        let task = tokio::spawn(run(spans, stopped, client, resource, outcomes.clone()));
        tracing::info!(endpoint = %url, "exporting call spans over OTLP");
        Ok((Spans { queue: Some((queue, outcomes)) }, Some(Self { stop, task })))
    }

    /// Sends what is queued, waiting at most `grace`.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop.send(());
        if tokio::time::timeout(grace, self.task).await.is_err() {
            tracing::warn!(grace_s = grace.as_secs_f64(), "OTLP: spans still queued at shutdown were dropped");
        }
    }
}

/// The process's resource: `service.name`, `service.version`, the SDK's language.
fn resource(service_name: &str) -> wire::Resource {
    wire::Resource {
        attributes: vec![
            text("service.name", service_name),
            text("service.version", env!("CARGO_PKG_VERSION")),
            text("telemetry.sdk.name", "volta"),
            text("telemetry.sdk.language", "rust"),
        ],
        dropped_attributes_count: 0,
    }
}

fn text(key: &str, value: &str) -> wire::KeyValue {
    wire::KeyValue {
        key: key.to_owned(),
        value: Some(wire::AnyValue { value: Some(wire::any_value::Value::StringValue(value.to_owned())) }),
    }
}

fn integer(key: &str, value: i64) -> wire::KeyValue {
    wire::KeyValue {
        key: key.to_owned(),
        value: Some(wire::AnyValue { value: Some(wire::any_value::Value::IntValue(value)) }),
    }
}

/// Whether a server span with `code` failed, as OpenTelemetry's gRPC
/// conventions have it: only the codes that mean the server could not do
/// its job (a caller's error, such as INVALID_ARGUMENT, leaves it unset).
fn server_error(code: tonic::Code) -> bool {
    use tonic::Code as C;
    match code {
        C::Unknown | C::DeadlineExceeded | C::Unimplemented | C::Internal | C::Unavailable | C::DataLoss => true,
        C::Ok
        | C::Cancelled
        | C::InvalidArgument
        | C::NotFound
        | C::AlreadyExists
        | C::PermissionDenied
        | C::ResourceExhausted
        | C::FailedPrecondition
        | C::Aborted
        | C::OutOfRange
        | C::Unauthenticated => false,
    }
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// `span` in OTLP's terms.
#[must_use]
pub fn encode(span: &CallSpan) -> wire::Span {
    let name = span.method.strip_prefix('/').unwrap_or(&span.method);
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    let error = server_error(span.code);
    // Bits 8 and 9: whether the parent is known to be remote, and is.
    let remote = if span.context.parent_span_id.is_some() { 0x300 } else { 0x100 };
    wire::Span {
        trace_id: span.context.trace_id.to_vec(),
        span_id: span.context.span_id.to_vec(),
        trace_state: String::new(),
        parent_span_id: span.context.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: u32::from(span.context.flags) | remote,
        name: name.to_owned(),
        kind: wire::span::SpanKind::Server.into(),
        start_time_unix_nano: unix_nanos(span.start),
        end_time_unix_nano: unix_nanos(span.end).max(unix_nanos(span.start)),
        attributes: vec![
            text("rpc.system", "grpc"),
            text("rpc.service", service),
            text("rpc.method", method),
            integer("rpc.grpc.status_code", i64::from(i32::from(span.code))),
            text("volta.request_id", &span.request_id),
        ],
        dropped_attributes_count: 0,
        status: Some(wire::Status {
            message: if error { span.message.clone().unwrap_or_default() } else { String::new() },
            code: if error { wire::status::StatusCode::Error } else { wire::status::StatusCode::Unset }.into(),
        }),
    }
}

/// Collects batches from `spans` and sends them until `stop`, then sends
/// what is left.
async fn run(
    mut spans: mpsc::Receiver<CallSpan>,
    mut stop: oneshot::Receiver<()>,
    mut client: TraceServiceClient<Channel>,
    resource: wire::Resource,
    outcomes: SpanOutcomes,
) {
    let mut failing = false;
    loop {
        let first = tokio::select! {
            span = spans.recv() => span,
            _ = &mut stop => None,
        };
        let Some(first) = first else { break };
        let mut batch = vec![first];
        let due = tokio::time::Instant::now() + BATCH_DELAY;
        let mut stopping = false;
        while batch.len() < BATCH {
            tokio::select! {
                span = spans.recv() => match span {
                    Some(span) => batch.push(span),
                    None => { stopping = true; break }
                },
                () = tokio::time::sleep_until(due) => break,
                _ = &mut stop => { stopping = true; break }
            }
        }
        export(&mut client, &resource, &batch, &outcomes, &mut failing).await;
        if stopping {
            break;
        }
    }
    // Shutdown: what is queued goes out in full batches.
    spans.close();
    let mut rest = Vec::new();
    while let Some(span) = spans.recv().await {
        rest.push(span);
    }
    for batch in rest.chunks(BATCH) {
        export(&mut client, &resource, batch, &outcomes, &mut failing).await;
    }
}

/// Sends one batch; counts what went and what was dropped, and warns once
/// when exports start failing (and says when they work again).
async fn export(
    client: &mut TraceServiceClient<Channel>,
    resource: &wire::Resource,
    batch: &[CallSpan],
    outcomes: &SpanOutcomes,
    failing: &mut bool,
) {
    let count = batch.len() as u64;
    let request = wire::ExportTraceServiceRequest {
        resource_spans: vec![wire::ResourceSpans {
            resource: Some(resource.clone()),
            scope_spans: vec![wire::ScopeSpans {
                scope: Some(wire::InstrumentationScope {
                    name: "volta-server".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                }),
                spans: batch.iter().map(encode).collect(),
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    match client.export(request).await {
        Ok(response) => {
            let rejected = response
                .into_inner()
                .partial_success
                .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0).min(count));
            outcomes.count("exported", count - rejected);
            if rejected > 0 {
                outcomes.count("rejected", rejected);
            }
            if std::mem::replace(failing, false) {
                tracing::info!("OTLP export works again");
            }
        }
        Err(status) => {
            outcomes.count("dropped_export_failed", count);
            if !std::mem::replace(failing, true) {
                tracing::warn!(
                    code = ?status.code(),
                    error = status.message(),
                    "OTLP export failed; spans are dropped (and counted) until the collector answers"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued_as_a_child() {
        let header = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::of(Some(header));
        assert_eq!(context.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.parent_span_id, Some([0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7]));
        assert!(context.sampled());
        let back = context.traceparent();
        assert!(back.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{back}");
        assert!(!back.contains("00f067aa0ba902b7"), "the server's span is its own: {back}");
        assert_eq!(TraceContext::of(Some(&back)).trace_id, context.trace_id);
    }

    #[test]
    fn an_unsampled_caller_stays_unsampled() {
        let context = TraceContext::of(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"));
        assert!(!context.sampled());
        assert!(context.traceparent().ends_with("-00"));
    }

    #[test]
    fn a_bad_traceparent_starts_a_sampled_trace() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            let context = TraceContext::of(Some(bad));
            assert!(context.parent_span_id.is_none(), "{bad:?}");
            assert!(context.sampled(), "{bad:?}");
            assert_ne!(context.trace_hex(), "4bf92f3577b34da6a3ce929d0e0e4736", "{bad:?}");
        }
        let a = TraceContext::of(None);
        let b = TraceContext::of(None);
        assert_ne!(a.trace_id, b.trace_id);
        assert_ne!(a.span_id, b.span_id);
    }

    #[test]
    fn a_span_follows_the_rpc_conventions() {
        let context = TraceContext::of(Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let span = CallSpan {
            context,
            method: "/volta.dispatch.v1.DispatchService/Solve".to_owned(),
            start,
            end: start + Duration::from_millis(250),
            code: tonic::Code::Internal,
            message: Some("boom".to_owned()),
            request_id: "r-1".to_owned(),
        };
        let wire = encode(&span);
        assert_eq!(wire.name, "volta.dispatch.v1.DispatchService/Solve");
        assert_eq!(wire.kind, i32::from(wire::span::SpanKind::Server));
        assert_eq!(wire.end_time_unix_nano - wire.start_time_unix_nano, 250_000_000);
        assert_eq!(wire.parent_span_id, context.parent_span_id.map(|p| p.to_vec()).unwrap_or_default());
        assert_eq!(wire.flags, 0x301);
        let status = wire.status.clone().unwrap_or_default();
        assert_eq!(status.code, i32::from(wire::status::StatusCode::Error));
        assert_eq!(status.message, "boom");
        let attribute = |key: &str| wire.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone());
        let string = |v: &str| Some(wire::AnyValue { value: Some(wire::any_value::Value::StringValue(v.to_owned())) });
        assert_eq!(attribute("rpc.service"), string("volta.dispatch.v1.DispatchService"));
        assert_eq!(attribute("rpc.method"), string("Solve"));
        assert_eq!(
            attribute("rpc.grpc.status_code"),
            Some(wire::AnyValue { value: Some(wire::any_value::Value::IntValue(13)) })
        );
        // A caller's mistake is not the server's error.
        let invalid = encode(&CallSpan { code: tonic::Code::InvalidArgument, ..span });
        assert_eq!(invalid.status.unwrap_or_default().code, i32::from(wire::status::StatusCode::Unset));
    }
}
