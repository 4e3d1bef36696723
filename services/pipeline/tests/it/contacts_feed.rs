//! Pipeline follows Contacts' change feed: a company or contact deleted in
//! Contacts is dropped from live deals, once, with Deal change events, and
//! a restart neither re-applies old events nor stops new ones.

use crate::common;
use crate::fixtures;

use std::time::Duration;

use common::{Clients, TestApp};
use fixtures::deals::{company, contact, create, deal, seed};
use futures::StreamExt as _;
use prost::Message as _;
use rapport_kit::testing::eventually;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::{
    DeleteCompanyRequest, DeleteContactRequest, LeadSource, UndeleteContactRequest,
};
use rapport_proto::pipeline::v1::watch_changes_response::Event;
use rapport_proto::pipeline::v1::*;
use tonic::Streaming;

const DEAL: &str = "rapport.pipeline.v1.Deal";
const ACTOR: &str = "contacts-feed";

fn member(id: &str, role: BuyingRole) -> DealContact {
    DealContact { contact_id: id.into(), role: role.into() }
}

async fn get(clients: &Clients, id: &str) -> Deal {
    clients.deals.clone().get_deal(GetDealRequest { id: id.into() }).await.unwrap().into_inner()
}

/// Pipeline's Deal events after `after_sequence`.
async fn watch(clients: &Clients, after_sequence: i64) -> Streaming<WatchChangesResponse> {
    let request = WatchChangesRequest { after_sequence, resource_types: vec![DEAL.into()] };
    clients.pipelines.clone().watch_changes(request).await.unwrap().into_inner()
}

/// The next `count` Deal events the feed consumer made (others skipped),
/// failing after 30 s.
async fn feed_events(stream: &mut Streaming<WatchChangesResponse>, count: usize) -> Vec<ChangeEvent> {
    let collect = async {
        let mut events = Vec::new();
        while events.len() < count {
            let response = stream.next().await.expect("the stream ended").expect("stream error");
            if let Some(Event::Change(change)) = response.event
                && change.actor == ACTOR
            {
                events.push(change);
            }
        }
        events
    };
    tokio::time::timeout(Duration::from_secs(30), collect).await.expect("the feed consumer's deal changes")
}

/// Waits until `sql` (one boolean) is true ([`eventually`]).
async fn until(pool: &sqlx::PgPool, what: &str, sql: &str) {
    eventually(what, || async { sqlx::query_scalar::<_, bool>(sql).fetch_one(pool).await.unwrap() }).await;
}

/// (deal id, field paths) of `events`, sorted.
fn changed(events: &[ChangeEvent]) -> Vec<(String, Vec<String>)> {
    let mut changed: Vec<_> =
        events.iter().map(|event| (event.resource_id.clone(), event.field_paths.clone())).collect();
    changed.sort();
    changed
}

fn paths(path: &str) -> Vec<String> {
    vec![path.to_owned()]
}

