//! Lifecycle stages: forward moves allowed, backward ones a manager's
//! explicit act, qualification answers, and the history reporting reads.

use crate::common;

use common::{TestApp, contact, create, failure, mask, principal, reason, unique_email, violated_fields};
use rapport_kit::auth::Role;
use rapport_proto::common::v1::Money;
use rapport_proto::contacts::v1::{
    Contact, DisqualifyLeadRequest, GetLifecycleHistoryRequest, GetTimelineRequest, LifecycleCause,
    LifecycleStage, Qualification, QualifyLeadRequest, ReopenLeadRequest, SetLifecycleStageRequest,
    TimelineEntryKind, UpdateContactRequest, get_timeline_request,
};
use tonic::Code;

fn stage_update(contact: &Contact, stage: LifecycleStage) -> UpdateContactRequest {
    UpdateContactRequest {
        contact: Some(Contact {
            id: contact.id.clone(),
            lifecycle_stage: stage.into(),
            ..Contact::default()
        }),
        update_mask: mask(&["lifecycle_stage"]),
    }
}

fn answers() -> Qualification {
    Qualification {
        need: "Their spreadsheets do not scale past two reps".into(),
        budget: Some(Money { currency_code: "EUR".into(), minor_units: 2_500_000 }),
        decision_maker: "The CFO".into(),
        ..Qualification::default()
    }
}

