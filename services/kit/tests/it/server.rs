//! The server bootstrap: authentication on every call, open health and
//! reflection, and graceful shutdown that lets in-flight calls finish.

use crate::support;

use std::time::Duration;

use rapport_kit::auth::Role;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use support::echo::{ECHO, client, echo, start, start_with_readiness};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn calls_need_a_token_with_an_allowed_role() {
    let running = start(None).await;
    let mut admin = client(running.addr, &[Role::Admin]);
    assert_eq!(admin.echo(echo(b"hi")).await.unwrap().into_inner().payload, b"hi");

    let mut viewer = client(running.addr, &[Role::Viewer]);
    let denied = viewer.echo(echo(b"hi")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let channel = Channel::from_shared(format!("http://{}", running.addr)).unwrap().connect_lazy();
    let anonymous = EchoServiceClient::new(channel.clone()).echo(echo(b"hi")).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    running.stop().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish_then_stops_accepting() {
    let mut running = start(None).await;
    let mut admin = client(running.addr, &[Role::Admin]);
    let in_flight = tokio::spawn(async move { admin.echo(echo(b"slow")).await });
    running.started.recv().await.unwrap();

    running.trigger.fire();
    // The server keeps running while the call is in flight.
    let still_running = tokio::time::timeout(Duration::from_millis(300), &mut running.server).await.is_err();
    assert!(still_running, "the server stopped before its in-flight call finished");

    running.release.notify_one();
    let answer = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(answer.payload, b"slow");
    tokio::time::timeout(Duration::from_secs(10), running.server).await.unwrap().unwrap().unwrap();

    let mut late = client(running.addr, &[Role::Admin]);
    let refused = late.echo(echo(b"late")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
    // The admin endpoint stopped with the server.
    assert!(rapport_kit::testing::http_get(running.metrics_addr, "/healthz").await.is_err());
}

/// The health status of `service`.
async fn health(channel: Channel, service: &str) -> i32 {
    let request = HealthCheckRequest { service: service.to_owned() };
    HealthClient::new(channel).check(request).await.unwrap().into_inner().status
}

#[tokio::test]
async fn liveness_stays_serving_while_the_server_is_not_ready() {
    let running = start_with_readiness(None, Box::new(|| Box::pin(async { false }))).await;
    let channel = Channel::from_shared(format!("http://{}", running.addr)).unwrap().connect_lazy();
    // Readiness (what Kubernetes readiness probes ask): the server and each service.
    assert_eq!(health(channel.clone(), "").await, ServingStatus::NotServing as i32);
    assert_eq!(health(channel.clone(), ECHO).await, ServingStatus::NotServing as i32);
    // Liveness (startup and liveness probes): the process serves, so no restart.
    assert_eq!(
        health(channel.clone(), rapport_kit::server::LIVENESS_SERVICE).await,
        ServingStatus::Serving as i32
    );
    assert_eq!(
        rapport_kit::server::LIVENESS_SERVICE,
        "liveness",
        "the Helm chart's probes ask for this name"
    );
    running.stop().await;
}
