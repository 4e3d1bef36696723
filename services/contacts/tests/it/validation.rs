//! Bad input: each case fails with its code, reason and field, and changes
//! nothing.

use crate::common;

use common::{
    Client, TestApp, contact, create, create_company, error_metadata, failure, get, ids, list_all, mask,
    reason, resource_name, unique_email, violated_fields,
};
use rapport_proto::contacts::v1::{
    BatchGetContactsRequest, Contact, CreateContactRequest, DeleteCompanyRequest, DeleteContactRequest,
    GetContactRequest, ListContactsRequest, UpdateContactRequest,
};
use tonic::{Code, Status};

/// Asserts `status` has `code`, `reason` and names exactly `fields`.
fn check(status: &Status, code: Code, reason_: &str, fields: &[&str]) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), reason_, "{status:?}");
    assert_eq!(violated_fields(status), fields, "{status:?}");
}

async fn try_create(client: &mut Client, contact: Contact) -> Status {
    failure(
        client
            .create_contact(CreateContactRequest { contact: Some(contact), request_id: String::new() })
            .await,
    )
}

/// Every contact, deleted ones included.
async fn everyone(client: &mut Client) -> Vec<Contact> {
    list_all(client, ListContactsRequest { page_size: 100, show_deleted: true, ..Default::default() }).await
}

#[tokio::test]
async fn invalid_contacts_are_refused_field_by_field() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let valid = create(&mut client, contact("Valid", &unique_email("valid"))).await;
    let c = &mut client;
    let bad = |edit: fn(&mut Contact)| {
        let mut input = contact("Ada", &unique_email("ada"));
        edit(&mut input);
        input
    };
    let invalid = "INVALID_ARGUMENT";

    let status = try_create(c, bad(|x| x.email = "ada.example.com".into())).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.email"]);
    let status = try_create(c, bad(|x| x.email = "ada@@example.com".into())).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.email"]);
    let status = try_create(c, bad(|x| x.given_name = String::new())).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.given_name"]);
    let status = try_create(c, bad(|x| x.given_name = "   ".into())).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.given_name"]);
    let status = try_create(c, bad(|x| x.given_name = "x".repeat(201))).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.given_name"]);
    let status = try_create(c, bad(|x| x.family_name = "é".repeat(201))).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.family_name"]);
    let status = try_create(c, bad(|x| x.phone = "call me maybe".into())).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.phone"]);
    let status = try_create(c, bad(|x| x.lifecycle_stage = 42)).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.lifecycle_stage"]);
    let status = try_create(c, bad(|x| x.tags = vec!["ok".into(), " ".into()])).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.tags"]);
    let status = try_create(c, bad(|x| x.company_id = "acme".into())).await;
    check(&status, Code::InvalidArgument, invalid, &["contact.company_id"]);
    let status = try_create(
        c,
        bad(|x| {
            x.given_name = String::new();
            x.email = "nope".into();
        }),
    )
    .await;
    check(&status, Code::InvalidArgument, invalid, &["contact.given_name", "contact.email"]);

    // The limit itself is fine.
    let longest = create(c, bad(|x| x.given_name = "x".repeat(200))).await;
    assert_eq!(longest.given_name.chars().count(), 200);
    assert_eq!(ids(&everyone(c).await), [valid.id, longest.id]);
}

#[tokio::test]
async fn references_to_missing_companies_are_refused() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let mut input = contact("Ada", &unique_email("ada"));
    input.company_id = unknown.clone();
    let status = try_create(&mut client, input.clone()).await;
    check(&status, Code::FailedPrecondition, "COMPANY_NOT_FOUND", &[]);
    assert_eq!(resource_name(&status), unknown);
    assert_eq!(error_metadata(&status)["field"], "contact.company_id");

    let gone = create_company(&mut client, "Gone Ltd", "").await;
    client.delete_company(DeleteCompanyRequest { id: gone.id.clone(), etag: String::new() }).await.unwrap();
    input.company_id = gone.id.clone();
    let status = try_create(&mut client, input).await;
    check(&status, Code::FailedPrecondition, "COMPANY_NOT_FOUND", &[]);
    assert_eq!(resource_name(&status), gone.id);
    assert!(everyone(&mut client).await.is_empty());
}

#[tokio::test]
async fn a_taken_email_names_the_contact_that_has_it() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let email = unique_email("taken");
    let existing = create(&mut client, contact("First", &email)).await;

    let status = try_create(&mut client, contact("Second", &email.to_uppercase())).await;
    check(&status, Code::AlreadyExists, "CONTACT_EMAIL_TAKEN", &["contact.email"]);
    assert_eq!(resource_name(&status), existing.id);

    let other = create(&mut client, contact("Other", &unique_email("other"))).await;
    let status = failure(
        client
            .update_contact(UpdateContactRequest {
                contact: Some(Contact { email: email.clone(), ..other.clone() }),
                update_mask: mask(&["email"]),
            })
            .await,
    );
    check(&status, Code::AlreadyExists, "CONTACT_EMAIL_TAKEN", &["contact.email"]);
    assert_eq!(resource_name(&status), existing.id);
    assert_eq!(get(&mut client, &other.id).await, other);
    assert_eq!(ids(&everyone(&mut client).await), [existing.id, other.id]);
}