#[tokio::test]
async fn deleted_companies_and_contacts_leave_deals_once_across_restarts() {
    let mut app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let acme = company(&clients, "Acme").await.id;
    let other = company(&clients, "Other").await.id;
    let ada = contact(&clients, "ada@example.com", LeadSource::Unspecified, "").await.id;
    let bob = contact(&clients, "bob@example.com", LeadSource::Unspecified, "").await.id;
    let cy = contact(&clients, "cy@example.com", LeadSource::Unspecified, "").await.id;
    let with = |title: &str, company_id: &str, contacts: Vec<DealContact>| Deal {
        company_id: company_id.into(),
        contacts,
        ..deal(title, "EUR")
    };
    let both = vec![member(&ada, BuyingRole::DecisionMaker), member(&bob, BuyingRole::Champion)];
    let first = create(&clients, with("First", &acme, both)).await.unwrap();
    let second =
        create(&clients, with("Second", &acme, vec![member(&bob, BuyingRole::EconomicBuyer)])).await.unwrap();
    let third =
        create(&clients, with("Third", &other, vec![member(&cy, BuyingRole::Champion)])).await.unwrap();
    let mut stream = watch(&clients, 0).await;

    let mut contacts = clients.contacts.clone();
    contacts.delete_company(DeleteCompanyRequest { id: acme.clone(), etag: String::new() }).await.unwrap();
    contacts.delete_contact(DeleteContactRequest { id: ada.clone(), etag: String::new() }).await.unwrap();
    let events = feed_events(&mut stream, 3).await;
    let mut expected = vec![
        (first.id.clone(), paths("company_id")),
        (second.id.clone(), paths("company_id")),
        (first.id.clone(), paths("contacts")),
    ];
    expected.sort();
    assert_eq!(changed(&events), expected);
    for event in &events {
        assert_eq!(event.kind(), ChangeKind::Updated);
        // Each event carries the deal as that change left it.
        let after = Deal::decode(event.resource.as_ref().unwrap().value.as_slice()).unwrap();
        if event.field_paths == paths("company_id") {
            assert_eq!(after.company_id, "");
        } else {
            assert!(after.contacts.iter().all(|member| member.contact_id != ada), "{after:?}");
        }
    }
    let first_now = get(&clients, &first.id).await;
    assert_eq!(first_now.company_id, "");
    assert_eq!(first_now.contacts, vec![member(&bob, BuyingRole::Champion)]);
    assert_ne!(first_now.etag, first.etag);
    let second_now = get(&clients, &second.id).await;
    assert_eq!(second_now.company_id, "");
    assert_eq!(second_now.contacts, second.contacts);
    // Another company's deal is untouched.
    assert_eq!(get(&clients, &third.id).await, third);

    // A restored contact is not put back; re-added by hand, it stays.
    contacts.undelete_contact(UndeleteContactRequest { id: ada.clone(), etag: String::new() }).await.unwrap();
    let mask = prost_types::FieldMask { paths: paths("contacts") };
    let readded = Deal {
        id: second.id.clone(),
        contacts: vec![member(&bob, BuyingRole::EconomicBuyer), member(&ada, BuyingRole::Champion)],
        ..Deal::default()
    };
    let request = UpdateDealRequest { deal: Some(readded), update_mask: Some(mask) };
    let second_readded = clients.deals.clone().update_deal(request).await.unwrap().into_inner();
    assert_eq!(second_readded.contacts.len(), 2);
    let before_restart = [get(&clients, &first.id).await, second_readded];
    let pool = app.pool();
    let latest: i64 = sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM change_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    let cursor: i64 = sqlx::query_scalar("SELECT after_sequence FROM feed_cursors WHERE feed = 'contacts'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(cursor > 0, "the consumer stored its cursor");

    // Restarted, the consumer resumes from its cursor: the earlier deletes
    // (before the next one in the feed) are not applied again, and the next
    // delete is applied.
    app.restart_pipeline().await;
    let clients = app.clients();
    let mut stream = watch(&clients, latest).await;
    contacts.delete_contact(DeleteContactRequest { id: cy.clone(), etag: String::new() }).await.unwrap();
    let events = feed_events(&mut stream, 1).await;
    assert_eq!(changed(&events), vec![(third.id.clone(), paths("contacts"))]);
    for before in &before_restart {
        assert_eq!(&get(&clients, &before.id).await, before, "not changed again after the restart");
    }
    let third_now = get(&clients, &third.id).await;
    assert_eq!(third_now.contacts, Vec::new());
    assert_eq!(third_now.company_id, other);
    assert_eq!(
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM change_log WHERE actor = 'contacts-feed' AND resource_type = $1"
        )
        .bind(DEAL)
        .fetch_one(&pool)
        .await
        .unwrap(),
        4
    );
    app.stop().await;
}

