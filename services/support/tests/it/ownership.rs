//! Who may change and assign which case: agents work their own cases and
//! their teams' queues, managers their teams, everyone else by role.

use rapport_kit::auth::Role;
use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::{TestApp, case, create, mask, reason};

fn assign(case: &Case, assignee: &str, team: &str) -> AssignCaseRequest {
    AssignCaseRequest {
        id: case.id.clone(),
        assignee_id: assignee.into(),
        team_id: team.into(),
        etag: String::new(),
    }
}

fn retitle(case: &Case, subject: &str) -> UpdateCaseRequest {
    UpdateCaseRequest {
        case: Some(Case { id: case.id.clone(), subject: subject.into(), ..Case::default() }),
        update_mask: mask(&["subject"]),
    }
}

#[tokio::test]
async fn agents_take_from_their_queue_hand_over_within_it_and_change_only_what_is_theirs() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut ann = app.clients_as("ann", &[Role::SupportAgent], &["t-1"]).cases;
    let mut bob = app.clients_as("bob", &[Role::SupportAgent], &["t-1"]).cases;
    let mut eve = app.clients_as("eve", &[Role::SupportAgent], &["t-2"]).cases;
    // A sales rep reports a customer's problem to team t-1's queue.
    let rep = app.clients_as("rep", &[Role::SalesRep], &["sales"]);
    let queued = create(&rep, Case { team_id: "t-1".into(), ..case("Cannot log in", &ada) }).await.unwrap();
    assert_eq!((queued.assignee_id.as_str(), queued.team_id.as_str()), ("", "t-1"));
    // The rep may report, not work it.
    let denied = rep.cases.clone().update_case(retitle(&queued, "x")).await.unwrap_err();
    assert_eq!(reason(&denied), "PERMISSION_DENIED_ROLE");
    // Anyone in t-1 works an unassigned case of t-1; eve (t-2) does not.
    ann.update_case(retitle(&queued, "Cannot log in (SSO)")).await.unwrap();
    let refused = eve.update_case(retitle(&queued, "mine")).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    assert_eq!(eve.assign_case(assign(&queued, "eve", "")).await.unwrap_err().code(), Code::PermissionDenied);
    // Ann takes it; then bob may no longer change it, nor take it.
    let taken = ann.assign_case(assign(&queued, "ann", "")).await.unwrap().into_inner();
    assert_eq!(taken.assignee_id, "ann");
    assert_eq!(reason(&bob.update_case(retitle(&queued, "bob's")).await.unwrap_err()), "NOT_OWNER");
    assert_eq!(bob.assign_case(assign(&queued, "bob", "")).await.unwrap_err().code(), Code::PermissionDenied);
    // Ann hands it to bob within the team, but not to another team.
    assert_eq!(
        ann.assign_case(assign(&queued, "eve", "t-2")).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let handed = ann.assign_case(assign(&queued, "bob", "")).await.unwrap().into_inner();
    assert_eq!(handed.assignee_id, "bob");
    bob.update_case(retitle(&queued, "bob's now")).await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn support_managers_assign_within_their_teams_and_delete() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut lead = app.clients_as("lead", &[Role::SupportManager], &["t-1"]).cases;
    let one = create(&app.admin(), Case { team_id: "t-1".into(), ..case("One", &ada) }).await.unwrap();
    let two = create(&app.admin(), Case { team_id: "t-2".into(), ..case("Two", &ada) }).await.unwrap();
    let assigned = lead.assign_case(assign(&one, "ann", "")).await.unwrap().into_inner();
    assert_eq!(assigned.assignee_id, "ann");
    lead.update_case(retitle(&one, "One (lead)")).await.unwrap();
    assert_eq!(reason(&lead.assign_case(assign(&two, "ann", "")).await.unwrap_err()), "NOT_IN_TEAM");
    assert_eq!(reason(&lead.assign_case(assign(&one, "ann", "t-2")).await.unwrap_err()), "NOT_IN_TEAM");
    lead.delete_case(DeleteCaseRequest { id: one.id.clone(), etag: String::new() }).await.unwrap();
    let agent = app.clients_as("ann", &[Role::SupportAgent], &["t-1"]).cases;
    let denied =
        agent.clone().delete_case(DeleteCaseRequest { id: two.id.clone(), etag: String::new() }).await;
    assert_eq!(reason(&denied.unwrap_err()), "PERMISSION_DENIED_ROLE");
    app.stop().await;
}
