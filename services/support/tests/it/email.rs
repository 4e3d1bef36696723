//! Email in and out: a message opens a case (and its sender's contact),
//! the same message twice is applied once, an agent's reply goes out over
//! real SMTP threaded and without internal notes, and the customer's answer
//! threads back by In-Reply-To or by the case number in the subject.

use mail_parser::MessageParser;
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::{GetContactRequest, LeadSource};
use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::smtp::SmtpSink;
use crate::common::{TestApp, violated_fields};

/// A raw message.
fn raw(from: &str, subject: &str, message_id: &str, in_reply_to: Option<&str>, body: &str) -> Vec<u8> {
    let mut text = format!(
        "From: {from}\r\nTo: help@rapport.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
    );
    if let Some(parent) = in_reply_to {
        text.push_str(&format!("In-Reply-To: {parent}\r\nReferences: {parent}\r\n"));
    }
    text.push_str(&format!("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"));
    text.into_bytes()
}

fn ingest(raw_message: Vec<u8>) -> IngestEmailRequest {
    IngestEmailRequest { raw_message, team_id: "t-1".into() }
}

async fn mail_app(sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    TestApp::spawn_with(&[
        ("SUPPORT_SMTP_URL", url.as_str()),
        ("SUPPORT_MAIL_FROM", "Help <help@rapport.test>"),
        ("SUPPORT_MAIL_INTERVAL", "1s"),
        ("SUPPORT_SURVEY_URL", "https://help.rapport.test/survey?token="),
    ])
    .await
}

#[tokio::test]
async fn mail_goes_out_threaded_and_answers_come_back_onto_the_case() {
    let sink = SmtpSink::start().await;
    let app = mail_app(&sink).await;
    let mut bridge = app.clients_as("mail-bridge", &[Role::Integration], &[]).cases;
    let mut agent = app.clients_as("ann", &[Role::SupportAgent], &["t-1"]).cases;

    // A message from someone unknown opens a case and creates the contact.
    let first = raw(
        "=?UTF-8?Q?=C3=89lise_Martin?= <Elise@Example.com>",
        "Printer on fire",
        "<m1@mail.example.com>",
        None,
        "It burns.",
    );
    let opened = bridge.ingest_email(ingest(first.clone())).await.unwrap().into_inner();
    assert!(opened.case_created && opened.contact_created && !opened.duplicate);
    let case = opened.case.unwrap();
    assert_eq!(
        (case.number.as_str(), case.subject.as_str(), case.channel()),
        ("CASE-1001", "Printer on fire", CaseChannel::Email)
    );
    assert_eq!((case.description.as_str(), case.team_id.as_str()), ("It burns.", "t-1"));
    let contact = app
        .admin()
        .contacts
        .get_contact(GetContactRequest { id: case.requester_contact_id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((contact.email.as_str(), contact.given_name.as_str()), ("elise@example.com", "Élise"));
    assert_eq!(contact.lead_source(), LeadSource::SupportEmail);

    // The same message again is applied once.
    let again = bridge.ingest_email(ingest(first)).await.unwrap().into_inner();
    assert!(again.duplicate && !again.case_created && !again.contact_created);
    assert_eq!(again.comment.unwrap().id, opened.comment.as_ref().unwrap().id);

    // A note stays inside; the public reply goes out, threaded.
    for (internal, body) in [(true, "she sounds angry"), (false, "Unplug it, please.")] {
        let comment = Comment { internal, body: body.into(), ..Comment::default() };
        agent
            .add_comment(AddCommentRequest {
                case_id: case.id.clone(),
                comment: Some(comment),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
    let mails = sink.wait_for(1).await;
    let sent = MessageParser::default().parse(&mails[0]).unwrap();
    assert_eq!(sent.subject(), Some("Re: [CASE-1001] Printer on fire"));
    assert_eq!(sent.to().and_then(|to| to.first()).and_then(|to| to.address()), Some("elise@example.com"));
    assert_eq!(sent.in_reply_to().as_text(), Some("m1@mail.example.com"));
    let text = sent.body_text(0).unwrap().into_owned();
    assert!(text.contains("Unplug it, please.") && !text.contains("angry"), "{text}");
    let reply_id = sent.message_id().unwrap().to_owned();
    assert!(reply_id.ends_with("@rapport.test"), "{reply_id}");
    let written: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbound_emails").fetch_one(&app.pool()).await.unwrap();
    assert_eq!(written, 1, "the internal note wrote no mail");

    // Her answer threads by In-Reply-To, though the subject lost the number.
    let answer = raw(
        "elise@example.com",
        "Re: it is out",
        "<m2@mail.example.com>",
        Some(&format!("<{reply_id}>")),
        "Thanks, it is out.",
    );
    let threaded = bridge.ingest_email(ingest(answer)).await.unwrap().into_inner();
    assert!(!threaded.case_created && !threaded.contact_created);
    assert_eq!(threaded.case.unwrap().id, case.id);
    assert_eq!(threaded.comment.unwrap().author_kind(), CommentAuthorKind::Requester);

    // A colleague writes with the number in the subject only.
    let colleague =
        raw("Bob <bob@example.com>", "RE: [case-1001] me too", "<m3@mail.example.com>", None, "Same here.");
    let joined = bridge.ingest_email(ingest(colleague)).await.unwrap().into_inner();
    assert!(!joined.case_created && joined.contact_created);
    assert_eq!(joined.case.unwrap().id, case.id);
    app.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_messages_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let mut bridge = app.clients_as("mail-bridge", &[Role::Integration], &[]).cases;
    for bad in [
        b"".to_vec(),
        b"Subject: who sent this?\r\n\r\nnobody".to_vec(),
        b"From: not an address\r\nSubject: x\r\n\r\ny".to_vec(),
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=\"x\"\r\n\r\n--x\r\n\r\n--x--\r\n"
            .to_vec(),
        raw("a@example.com", "big", "<big@x>", None, &"x".repeat(3 * 1024 * 1024)),
    ] {
        let status = bridge.ingest_email(ingest(bad)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), ["raw_message"]);
    }
    // Past the transport's limit (GRPC_MAX_MESSAGE_BYTES), the server
    // refuses before decoding it (tonic answers OUT_OF_RANGE).
    let huge = raw("a@example.com", "huge", "<huge@x>", None, &"x".repeat(5 * 1024 * 1024));
    let mut unlimited = bridge.clone().max_encoding_message_size(16 << 20);
    assert_eq!(unlimited.ingest_email(ingest(huge)).await.unwrap_err().code(), Code::OutOfRange);
    // Agents cannot pose as the mail bridge.
    let agent = app.clients_as("ann", &[Role::SupportAgent], &[]).cases;
    let denied =
        agent.clone().ingest_email(ingest(raw("a@example.com", "x", "<a@x>", None, "y"))).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    let cases: i64 = sqlx::query_scalar("SELECT count(*) FROM cases").fetch_one(&app.pool()).await.unwrap();
    assert_eq!(cases, 0);
    app.stop().await;
}
