//! Comments: what replies do to a case and its clocks, the reopen window,
//! idempotent adds, and internal notes never reaching a requester-facing
//! read or stream.

use futures::StreamExt as _;
use rapport_kit::auth::Role;
use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::{TestApp, case, create, reason, utc};

fn reply(body: &str) -> Comment {
    Comment { body: body.into(), ..Comment::default() }
}

fn from_requester(body: &str) -> Comment {
    Comment { body: body.into(), author_kind: CommentAuthorKind::Requester as i32, ..Comment::default() }
}

async fn add(
    cases: &mut case_service_client::CaseServiceClient<crate::common::Authed>,
    case_id: &str,
    comment: Comment,
) -> AddCommentResponse {
    cases
        .add_comment(AddCommentRequest {
            case_id: case_id.into(),
            comment: Some(comment),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

fn target(case: &Case, metric: SlaMetric) -> Option<&SlaTarget> {
    case.sla_targets.iter().find(|target| target.metric() == metric)
}

#[tokio::test]
async fn the_first_agent_reply_meets_first_response_and_a_requester_reply_starts_the_next() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut agent = app.clients_as("agent-1", &[Role::SupportAgent], &[]).cases;
    let mut bridge = app.clients_as("mail-bridge", &[Role::Integration], &[]).cases;
    let created = create(&app.admin(), case("Login fails", &ada)).await.unwrap();
    app.time.set("2026-05-04T10:30:00Z");
    let answered = add(&mut agent, &created.id, reply("Which browser?")).await.case.unwrap();
    assert_eq!(answered.status(), CaseStatus::Open);
    assert_eq!(
        answered.first_response_time.as_ref().map(|t| t.seconds),
        Some(utc("2026-05-04T10:30:00Z").timestamp())
    );
    assert_eq!(target(&answered, SlaMetric::FirstResponse).unwrap().state(), SlaState::Achieved);
    assert!(target(&answered, SlaMetric::NextResponse).is_none());
    // The requester answers at noon: next response due within 24 h (NORMAL).
    app.time.set("2026-05-04T12:00:00Z");
    let waiting = add(&mut bridge, &created.id, from_requester("Firefox")).await.case.unwrap();
    let next = target(&waiting, SlaMetric::NextResponse).unwrap();
    assert_eq!(next.state(), SlaState::Active);
    assert_eq!(next.due_time.as_ref().map(|t| t.seconds), Some(utc("2026-05-05T12:00:00Z").timestamp()));
    // An internal note meets nothing.
    let noted = add(&mut agent, &created.id, Comment { internal: true, ..reply("looks like SSO") })
        .await
        .case
        .unwrap();
    assert_eq!(target(&noted, SlaMetric::NextResponse).unwrap().state(), SlaState::Active);
    // The agent's public reply does.
    let met = add(&mut agent, &created.id, reply("Fixed")).await.case.unwrap();
    assert_eq!(target(&met, SlaMetric::NextResponse).unwrap().state(), SlaState::Achieved);
    app.stop().await;
}

#[tokio::test]
async fn a_requester_reply_reopens_a_resolved_case_within_the_window_and_opens_a_follow_up_after_it() {
    let app = TestApp::spawn_with(&[("SUPPORT_REOPEN_WINDOW", "3d")]).await;
    let ada = app.requester("ada@example.com").await;
    let mut admin = app.admin().cases;
    let mut bridge = app.clients_as("mail-bridge", &[Role::Integration], &[]).cases;
    let resolve = |case: &Case| UpdateCaseRequest {
        case: Some(Case { id: case.id.clone(), status: CaseStatus::Resolved as i32, ..Case::default() }),
        update_mask: crate::common::mask(&["status"]),
    };
    let created = create(&app.admin(), case("Invoice wrong", &ada)).await.unwrap();
    admin.update_case(resolve(&created)).await.unwrap();
    app.time.set("2026-05-06T09:00:00Z");
    let reopened = add(&mut bridge, &created.id, from_requester("Still wrong")).await;
    assert_eq!(reopened.case.as_ref().unwrap().status(), CaseStatus::Open);
    assert!(reopened.follow_up_case_id.is_empty());
    admin.update_case(resolve(&created)).await.unwrap();
    app.time.set("2026-05-20T09:00:00Z");
    let later = add(&mut bridge, &created.id, from_requester("New question")).await;
    let follow_up = later.case.unwrap();
    assert_eq!(later.follow_up_case_id, follow_up.id);
    assert_eq!(
        (follow_up.follow_up_of_case_id.as_str(), follow_up.number.as_str()),
        (created.id.as_str(), "CASE-1002")
    );
    assert_eq!(later.comment.unwrap().case_id, follow_up.id);
    let original = admin.get_case(GetCaseRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(original.status(), CaseStatus::Resolved);
    app.stop().await;
}

#[tokio::test]
async fn a_retried_comment_is_added_once() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut agent = app.clients_as("agent-1", &[Role::SupportAgent], &[]).cases;
    let created = create(&app.admin(), case("Retry me", &ada)).await.unwrap();
    let request = AddCommentRequest {
        case_id: created.id.clone(),
        comment: Some(reply("once")),
        request_id: "r-1".into(),
    };
    let first = agent.add_comment(request.clone()).await.unwrap().into_inner();
    let again = agent.add_comment(request).await.unwrap().into_inner();
    assert_eq!(first.comment, again.comment);
    let listed = agent
        .list_comments(ListCommentsRequest { case_id: created.id.clone(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(listed.into_inner().comments.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn internal_notes_never_reach_requester_facing_reads_or_streams() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut agent = app.clients_as("agent-1", &[Role::SupportAgent], &[]).cases;
    let mut portal = app.clients_as("portal", &[Role::Integration], &[]).cases;
    let created = create(&app.admin(), case("Secret sauce", &ada)).await.unwrap();
    add(&mut agent, &created.id, Comment { internal: true, ..reply("customer is difficult") }).await;
    add(&mut agent, &created.id, reply("We are on it")).await;
    // Reads: the portal sees the public reply only, and may not ask for more.
    let listed =
        portal.list_comments(ListCommentsRequest { case_id: created.id.clone(), ..Default::default() }).await;
    let bodies: Vec<String> = listed.unwrap().into_inner().comments.into_iter().map(|c| c.body).collect();
    assert_eq!(bodies, ["We are on it"]);
    let asked =
        ListCommentsRequest { case_id: created.id.clone(), include_internal: true, ..Default::default() };
    let refused = portal.list_comments(asked.clone()).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::PermissionDenied, "INTERNAL_NOTES_HIDDEN")
    );
    assert_eq!(agent.list_comments(asked).await.unwrap().into_inner().comments.len(), 2);
    // Streams: the portal's carries the public comment, the agent's both.
    let comments_seen = |mut client: case_service_client::CaseServiceClient<crate::common::Authed>| async move {
        let request = WatchChangesRequest {
            after_sequence: 0,
            resource_types: vec!["rapport.support.v1.Comment".into()],
        };
        let mut stream = client.watch_changes(request).await.unwrap().into_inner();
        let mut bodies = Vec::new();
        // Read until the first heartbeat: the backlog is delivered before it.
        while let Some(message) = rapport_kit::testing::within("the stream", stream.next()).await {
            match message.unwrap().event.unwrap() {
                watch_changes_response::Event::Change(change) => {
                    let comment: Comment =
                        prost::Message::decode(change.resource.unwrap().value.as_slice()).unwrap();
                    bodies.push(comment.body);
                }
                watch_changes_response::Event::Heartbeat(_) => break,
            }
        }
        bodies
    };
    assert_eq!(comments_seen(portal.clone()).await, ["We are on it"]);
    assert_eq!(comments_seen(agent.clone()).await, ["customer is difficult", "We are on it"]);
    app.stop().await;
}

#[tokio::test]
async fn only_an_integration_or_admin_relays_a_requester() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut agent = app.clients_as("agent-1", &[Role::SupportAgent], &[]).cases;
    let created = create(&app.admin(), case("Impersonation", &ada)).await.unwrap();
    let request = AddCommentRequest {
        case_id: created.id.clone(),
        comment: Some(from_requester("hi")),
        request_id: String::new(),
    };
    let refused = agent.add_comment(request).await.unwrap_err();
    assert_eq!(reason(&refused), "REQUESTER_COMMENT_DENIED");
    app.stop().await;
}