#[tokio::test]
async fn malformed_ids_are_invalid_arguments() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let real = create(&mut client, contact("Real", &unique_email("real"))).await;

    let status = failure(client.get_contact(GetContactRequest { id: "nope".into() }).await);
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["id"]);
    let status =
        failure(client.delete_contact(DeleteContactRequest { id: "nope".into(), etag: String::new() }).await);
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["id"]);
    let status = failure(
        client
            .update_contact(UpdateContactRequest {
                contact: Some(Contact { id: "nope".into(), ..real.clone() }),
                update_mask: mask(&["job_title"]),
            })
            .await,
    );
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["contact.id"]);
    let status = failure(
        client
            .batch_get_contacts(BatchGetContactsRequest { ids: vec![real.id.clone(), "nope".into()] })
            .await,
    );
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["ids[1]"]);
    assert_eq!(get(&mut client, &real.id).await, real);
}

#[tokio::test]
async fn bad_updates_leave_the_contact_as_it_was() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let original = create(&mut client, contact("Ada", &unique_email("ada"))).await;
    let update = |paths: &[&str], edit: fn(&mut Contact)| {
        let mut input = original.clone();
        edit(&mut input);
        UpdateContactRequest { contact: Some(input), update_mask: mask(paths) }
    };
    let requests = [
        (update(&["nickname"], |_| {}), "update_mask"),
        (update(&["job_title", "etag"], |_| {}), "update_mask"),
        (update(&["create_time"], |_| {}), "update_mask"),
        (update(&[], |_| {}), "update_mask"),
        (update(&["email"], |x| x.email = "not-an-email".into()), "contact.email"),
        (update(&["given_name"], |x| x.given_name = " ".into()), "contact.given_name"),
        (update(&["job_title"], |x| x.job_title = "j".repeat(201)), "contact.job_title"),
    ];
    for (request, field) in requests {
        let status = failure(client.update_contact(request).await);
        check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &[field]);
    }

    let mut no_mask = update(&[], |x| x.job_title = "Boss".into());
    no_mask.update_mask = None;
    let status = failure(client.update_contact(no_mask).await);
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["update_mask"]);

    let mut unknown_company = update(&["company_id"], |_| {});
    if let Some(contact) = unknown_company.contact.as_mut() {
        contact.company_id = uuid::Uuid::now_v7().to_string();
    }
    let status = failure(client.update_contact(unknown_company).await);
    check(&status, Code::FailedPrecondition, "COMPANY_NOT_FOUND", &[]);

    assert_eq!(get(&mut client, &original.id).await, original);
}

#[tokio::test]
async fn input_built_to_hurt_is_refused_fast_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let original = create(&mut client, contact("Ada", &unique_email("ada"))).await;
    let before = everyone(&mut client).await;

    // 300,000 distinct tags: refused on the count, one violation.
    let mut tagged = contact("Tags", &unique_email("tags"));
    tagged.tags = (0..300_000).map(|n| format!("t{n}")).collect();
    let status = try_create(&mut client, tagged).await;
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["contact.tags"]);

    // 200,000 unknown mask paths: refused on the count.
    let paths: Vec<String> = (0..200_000).map(|n| format!("nope{n}")).collect();
    let request = UpdateContactRequest {
        contact: Some(original.clone()),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let status = failure(client.update_contact(request).await);
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["update_mask"]);

    // 60 unknown paths (under the cap): at most 50 violations, and a count.
    let paths: Vec<String> = (0..60).map(|n| format!("nope{n}")).collect();
    let request = UpdateContactRequest {
        contact: Some(original.clone()),
        update_mask: Some(prost_types::FieldMask { paths }),
    };
    let status = failure(client.update_contact(request).await);
    let fields = violated_fields(&status);
    assert_eq!(fields.len(), 51, "{fields:?}");
    assert_eq!(fields[50], "");

    // NUL bytes and other control characters in free text.
    let search = client
        .search_contacts(rapport_proto::contacts::v1::SearchContactsRequest {
            query: "ada\0".into(),
            ..Default::default()
        })
        .await;
    check(&failure(search), Code::InvalidArgument, "INVALID_ARGUMENT", &["query"]);
    let list = client
        .list_contacts(ListContactsRequest { filter: "given_name = \"a\0b\"".into(), ..Default::default() })
        .await;
    assert_eq!(failure(list).code(), Code::InvalidArgument);
    let status = try_create(&mut client, {
        let mut input = contact("Nul", &unique_email("nul"));
        input.job_title = "a\0b".into();
        input
    })
    .await;
    check(&status, Code::InvalidArgument, "INVALID_ARGUMENT", &["contact.job_title"]);

    // A stream asking for too many resource types.
    let watch = client
        .watch_changes(rapport_proto::contacts::v1::WatchChangesRequest {
            after_sequence: 0,
            resource_types: vec!["x".to_owned(); 10_000],
            only_mine: false,
        })
        .await;
    assert_eq!(failure(watch).code(), Code::InvalidArgument);

    assert_eq!(everyone(&mut client).await, before);
}
