//! Traces over OTLP: a real `volta serve` exporting to a collector that
//! this test runs (tonic, on a loopback port): the caller's trace is
//! continued, spans are named and labelled by OpenTelemetry's RPC
//! conventions, an unsampled caller is not exported, what is queued at
//! SIGTERM still goes out, and a collector that is down costs no call.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use volta_server::otlp::wire::trace_service_server::{TraceService, TraceServiceServer};
use volta_server::otlp::wire::{self, ExportTraceServiceRequest, ExportTraceServiceResponse};

use super::{Server, case_json, invalid_case, metrics, pb};

/// A collector that keeps every span it is sent, with its resource.
#[derive(Clone, Default)]
struct Collector {
    received: Arc<Mutex<Vec<(wire::Resource, wire::Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut received = self.received.lock().expect("lock");
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            for scope in resource_spans.scope_spans {
                received.extend(scope.spans.into_iter().map(|span| (resource.clone(), span)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Collector {
    /// Serves on an ephemeral loopback port; returns its `http://` address.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let service = TraceServiceServer::new(self.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    /// The spans received so far.
    fn spans(&self) -> Vec<(wire::Resource, wire::Span)> {
        self.received.lock().expect("lock").clone()
    }

    /// Waits (up to a minute, polling; the exporter batches for a second)
    /// until `count` spans have come.
    async fn wait_for(&self, count: usize) -> Vec<(wire::Resource, wire::Span)> {
        for _ in 0..600 {
            let spans = self.spans();
            if spans.len() >= count {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the collector received {} spans, not {count}", self.spans().len());
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &wire::Span, key: &str) -> Option<wire::any_value::Value> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.clone()).and_then(|v| v.value)
}

fn text(value: &str) -> Option<wire::any_value::Value> {
    Some(wire::any_value::Value::StringValue(value.to_owned()))
}

/// A Validate request with the given trace and request id headers.
fn validate(case: pb::CaseText, traceparent: Option<&str>, request_id: &str) -> tonic::Request<pb::ValidateRequest> {
    let mut request = tonic::Request::new(pb::ValidateRequest { case: Some(case) });
    if let Some(traceparent) = traceparent {
        request.metadata_mut().insert("traceparent", traceparent.parse().expect("ascii"));
    }
    request.metadata_mut().insert("x-request-id", request_id.parse().expect("ascii"));
    request
}

#[tokio::test]
async fn calls_are_exported_as_server_spans_of_the_callers_trace() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let env = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_SERVICE_NAME", "volta-under-test")];
    let server = Server::start_in_temp(&[], &env);
    let mut client = server.client().await;

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traced = format!("00-{caller_trace}-{caller_span}-01");
    let reply = client.validate(validate(case_json("campus.toml"), Some(&traced), "traced-1")).await.expect("validate");
    let back = reply.metadata().get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    // An unsampled caller: answered, not exported.
    let unsampled = format!("00-{caller_trace}-{caller_span}-00");
    client.validate(validate(case_json("campus.toml"), Some(&unsampled), "unsampled")).await.expect("validate");
    // No trace context: a trace of its own; a request the server refuses.
    let mut forecaster = server.forecaster().await;
    let refused = forecaster
        .get_model(tonic::Request::new(volta_api::pb::forecast::GetModelRequest { name: String::new() }))
        .await
        .expect_err("an empty name is refused");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let spans = collector.wait_for(2).await;
    // Whatever else arrives would be the unsampled call: give it time to.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let spans = if spans.len() > 2 { spans } else { collector.spans() };
    assert_eq!(spans.len(), 2, "{spans:#?}");

    let (resource, span) = spans
        .iter()
        .find(|(_, s)| hex(&s.trace_id) == caller_trace)
        .cloned()
        .expect("the caller's trace continues here");
    let service_name = resource.attributes.iter().find(|a| a.key == "service.name").and_then(|a| a.value.clone());
    assert_eq!(service_name.and_then(|v| v.value), text("volta-under-test"));
    assert_eq!(hex(&span.parent_span_id), caller_span, "a child of the caller's span");
    assert_eq!(back, format!("00-{caller_trace}-{}-01", hex(&span.span_id)), "the echoed traceparent names this span");
    assert_eq!(span.name, "volta.dispatch.v1.DispatchService/Validate");
    assert_eq!(span.kind, i32::from(wire::span::SpanKind::Server));
    assert!(span.end_time_unix_nano >= span.start_time_unix_nano && span.start_time_unix_nano > 0);
    assert_eq!(attribute(&span, "rpc.system"), text("grpc"));
    assert_eq!(attribute(&span, "rpc.service"), text("volta.dispatch.v1.DispatchService"));
    assert_eq!(attribute(&span, "rpc.method"), text("Validate"));
    assert_eq!(attribute(&span, "rpc.grpc.status_code"), Some(wire::any_value::Value::IntValue(0)));
    assert_eq!(attribute(&span, "volta.request_id"), text("traced-1"));

    let (_, own) = spans.iter().find(|(_, s)| hex(&s.trace_id) != caller_trace).cloned().expect("a span of its own");
    assert!(own.parent_span_id.is_empty(), "a root span");
    assert_eq!(own.name, "volta.forecast.v1.ForecastService/GetModel");
    assert_eq!(attribute(&own, "rpc.grpc.status_code"), Some(wire::any_value::Value::IntValue(3)));
    // INVALID_ARGUMENT is the caller's error, not the server's: status unset.
    assert_eq!(own.status.unwrap_or_default().code, i32::from(wire::status::StatusCode::Unset));

    let text = metrics(&server).await;
    assert!(text.contains(r#"volta_otlp_spans_total{outcome="exported"} 2"#), "{text}");
}

#[tokio::test]
async fn spans_queued_at_sigterm_still_reach_the_collector() {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let server = Server::start_in_temp(&[], &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint.as_str())]);
    let mut client = server.client().await;
    for i in 0..5 {
        client.validate(validate(invalid_case(), None, &format!("before-stop-{i}"))).await.expect("validate");
    }
    drop(client);
    // Stop at once: the batch (sent after a second) is still queued. The
    // wait blocks a thread of its own, so that the collector keeps serving.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let exit = tokio::task::spawn_blocking(move || server.child.wait().expect("exit")).await.expect("join");
    assert!(exit.success(), "{exit:?}");
    let spans = collector.wait_for(5).await;
    assert_eq!(spans.len(), 5);
}

#[tokio::test]
async fn a_collector_that_is_down_costs_no_call() {
    // A port nobody listens on: bound, then released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let endpoint = format!("http://{addr}");
    let server = Server::start_in_temp(&[], &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())]);
    let mut client = server.client().await;
    for i in 0..3 {
        let reply =
            client.validate(validate(case_json("campus.toml"), None, &format!("down-{i}"))).await.expect("validate");
        assert!(reply.get_ref().ok);
    }
    // The failed export is counted once its batch is tried.
    let mut text = String::new();
    for _ in 0..600 {
        text = metrics(&server).await;
        if text.contains(r#"volta_otlp_spans_total{outcome="dropped_export_failed"} 3"#) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(r#"volta_otlp_spans_total{outcome="dropped_export_failed"} 3"#), "{text}");
    assert!(server.is_running());
}

#[test]
fn a_tls_collector_endpoint_is_refused_at_start_by_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_volta"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4317")
        .output()
        .expect("volta serve");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("otlp.endpoint") && stderr.contains("TLS"), "{stderr}");
}
