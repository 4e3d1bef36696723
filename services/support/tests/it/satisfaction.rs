//! Satisfaction surveys: resolving issues a single-use token sent in the
//! resolution mail; the answer needs no login, is recorded once, credited
//! to the resolving agent, refused once expired, rate limited, and
//! announced on the change feed.

use mail_parser::MessageParser;
use rapport_kit::auth::Role;
use rapport_proto::support::v1::satisfaction_service_client::SatisfactionServiceClient;
use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::smtp::SmtpSink;
use crate::common::{TestApp, case, create, mask, reason};

fn resolve(case: &Case) -> UpdateCaseRequest {
    UpdateCaseRequest {
        case: Some(Case { id: case.id.clone(), status: CaseStatus::Resolved as i32, ..Case::default() }),
        update_mask: mask(&["status"]),
    }
}

fn token_in(mail: &[u8]) -> String {
    let message = MessageParser::default().parse(mail).unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    let (_, rest) = text.split_once("survey?token=").unwrap_or_else(|| panic!("no survey link in {text}"));
    rest.split_whitespace().next().unwrap().to_owned()
}

fn answer(token: &str, rating: i32) -> SubmitSatisfactionRequest {
    SubmitSatisfactionRequest { token: token.into(), rating, comment: "Quick and kind".into() }
}

#[tokio::test]
async fn a_survey_is_answered_once_without_login_and_credited_to_the_resolver() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(&[
        ("SUPPORT_SMTP_URL", url.as_str()),
        ("SUPPORT_MAIL_INTERVAL", "1s"),
        ("SUPPORT_SURVEY_URL", "https://help.rapport.test/survey?token="),
        ("SUPPORT_SURVEY_TTL", "2d"),
    ])
    .await;
    let ada = app.requester("ada@example.com").await;
    let mut ann = app.clients_as("ann", &[Role::SupportAgent], &["t-1"]).cases;
    let created = create(
        &app.admin(),
        Case { team_id: "t-1".into(), assignee_id: "ann".into(), ..case("Login", &ada) },
    )
    .await
    .unwrap();
    ann.update_case(resolve(&created)).await.unwrap();
    let mails = sink.wait_for(1).await;
    let token = token_in(&mails[0]);
    // Reassigned later: the credit stays with ann.
    let lead = app.clients_as("lead", &[Role::SupportManager], &["t-1"]).cases;
    let reassign = AssignCaseRequest {
        id: created.id.clone(),
        assignee_id: "bob".into(),
        ..AssignCaseRequest::default()
    };
    lead.clone().assign_case(reassign).await.unwrap();
    // No credentials at all.
    let mut anonymous = SatisfactionServiceClient::new(app.channel());
    let answered = anonymous.submit_satisfaction(answer(&token, 5)).await.unwrap().into_inner();
    assert_eq!(
        (answered.agent_id.as_str(), answered.rating, answered.case_id.as_str()),
        ("ann", 5, created.id.as_str())
    );
    let again = anonymous.submit_satisfaction(answer(&token, 1)).await.unwrap_err();
    assert_eq!((again.code(), reason(&again).as_str()), (Code::FailedPrecondition, "SURVEY_ANSWERED"));
    let forged = anonymous
        .submit_satisfaction(answer("bm90LWEtcmVhbC10b2tlbi1hdC1hbGwtYXQtYWxsLXJlYWxseQ", 5))
        .await
        .unwrap_err();
    assert_eq!((forged.code(), reason(&forged).as_str()), (Code::NotFound, "SURVEY_NOT_FOUND"));
    let bad = anonymous.submit_satisfaction(answer(&token, 6)).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    // Reopened and resolved again: a new survey, which expires.
    let reopen = UpdateCaseRequest {
        case: Some(Case { id: created.id.clone(), status: CaseStatus::Open as i32, ..Case::default() }),
        update_mask: mask(&["status"]),
    };
    lead.clone().update_case(reopen).await.unwrap();
    lead.clone().update_case(resolve(&created)).await.unwrap();
    let second = token_in(&sink.wait_for(2).await[1]);
    app.time.set("2026-05-06T09:00:01Z");
    let expired = anonymous.submit_satisfaction(answer(&second, 4)).await.unwrap_err();
    assert_eq!(reason(&expired), "SURVEY_EXPIRED");
    // Announced for reporting.
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM change_log WHERE resource_type = 'rapport.support.v1.Satisfaction'",
    )
    .fetch_one(&app.pool())
    .await
    .unwrap();
    assert_eq!(recorded, 1);
    app.stop().await;
}

#[tokio::test]
async fn survey_answers_are_rate_limited_per_client() {
    let app = TestApp::spawn_with(&[
        ("SUPPORT_SURVEY_RATE_PER_SECOND", "0.01"),
        ("SUPPORT_SURVEY_RATE_BURST", "3"),
    ])
    .await;
    let mut anonymous = SatisfactionServiceClient::new(app.channel());
    for _ in 0..3 {
        let status = anonymous.submit_satisfaction(answer("unknown-token", 5)).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    let limited = anonymous.submit_satisfaction(answer("unknown-token", 5)).await.unwrap_err();
    assert_eq!((limited.code(), reason(&limited).as_str()), (Code::ResourceExhausted, "RATE_LIMITED"));
    app.stop().await;
}