#[tokio::test]
async fn stages_move_forward_freely_and_back_only_by_a_manager_with_a_reason() {
    let app = TestApp::spawn().await;
    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let manager = principal("boss", &[Role::SalesManager], &["emea"]);
    let mut contacts = app.client_for(&rep);
    let lead = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    assert_eq!(lead.lifecycle_stage, LifecycleStage::Lead as i32);

    let forward =
        contacts.update_contact(stage_update(&lead, LifecycleStage::MarketingQualified)).await.unwrap();
    assert_eq!(forward.into_inner().lifecycle_stage, LifecycleStage::MarketingQualified as i32);
    let refused = failure(contacts.update_contact(stage_update(&lead, LifecycleStage::Lead)).await);
    assert_eq!(
        (refused.code(), reason(&refused).as_str()),
        (Code::FailedPrecondition, "LIFECYCLE_TRANSITION_NOT_ALLOWED")
    );
    let refused = failure(contacts.update_contact(stage_update(&lead, LifecycleStage::Disqualified)).await);
    assert_eq!(violated_fields(&refused), ["contact.lifecycle_stage"]);
    let refused = failure(contacts.update_contact(stage_update(&lead, LifecycleStage::Churned)).await);
    assert_eq!(reason(&refused), "LIFECYCLE_TRANSITION_NOT_ALLOWED", "only customers churn");

    // Moving back: not a rep's act, and a manager gives a reason.
    let set_back = |reason: &str| SetLifecycleStageRequest {
        contact_id: lead.id.clone(),
        stage: LifecycleStage::Lead.into(),
        reason: reason.into(),
        etag: String::new(),
    };
    let refused = failure(app.lifecycle_for(&rep).set_lifecycle_stage(set_back("oops")).await);
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = failure(app.lifecycle_for(&manager).set_lifecycle_stage(set_back("")).await);
    assert_eq!(violated_fields(&refused), ["reason"]);
    let foreign = principal("boss-us", &[Role::SalesManager], &["us"]);
    let refused = failure(app.lifecycle_for(&foreign).set_lifecycle_stage(set_back("mine now")).await);
    assert_eq!(reason(&refused), "NOT_IN_TEAM");
    let back = app.lifecycle_for(&manager).set_lifecycle_stage(set_back("scored too early")).await.unwrap();
    assert_eq!(back.into_inner().lifecycle_stage, LifecycleStage::Lead as i32);

    let history = app
        .lifecycle_for(&rep)
        .get_lifecycle_history(GetLifecycleHistoryRequest {
            contact_id: lead.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .transitions;
    let moves: Vec<(i32, i32, i32, &str, &str)> = history
        .iter()
        .map(|t| (t.from_stage, t.to_stage, t.cause, t.actor_id.as_str(), t.reason.as_str()))
        .collect();
    assert_eq!(
        moves,
        [
            (0, LifecycleStage::Lead as i32, LifecycleCause::Created as i32, "rep-1", ""),
            (
                LifecycleStage::Lead as i32,
                LifecycleStage::MarketingQualified as i32,
                LifecycleCause::Manual as i32,
                "rep-1",
                ""
            ),
            (
                LifecycleStage::MarketingQualified as i32,
                LifecycleStage::Lead as i32,
                LifecycleCause::Manual as i32,
                "boss",
                "scored too early"
            ),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn qualifying_records_the_answers_and_disqualifying_needs_a_manager_to_undo() {
    let app = TestApp::spawn().await;
    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let other_rep = principal("rep-2", &[Role::SalesRep], &["emea"]);
    let manager = principal("boss", &[Role::SalesManager], &["emea"]);
    let mut contacts = app.client_for(&rep);
    let lead = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let cfo = create(&mut contacts, contact("Carl", &unique_email("cfo"))).await;

    let qualify = |qualification: Qualification| QualifyLeadRequest {
        contact_id: lead.id.clone(),
        qualification: Some(qualification),
        etag: String::new(),
    };
    let refused = failure(app.lifecycle_for(&other_rep).qualify_lead(qualify(answers())).await);
    assert_eq!(reason(&refused), "NOT_OWNER", "only who may change the contact qualifies it");
    let mut bad = answers();
    bad.need = String::new();
    bad.budget = Some(Money { currency_code: "XXY".into(), minor_units: -5 });
    let refused = failure(app.lifecycle_for(&rep).qualify_lead(qualify(bad)).await);
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(violated_fields(&refused).contains(&"qualification.need".to_owned()));
    let mut missing_maker = answers();
    missing_maker.decision_maker_contact_id = uuid::Uuid::now_v7().to_string();
    let refused = failure(app.lifecycle_for(&rep).qualify_lead(qualify(missing_maker)).await);
    assert_eq!(reason(&refused), "CONTACT_NOT_FOUND");

    let mut with_maker = answers();
    with_maker.decision_maker_contact_id = cfo.id.clone();
    let qualified = app.lifecycle_for(&rep).qualify_lead(qualify(with_maker)).await.unwrap().into_inner();
    assert_eq!(qualified.lifecycle_stage, LifecycleStage::SalesQualified as i32);
    let stored = qualified.qualification.clone().unwrap();
    assert_eq!(
        (stored.qualified_by.as_str(), stored.decision_maker_contact_id.as_str()),
        ("rep-1", cfo.id.as_str())
    );
    assert_eq!(common::get(&mut contacts, &lead.id).await.qualification, Some(stored));

    let disqualify = DisqualifyLeadRequest {
        contact_id: lead.id.clone(),
        reason: "No budget this year".into(),
        etag: String::new(),
    };
    let out = app.lifecycle_for(&rep).disqualify_lead(disqualify.clone()).await.unwrap().into_inner();
    assert_eq!(out.lifecycle_stage, LifecycleStage::Disqualified as i32);
    assert_eq!(out.qualification.unwrap().disqualify_reason, "No budget this year");
    // Out of DISQUALIFIED only by a manager's ReopenLead.
    let refused = failure(contacts.update_contact(stage_update(&lead, LifecycleStage::Opportunity)).await);
    assert_eq!(reason(&refused), "LIFECYCLE_TRANSITION_NOT_ALLOWED");
    let refused = failure(app.lifecycle_for(&rep).qualify_lead(qualify(answers())).await);
    assert_eq!(reason(&refused), "LIFECYCLE_TRANSITION_NOT_ALLOWED");
    let reopen =
        ReopenLeadRequest { contact_id: lead.id.clone(), reason: "New budget".into(), etag: String::new() };
    assert_eq!(
        failure(app.lifecycle_for(&rep).reopen_lead(reopen.clone()).await).code(),
        Code::PermissionDenied
    );
    let reopened = app.lifecycle_for(&manager).reopen_lead(reopen).await.unwrap().into_inner();
    assert_eq!(reopened.lifecycle_stage, LifecycleStage::Lead as i32);
    assert!(reopened.qualification.unwrap().disqualify_reason.is_empty());

    // A customer is never disqualified.
    let customer = create(&mut contacts, contact("Cus", &unique_email("cus"))).await;
    contacts.update_contact(stage_update(&customer, LifecycleStage::Customer)).await.unwrap();
    let refused = failure(
        app.lifecycle_for(&rep)
            .disqualify_lead(DisqualifyLeadRequest { contact_id: customer.id.clone(), ..disqualify })
            .await,
    );
    assert_eq!(reason(&refused), "LIFECYCLE_TRANSITION_NOT_ALLOWED");

    // The contact's timeline tells the story, newest first.
    let timeline = app
        .activities_for(&rep)
        .get_timeline(GetTimelineRequest {
            subject: Some(get_timeline_request::Subject::ContactId(lead.id.clone())),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let kinds: Vec<i32> = timeline.iter().map(|entry| entry.kind).collect();
    assert_eq!(
        kinds,
        [
            TimelineEntryKind::LifecycleChanged as i32,
            TimelineEntryKind::LeadDisqualified as i32,
            TimelineEntryKind::LeadQualified as i32,
        ]
    );
    assert!(timeline[1].detail.contains("No budget this year"), "{:?}", timeline[1]);
    app.stop().await;
}
