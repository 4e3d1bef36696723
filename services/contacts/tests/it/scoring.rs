//! Lead scoring: rules are data (admins and marketing change them), scores
//! follow the rules, the profile and recent engagement, explain
//! themselves, are recomputed after changes, are filterable and sortable,
//! and a threshold promotes leads to MARKETING_QUALIFIED.

use std::time::{Duration, Instant};

use crate::common;

use common::{
    TestApp, contact, create, create_company, failure, mask, principal, reason, unique_email, violated_fields,
};
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::scoring_rule::Condition;
use rapport_proto::contacts::v1::scoring_service_client::ScoringServiceClient;
use rapport_proto::contacts::v1::{
    Activity, ActivityKind, DeleteScoringRuleRequest, EngagementCondition, EngagementEvent,
    GetLeadScoreRequest, GetLifecycleHistoryRequest, LeadGrade, LifecycleCause, LifecycleStage,
    ListContactsRequest, ListScoringRulesRequest, LogActivityRequest, ProfileCondition, ProfileField,
    ScoringRule, ScoringSettings, UpdateScoringRuleRequest, UpdateScoringSettingsRequest,
};
use tonic::Code;

type Scoring = ScoringServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, common::Bearer>,
>;

fn scoring(app: &TestApp, subject: &str, roles: &[Role]) -> Scoring {
    ScoringServiceClient::with_interceptor(app.channel(), rapport_kit::testing::bearer(subject, roles))
}

fn job_title_rule(text: &str, points: i32) -> ScoringRule {
    ScoringRule {
        name: format!("title has {text}"),
        points,
        enabled: true,
        condition: Some(Condition::Profile(ProfileCondition {
            field: ProfileField::JobTitle.into(),
            text: text.into(),
            ..ProfileCondition::default()
        })),
        ..ScoringRule::default()
    }
}

fn size_rule(points: i32) -> ScoringRule {
    ScoringRule {
        name: "mid-size company".into(),
        points,
        enabled: true,
        condition: Some(Condition::Profile(ProfileCondition {
            field: ProfileField::CompanySize.into(),
            min_employees: 50,
            max_employees: 500,
            ..ProfileCondition::default()
        })),
        ..ScoringRule::default()
    }
}

fn call_rule(points: i32) -> ScoringRule {
    ScoringRule {
        name: "called lately".into(),
        points,
        enabled: true,
        condition: Some(Condition::Engagement(EngagementCondition {
            event: EngagementEvent::Activity.into(),
            activity_kind: ActivityKind::Call.into(),
            within_days: 30,
        })),
        ..ScoringRule::default()
    }
}

async fn add(client: &mut Scoring, rule: ScoringRule) -> ScoringRule {
    use rapport_proto::contacts::v1::CreateScoringRuleRequest;
    client.create_scoring_rule(CreateScoringRuleRequest { rule: Some(rule) }).await.unwrap().into_inner()
}

/// Runs the scorer's work once, now (the worker does the same every interval).
async fn rescore(app: &TestApp) {
    let pool = app.pool();
    let mut tx = pool.begin().await.unwrap();
    rapport_contacts::store::scoring::sweep(&mut tx, chrono::Utc::now(), 10_000, "test").await.unwrap();
    tx.commit().await.unwrap();
}

async fn score_of(client: &mut Scoring, contact_id: &str) -> rapport_proto::contacts::v1::LeadScore {
    client.get_lead_score(GetLeadScoreRequest { contact_id: contact_id.into() }).await.unwrap().into_inner()
}

