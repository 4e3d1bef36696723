//! The service starts, is healthy for the services it routes, and its
//! reflection lists exactly those.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::common::TestApp;

fn support_services() -> Vec<&'static str> {
    rapport_proto::SERVICES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| name.starts_with("rapport.support."))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[tokio::test]
async fn health_and_reflection_cover_exactly_the_support_services() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel());
    for service in support_services() {
        let response = health.check(HealthCheckRequest { service: service.to_owned() }).await.unwrap();
        assert_eq!(response.into_inner().status(), ServingStatus::Serving, "{service}");
    }
    let mut names = rapport_kit::testing::reflected_services(app.channel()).await.unwrap();
    names.retain(|name| name.starts_with("rapport."));
    assert_eq!(names, support_services());
    app.stop().await;
}
