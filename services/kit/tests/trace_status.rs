//! The `rpc` span of a call carries the status the client received: for a
//! stream that fails after a message, the code from the trailers, exported
//! to a real OTLP receiver.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use rapport_kit::auth::Role;
use rapport_kit::testing::otlp::TraceCollector;
use support::echo::{client, echo, list_items, start};

fn grpc_status_code(span: &Span) -> Option<i64> {
    span.attributes.iter().find(|attribute| attribute.key == "rpc.grpc.status_code").and_then(|attribute| {
        match attribute.value.as_ref()?.value.as_ref()? {
            Value::IntValue(code) => Some(*code),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_end_with_the_final_status() {
    let collector = TraceCollector::start().await.unwrap();
    let guard = collector.init_telemetry("kit-trace-status-test").unwrap();

    let running = start(None).await;
    let (received, status) = list_items(running.addr).await;
    assert_eq!((received, status.code()), (1, tonic::Code::NotFound));
    client(running.addr, &[Role::Admin]).echo(echo(b"ok")).await.unwrap();
    // Stopping drains the connections, so every call's span has ended.
    running.stop().await;

    // Dropping the guard flushes the exporter.
    tokio::task::spawn_blocking(move || drop(guard)).await.unwrap();
    let spans = collector.spans();
    let named = |name: &str| spans.iter().find(|span| span.name == name).cloned().expect(name);
    let stream = named("test.v1.Items/List");
    assert_eq!(grpc_status_code(&stream), Some(5), "{stream:?}");
    assert_eq!(stream.status.unwrap().code, StatusCode::Error as i32);
    let unary = named("rapport.bench.v1.EchoService/Echo");
    assert_eq!(grpc_status_code(&unary), Some(0), "{unary:?}");
    assert_ne!(unary.status.map(|status| status.code), Some(StatusCode::Error as i32));
}
