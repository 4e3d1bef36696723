//! Cases: numbering, defaults and SLA targets on create, reads by id and
//! number, transitions, etags, the queue order, deletion and merging.

use std::collections::BTreeSet;

use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::{TestApp, case, create, mask, reason, utc};

#[tokio::test]
async fn a_new_case_is_numbered_defaulted_and_held_to_the_standard_policy() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    let created = create(&admin, case("Printer on fire", &ada)).await.unwrap();
    assert_eq!(created.number, "CASE-1001");
    assert_eq!(
        (created.status(), created.priority(), created.channel()),
        (CaseStatus::New, CasePriority::Normal, CaseChannel::Web)
    );
    // The standard policy: NORMAL first response within 8 calendar hours
    // (09:00 + 8 h), resolution within 72.
    let first = &created.sla_targets[0];
    assert_eq!((first.metric(), first.state()), (SlaMetric::FirstResponse, SlaState::Active));
    assert_eq!(first.due_time.as_ref().map(|t| t.seconds), Some(utc("2026-05-04T17:00:00Z").timestamp()));
    let resolution = created.sla_targets.iter().find(|t| t.metric() == SlaMetric::Resolution).unwrap();
    assert_eq!(
        resolution.due_time.as_ref().map(|t| t.seconds),
        Some(utc("2026-05-07T09:00:00Z").timestamp())
    );
    assert_eq!(created.next_due_time, first.due_time);
    // Later, the same case reads with the time run.
    app.time.set("2026-05-04T12:00:00Z");
    let read =
        admin.cases.clone().get_case(GetCaseRequest { id: "case-1001".into() }).await.unwrap().into_inner();
    assert_eq!(read.id, created.id);
    assert_eq!(read.sla_targets[0].elapsed.as_ref().map(|d| d.seconds), Some(3 * 3600));
    assert_eq!(read.sla_targets[0].remaining.as_ref().map(|d| d.seconds), Some(5 * 3600));
    // After the due time without an answer, it is breached.
    app.time.set("2026-05-04T17:00:01Z");
    let late =
        admin.cases.clone().get_case(GetCaseRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(late.sla_targets[0].state(), SlaState::Breached);
    assert_eq!(late.sla_targets[0].remaining.as_ref().map(|d| d.seconds), Some(0));
    app.stop().await;
}

#[tokio::test]
async fn concurrent_creates_get_every_number_once_without_gaps() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    let mut calls = Vec::new();
    for n in 0..40 {
        let admin = admin.clone();
        let mut case = case(&format!("case {n}"), &ada);
        if n % 5 == 0 {
            // Refused: draws no number.
            case.status = CaseStatus::Resolved as i32;
        }
        calls.push(tokio::spawn(async move { create(&admin, case).await }));
    }
    let mut numbers = BTreeSet::new();
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(case) => {
                assert!(numbers.insert(case.number.trim_start_matches("CASE-").parse::<i64>().unwrap()))
            }
            Err(status) => {
                assert_eq!(status.code(), Code::InvalidArgument);
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 8);
    let expected: BTreeSet<i64> = (1001..=1032).collect();
    assert_eq!(numbers, expected);
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_or_deleted_requester_is_refused_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let mut ghost = case("Who?", &Default::default());
    ghost.requester_contact_id = uuid::Uuid::now_v7().to_string();
    let status = create(&admin, ghost).await.unwrap_err();
    assert_eq!((status.code(), reason(&status).as_str()), (Code::FailedPrecondition, "CONTACT_NOT_FOUND"));
    let ada = app.requester("ada@example.com").await;
    // The refused create drew no number.
    assert_eq!(create(&admin, case("Real", &ada)).await.unwrap().number, "CASE-1001");
    app.stop().await;
}

#[tokio::test]
async fn status_moves_along_the_transitions_and_stale_etags_are_refused() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut cases = app.admin().cases;
    let created = create(&app.admin(), case("Broken", &ada)).await.unwrap();
    let set_status = |case: &Case, status: CaseStatus| UpdateCaseRequest {
        case: Some(Case {
            id: case.id.clone(),
            etag: case.etag.clone(),
            status: status as i32,
            ..Case::default()
        }),
        update_mask: mask(&["status"]),
    };
    let resolved = cases.update_case(set_status(&created, CaseStatus::Resolved)).await.unwrap().into_inner();
    assert_eq!(resolved.status(), CaseStatus::Resolved);
    assert!(resolved.resolve_time.is_some());
    assert!(resolved.next_due_time.is_none(), "a resolved case is in no queue");
    assert!(resolved.sla_targets.iter().all(|target| target.state() == SlaState::Achieved));
    // The old etag is stale.
    let stale = cases.update_case(set_status(&created, CaseStatus::Open)).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let refused = cases.update_case(set_status(&resolved, CaseStatus::PendingCustomer)).await.unwrap_err();
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "INVALID_STATUS_TRANSITION")
    );
    let closed = cases.update_case(set_status(&resolved, CaseStatus::Closed)).await.unwrap().into_inner();
    let final_ = cases.update_case(set_status(&closed, CaseStatus::Open)).await.unwrap_err();
    assert_eq!(reason(&final_), "CASE_CLOSED");
    app.stop().await;
}

