//! OTLP export and W3C trace context: a span continuing an incoming
//! `traceparent` reaches a real OTLP receiver with the caller's trace id and
//! parent, and outgoing metadata carries the span on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use rapport_kit::config::Env;
use rapport_kit::telemetry::{self, TelemetryConfig};
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<opentelemetry_proto::tonic::trace::v1::Span>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
        Ok(Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_reach_the_collector() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(receiver.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let collector = tokio::spawn(server);

    let env =
        Env::from_pairs([("RUST_LOG", "info")]).with("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"));
    let guard = telemetry::init(&TelemetryConfig::from_env(&env, "kit-telemetry-test").unwrap()).unwrap();

    let mut headers = http::HeaderMap::new();
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    headers.insert("traceparent", traceparent.parse().unwrap());
    let span = tracing::info_span!("rpc", otel.name = "test/Call");
    telemetry::continue_trace(&span, &headers);
    let mut outgoing = tonic::metadata::MetadataMap::new();
    span.in_scope(|| telemetry::inject_trace(&mut outgoing));
    drop(span);

    let injected = outgoing.get("traceparent").unwrap().to_str().unwrap().to_owned();
    assert!(injected.starts_with(&format!("00-{TRACE_ID}-")), "{injected}");
    assert!(!injected.contains(PARENT_ID), "the outgoing parent is our span, not the caller's");

    // Dropping the guard flushes the exporter.
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();
    let spans = receiver.spans.lock().unwrap().clone();
    let exported = spans.iter().find(|span| span.name == "test/Call").expect("span exported");
    assert_eq!(hex(&exported.trace_id), TRACE_ID);
    assert_eq!(hex(&exported.parent_span_id), PARENT_ID);
    assert!(injected.contains(&hex(&exported.span_id)), "{injected}");
    collector.abort();
}
