//! Authentication and the role table: who may call what, and that a
//! refused call changes nothing.

use crate::common;

use std::time::Duration;

use common::{Bearer, Client, Options, TestApp, contact, create, failure, get, mask, reason};
use rapport_kit::auth::{ApiKeyEntry, Principal, Role, generate_key, mint_hs256};
use rapport_kit::testing::{DEV_AUDIENCE, DEV_ISSUER};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{
    Contact, CreateContactRequest, DeleteContactRequest, GetContactRequest, ListContactsRequest,
    SearchContactsRequest, UndeleteContactRequest, UpdateContactRequest,
};
use tonic::{Code, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Asserts `result` was refused with `code` and `reason`.
fn check<T: std::fmt::Debug>(result: Result<tonic::Response<T>, Status>, code: Code, reason_: &str) {
    let status = failure(result);
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(&status), reason_, "{status:?}");
}

fn create_request(email: &str) -> CreateContactRequest {
    CreateContactRequest { contact: Some(contact("Ada", email)), request_id: String::new() }
}

fn delete_request(contact: &Contact) -> DeleteContactRequest {
    DeleteContactRequest { id: contact.id.clone(), etag: String::new() }
}

async fn live_count(client: &mut Client) -> usize {
    client.list_contacts(ListContactsRequest::default()).await.unwrap().into_inner().contacts.len()
}

#[tokio::test]
async fn calls_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let mut admin = app.client().await;
    let existing = create(&mut admin, contact("Ada", "ada@example.com")).await;

    let mut anonymous = app.anonymous();
    let missing = "UNAUTHENTICATED_MISSING_TOKEN";
    check(
        anonymous.get_contact(GetContactRequest { id: existing.id.clone() }).await,
        Code::Unauthenticated,
        missing,
    );
    check(anonymous.create_contact(create_request("eve@example.com")).await, Code::Unauthenticated, missing);
    check(anonymous.list_contacts(ListContactsRequest::default()).await, Code::Unauthenticated, missing);

    let foreign = mint_hs256(
        b"some-other-secret",
        DEV_ISSUER,
        DEV_AUDIENCE,
        "mallory",
        &[Role::Admin],
        Duration::from_secs(600),
    )
    .unwrap();
    for token in [foreign.as_str(), "not-a-jwt"] {
        let header = format!("Bearer {token}").parse().unwrap();
        let mut forged = ContactServiceClient::with_interceptor(app.channel(), Bearer(header));
        check(
            forged.delete_contact(delete_request(&existing)).await,
            Code::Unauthenticated,
            "UNAUTHENTICATED_INVALID_TOKEN",
        );
    }
    assert_eq!(get(&mut admin, &existing.id).await, existing);
    assert_eq!(live_count(&mut admin).await, 1);
}

#[tokio::test]
async fn roles_decide_who_writes_and_who_deletes() {
    let app = TestApp::spawn().await;
    let mut admin = app.client().await;
    let existing = create(&mut admin, contact("Ada", "ada@example.com")).await;
    let denied = "PERMISSION_DENIED_ROLE";

    for role in [Role::Viewer, Role::SupportAgent] {
        let mut reader = app.client_as("reader-1", &[role]).await;
        assert_eq!(get(&mut reader, &existing.id).await, existing);
        let search = SearchContactsRequest { query: "ada".into(), ..Default::default() };
        assert_eq!(reader.search_contacts(search).await.unwrap().into_inner().results.len(), 1);
        check(reader.create_contact(create_request("new@example.com")).await, Code::PermissionDenied, denied);
        check(
            reader
                .update_contact(UpdateContactRequest {
                    contact: Some(Contact { job_title: "Intruder".into(), ..existing.clone() }),
                    update_mask: mask(&["job_title"]),
                })
                .await,
            Code::PermissionDenied,
            denied,
        );
        check(reader.delete_contact(delete_request(&existing)).await, Code::PermissionDenied, denied);
    }

    let mut rep = app.client_for(&Principal::new("rep-7", vec![Role::SalesRep]).with_teams(&["east"]));
    let own = create(&mut rep, contact("Grace", "grace@example.com")).await;
    check(rep.delete_contact(delete_request(&own)).await, Code::PermissionDenied, denied);
    check(
        rep.undelete_contact(UndeleteContactRequest { id: own.id.clone(), etag: String::new() }).await,
        Code::PermissionDenied,
        denied,
    );
    assert_eq!(get(&mut admin, &existing.id).await, existing);
    assert_eq!(get(&mut admin, &own.id).await, own);
    assert_eq!(live_count(&mut admin).await, 2);

    // A manager changes the records of their teams.
    let mut manager = app
        .client_for(&Principal::new("boss-1", vec![Role::Viewer, Role::SalesManager]).with_teams(&["east"]));
    let deleted = manager.delete_contact(delete_request(&own)).await.unwrap().into_inner();
    assert!(deleted.delete_time.is_some());
    assert_eq!(live_count(&mut admin).await, 1);
}

#[tokio::test]
async fn health_needs_no_token() {
    let app = TestApp::spawn().await;
    let mut health = HealthClient::new(app.channel());
    for service in ["", rapport_proto::contacts::v1::contact_service_server::SERVICE_NAME] {
        let status =
            health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner().status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
}

/// An API key client: `x-api-key` on every call.
#[derive(Clone)]
struct ApiKey(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for ApiKey {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("x-api-key", self.0.clone());
        Ok(request)
    }
}

#[tokio::test]
async fn api_keys_from_the_keys_file_are_accepted() {
    let key = generate_key();
    let entry = ApiKeyEntry::new(&key, "erp-sync", &[Role::Viewer]);
    let file =
        std::env::temp_dir().join(format!("rapport-contacts-keys-{}.json", uuid::Uuid::now_v7().simple()));
    let document = format!(
        r#"{{"keys":[{{"sha256":"{}","subject":"{}","roles":["{}"]}}]}}"#,
        entry.sha256, entry.subject, entry.roles[0]
    );
    std::fs::write(&file, document).unwrap();
    let options =
        Options { env: vec![("API_KEYS_FILE".into(), file.display().to_string())], ..Options::default() };
    let app = TestApp::spawn_with(options).await;
    let mut admin = app.client().await;
    let existing = create(&mut admin, contact("Ada", "ada@example.com")).await;

    let with_key =
        |key: &str| ContactServiceClient::with_interceptor(app.channel(), ApiKey(key.parse().unwrap()));
    let mut integration = with_key(&key);
    let fetched = integration.get_contact(GetContactRequest { id: existing.id.clone() }).await.unwrap();
    assert_eq!(fetched.into_inner().id, existing.id);
    // The key's roles apply: a viewer cannot create.
    check(
        integration.create_contact(create_request("eve@example.com")).await,
        Code::PermissionDenied,
        "PERMISSION_DENIED_ROLE",
    );
    check(
        with_key(&generate_key()).get_contact(GetContactRequest { id: existing.id.clone() }).await,
        Code::Unauthenticated,
        "UNAUTHENTICATED_INVALID_API_KEY",
    );
    app.stop().await;
    std::fs::remove_file(&file).unwrap();
}
