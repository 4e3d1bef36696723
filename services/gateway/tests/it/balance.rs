//! Client-side balancing over every endpoint of a backend, ejection of
//! unhealthy endpoints and their re-admission, and UNAVAILABLE (never a
//! hang) when a backend is down.

use crate::common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{bearer, echo, eventually, sample, start_gateway};
use rapport_kit::auth::Role;
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use tonic::Code;

type Echo = EchoServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, common::Bearer>,
>;

fn client(addr: std::net::SocketAddr) -> Echo {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    EchoServiceClient::with_interceptor(channel, bearer("balance-user", &[Role::Viewer]))
}

/// Who answered each of `calls` calls (all must succeed).
async fn answered_by(client: &mut Echo, calls: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for _ in 0..calls {
        let response = client.echo(EchoRequest { payload: b"x".to_vec() }).await.unwrap();
        let addr = response.metadata().get("x-echo-addr").unwrap().to_str().unwrap().to_owned();
        *counts.entry(addr).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn calls_spread_over_endpoints_and_skip_ejected_ones() {
    let first = echo::start().await;
    let second = echo::start().await;
    let (first_addr, second_addr) = (first.addr, second.addr);
    let (gateway, metrics_addr) =
        start_gateway(&[("bench", format!("{first_addr},{second_addr}"))], &[]).await;
    let mut client = client(gateway.addr);

    let counts = answered_by(&mut client, 60).await;
    assert_eq!(counts.len(), 2, "both endpoints should take calls: {counts:?}");
    assert!(counts.values().all(|count| *count >= 10), "{counts:?}");

    // One endpoint goes away: every call still succeeds, on the other.
    first.stop().await;
    let counts = answered_by(&mut client, 30).await;
    assert_eq!(counts.keys().collect::<Vec<_>>(), [&second_addr.to_string()]);
    let health = |text: &str, addr: &std::net::SocketAddr| {
        sample(
            text,
            "gateway_backend_endpoint_healthy",
            &[("backend", "bench"), ("endpoint", &addr.to_string())],
        )
    };
    let text = common::http_get(metrics_addr, "/metrics").await.1;
    assert_eq!(health(&text, &first_addr), 0.0, "{text}");
    assert_eq!(health(&text, &second_addr), 1.0);

    // It comes back on the same port: its health check re-admits it.
    let revived = echo::start_on(first_addr).await;
    eventually("the endpoint to be re-admitted", || async {
        health(&common::http_get(metrics_addr, "/metrics").await.1, &first_addr) == 1.0
    })
    .await;
    let counts = answered_by(&mut client, 60).await;
    assert_eq!(counts.len(), 2, "{counts:?}");

    gateway.stop().await;
    revived.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn a_backend_that_is_down_is_unavailable_at_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (gateway, _) = start_gateway(&[("bench", closed.to_string())], &[]).await;
    let mut client = client(gateway.addr);
    for _ in 0..3 {
        let mut request = tonic::Request::new(EchoRequest { payload: b"x".to_vec() });
        request.set_timeout(Duration::from_secs(10));
        let started = Instant::now();
        let status = client.echo(request).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_backend_ageing_its_connections_loses_no_calls() {
    // The backend closes each connection after a second (GOAWAY, then a
    // second's grace): the gateway must open a new one and lose no call,
    // as it must every `GRPC_MAX_CONNECTION_AGE` in production.
    let aged =
        [("GRPC_MAX_CONNECTION_AGE", "1s".to_owned()), ("GRPC_MAX_CONNECTION_AGE_GRACE", "1s".to_owned())];
    let backend = echo::start_with(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), &aged).await;
    // Rate limits off: this test's burst is not what it is about.
    let no_limit = [("RATE_LIMIT_PER_SECOND", "0".to_owned())];
    let (gateway, _) = start_gateway(&[("bench", backend.addr.to_string())], &no_limit).await;
    let channel =
        tonic::transport::Channel::from_shared(format!("http://{}", gateway.addr)).unwrap().connect_lazy();
    let client = EchoServiceClient::with_interceptor(channel, bearer("ageing-user", &[Role::Viewer]));
    let started = Instant::now();
    let mut calls = 0;
    // Several connection ages, with calls in flight when each ends.
    while started.elapsed() < Duration::from_millis(3500) {
        let batch = (0..8).map(|_| {
            let mut client = client.clone();
            async move { client.echo(EchoRequest { payload: b"x".to_vec() }).await }
        });
        for result in futures::future::join_all(batch).await {
            let status = result.err().map(|status| format!("{:?}: {}", status.code(), status.message()));
            assert_eq!(status, None, "call {calls} failed");
            calls += 1;
        }
    }
    assert!(calls > 100, "only {calls} calls");
    gateway.stop().await;
    backend.stop().await;
}
