//! Activities: logging calls, meetings, emails and notes on the shared
//! record, who may change them, the links they hang from, listing, and the
//! last activity time they give contacts and companies.

use crate::common;

use common::{
    Activities, TestApp, contact, create, create_company, failure, get, get_company, mask, principal, reason,
    unique_email, violated_fields,
};
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::{
    Activity, ActivityKind, CallOutcome, DeleteActivityRequest, DeleteContactRequest, Direction,
    GetActivityRequest, ListActivitiesRequest, LogActivityRequest, UndeleteActivityRequest,
    UpdateActivityRequest,
};
use tonic::Code;

pub fn call(subject: &str, contact_id: &str) -> Activity {
    Activity {
        kind: ActivityKind::Call.into(),
        subject: subject.into(),
        direction: Direction::Outbound.into(),
        call_outcome: CallOutcome::Connected.into(),
        duration: Some(prost_types::Duration { seconds: 300, nanos: 0 }),
        contact_id: contact_id.into(),
        ..Activity::default()
    }
}

pub async fn log(client: &mut Activities, activity: Activity) -> Activity {
    client
        .log_activity(LogActivityRequest { activity: Some(activity), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
}

async fn count(client: &mut Activities, filter: &str) -> usize {
    let request = ListActivitiesRequest { filter: filter.into(), page_size: 500, ..Default::default() };
    client.list_activities(request).await.unwrap().into_inner().activities.len()
}

#[tokio::test]
async fn a_logged_call_reads_back_and_moves_the_customers_last_activity_time() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let company = create_company(&mut contacts, "Acme", "acme.example").await;
    let mut person = contact("Ada", &unique_email("ada"));
    person.company_id = company.id.clone();
    let person = create(&mut contacts, person).await;
    let colleague = create(&mut contacts, contact("Grace", &unique_email("grace"))).await;
    // Read both, so the cache holds copies without a last activity time.
    assert!(get(&mut contacts, &person.id).await.last_activity_time.is_none());
    assert!(get_company(&mut contacts, &company.id).await.last_activity_time.is_none());

    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let mut activities = app.activities_for(&rep);
    let mut logged = call("Discovery call", &person.id);
    logged.company_id = company.id.clone();
    logged.participant_contact_ids = vec![colleague.id.clone(), person.id.clone()];
    logged.body = "Needs:\n- pipeline reports\n- SSO".into();
    let logged = log(&mut activities, logged).await;
    assert_eq!(logged.actor_id, "rep-1");
    assert_eq!((logged.owner_id.as_str(), logged.team_id.as_str()), ("rep-1", "emea"), "defaults");
    assert_eq!(logged.participant_contact_ids, [colleague.id.clone(), person.id.clone()]);
    assert!(logged.task.is_none() && !logged.etag.is_empty());
    let read =
        activities.get_activity(GetActivityRequest { id: logged.id.clone() }).await.unwrap().into_inner();
    assert_eq!(read, logged);

    // The contact, the participant and the company show it, through the cache.
    let when = logged.occur_time;
    assert_eq!(get(&mut contacts, &person.id).await.last_activity_time, when);
    assert_eq!(get(&mut contacts, &colleague.id).await.last_activity_time, when);
    assert_eq!(get_company(&mut contacts, &company.id).await.last_activity_time, when);
    // An older activity does not move it back.
    let mut older = call("Earlier call", &person.id);
    older.occur_time = Some(prost_types::Timestamp { seconds: when.unwrap().seconds - 86_400, nanos: 0 });
    log(&mut activities, older).await;
    assert_eq!(get(&mut contacts, &person.id).await.last_activity_time, when);
    app.stop().await;
}

#[tokio::test]
async fn bad_activities_are_refused_field_by_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let person = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let mut activities = app.activities_as("rep-1", &[Role::SalesRep]);

    let mut bad = call("", &person.id);
    bad.kind = ActivityKind::Note.into();
    bad.body = "a\0b".into();
    bad.participant_contact_ids = vec!["x".into(); 51];
    let refused = failure(
        activities.log_activity(LogActivityRequest { activity: Some(bad), request_id: String::new() }).await,
    );
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let fields = violated_fields(&refused);
    for field in ["activity.subject", "activity.body", "activity.participant_contact_ids"] {
        assert!(fields.contains(&field.to_owned()), "{field} missing from {fields:?}");
    }
    // Cross-field rules: a note has no direction, outcome or duration.
    let mut note = call("Note", &person.id);
    note.kind = ActivityKind::Note.into();
    let refused = failure(
        activities.log_activity(LogActivityRequest { activity: Some(note), request_id: String::new() }).await,
    );
    assert_eq!(
        violated_fields(&refused),
        ["activity.direction", "activity.call_outcome", "activity.duration"]
    );
    // An unknown kind, and an unset one.
    let mut unknown = call("x", &person.id);
    unknown.kind = 99;
    let refused = failure(
        activities
            .log_activity(LogActivityRequest { activity: Some(unknown), request_id: String::new() })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["activity.kind"]);

    // A link to a missing or deleted record.
    let missing = uuid::Uuid::now_v7().to_string();
    let refused = failure(
        activities
            .log_activity(LogActivityRequest {
                activity: Some(call("x", &missing)),
                request_id: String::new(),
            })
            .await,
    );
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "CONTACT_NOT_FOUND"));
    let gone = create(&mut contacts, contact("Gone", &unique_email("gone"))).await;
    contacts.delete_contact(DeleteContactRequest { id: gone.id.clone(), etag: String::new() }).await.unwrap();
    let mut with_gone = call("x", &person.id);
    with_gone.participant_contact_ids = vec![gone.id.clone()];
    let refused = failure(
        activities
            .log_activity(LogActivityRequest { activity: Some(with_gone), request_id: String::new() })
            .await,
    );
    assert_eq!(reason(&refused), "CONTACT_NOT_FOUND");
    assert_eq!(common::error_metadata(&refused)["field"], "activity.participant_contact_ids");
    let mut with_company = call("x", &person.id);
    with_company.company_id = missing.clone();
    let refused = failure(
        activities
            .log_activity(LogActivityRequest { activity: Some(with_company), request_id: String::new() })
            .await,
    );
    assert_eq!(reason(&refused), "COMPANY_NOT_FOUND");

    assert_eq!(count(&mut activities, "").await, 0, "nothing was written");
    assert!(get(&mut contacts, &person.id).await.last_activity_time.is_none());

    // Task fields belong to tasks only.
    let logged = log(&mut activities, call("A call", &person.id)).await;
    let refused = failure(
        activities
            .update_activity(UpdateActivityRequest {
                activity: Some(Activity { id: logged.id.clone(), ..Activity::default() }),
                update_mask: mask(&["task.priority"]),
            })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["update_mask"]);
    let mut with_task = call("x", &person.id);
    with_task.task = Some(rapport_proto::contacts::v1::Task { priority: 3, ..Default::default() });
    let refused = failure(
        activities
            .log_activity(LogActivityRequest { activity: Some(with_task), request_id: String::new() })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["activity.task"]);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_log_with_the_same_request_id_logs_once() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let person = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let mut activities = app.activities_as("rep-1", &[Role::SalesRep]);
    let request = LogActivityRequest { activity: Some(call("Call", &person.id)), request_id: "log-1".into() };
    let first = activities.log_activity(request.clone()).await.unwrap().into_inner();
    let again = activities.log_activity(request.clone()).await.unwrap().into_inner();
    assert_eq!(first, again);
    let mut changed = request;
    changed.activity.as_mut().unwrap().subject = "Another".into();
    let reused = failure(activities.log_activity(changed).await);
    assert_eq!(reason(&reused), "REQUEST_ID_REUSED");
    assert_eq!(count(&mut activities, "").await, 1);
    app.stop().await;
}

