//! OTLP export and W3C trace context: a span continuing an incoming
//! `traceparent` reaches a real OTLP receiver with the caller's trace id and
//! parent, and outgoing metadata carries the span on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rapport_kit::telemetry;
use rapport_kit::testing::otlp::TraceCollector;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_reach_the_collector() {
    let collector = TraceCollector::start().await.unwrap();
    let guard = collector.init_telemetry("kit-telemetry-test").unwrap();

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
    let spans = collector.spans();
    let exported = spans.iter().find(|span| span.name == "test/Call").expect("span exported");
    assert_eq!(hex(&exported.trace_id), TRACE_ID);
    assert_eq!(hex(&exported.parent_span_id), PARENT_ID);
    assert!(injected.contains(&hex(&exported.span_id)), "{injected}");
}
