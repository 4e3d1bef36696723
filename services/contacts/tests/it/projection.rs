//! The timeline projection of other services' events: entries land in the
//! order things happened whichever feed delivers first, and a replayed
//! event adds nothing (the consumer path, applied by hand here; the live
//! feeds are exercised end to end by the gateway's tests).

use crate::common;

use chrono::{DateTime, TimeZone, Utc};
use common::{TestApp, contact, create, get, unique_email};
use prost::Message as _;
use rapport_contacts::domain::activity::At;
use rapport_contacts::feeds;
use rapport_contacts::store::projection;
use rapport_kit::auth::Role;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::get_timeline_request::Subject;
use rapport_proto::contacts::v1::{GetTimelineRequest, LifecycleStage, TimelineEntryKind, TimelineSource};
use rapport_proto::pipeline::v1::{Deal, DealContact, DealStatus};
use rapport_proto::support::v1::Case;

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0).unwrap()
}

fn event(
    resource_type: &str,
    id: &str,
    kind: ChangeKind,
    time: DateTime<Utc>,
    paths: &[&str],
    body: Vec<u8>,
) -> ChangeEvent {
    ChangeEvent {
        event_id: uuid::Uuid::now_v7().to_string(),
        resource_type: resource_type.into(),
        resource_id: id.into(),
        kind: kind.into(),
        actor: "someone".into(),
        change_time: Some(rapport_kit::changelog::timestamp(time)),
        field_paths: paths.iter().map(|path| (*path).to_owned()).collect(),
        resource: Some(prost_types::Any { type_url: String::new(), value: body }),
        ..ChangeEvent::default()
    }
}

async fn deliver(pool: &sqlx::PgPool, source: TimelineSource, events: &[&ChangeEvent]) {
    let at = At { now: Utc::now(), overdue_after: chrono::Duration::hours(1) };
    let mut tx = pool.begin().await.unwrap();
    for event in events {
        let effects = match source {
            TimelineSource::Pipeline => feeds::pipeline::effects(event).unwrap(),
            _ => feeds::support::effects(event).unwrap(),
        };
        for effect in effects {
            projection::apply(&mut tx, source, event, effect, at).await.unwrap();
        }
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn entries_from_both_feeds_interleave_by_time_and_replays_add_nothing() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let person = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let deal_id = uuid::Uuid::now_v7().to_string();
    let mut deal = Deal {
        id: deal_id.clone(),
        title: "Rollout".into(),
        status: DealStatus::Open.into(),
        contacts: vec![DealContact { contact_id: person.id.clone(), role: 1 }],
        ..Deal::default()
    };
    let opened =
        event(feeds::pipeline::DEAL, &deal_id, ChangeKind::Created, at(10), &[], deal.encode_to_vec());
    deal.status = DealStatus::Won.into();
    let won = event(
        feeds::pipeline::DEAL,
        &deal_id,
        ChangeKind::Updated,
        at(12),
        &["stage_id", "status"],
        deal.encode_to_vec(),
    );
    let case_id = uuid::Uuid::now_v7().to_string();
    let case = Case {
        id: case_id.clone(),
        number: "CASE-1001".into(),
        subject: "Login".into(),
        requester_contact_id: person.id.clone(),
        ..Case::default()
    };
    // Support's case was opened at 11:00, but its feed delivers late.
    let case_opened =
        event(feeds::support::CASE, &case_id, ChangeKind::Created, at(11), &[], case.encode_to_vec());
    let pool = app.pool();
    deliver(&pool, TimelineSource::Pipeline, &[&opened, &won]).await;
    deliver(&pool, TimelineSource::Support, &[&case_opened]).await;
    // Replays (a consumer restarted before its cursor moved) change nothing.
    deliver(&pool, TimelineSource::Support, &[&case_opened]).await;
    deliver(&pool, TimelineSource::Pipeline, &[&opened, &won]).await;

    let mut activities = app.activities_as("viewer", &[Role::Viewer]);
    let request =
        GetTimelineRequest { subject: Some(Subject::ContactId(person.id.clone())), ..Default::default() };
    let entries = activities.get_timeline(request).await.unwrap().into_inner().entries;
    let seen: Vec<(i64, i32)> =
        entries.iter().map(|entry| (entry.occur_time.unwrap().seconds, entry.kind)).collect();
    let hour = |h| at(h).timestamp();
    assert_eq!(
        seen,
        [
            (hour(12), TimelineEntryKind::LifecycleChanged as i32),
            (hour(12), TimelineEntryKind::DealWon as i32),
            (hour(11), TimelineEntryKind::CaseOpened as i32),
            (hour(10), TimelineEntryKind::LifecycleChanged as i32),
            (hour(10), TimelineEntryKind::DealOpened as i32),
        ]
    );
    assert_eq!(get(&mut contacts, &person.id).await.lifecycle_stage, LifecycleStage::Customer as i32);
    let case_entries = activities
        .get_timeline(GetTimelineRequest { subject: Some(Subject::CaseId(case_id)), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(case_entries.len(), 1);
    assert_eq!(case_entries[0].title, "CASE-1001 opened: Login");
    app.stop().await;
}