#[tokio::test]
async fn only_the_owner_a_manager_of_the_team_or_an_admin_changes_an_activity() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let person = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let owner = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let other_rep = principal("rep-2", &[Role::SalesRep], &["emea"]);
    let manager = principal("boss", &[Role::SalesManager], &["emea"]);
    let foreign_manager = principal("boss-us", &[Role::SalesManager], &["us"]);
    let agent = principal("agent-1", &[Role::SupportAgent], &["support"]);
    let viewer = principal("viewer", &[Role::Viewer], &[]);

    // Team selling: anyone who works with customers logs on any contact,
    // the contact's owner being someone else.
    let logged = log(&mut app.activities_for(&owner), call("Call", &person.id)).await;
    log(&mut app.activities_for(&agent), call("Support call", &person.id)).await;
    let refused = failure(
        app.activities_for(&viewer)
            .log_activity(LogActivityRequest {
                activity: Some(call("x", &person.id)),
                request_id: String::new(),
            })
            .await,
    );
    assert_eq!(refused.code(), Code::PermissionDenied);

    let rename = |subject: &str| UpdateActivityRequest {
        activity: Some(Activity { id: logged.id.clone(), subject: subject.into(), ..Activity::default() }),
        update_mask: mask(&["subject"]),
    };
    for (caller, expected) in
        [(&other_rep, "NOT_OWNER"), (&foreign_manager, "NOT_IN_TEAM"), (&agent, "NOT_OWNER")]
    {
        let refused = failure(app.activities_for(caller).update_activity(rename("taken over")).await);
        assert_eq!(
            (refused.code(), reason(&refused).as_str()),
            (Code::PermissionDenied, expected),
            "{caller:?}"
        );
        let refused = failure(
            app.activities_for(caller)
                .delete_activity(DeleteActivityRequest { id: logged.id.clone(), etag: String::new() })
                .await,
        );
        assert_eq!(refused.code(), Code::PermissionDenied);
    }
    // Logging for someone else, or handing one over, is a manager's act.
    let mut for_other = call("x", &person.id);
    for_other.owner_id = "rep-2".into();
    let refused = failure(
        app.activities_for(&owner)
            .log_activity(LogActivityRequest { activity: Some(for_other.clone()), request_id: String::new() })
            .await,
    );
    assert_eq!(reason(&refused), "NOT_OWNER");
    let handed = log(&mut app.activities_for(&manager), for_other).await;
    assert_eq!(handed.owner_id, "rep-2");

    let renamed = app.activities_for(&owner).update_activity(rename("Renamed")).await.unwrap().into_inner();
    assert_eq!(renamed.subject, "Renamed");
    let renamed =
        app.activities_for(&manager).update_activity(rename("By the boss")).await.unwrap().into_inner();
    assert_eq!(renamed.subject, "By the boss");
    assert_ne!(renamed.etag, logged.etag);
    // A stale etag is ABORTED.
    let mut stale = rename("late");
    stale.activity.as_mut().unwrap().etag = logged.etag.clone();
    assert_eq!(failure(app.activities_for(&owner).update_activity(stale).await).code(), Code::Aborted);
    app.stop().await;
}

