//! WatchChanges: replay, resume, live follow, heartbeats, type filters and
//! expired cursors.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::{Client, TestApp, contact, create, error_metadata, mask, reason};
use prost::Message;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind, Heartbeat};
use rapport_proto::contacts::v1::watch_changes_response::Event;
use rapport_proto::contacts::v1::{
    Company, Contact, DeleteContactRequest, UndeleteContactRequest, UpdateCompanyRequest,
    UpdateContactRequest, WatchChangesRequest, WatchChangesResponse,
};
use tonic::{Code, Status, Streaming};

const CONTACT_TYPE: &str = "rapport.contacts.v1.Contact";
const COMPANY_TYPE: &str = "rapport.contacts.v1.Company";

async fn watch(client: &mut Client, after_sequence: i64, types: &[&str]) -> Streaming<WatchChangesResponse> {
    client
        .watch_changes(WatchChangesRequest {
            after_sequence,
            resource_types: types.iter().map(|t| (*t).to_owned()).collect(),
            only_mine: false,
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next message of `stream` (bounded wait, so a silent stream fails
/// the test instead of hanging it).
async fn next(stream: &mut Streaming<WatchChangesResponse>) -> Result<Event, Status> {
    let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("the stream stayed silent")?;
    Ok(message.expect("the stream ended").event.unwrap())
}

async fn next_heartbeat(stream: &mut Streaming<WatchChangesResponse>) -> Heartbeat {
    match next(stream).await.unwrap() {
        Event::Heartbeat(heartbeat) => heartbeat,
        Event::Change(change) => panic!("expected a heartbeat, got {change:?}"),
    }
}

/// Asserts the next message is a `kind` change of `resource` (a Contact or
/// Company) and returns it.
async fn check<R: Message + Default + PartialEq + std::fmt::Debug>(
    stream: &mut Streaming<WatchChangesResponse>,
    kind: ChangeKind,
    resource_type: &str,
    resource: &R,
) -> ChangeEvent {
    let change = match next(stream).await.unwrap() {
        Event::Change(change) => change,
        Event::Heartbeat(heartbeat) => panic!("expected a change, got {heartbeat:?}"),
    };
    assert_eq!(change.kind(), kind);
    assert_eq!(change.resource_type, resource_type);
    assert_eq!(change.actor, "admin-1");
    let any = change.resource.clone().unwrap();
    assert_eq!(any.type_url, format!("type.googleapis.com/{resource_type}"));
    assert_eq!(&R::decode(any.value.as_slice()).unwrap(), resource);
    change
}

#[tokio::test]
async fn the_log_replays_in_order_and_resumes_after_a_sequence() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut created = Vec::new();
    for name in ["Ann", "Ben", "Cy"] {
        created.push(create(&mut client, contact(name, &format!("{name}@example.com"))).await);
    }

    let mut stream = watch(&mut client, 0, &[]).await;
    let mut events = Vec::new();
    for contact in &created {
        let change = check(&mut stream, ChangeKind::Created, CONTACT_TYPE, contact).await;
        assert_eq!(change.resource_id, contact.id);
        assert!(change.field_paths.is_empty());
        events.push(change);
    }
    assert!(events.windows(2).all(|w| w[0].sequence < w[1].sequence));
    let event_ids: HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(event_ids.len(), 3);
    assert_eq!(next_heartbeat(&mut stream).await.latest_sequence, events[2].sequence);

    let mut resumed = watch(&mut client, events[1].sequence, &[]).await;
    let third = check(&mut resumed, ChangeKind::Created, CONTACT_TYPE, &created[2]).await;
    assert_eq!(third, events[2]);
    assert_eq!(next_heartbeat(&mut resumed).await.latest_sequence, third.sequence);
}

#[tokio::test]
async fn live_changes_follow_the_replay() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let created = create(&mut client, contact("Ada", "ada@example.com")).await;
    let mut stream = watch(&mut client, 0, &[]).await;
    let first = check(&mut stream, ChangeKind::Created, CONTACT_TYPE, &created).await;

    let updated = client
        .update_contact(UpdateContactRequest {
            contact: Some(Contact {
                job_title: "Countess".into(),
                tags: vec!["math".into()],
                given_name: "Ada".into(),
                ..created.clone()
            }),
            update_mask: mask(&["tags", "given_name", "job_title"]),
        })
        .await
        .unwrap()
        .into_inner();
    let change = check(&mut stream, ChangeKind::Updated, CONTACT_TYPE, &updated).await;
    assert_eq!(change.field_paths, ["tags", "job_title"]);
    assert!(change.sequence > first.sequence);

    let deleted = client
        .delete_contact(DeleteContactRequest { id: created.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    check(&mut stream, ChangeKind::Deleted, CONTACT_TYPE, &deleted).await;
    let restored = client
        .undelete_contact(UndeleteContactRequest { id: created.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    check(&mut stream, ChangeKind::Undeleted, CONTACT_TYPE, &restored).await;
}

#[tokio::test]
async fn concurrent_writes_reach_a_live_watcher_in_sequence_order() {
    let app = TestApp::spawn().await;
    let client = app.client().await;
    let mut stream = watch(&mut client.clone(), 0, &[]).await;
    assert_eq!(next_heartbeat(&mut stream).await.latest_sequence, 0);

    let writes: Vec<_> = (0..20)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(
                async move { create(&mut client, contact("Writer", &format!("w{i}@example.com"))).await },
            )
        })
        .collect();
    let mut written = HashSet::new();
    for write in writes {
        written.insert(write.await.unwrap().id);
    }
    let mut seen = HashSet::new();
    let mut last = 0;
    while seen.len() < written.len() {
        match next(&mut stream).await.unwrap() {
            Event::Change(change) => {
                assert!(change.sequence > last, "{} after {last}", change.sequence);
                last = change.sequence;
                assert!(seen.insert(change.resource_id));
            }
            // Commits may pause long enough for a heartbeat; it reports
            // exactly what was sent.
            Event::Heartbeat(heartbeat) => assert_eq!(heartbeat.latest_sequence, last),
        }
    }
    assert_eq!(seen, written);
}

#[tokio::test]
async fn idle_streams_get_heartbeats_and_filter_by_type() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut idle = watch(&mut client, 0, &[]).await;
    for _ in 0..2 {
        let heartbeat = next_heartbeat(&mut idle).await;
        assert_eq!(heartbeat.latest_sequence, 0);
        assert!(heartbeat.time.is_some());
    }

    let company = common::create_company(&mut client, "Acme", "").await;
    let person = create(&mut client, contact("Ada", "ada@example.com")).await;
    let renamed = client
        .update_company(UpdateCompanyRequest {
            company: Some(Company { name: "Acme Corp".into(), ..company.clone() }),
            update_mask: mask(&["name"]),
        })
        .await
        .unwrap()
        .into_inner();
    let grace = create(&mut client, contact("Grace", "grace@example.com")).await;

    let mut contacts = watch(&mut client, 0, &[CONTACT_TYPE, "rapport.other.v1.Thing"]).await;
    check(&mut contacts, ChangeKind::Created, CONTACT_TYPE, &person).await;
    let last = check(&mut contacts, ChangeKind::Created, CONTACT_TYPE, &grace).await;

    let mut companies = watch(&mut client, 0, &[COMPANY_TYPE]).await;
    check(&mut companies, ChangeKind::Created, COMPANY_TYPE, &company).await;
    let rename = check(&mut companies, ChangeKind::Updated, COMPANY_TYPE, &renamed).await;
    assert_eq!(rename.field_paths, ["name"]);
    // Filtered-out events still move the cursor the heartbeat reports.
    assert!(rename.sequence < last.sequence);
    assert_eq!(next_heartbeat(&mut companies).await.latest_sequence, last.sequence);
}

#[tokio::test]
async fn an_expired_cursor_asks_for_a_resync() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    for name in ["Ann", "Ben", "Cy"] {
        create(&mut client, contact(name, &format!("{name}@example.com"))).await;
    }
    let pool = app.pool();
    let pruned = rapport_kit::changelog::prune(&pool, Duration::ZERO).await.unwrap();
    assert_eq!(pruned, 3);

    let mut stream = watch(&mut client, 0, &[]).await;
    let status = next(&mut stream).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason(&status), "CHANGE_CURSOR_EXPIRED");
    let resume_after: i64 = error_metadata(&status)["resume_after"].parse().unwrap();
    assert_eq!(resume_after, 3);

    let mut resumed = watch(&mut client, resume_after, &[]).await;
    assert_eq!(next_heartbeat(&mut resumed).await.latest_sequence, resume_after);
    let later = create(&mut client, contact("Dee", "dee@example.com")).await;
    let change = check(&mut resumed, ChangeKind::Created, CONTACT_TYPE, &later).await;
    assert_eq!(change.sequence, 4);

    let refused =
        client.watch_changes(WatchChangesRequest { after_sequence: -1, ..Default::default() }).await;
    let Err(status) = refused else {
        panic!("a negative cursor was accepted");
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason(&status), "INVALID_CURSOR");
    pool.close().await;
}

#[tokio::test]
async fn filtered_streams_get_heartbeats_while_other_types_keep_changing() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut companies = watch(&mut client, 0, &[COMPANY_TYPE]).await;

    // Contacts change far more often than the 200 ms heartbeat; every change
    // wakes the company stream, which has nothing to send.
    let writer = tokio::spawn({
        let mut client = client.clone();
        async move {
            for n in 0..200 {
                let email = format!("busy-{n}-{}@example.com", uuid::Uuid::now_v7().simple());
                create(&mut client, contact("Busy", &email)).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    match next(&mut companies).await.unwrap() {
        Event::Heartbeat(heartbeat) => assert!(heartbeat.latest_sequence > 0, "{heartbeat:?}"),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    writer.abort();
}

#[tokio::test]
async fn shutdown_ends_open_streams_with_unavailable_without_waiting_out_the_grace() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let mut stream = watch(&mut client, 0, &[]).await;
    assert!(matches!(next(&mut stream).await.unwrap(), Event::Heartbeat(_)));

    // The harness's grace is 2 s: the stop must not need it.
    tokio::time::timeout(Duration::from_millis(1500), app.stop())
        .await
        .expect("shutdown waited out its grace");
    let ended = next(&mut stream).await.unwrap_err();
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
}
