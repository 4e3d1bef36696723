//! One client call through the gateway yields spans from the gateway and
//! the backend that share one trace id, with correct parent links, at a
//! real OTLP receiver.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};

use common::{Options, Stack, bearer};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use rapport_kit::auth::Role;
use rapport_kit::config::Env;
use rapport_kit::telemetry::{self, TelemetryConfig};
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use tonic::{Request, Response, Status};

#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Span>>>,
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

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) => Some(text.clone()),
            Value::IntValue(number) => Some(number.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_through_the_gateway_is_one_trace() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let collector = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let env = Env::from_pairs([("RUST_LOG", "info")])
        .with("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{collector_addr}"));
    let guard = telemetry::init(&TelemetryConfig::from_env(&env, "gateway-trace-test").unwrap()).unwrap();

    let stack = Stack::start_with(Options { contacts: false, ..Options::default() }).await;
    let mut client = EchoServiceClient::with_interceptor(stack.channel(), bearer("tracer", &[Role::Viewer]));
    client.echo(EchoRequest { payload: b"traced".to_vec() }).await.unwrap();
    stack.stop().await;

    // Dropping the guard flushes the exporter.
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();
    collector.abort();
    let spans = receiver.spans.lock().unwrap().clone();
    let echo_spans: Vec<&Span> =
        spans.iter().filter(|span| attribute(span, "rpc.method").as_deref() == Some("Echo")).collect();
    // Gateway server span, gateway client span, backend server span.
    assert_eq!(echo_spans.len(), 3, "{echo_spans:#?}");
    let trace_id = &echo_spans[0].trace_id;
    assert!(echo_spans.iter().all(|span| &span.trace_id == trace_id), "one trace id: {echo_spans:#?}");
    let client_span =
        echo_spans.iter().find(|span| span.name == "forward" || span.kind == 3).expect("client span");
    assert_eq!(client_span.kind, 3, "the forward span is a client span");
    let servers: Vec<&&Span> = echo_spans.iter().filter(|span| span.kind == 2).collect();
    assert_eq!(servers.len(), 2, "{servers:#?}");
    let root = servers.iter().find(|span| span.parent_span_id.is_empty()).expect("a root server span");
    let backend = servers.iter().find(|span| !span.parent_span_id.is_empty()).expect("a backend server span");
    assert_eq!(client_span.parent_span_id, root.span_id, "forward is a child of the gateway's span");
    assert_eq!(backend.parent_span_id, client_span.span_id, "the backend continues the forward span");
    for span in &servers {
        assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(attribute(span, "rpc.service").as_deref(), Some("rapport.bench.v1.EchoService"));
        assert_eq!(attribute(span, "rpc.grpc.status_code").as_deref(), Some("0"));
    }
}
