//! The first end-to-end check: create, read back, health.

use crate::common;

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
    let fetched =
        client.get_contact(GetContactRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(fetched, created);

    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME.into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    app.stop().await;
}

#[tokio::test]
async fn reflection_lists_only_the_services_this_port_answers_without_credentials() {
    let app = TestApp::spawn().await;
    let names = rapport_kit::testing::reflected_services(app.channel()).await.unwrap();
    // Only what this port answers: not Pipeline's services, the gateway's
    // or the bench's.
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            rapport_proto::contacts::v1::activity_service_server::SERVICE_NAME,
            rapport_proto::contacts::v1::assignment_service_server::SERVICE_NAME,
            rapport_proto::contacts::v1::consent_service_server::SERVICE_NAME,
            rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME,
            rapport_proto::contacts::v1::lifecycle_service_server::SERVICE_NAME,
            rapport_proto::contacts::v1::scoring_service_server::SERVICE_NAME,
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn requests_over_the_size_limit_are_refused_before_they_reach_the_service() {
    let options =
        common::Options { env: vec![("GRPC_MAX_MESSAGE_BYTES".into(), "2048".into())], ..Default::default() };
    let app = TestApp::spawn_with(options).await;
    let mut client = app.client().await;
    let email = unique_email("big");
    let mut big = contact("Big", &email);
    // 40 tags of 60 characters: valid, but about 2.5 KB on the wire.
    big.tags = (0..40).map(|n| format!("{n:02}{}", "x".repeat(58))).collect();
    let refused = client
        .create_contact(CreateContactRequest { contact: Some(big), request_id: String::new() })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::OutOfRange, "{refused:?}");

    // Nothing was created, and normal requests still work.
    let listed = client
        .list_contacts(rapport_proto::contacts::v1::ListContactsRequest {
            filter: format!("email = \"{email}\""),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.contacts.is_empty());
    client
        .create_contact(CreateContactRequest {
            contact: Some(contact("Small", &email)),
            request_id: String::new(),
        })
        .await
        .unwrap();
    app.stop().await;
}
