//! Contacts through the public API: create, read, batch read, update, soft
//! delete and restore.

use crate::common;

use common::{
    Client, TestApp, contact, create, failure, get, ids, mask, reason, resource_name, unique_email,
};
use rapport_proto::contacts::v1::{
    BatchGetContactsRequest, Contact, DeleteContactRequest, GetContactRequest, LeadSource, LifecycleStage,
    ListContactsRequest, UndeleteContactRequest, UpdateContactRequest,
};
use tonic::Code;

/// Asserts which contacts a list shows, in creation order.
async fn check_listed(client: &mut Client, show_deleted: bool, expected: &[&Contact]) {
    let listed = client
        .list_contacts(ListContactsRequest { show_deleted, ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    let expected: Vec<String> = expected.iter().map(|contact| contact.id.clone()).collect();
    assert_eq!(ids(&listed.contacts), expected, "show_deleted={show_deleted}");
    assert!(listed.next_page_token.is_empty());
}

#[tokio::test]
async fn create_normalizes_input_and_get_returns_the_stored_contact() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let email = unique_email("ada");
    let created = create(
        &mut client,
        Contact {
            given_name: "  Ada ".into(),
            family_name: "Lovelace".into(),
            email: format!("  {} ", email.to_uppercase()),
            phone: "+44 (20) 7946-0000".into(),
            job_title: "Analyst".into(),
            lead_source: LeadSource::TradeShow.into(),
            tags: vec!["vip".into(), " vip ".into(), "math".into()],
            email_opt_in: true,
            ..Default::default()
        },
    )
    .await;

    let id = uuid::Uuid::parse_str(&created.id).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert_eq!(created.given_name, "Ada");
    assert_eq!(created.email, email);
    assert_eq!(created.lifecycle_stage, LifecycleStage::Lead as i32);
    assert_eq!(created.lead_source, LeadSource::TradeShow as i32);
    assert_eq!(created.tags, ["vip", "math"]);
    assert!(created.email_opt_in_time.is_some());
    assert!(created.create_time.is_some());
    assert_eq!(created.update_time, created.create_time);
    assert_eq!(created.delete_time, None);
    assert!(!created.etag.is_empty());
    assert_eq!(get(&mut client, &created.id).await, created);
}

#[tokio::test]
async fn batch_get_answers_in_request_order_and_fails_whole_on_an_unknown_id() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut created = Vec::new();
    for name in ["Ann", "Ben", "Cy"] {
        created.push(create(&mut client, contact(name, &unique_email(name))).await);
    }
    let [a, b, c] = [&created[0], &created[1], &created[2]];

    let requested = vec![c.id.clone(), a.id.clone(), b.id.clone(), a.id.clone()];
    let batch = client
        .batch_get_contacts(BatchGetContactsRequest { ids: requested.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids(&batch.contacts), requested);
    assert_eq!(&batch.contacts[0], c);

    let unknown = uuid::Uuid::now_v7().to_string();
    let status = failure(
        client
            .batch_get_contacts(BatchGetContactsRequest {
                ids: vec![a.id.clone(), unknown.clone(), b.id.clone()],
            })
            .await,
    );
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "CONTACT_NOT_FOUND");
    assert_eq!(resource_name(&status), unknown);
}

