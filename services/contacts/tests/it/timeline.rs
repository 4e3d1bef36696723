//! The timeline: one chronological stream per contact, company, deal or
//! case, newest first, paged, of the activities that hang from it.

use crate::common;

use common::{TestApp, contact, create, create_company, failure, reason, unique_email, violated_fields};
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::get_timeline_request::Subject;
use rapport_proto::contacts::v1::{
    Activity, DeleteActivityRequest, GetTimelineRequest, TimelineEntryKind, TimelineSource,
    UpdateActivityRequest,
};

use crate::activities::{call, log};

fn timeline(subject: Subject, page_size: i32, page_token: String) -> GetTimelineRequest {
    GetTimelineRequest { subject: Some(subject), page_size, page_token, ..Default::default() }
}

#[tokio::test]
async fn an_activity_shows_on_every_record_it_hangs_from_newest_first() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let company = create_company(&mut contacts, "Acme", "").await;
    let ada = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let grace = create(&mut contacts, contact("Grace", &unique_email("grace"))).await;
    let mut activities = app.activities_as("rep-1", &[Role::SalesRep]);
    let deal_id = uuid::Uuid::now_v7().to_string();
    let base = 1_796_000_000;
    let mut logged = Vec::new();
    for n in 0..5 {
        let mut activity = call(&format!("Call {n}"), &ada.id);
        activity.occur_time = Some(prost_types::Timestamp { seconds: base + n * 3600, nanos: 0 });
        if n == 2 {
            activity.participant_contact_ids = vec![grace.id.clone()];
            activity.company_id = company.id.clone();
            activity.deal_id = deal_id.clone();
        }
        logged.push(log(&mut activities, activity).await);
    }
    // The team members list gives actors readable names.
    let mut admin =
        rapport_proto::contacts::v1::assignment_service_client::AssignmentServiceClient::with_interceptor(
            app.channel(),
            rapport_kit::testing::bearer("admin", &[Role::Admin]),
        );
    let member = rapport_proto::contacts::v1::TeamMember {
        team_id: "emea".into(),
        user_id: "rep-1".into(),
        display_name: "Rita Rep".into(),
        active: true,
        ..Default::default()
    };
    admin
        .set_team_member(rapport_proto::contacts::v1::SetTeamMemberRequest { member: Some(member) })
        .await
        .unwrap();
    let titles = |entries: &[rapport_proto::contacts::v1::TimelineEntry]| {
        entries.iter().map(|entry| entry.title.clone()).collect::<Vec<_>>()
    };
    let first = activities.get_timeline(timeline(Subject::ContactId(ada.id.clone()), 3, String::new())).await;
    let first = first.unwrap().into_inner();
    assert_eq!(titles(&first.entries), ["Call 4", "Call 3", "Call 2"]);
    let entry = &first.entries[0];
    assert_eq!(
        (entry.source, entry.kind, entry.actor_id.as_str()),
        (TimelineSource::Contacts as i32, TimelineEntryKind::Activity as i32, "rep-1")
    );
    assert_eq!(entry.activity.as_ref(), Some(&logged[4]), "the activity itself comes along");
    assert_eq!(entry.actor_display_name, "Rita Rep");
    let rest =
        activities.get_timeline(timeline(Subject::ContactId(ada.id.clone()), 3, first.next_page_token));
    let rest = rest.await.unwrap().into_inner();
    assert_eq!(titles(&rest.entries), ["Call 1", "Call 0"]);
    assert!(rest.next_page_token.is_empty());
    for subject in [
        Subject::ContactId(grace.id.clone()),
        Subject::CompanyId(company.id.clone()),
        Subject::DealId(deal_id.clone()),
    ] {
        let entries =
            activities.get_timeline(timeline(subject, 0, String::new())).await.unwrap().into_inner();
        assert_eq!(titles(&entries.entries), ["Call 2"]);
    }

    // Moving, renaming and deleting an activity moves its entries.
    let moved = activities
        .update_activity(UpdateActivityRequest {
            activity: Some(Activity {
                id: logged[2].id.clone(),
                subject: "Call 2, renamed".into(),
                participant_contact_ids: Vec::new(),
                ..Activity::default()
            }),
            update_mask: common::mask(&["subject", "participant_contact_ids"]),
        })
        .await
        .unwrap()
        .into_inner();
    let grace_entries =
        activities.get_timeline(timeline(Subject::ContactId(grace.id.clone()), 0, String::new()));
    assert!(grace_entries.await.unwrap().into_inner().entries.is_empty());
    activities
        .delete_activity(DeleteActivityRequest { id: moved.id.clone(), etag: String::new() })
        .await
        .unwrap();
    let ada_entries = activities.get_timeline(timeline(Subject::ContactId(ada.id.clone()), 0, String::new()));
    assert_eq!(
        titles(&ada_entries.await.unwrap().into_inner().entries),
        ["Call 4", "Call 3", "Call 1", "Call 0"]
    );

    // Kinds filter.
    let mut only = timeline(Subject::ContactId(ada.id.clone()), 0, String::new());
    only.kinds = vec![TimelineEntryKind::DealWon.into()];
    assert!(activities.get_timeline(only).await.unwrap().into_inner().entries.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_timeline_request_names_exactly_one_valid_subject() {
    let app = TestApp::spawn().await;
    let mut activities = app.activities_as("viewer", &[Role::Viewer]);
    let refused = failure(activities.get_timeline(GetTimelineRequest::default()).await);
    assert_eq!(violated_fields(&refused), ["subject"]);
    let refused =
        failure(activities.get_timeline(timeline(Subject::CaseId("nope".into()), 0, String::new())).await);
    assert_eq!(violated_fields(&refused), ["case_id"]);
    let mut many = timeline(Subject::ContactId(uuid::Uuid::now_v7().to_string()), 0, String::new());
    many.kinds = vec![1; 17];
    assert_eq!(violated_fields(&failure(activities.get_timeline(many).await)), ["kinds"]);
    let mut token = timeline(Subject::ContactId(uuid::Uuid::now_v7().to_string()), 0, "forged".into());
    token.page_size = 5;
    assert_eq!(reason(&failure(activities.get_timeline(token).await)), "INVALID_PAGE_TOKEN");
    app.stop().await;
}
