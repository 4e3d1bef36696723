//! The `rpc` span of a call carries the status the client received: for a
//! stream that fails after a message, the code from the trailers, exported
//! to a real OTLP receiver.

use crate::support;

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use rapport_kit::auth::Role;
use rapport_kit::testing::otlp::{self, Traced};
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
    let collector = otlp::shared().unwrap();
    let traced = Traced::new();

    let running = start(None).await;
    let (received, status) = list_items(running.addr, Some(&traced)).await;
    assert_eq!((received, status.code()), (1, tonic::Code::NotFound));
    let mut request = tonic::Request::new(echo(b"ok"));
    traced.inject(request.metadata_mut());
    client(running.addr, &[Role::Admin]).echo(request).await.unwrap();
    // Stopping drains the connections, so every call's span has ended.
    running.stop().await;

    let spans = tokio::task::spawn_blocking(move || collector.spans_of(&traced)).await.unwrap();
    let named = |name: &str| spans.iter().find(|span| span.name == name).cloned().expect(name);
    let stream = named("test.v1.Items/List");
    assert_eq!(grpc_status_code(&stream), Some(5), "{stream:?}");
    assert_eq!(stream.status.unwrap().code, StatusCode::Error as i32);
    let unary = named("rapport.bench.v1.EchoService/Echo");
    assert_eq!(grpc_status_code(&unary), Some(0), "{unary:?}");
    assert_ne!(unary.status.map(|status| status.code), Some(StatusCode::Error as i32));
}
