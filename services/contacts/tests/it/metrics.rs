//! The Contacts metrics endpoint: every call shows up in
//! `rpc_server_requests_total` with its final code, scraped over HTTP.

use crate::common;

use common::{Options, TestApp, contact, create, failure, unique_email};
use rapport_kit::testing::{http_get, sample};
use rapport_proto::contacts::v1::GetContactRequest;

fn requests(method: &str, code: &str) -> String {
    format!(
        r#"rpc_server_requests_total{{service="rapport.contacts.v1.ContactService",method="{method}",code="{code}"}}"#
    )
}

#[tokio::test]
async fn calls_are_counted_on_the_metrics_endpoint() {
    let app = TestApp::spawn().await;
    let metrics_addr = app.metrics_addr.expect("metrics are served by default");
    let mut client = app.client().await;
    let created = create(&mut client, contact("Ada", &unique_email("ada"))).await;
    client.get_contact(GetContactRequest { id: created.id.clone() }).await.unwrap();
    let missing =
        failure(client.get_contact(GetContactRequest { id: uuid::Uuid::now_v7().to_string() }).await);
    assert_eq!(missing.code(), tonic::Code::NotFound);
    let refused = failure(app.anonymous().get_contact(GetContactRequest { id: created.id.clone() }).await);
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let (status, text) = http_get(metrics_addr, "/metrics").await.unwrap();
    assert_eq!(status, http::StatusCode::OK);
    for (series, expected) in [
        (requests("CreateContact", "OK"), 1.0),
        (requests("GetContact", "OK"), 1.0),
        (requests("GetContact", "NOT_FOUND"), 1.0),
        (requests("GetContact", "UNAUTHENTICATED"), 1.0),
        (r#"rapport_auth_failures_total{reason="UNAUTHENTICATED_MISSING_TOKEN"}"#.to_owned(), 1.0),
    ] {
        assert_eq!(sample(&text, &series), Some(expected), "{series} in\n{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let options = Options { env: vec![("CONTACTS_METRICS_ADDR".into(), "off".into())], ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    assert_eq!(app.metrics_addr, None);
    app.stop().await;
}
