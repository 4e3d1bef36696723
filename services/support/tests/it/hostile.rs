//! Input built to hurt gets a clear INVALID_ARGUMENT naming every field,
//! fast, and changes nothing.

use rapport_proto::support::v1::*;
use tonic::Code;

use crate::common::{TestApp, case, create, violated_fields};

#[tokio::test]
async fn hostile_cases_are_refused_field_by_field_and_write_nothing() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    let bad = Case {
        subject: "nul\0byte".into(),
        description: "x".repeat(100_001),
        priority: 99,
        tags: (0..21).map(|n| format!("t{n}")).collect(),
        deal_id: "not-a-uuid".into(),
        ..case("", &ada)
    };
    let status = create(&admin, bad).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["case.deal_id", "case.description", "case.priority", "case.subject", "case.tags"]);
    let attachment = Attachment {
        name: "a".into(),
        url: "file:///etc/passwd".into(),
        size_bytes: -1,
        ..Attachment::default()
    };
    let created = create(&admin, case("Fine", &ada)).await.unwrap();
    let comment = Comment { body: "x".into(), attachments: vec![attachment], ..Comment::default() };
    let refused = admin
        .cases
        .clone()
        .add_comment(AddCommentRequest {
            case_id: created.id.clone(),
            comment: Some(comment),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    let mut fields = violated_fields(&refused);
    fields.sort();
    assert_eq!(fields, ["comment.attachments[0].size_bytes", "comment.attachments[0].url"]);
    for filter in ["subject = \"x\" OR 1=1; DROP TABLE cases", "status = EXPLODED", "secret = 1"] {
        let list = ListCasesRequest { filter: filter.into(), ..Default::default() };
        assert_eq!(
            admin.cases.clone().list_cases(list).await.unwrap_err().code(),
            Code::InvalidArgument,
            "{filter}"
        );
    }
    let get = admin.cases.clone().get_case(GetCaseRequest { id: "CASE-99999999999999999999".into() }).await;
    assert_eq!(get.unwrap_err().code(), Code::InvalidArgument);
    let listed = admin.cases.clone().list_cases(ListCasesRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.cases.len(), 1, "nothing but the valid case was written");
    app.stop().await;
}
