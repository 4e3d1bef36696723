//! OTLP export and W3C trace context: a span continuing an incoming
//! `traceparent` reaches a real OTLP receiver with the caller's trace id and
//! parent, and outgoing metadata carries the span on.

use rapport_kit::telemetry;
use rapport_kit::testing::otlp::{self, Traced};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_continue_the_callers_trace_and_reach_the_collector() {
    let collector = otlp::shared().unwrap();
    let traced = Traced::new();

    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", traced.traceparent().parse().unwrap());
    let span = tracing::info_span!("rpc", otel.name = "test/Call");
    telemetry::continue_trace(&span, &headers);
    let mut outgoing = tonic::metadata::MetadataMap::new();
    span.in_scope(|| telemetry::inject_trace(&mut outgoing));
    drop(span);

    let injected = outgoing.get("traceparent").unwrap().to_str().unwrap().to_owned();
    assert!(injected.starts_with(&format!("00-{}-", hex(&traced.trace_id))), "{injected}");
    assert!(
        !injected.contains(&hex(&traced.parent_span_id)),
        "the outgoing parent is our span, not the caller's"
    );

    let spans = tokio::task::spawn_blocking(move || collector.spans_of(&traced)).await.unwrap();
    let exported = spans.iter().find(|span| span.name == "test/Call").expect("span exported");
    assert!(injected.contains(&hex(&exported.span_id)), "{injected}");
    assert_eq!(spans.len(), 1, "{spans:#?}");
}