#[tokio::test]
async fn the_queue_lists_a_teams_open_cases_by_next_due_time_across_pages() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    let mut expected = Vec::new();
    for (subject, priority) in [
        ("low", CasePriority::Low),
        ("urgent", CasePriority::Urgent),
        ("normal", CasePriority::Normal),
        ("high", CasePriority::High),
    ] {
        let case = Case { priority: priority as i32, team_id: "t-1".into(), ..case(subject, &ada) };
        expected.push((create(&admin, case).await.unwrap(), priority));
    }
    let other =
        Case { team_id: "t-2".into(), priority: CasePriority::Urgent as i32, ..case("other team", &ada) };
    create(&admin, other).await.unwrap();
    let mut subjects = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .cases
            .clone()
            .list_cases(ListCasesRequest {
                filter: "team_id = \"t-1\" AND status != RESOLVED AND status != CLOSED".into(),
                order_by: "next_due_time".into(),
                page_size: 3,
                page_token: page_token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        subjects.extend(page.cases.into_iter().map(|case| case.subject));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(subjects, ["urgent", "high", "normal", "low"]);
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_case_leaves_lists_and_comes_back() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut cases = app.admin().cases;
    let created = create(&app.admin(), case("Gone soon", &ada)).await.unwrap();
    let deleted =
        cases.delete_case(DeleteCaseRequest { id: created.id.clone(), etag: String::new() }).await.unwrap();
    assert!(deleted.into_inner().delete_time.is_some());
    let listed = cases.list_cases(ListCasesRequest::default()).await.unwrap().into_inner();
    assert!(listed.cases.is_empty());
    let change = UpdateCaseRequest {
        case: Some(Case { id: created.id.clone(), subject: "x".into(), ..Case::default() }),
        update_mask: mask(&["subject"]),
    };
    assert_eq!(cases.update_case(change).await.unwrap_err().code(), Code::FailedPrecondition);
    cases.undelete_case(UndeleteCaseRequest { id: created.id.clone(), etag: String::new() }).await.unwrap();
    assert_eq!(cases.list_cases(ListCasesRequest::default()).await.unwrap().into_inner().cases.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn merging_moves_the_comments_and_closes_the_duplicate_with_a_pointer() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let mut cases = app.admin().cases;
    let survivor = create(&app.admin(), case("VPN down", &ada)).await.unwrap();
    let duplicate = create(&app.admin(), case("VPN still down", &ada)).await.unwrap();
    let note = Comment { body: "Same as the other one".into(), internal: true, ..Comment::default() };
    cases
        .add_comment(AddCommentRequest {
            case_id: duplicate.id.clone(),
            comment: Some(note),
            request_id: String::new(),
        })
        .await
        .unwrap();
    let merge =
        MergeCasesRequest { survivor_case_id: survivor.id.clone(), merged_case_id: duplicate.id.clone() };
    cases.merge_cases(merge.clone()).await.unwrap();
    let merged = cases.get_case(GetCaseRequest { id: duplicate.id.clone() }).await.unwrap().into_inner();
    assert_eq!(
        (merged.status(), merged.merged_into_case_id.as_str()),
        (CaseStatus::Closed, survivor.id.as_str())
    );
    let moved = cases
        .list_comments(ListCommentsRequest {
            case_id: survivor.id.clone(),
            include_internal: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.comments.len(), 1);
    assert_eq!(moved.comments[0].case_id, survivor.id);
    // Twice, or into itself: refused.
    assert_eq!(reason(&cases.merge_cases(merge).await.unwrap_err()), "CASE_MERGED");
    let itself =
        MergeCasesRequest { survivor_case_id: survivor.id.clone(), merged_case_id: survivor.id.clone() };
    assert_eq!(cases.merge_cases(itself).await.unwrap_err().code(), Code::InvalidArgument);
    app.stop().await;
}