/// Pipeline was down while a company and a contact were deleted, and
/// Contacts pruned those events before it came back: its cursor expired,
/// so the consumer resyncs (re-checks every company and contact a live
/// deal names) and drops them then, with the same Deal events.
#[tokio::test]
async fn an_expired_cursor_resyncs_and_drops_what_was_deleted_meanwhile() {
    let mut app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let acme = company(&clients, "Acme").await.id;
    let kept = company(&clients, "Kept").await.id;
    let ada = contact(&clients, "ada@example.com", LeadSource::Unspecified, "").await.id;
    let bob = contact(&clients, "bob@example.com", LeadSource::Unspecified, "").await.id;
    let with = |title: &str, company_id: &str, contacts: Vec<DealContact>| Deal {
        company_id: company_id.into(),
        contacts,
        ..deal(title, "EUR")
    };
    let both = vec![member(&ada, BuyingRole::DecisionMaker), member(&bob, BuyingRole::Champion)];
    let stale = create(&clients, with("Stale", &acme, both)).await.unwrap();
    let fine = create(&clients, with("Fine", &kept, vec![member(&bob, BuyingRole::Champion)])).await.unwrap();
    let mut stream = watch(&clients, 0).await;
    let before = stream.next().await.unwrap().unwrap();
    drop(stream);

    app.stop_pipeline().await;
    let mut contacts = clients.contacts.clone();
    contacts.delete_company(DeleteCompanyRequest { id: acme.clone(), etag: String::new() }).await.unwrap();
    contacts.delete_contact(DeleteContactRequest { id: ada.clone(), etag: String::new() }).await.unwrap();
    let contacts_pool = app.contacts_pool();
    assert!(rapport_kit::changelog::prune(&contacts_pool, Duration::ZERO).await.unwrap() > 0);
    let pruned_through: i64 = sqlx::query_scalar("SELECT pruned_through FROM change_log_horizon")
        .fetch_one(&contacts_pool)
        .await
        .unwrap();
    let pool = app.pool();
    let stored: Option<i64> =
        sqlx::query_scalar("SELECT after_sequence FROM feed_cursors WHERE feed = 'contacts'")
            .fetch_optional(&pool)
            .await
            .unwrap();
    let stored = stored.unwrap_or_default();
    assert!(stored < pruned_through, "the cursor {stored} is expired by {pruned_through}");

    app.start_pipeline().await;
    let clients = app.clients();
    let after = match before.event {
        Some(Event::Change(change)) => change.sequence,
        _ => 0,
    };
    let mut stream = watch(&clients, after).await;
    let events = feed_events(&mut stream, 2).await;
    let mut expected = vec![(stale.id.clone(), paths("company_id")), (stale.id.clone(), paths("contacts"))];
    expected.sort();
    assert_eq!(changed(&events), expected);
    let stale_now = get(&clients, &stale.id).await;
    assert_eq!(stale_now.company_id, "");
    assert_eq!(stale_now.contacts, vec![member(&bob, BuyingRole::Champion)]);
    assert_eq!(get(&clients, &fine.id).await, fine);
    // The cursor resumes where Contacts said (the pruned horizon or later).
    let stored: i64 = sqlx::query_scalar("SELECT after_sequence FROM feed_cursors WHERE feed = 'contacts'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored >= pruned_through, "cursor {stored} after the resync, horizon {pruned_through}");
    pool.close().await;
    contacts_pool.close().await;
    app.stop().await;
}

/// The race the tombstones close: a deal write checks its company with
/// Contacts, then the company is deleted and the feed consumer applies
/// that before the write commits. The write waits for the consumer's lock
/// on the id, finds the tombstone, asks Contacts again and is refused;
/// a stale tombstone (the company restored since) does not refuse.
#[tokio::test]
async fn a_write_racing_a_deletion_the_consumer_applies_first_is_refused() {
    use rapport_pipeline::store::deals::references::REFERENCE_LOCK_CLASS;

    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let acme = company(&clients, "Acme").await.id;
    let pool = app.pool();

    // The consumer's side, by hand: the lock on the id, held open.
    let mut consumer = pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(REFERENCE_LOCK_CLASS)
        .bind(&acme)
        .execute(&mut *consumer)
        .await
        .unwrap();
    // The write passes its check with Contacts, then waits for the lock.
    let write = tokio::spawn({
        let clients = clients.clone();
        let deal = Deal { company_id: acme.clone(), ..deal("Racing", "EUR") };
        async move { create(&clients, deal).await }
    });
    let waiting = "SELECT count(*) > 0 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
    until(&pool, "the write to wait for the lock", waiting).await;
    // Meanwhile Contacts deletes the company, and the consumer applies it.
    let mut contacts = clients.contacts.clone();
    contacts.delete_company(DeleteCompanyRequest { id: acme.clone(), etag: String::new() }).await.unwrap();
    sqlx::query("INSERT INTO deleted_references (id, kind) VALUES ($1::uuid, 'COMPANY')")
        .bind(&acme)
        .execute(&mut *consumer)
        .await
        .unwrap();
    consumer.commit().await.unwrap();

    let status = write.await.unwrap().unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    assert_eq!(common::reason(&status), "COMPANY_NOT_FOUND");
    let named: i64 = sqlx::query_scalar("SELECT count(*) FROM deals WHERE company_id = $1::uuid")
        .bind(&acme)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(named, 0);

    // Restored in Contacts before the consumer removed the tombstone: the
    // write asks Contacts again and goes through.
    let restored = company(&clients, "Globex").await.id;
    sqlx::query("INSERT INTO deleted_references (id, kind) VALUES ($1::uuid, 'COMPANY')")
        .bind(&restored)
        .execute(&pool)
        .await
        .unwrap();
    let created =
        create(&clients, Deal { company_id: restored.clone(), ..deal("Fine", "EUR") }).await.unwrap();
    assert_eq!(created.company_id, restored);
    pool.close().await;
    app.stop().await;
}

/// A deal deleted while its company was deleted in Contacts comes back
/// without it (the consumer drops references from live deals only).
#[tokio::test]
async fn an_undeleted_deal_does_not_bring_back_a_company_deleted_meanwhile() {
    let app = TestApp::spawn().await;
    seed(&app).await;
    let clients = app.clients();
    let acme = company(&clients, "Acme").await.id;
    let bob = contact(&clients, "bob@example.com", LeadSource::Unspecified, "").await.id;
    let created = create(
        &clients,
        Deal {
            company_id: acme.clone(),
            contacts: vec![member(&bob, BuyingRole::Champion)],
            ..deal("Parked", "EUR")
        },
    )
    .await
    .unwrap();
    let mut deals = clients.deals.clone();
    deals.delete_deal(DeleteDealRequest { id: created.id.clone(), etag: String::new() }).await.unwrap();
    let mut contacts = clients.contacts.clone();
    contacts.delete_company(DeleteCompanyRequest { id: acme.clone(), etag: String::new() }).await.unwrap();
    let pool = app.pool();
    let tombstoned = format!("SELECT EXISTS (SELECT 1 FROM deleted_references WHERE id = '{acme}')");
    until(&pool, "the consumer's tombstone", &tombstoned).await;

    let restored = deals
        .undelete_deal(UndeleteDealRequest { id: created.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored.company_id, "");
    assert_eq!(restored.contacts, vec![member(&bob, BuyingRole::Champion)]);
    pool.close().await;
    app.stop().await;
}