#[tokio::test]
async fn update_changes_only_the_fields_in_the_mask() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = create(&mut client, contact("Grace", &unique_email("grace"))).await;

    let updated = client
        .update_contact(UpdateContactRequest {
            contact: Some(Contact {
                id: created.id.clone(),
                given_name: "Not In The Mask".into(),
                job_title: " Rear Admiral ".into(),
                lifecycle_stage: LifecycleStage::Customer.into(),
                tags: vec!["navy".into()],
                ..Default::default()
            }),
            update_mask: mask(&["job_title", "lifecycle_stage", "tags"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.given_name, "Grace");
    assert_eq!(updated.email, created.email);
    assert_eq!(updated.job_title, "Rear Admiral");
    assert_eq!(updated.lifecycle_stage, LifecycleStage::Customer as i32);
    assert_eq!(updated.tags, ["navy"]);
    assert_ne!(updated.etag, created.etag);
    assert_eq!(updated.create_time, created.create_time);
    let time = |contact: &Contact| {
        let time = contact.update_time.unwrap();
        (time.seconds, time.nanos)
    };
    assert!(time(&updated) > time(&created));
    assert_eq!(get(&mut client, &created.id).await, updated);

    // Writing the values it already has makes no new version.
    let unchanged = client
        .update_contact(UpdateContactRequest {
            contact: Some(updated.clone()),
            update_mask: mask(&["job_title", "tags"]),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(unchanged, updated);
}

#[tokio::test]
async fn deleted_contacts_leave_lists_until_undeleted() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let a = create(&mut client, contact("Ann", &unique_email("ann"))).await;
    let b = create(&mut client, contact("Ben", &unique_email("ben"))).await;

    let deleted = client
        .delete_contact(DeleteContactRequest { id: a.id.clone(), etag: a.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    assert_ne!(deleted.etag, a.etag);
    assert_eq!(get(&mut client, &a.id).await, deleted);
    check_listed(&mut client, false, &[&b]).await;
    check_listed(&mut client, true, &[&deleted, &b]).await;

    // Deleting again changes nothing; a deleted contact cannot be updated.
    let again = client
        .delete_contact(DeleteContactRequest { id: a.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, deleted);
    let status = failure(
        client
            .update_contact(UpdateContactRequest {
                contact: Some(Contact { job_title: "Ghost".into(), ..deleted.clone() }),
                update_mask: mask(&["job_title"]),
            })
            .await,
    );
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "CONTACT_DELETED");

    let restored = client
        .undelete_contact(UndeleteContactRequest { id: a.id.clone(), etag: deleted.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    // Everything but the version and its time is as before the delete.
    assert_eq!(Contact { etag: a.etag.clone(), update_time: a.update_time, ..restored.clone() }, a);
    check_listed(&mut client, false, &[&restored, &b]).await;
}

#[tokio::test]
async fn deleting_frees_the_email_and_undelete_refuses_when_it_was_taken() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let email = unique_email("shared");
    let first = create(&mut client, contact("First", &email)).await;
    let deleted = client
        .delete_contact(DeleteContactRequest { id: first.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();

    let second = create(&mut client, contact("Second", &email)).await;
    assert_eq!(second.email, email);

    let status = failure(
        client.undelete_contact(UndeleteContactRequest { id: first.id.clone(), etag: String::new() }).await,
    );
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(reason(&status), "CONTACT_EMAIL_TAKEN");
    assert_eq!(resource_name(&status), second.id);
    assert_eq!(get(&mut client, &first.id).await, deleted);
    check_listed(&mut client, false, &[&second]).await;
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let statuses = [
        failure(client.get_contact(GetContactRequest { id: unknown.clone() }).await),
        failure(
            client
                .update_contact(UpdateContactRequest {
                    contact: Some(Contact {
                        id: unknown.clone(),
                        job_title: "x".into(),
                        ..Default::default()
                    }),
                    update_mask: mask(&["job_title"]),
                })
                .await,
        ),
        failure(
            client.delete_contact(DeleteContactRequest { id: unknown.clone(), etag: String::new() }).await,
        ),
        failure(
            client
                .undelete_contact(UndeleteContactRequest { id: unknown.clone(), etag: String::new() })
                .await,
        ),
    ];
    for status in statuses {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert_eq!(reason(&status), "CONTACT_NOT_FOUND");
        assert_eq!(resource_name(&status), unknown);
    }
}

#[tokio::test]
async fn a_stored_value_this_build_cannot_decode_is_an_internal_error_not_a_default() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = create(&mut client, contact("Odd", &unique_email("odd"))).await;
    sqlx::query("UPDATE contacts SET lifecycle_stage = 'WHALE' WHERE id = $1::uuid")
        .bind(&created.id)
        .execute(&app.pool())
        .await
        .unwrap();
    // Listing reads the row itself (no cache in between).
    let err = client.list_contacts(ListContactsRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err:?}");
    assert!(!err.message().contains("WHALE"), "the cause is logged, not shown: {err:?}");
}
