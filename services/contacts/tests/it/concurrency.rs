//! Optimistic concurrency (etags) and idempotent creates (request_id),
//! including concurrent callers.

use crate::common;

use common::{
    Client, TestApp, contact, create, error_metadata, failure, get, ids, list_all, mask, reason,
    unique_email, violated_fields,
};
use rapport_proto::contacts::v1::{
    Company, Contact, CreateCompanyRequest, CreateContactRequest, DeleteContactRequest, ListCompaniesRequest,
    ListContactsRequest, UndeleteContactRequest, UpdateContactRequest,
};
use tonic::{Code, Status};

/// Asserts `status` is the ABORTED answer to a stale `etag`, naming the
/// current one.
fn check_stale(status: &Status, current_etag: &str) {
    assert_eq!(status.code(), Code::Aborted, "{status:?}");
    assert_eq!(reason(status), "ETAG_MISMATCH");
    assert_eq!(error_metadata(status)["current_etag"], current_etag);
}

fn retitle(contact: &Contact, job_title: &str, etag: &str) -> UpdateContactRequest {
    UpdateContactRequest {
        contact: Some(Contact {
            id: contact.id.clone(),
            job_title: job_title.into(),
            etag: etag.into(),
            ..Default::default()
        }),
        update_mask: mask(&["job_title"]),
    }
}

/// The live contacts with `email`.
async fn with_email(client: &mut Client, email: &str) -> Vec<Contact> {
    list_all(
        client,
        ListContactsRequest { page_size: 10, filter: format!("email = {email:?}"), ..Default::default() },
    )
    .await
}

#[tokio::test]
async fn stale_etags_are_refused_and_current_ones_accepted() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = create(&mut client, contact("Edsger", &unique_email("edsger"))).await;
    let first = created.etag.clone();

    let updated = client.update_contact(retitle(&created, "Professor", &first)).await.unwrap().into_inner();
    assert_eq!(updated.job_title, "Professor");
    let second = updated.etag.clone();
    assert_ne!(second, first);

    let status = failure(client.update_contact(retitle(&created, "Lost update", &first)).await);
    check_stale(&status, &second);
    let status = failure(
        client.delete_contact(DeleteContactRequest { id: created.id.clone(), etag: first.clone() }).await,
    );
    check_stale(&status, &second);
    assert_eq!(get(&mut client, &created.id).await, updated);

    let deleted = client
        .delete_contact(DeleteContactRequest { id: created.id.clone(), etag: second.clone() })
        .await
        .unwrap()
        .into_inner();
    let status = failure(
        client
            .undelete_contact(UndeleteContactRequest { id: created.id.clone(), etag: second.clone() })
            .await,
    );
    check_stale(&status, &deleted.etag);
    let restored = client
        .undelete_contact(UndeleteContactRequest { id: created.id.clone(), etag: deleted.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.delete_time, None);
}

#[tokio::test]
async fn concurrent_updates_with_the_same_etag_have_exactly_one_winner() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = create(&mut client, contact("Leslie", &unique_email("leslie"))).await;

    let calls = (0..8).map(|i| {
        let mut client = client.clone();
        let request = retitle(&created, &format!("Title {i}"), &created.etag);
        tokio::spawn(async move { client.update_contact(request).await })
    });
    let mut winners = Vec::new();
    let mut losers = 0;
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            Ok(response) => winners.push(response.into_inner()),
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert_eq!(reason(&status), "ETAG_MISMATCH");
                losers += 1;
            }
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    assert_eq!(losers, 7);
    assert_eq!(get(&mut client, &created.id).await, winners[0]);
}

#[tokio::test]
async fn a_create_replayed_concurrently_creates_one_contact() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let email = unique_email("replayed");
    let request = CreateContactRequest {
        contact: Some(contact("Barbara", &email)),
        request_id: uuid::Uuid::now_v7().to_string(),
    };

    let calls: Vec<_> = (0..16)
        .map(|_| {
            let mut client = client.clone();
            let request = request.clone();
            tokio::spawn(async move { client.create_contact(request).await })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap().into_inner());
    }
    let mut client = client.clone();
    let stored = with_email(&mut client, &email).await;
    assert_eq!(stored.len(), 1);
    for answer in &answers {
        assert_eq!(answer, &stored[0]);
    }

    // A late retry still answers with the first result.
    let late = client.create_contact(request.clone()).await.unwrap().into_inner();
    assert_eq!(late, stored[0]);
    assert_eq!(ids(&with_email(&mut client, &email).await), ids(&stored));
}

#[tokio::test]
async fn a_request_id_cannot_be_reused_for_another_request() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let request_id = uuid::Uuid::now_v7().to_string();
    let first_email = unique_email("first");
    client
        .create_contact(CreateContactRequest {
            contact: Some(contact("First", &first_email)),
            request_id: request_id.clone(),
        })
        .await
        .unwrap();

    let other_email = unique_email("other");
    let status = failure(
        client
            .create_contact(CreateContactRequest {
                contact: Some(contact("Other", &other_email)),
                request_id: request_id.clone(),
            })
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "REQUEST_ID_REUSED");
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert!(with_email(&mut client, &other_email).await.is_empty());

    // Nor for another operation.
    let status = failure(
        client
            .create_company(CreateCompanyRequest {
                company: Some(Company { name: "Reuse Inc".into(), ..Default::default() }),
                request_id,
            })
            .await,
    );
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "REQUEST_ID_REUSED");
    let companies = client.list_companies(ListCompaniesRequest::default()).await.unwrap().into_inner();
    assert!(companies.companies.is_empty());
    assert_eq!(with_email(&mut client, &first_email).await.len(), 1);
}
