//! The service starts, is healthy, and serves every contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn serves_health_for_every_service() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel());
    for service in rapport_pipeline::SERVICE_NAMES {
        let response = health.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap();
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "{service}");
    }
    app.stop().await;
}