#[tokio::test]
async fn rules_are_data_that_admins_and_marketing_change_and_every_change_is_checked() {
    let app = TestApp::spawn().await;
    let mut marketing = scoring(&app, "mkt-1", &[Role::Marketing]);
    let mut rep = scoring(&app, "rep-1", &[Role::SalesRep]);
    let refused = failure(
        rep.create_scoring_rule(rapport_proto::contacts::v1::CreateScoringRuleRequest {
            rule: Some(job_title_rule("chief", 10)),
        })
        .await,
    );
    assert_eq!(refused.code(), Code::PermissionDenied);
    let mut bad = size_rule(0);
    bad.name = String::new();
    let refused = failure(
        marketing
            .create_scoring_rule(rapport_proto::contacts::v1::CreateScoringRuleRequest { rule: Some(bad) })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["rule.name", "rule.points"]);
    let before = marketing
        .get_scoring_settings(rapport_proto::contacts::v1::GetScoringSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules_version;
    let created = add(&mut marketing, job_title_rule(" Chief ", 10)).await;
    assert!(!created.id.is_empty() && !created.etag.is_empty());
    let Some(Condition::Profile(profile)) = &created.condition else { panic!("{created:?}") };
    assert_eq!(profile.text, "chief", "trimmed and lower-cased");
    let after = rep
        .get_scoring_settings(rapport_proto::contacts::v1::GetScoringSettingsRequest {})
        .await
        .unwrap()
        .into_inner()
        .rules_version;
    assert!(after > before, "a rule change makes every score out of date");

    let update = |points: i32, etag: &str| UpdateScoringRuleRequest {
        rule: Some(ScoringRule {
            id: created.id.clone(),
            points,
            etag: etag.into(),
            ..ScoringRule::default()
        }),
        update_mask: mask(&["points"]),
    };
    let updated = marketing.update_scoring_rule(update(25, &created.etag)).await.unwrap().into_inner();
    assert_eq!((updated.points, updated.name.as_str()), (25, created.name.as_str()));
    assert_eq!(failure(marketing.update_scoring_rule(update(30, &created.etag)).await).code(), Code::Aborted);
    let refused = failure(marketing.update_scoring_rule(update(500, "")).await);
    assert_eq!(violated_fields(&refused), ["rule.points"]);
    let mut unknown = update(5, "");
    unknown.update_mask = mask(&["id"]);
    assert_eq!(violated_fields(&failure(marketing.update_scoring_rule(unknown).await)), ["update_mask"]);
    let refused = failure(
        marketing
            .update_scoring_settings(UpdateScoringSettingsRequest {
                settings: Some(ScoringSettings { mql_threshold: 101, ..Default::default() }),
            })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["settings.mql_threshold"]);

    let rules = rep.list_scoring_rules(ListScoringRulesRequest {}).await.unwrap().into_inner().rules;
    assert_eq!(rules, std::slice::from_ref(&updated));
    marketing
        .delete_scoring_rule(DeleteScoringRuleRequest { id: created.id.clone(), etag: updated.etag.clone() })
        .await
        .unwrap();
    let missing = failure(
        marketing
            .delete_scoring_rule(DeleteScoringRuleRequest { id: created.id.clone(), etag: String::new() })
            .await,
    );
    assert_eq!((missing.code(), reason(&missing).as_str()), (Code::NotFound, "SCORING_RULE_NOT_FOUND"));
    assert!(rep.list_scoring_rules(ListScoringRulesRequest {}).await.unwrap().into_inner().rules.is_empty());
    app.stop().await;
}

#[tokio::test]
async fn scores_follow_profile_and_engagement_explain_themselves_and_sort() {
    let app = TestApp::spawn().await;
    let mut contacts = app.client().await;
    let mut admin = scoring(&app, "admin", &[Role::Admin]);
    let company = create_company(&mut contacts, "Initech", "").await;
    contacts
        .update_company(rapport_proto::contacts::v1::UpdateCompanyRequest {
            company: Some(rapport_proto::contacts::v1::Company {
                id: company.id.clone(),
                employee_count: 120,
                ..Default::default()
            }),
            update_mask: mask(&["employee_count"]),
        })
        .await
        .unwrap();
    let mut cto = contact("Ada", &unique_email("ada"));
    (cto.job_title, cto.company_id) = ("Chief Technology Officer".into(), company.id.clone());
    let cto = create(&mut contacts, cto).await;
    let intern = create(&mut contacts, contact("Ian", &unique_email("ian"))).await;
    let cxo = add(&mut admin, job_title_rule("chief", 40)).await;
    add(&mut admin, size_rule(20)).await;
    add(&mut admin, call_rule(30)).await;
    assert!(score_of(&mut admin, &cto.id).await.pending, "not scored yet");

    rescore(&app).await;
    let scored = score_of(&mut admin, &cto.id).await;
    assert_eq!((scored.score, scored.grade(), scored.pending), (60, LeadGrade::B, false));
    let reasons: Vec<&str> = scored.factors.iter().map(|factor| factor.reason.as_str()).collect();
    assert_eq!(reasons, ["job title \"Chief Technology Officer\" contains \"chief\"", "company size 120"]);
    let read = common::get(&mut contacts, &cto.id).await;
    assert_eq!((read.lead_score, read.lead_grade()), (60, LeadGrade::B), "the cached contact shows it");
    assert_eq!(score_of(&mut admin, &intern.id).await.score, 0);

    // A call: pending, then counted with the call behind it.
    let call = app
        .activities_as("rep-1", &[Role::SalesRep])
        .log_activity(LogActivityRequest {
            activity: Some(Activity {
                kind: ActivityKind::Call.into(),
                subject: "Intro".into(),
                contact_id: cto.id.clone(),
                ..Activity::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(score_of(&mut admin, &cto.id).await.pending);
    rescore(&app).await;
    let scored = score_of(&mut admin, &cto.id).await;
    assert_eq!(scored.score, 90);
    let called = scored.factors.iter().find(|factor| factor.rule_name == "called lately").unwrap();
    assert_eq!((called.event_resource_id.as_str(), called.points), (call.id.as_str(), 30));

    // Filter and sort by score.
    let listed = contacts
        .list_contacts(ListContactsRequest {
            filter: "lead_score >= 80 AND lead_grade = B".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contacts;
    assert_eq!(common::ids(&listed), std::slice::from_ref(&cto.id));
    let sorted = contacts
        .list_contacts(ListContactsRequest {
            order_by: "lead_score desc".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(common::ids(&sorted.contacts), std::slice::from_ref(&cto.id));
    let next = contacts
        .list_contacts(ListContactsRequest {
            order_by: "lead_score desc".into(),
            page_size: 1,
            page_token: sorted.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(common::ids(&next.contacts), std::slice::from_ref(&intern.id));

    // A rule change rescores everyone.
    admin
        .update_scoring_rule(UpdateScoringRuleRequest {
            rule: Some(ScoringRule { id: cxo.id.clone(), enabled: false, ..ScoringRule::default() }),
            update_mask: mask(&["enabled"]),
        })
        .await
        .unwrap();
    assert!(score_of(&mut admin, &cto.id).await.pending);
    rescore(&app).await;
    let scored = score_of(&mut admin, &cto.id).await;
    assert_eq!((scored.score, scored.grade()), (50, LeadGrade::D));
    app.stop().await;
}

#[tokio::test]
async fn reaching_the_threshold_makes_a_lead_marketing_qualified_by_rule() {
    let options = common::Options {
        env: vec![("CONTACTS_SCORING_INTERVAL".into(), "1s".into())],
        ..common::Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let mut contacts = app.client_for(&rep);
    let mut lead = contact("Ada", &unique_email("ada"));
    lead.job_title = "VP Engineering".into();
    let lead = create(&mut contacts, lead).await;
    let mut admin = scoring(&app, "admin", &[Role::Admin]);
    add(&mut admin, job_title_rule("vp", 70)).await;
    admin
        .update_scoring_settings(UpdateScoringSettingsRequest {
            settings: Some(ScoringSettings { mql_threshold: 60, ..Default::default() }),
        })
        .await
        .unwrap();
    // The worker scores and promotes it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let read = common::get(&mut contacts, &lead.id).await;
        if read.lifecycle_stage == LifecycleStage::MarketingQualified as i32 {
            assert_eq!(read.lead_score, 70);
            break;
        }
        assert!(Instant::now() < deadline, "the lead was not promoted: {read:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
    let last = history.last().unwrap();
    assert_eq!(
        (last.to_stage, last.cause),
        (LifecycleStage::MarketingQualified as i32, LifecycleCause::Rule as i32)
    );
    app.stop().await;
}
