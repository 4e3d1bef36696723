//! The first end-to-end check: create, read back, health.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, contact, unique_email};
use rapport_proto::contacts::v1::{CreateContactRequest, GetContactRequest};

#[tokio::test]
async fn create_then_get_round_trips() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let email = unique_email("ada");
    let created = client
        .create_contact(CreateContactRequest {
            contact: Some(contact("Ada", &email)),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.email, email);
    assert!(!created.etag.is_empty());
    let fetched = client
        .get_contact(GetContactRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, created);

    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: rapport_contacts::SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    app.stop().await;
}