#[tokio::test]
async fn deleted_activities_leave_lists_and_come_back_restored() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let person = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let mut activities = app.activities_as("rep-1", &[Role::SalesRep]);
    let logged = log(&mut activities, call("Call", &person.id)).await;
    let deleted = activities
        .delete_activity(DeleteActivityRequest { id: logged.id.clone(), etag: logged.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.delete_time.is_some());
    assert_eq!(count(&mut activities, "").await, 0);
    let request = ListActivitiesRequest { show_deleted: true, ..Default::default() };
    assert_eq!(activities.list_activities(request).await.unwrap().into_inner().activities.len(), 1);
    let refused = failure(
        activities
            .update_activity(UpdateActivityRequest {
                activity: Some(Activity {
                    id: logged.id.clone(),
                    subject: "x".into(),
                    ..Activity::default()
                }),
                update_mask: mask(&["subject"]),
            })
            .await,
    );
    assert_eq!(reason(&refused), "ACTIVITY_DELETED");
    let restored = activities
        .undelete_activity(UndeleteActivityRequest { id: logged.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert!(restored.delete_time.is_none());
    assert_eq!(count(&mut activities, "").await, 1);
    let missing =
        failure(activities.get_activity(GetActivityRequest { id: uuid::Uuid::now_v7().to_string() }).await);
    assert_eq!((missing.code(), reason(&missing).as_str()), (Code::NotFound, "ACTIVITY_NOT_FOUND"));
    app.stop().await;
}

#[tokio::test]
async fn lists_filter_by_record_kind_owner_and_time_newest_first() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let ada = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let grace = create(&mut contacts, contact("Grace", &unique_email("grace"))).await;
    let mut rep = app.activities_as("rep-1", &[Role::SalesRep]);
    let mut other = app.activities_as("rep-2", &[Role::SalesRep]);
    let base = 1_796_000_000;
    for day in 0..6 {
        let mut activity = call(&format!("Call {day}"), if day % 2 == 0 { &ada.id } else { &grace.id });
        activity.occur_time = Some(prost_types::Timestamp { seconds: base + day * 86_400, nanos: 0 });
        if day == 5 {
            activity.kind = ActivityKind::Meeting.into();
            (activity.direction, activity.call_outcome) = (0, 0);
        }
        log(if day < 3 { &mut rep } else { &mut other }, activity).await;
    }
    let page = |filter: &str, page_size: i32, page_token: String| ListActivitiesRequest {
        filter: filter.into(),
        page_size,
        page_token,
        ..Default::default()
    };
    let subjects = |activities: &[Activity]| activities.iter().map(|a| a.subject.clone()).collect::<Vec<_>>();
    let all = rep.list_activities(page("", 4, String::new())).await.unwrap().into_inner();
    assert_eq!(subjects(&all.activities), ["Call 5", "Call 4", "Call 3", "Call 2"], "newest first");
    let rest = rep.list_activities(page("", 4, all.next_page_token)).await.unwrap().into_inner();
    assert_eq!(subjects(&rest.activities), ["Call 1", "Call 0"]);
    assert!(rest.next_page_token.is_empty());

    let ada_calls = format!("contact_id = \"{}\" AND kind = ACTIVITY_KIND_CALL", ada.id);
    let listed = rep.list_activities(page(&ada_calls, 0, String::new())).await.unwrap().into_inner();
    assert_eq!(subjects(&listed.activities), ["Call 4", "Call 2", "Call 0"]);
    let window = format!(
        "owner_id = \"rep-2\" AND occur_time >= \"{}\"",
        chrono::DateTime::from_timestamp(base + 4 * 86_400, 0).unwrap().to_rfc3339()
    );
    let listed = rep.list_activities(page(&window, 0, String::new())).await.unwrap().into_inner();
    assert_eq!(subjects(&listed.activities), ["Call 5", "Call 4"]);
    let refused = failure(rep.list_activities(page("subject = \"x\"", 0, String::new())).await);
    assert_eq!(reason(&refused), "INVALID_FILTER");
    app.stop().await;
}
