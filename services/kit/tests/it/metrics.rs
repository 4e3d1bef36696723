//! The RPC metrics, scraped from the admin endpoint over real HTTP: every
//! call is counted with its real final code (from the headers of a
//! trailers-only response, or from the trailers at the end of a stream),
//! in-flight calls are visible while they run, and a call the client
//! abandons counts as CANCELLED.

use crate::support;

use rapport_kit::auth::Role;
use rapport_kit::testing::{http_get, sample};
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use support::echo::{ECHO, ITEMS, Running, client, echo, list_items, start};
use support::{eventually, within};
use tonic::transport::Channel;

fn requests(service: &str, method: &str, code: &str) -> String {
    format!(r#"rpc_server_requests_total{{service="{service}",method="{method}",code="{code}"}}"#)
}

fn per_method(name: &str, service: &str, method: &str) -> String {
    format!(r#"{name}{{service="{service}",method="{method}"}}"#)
}

/// Checks one series of the current exposition.
async fn check(running: &Running, series: &str, expected: f64) {
    let text = running.scrape().await;
    assert_eq!(sample(&text, series), Some(expected), "{series} in\n{text}");
}

#[tokio::test]
async fn calls_are_counted_with_their_real_final_code() {
    let running = start(None).await;
    let mut admin = client(running.addr, &[Role::Admin]);

    admin.echo(echo(b"one")).await.unwrap();
    admin.echo(echo(b"two")).await.unwrap();
    // A handler error: trailers-only, the code is in the response headers.
    let refused = admin.echo(echo(b"fail")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    // A stream that fails after a message: the code is in the trailers.
    let (received, status) = list_items(running.addr, None).await;
    assert_eq!((received, status.code()), (1, tonic::Code::NotFound));
    // Rejected by the auth layer (inside the trace layer): counted too.
    let channel = Channel::from_shared(format!("http://{}", running.addr)).unwrap().connect_lazy();
    let anonymous = EchoServiceClient::new(channel).echo(echo(b"hi")).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);

    let text = running.scrape().await;
    for (series, expected) in [
        (requests(ECHO, "Echo", "OK"), 2.0),
        (requests(ECHO, "Echo", "INVALID_ARGUMENT"), 1.0),
        (requests(ECHO, "Echo", "UNAUTHENTICATED"), 1.0),
        (requests(ITEMS, "List", "NOT_FOUND"), 1.0),
        (per_method("rpc_server_duration_seconds_count", ECHO, "Echo"), 4.0),
        (per_method("rpc_server_duration_seconds_count", ITEMS, "List"), 1.0),
        (per_method("rpc_server_in_flight", ECHO, "Echo"), 0.0),
        (per_method("rpc_server_in_flight", ITEMS, "List"), 0.0),
        (r#"rapport_auth_failures_total{reason="UNAUTHENTICATED_MISSING_TOKEN"}"#.to_owned(), 1.0),
    ] {
        assert_eq!(sample(&text, &series), Some(expected), "{series} in\n{text}");
    }
    // The stream's OK message did not count as an OK call.
    assert_eq!(sample(&text, &requests(ITEMS, "List", "OK")), None, "{text}");
    assert!(text.contains("# TYPE rpc_server_duration_seconds histogram"), "{text}");
    assert!(text.contains(r#"le="0.0001""#) && text.contains(r#"le="10.0""#), "{text}");
    running.stop().await;
}

#[tokio::test]
async fn in_flight_calls_are_visible_and_abandoned_calls_are_cancelled() {
    let mut running = start(None).await;
    let in_flight = per_method("rpc_server_in_flight", ECHO, "Echo");

    let mut admin = client(running.addr, &[Role::Admin]);
    let call = tokio::spawn(async move { admin.echo(echo(b"slow")).await });
    within("the slow call to start", running.started.recv()).await.unwrap();
    check(&running, &in_flight, 1.0).await;
    running.release.notify_one();
    assert_eq!(call.await.unwrap().unwrap().into_inner().payload, b"slow");
    check(&running, &in_flight, 0.0).await;
    check(&running, &requests(ECHO, "Echo", "OK"), 1.0).await;

    // The client gives up while the handler still waits.
    let mut admin = client(running.addr, &[Role::Admin]);
    let call = tokio::spawn(async move { admin.echo(echo(b"slow")).await });
    within("the second slow call to start", running.started.recv()).await.unwrap();
    call.abort();
    let cancelled = requests(ECHO, "Echo", "CANCELLED");
    eventually("the abandoned call to count as CANCELLED", || async {
        let text = running.scrape().await;
        sample(&text, &cancelled) == Some(1.0) && sample(&text, &in_flight) == Some(0.0)
    })
    .await;
    running.stop().await;
}

#[tokio::test]
async fn the_admin_endpoint_serves_metrics_and_health_only() {
    let running = start(None).await;
    let request = http::Request::get("/metrics").body(bytes::Bytes::new()).unwrap();
    let response = rapport_kit::testing::http1(running.metrics_addr, request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(response.body().ends_with(b"# EOF\n"));
    assert_eq!(
        http_get(running.metrics_addr, "/healthz").await.unwrap(),
        (http::StatusCode::OK, "ok\n".into())
    );
    assert_eq!(http_get(running.metrics_addr, "/other").await.unwrap().0, http::StatusCode::NOT_FOUND);
    let post = http::Request::post("/metrics").body(bytes::Bytes::new()).unwrap();
    let response = rapport_kit::testing::http1(running.metrics_addr, post).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::METHOD_NOT_ALLOWED);
    running.stop().await;
}
