//! The service starts, is healthy for exactly the services it routes, and
//! its reflection lists exactly those.

use crate::common;

use common::TestApp;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Pipeline's gRPC services, as the contracts declare them.
fn pipeline_services() -> Vec<&'static str> {
    rapport_proto::SERVICES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.starts_with("rapport.pipeline."))
        .collect()
}

#[tokio::test]
async fn health_is_serving_for_every_routed_service_and_unknown_for_others() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel());
    let services = pipeline_services();
    assert_eq!(services.len(), 5, "{services:?}");
    for service in services {
        let response = health.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap();
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "{service}");
    }
    // Contacts' service is not routed here: health must not claim it.
    let other = rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME;
    let status = health.check(HealthCheckRequest { service: other.to_owned() }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    app.stop().await;
}

#[tokio::test]
async fn reflection_lists_exactly_the_services_this_port_answers() {
    let app = TestApp::spawn().await;
    let names = rapport_kit::testing::reflected_services(app.channel()).await.unwrap();
    let mut expected = pipeline_services();
    expected.extend(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection"]);
    expected.sort_unstable();
    assert_eq!(names, expected);
    app.stop().await;
}
