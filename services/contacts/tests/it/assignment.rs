//! Assignment rules: new unowned contacts and companies handed to a team's
//! members by the first matching rule, in turn (fairly across replicas
//! under concurrent creates) or to the least loaded, each assignment
//! recorded; members and rules managed by managers.

use std::collections::HashMap;

use crate::common;

use common::{Options, TestApp, contact, failure, mask, reason, unique_email, violated_fields};
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::assignment_service_client::AssignmentServiceClient;
use rapport_proto::contacts::v1::{
    AssignmentMethod, AssignmentRule, Company, CreateAssignmentRuleRequest, CreateCompanyRequest,
    CreateContactRequest, DeleteAssignmentRuleRequest, ListAssignmentRulesRequest, ListAssignmentsRequest,
    ListTeamMembersRequest, SetTeamMemberRequest, TeamMember, UpdateAssignmentRuleRequest,
};
use tonic::Code;

type Assignments = AssignmentServiceClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, common::Bearer>,
>;

fn assignments(app: &TestApp, subject: &str, roles: &[Role]) -> Assignments {
    AssignmentServiceClient::with_interceptor(app.channel(), rapport_kit::testing::bearer(subject, roles))
}

async fn member(client: &mut Assignments, team: &str, user: &str, capacity: i32) {
    let member = TeamMember {
        team_id: team.into(),
        user_id: user.into(),
        display_name: format!("User {user}"),
        active: true,
        capacity,
        ..TeamMember::default()
    };
    client.set_team_member(SetTeamMemberRequest { member: Some(member) }).await.unwrap();
}

fn rule(name: &str, countries: &[&str], team: &str, method: AssignmentMethod) -> AssignmentRule {
    AssignmentRule {
        name: name.into(),
        countries: countries.iter().map(|country| (*country).to_owned()).collect(),
        team_id: team.into(),
        method: method.into(),
        enabled: true,
        ..AssignmentRule::default()
    }
}

async fn add(client: &mut Assignments, rule: AssignmentRule) -> AssignmentRule {
    client
        .create_assignment_rule(CreateAssignmentRuleRequest { rule: Some(rule) })
        .await
        .unwrap()
        .into_inner()
}

fn lead(country: &str) -> rapport_proto::contacts::v1::Contact {
    let mut person = contact("Lead", &unique_email("lead"));
    person.country = country.into();
    person
}

#[tokio::test]
async fn members_and_rules_are_managed_by_managers_and_checked() {
    let app = TestApp::spawn().await;
    let mut rep = assignments(&app, "rep-1", &[Role::SalesRep]);
    let mut manager = assignments(&app, "boss", &[Role::SalesManager]);
    let refused = failure(
        rep.create_assignment_rule(CreateAssignmentRuleRequest {
            rule: Some(rule("x", &[], "t", AssignmentMethod::RoundRobin)),
        })
        .await,
    );
    assert_eq!(refused.code(), Code::PermissionDenied);
    let refused = failure(
        manager
            .create_assignment_rule(CreateAssignmentRuleRequest {
                rule: Some(rule("", &["Germany"], "", AssignmentMethod::Unspecified)),
            })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["rule.name", "rule.team_id", "rule.countries[0]", "rule.method"]);
    let refused = failure(
        manager
            .set_team_member(SetTeamMemberRequest {
                member: Some(TeamMember {
                    team_id: "dach".into(),
                    user_id: "u\0".into(),
                    ..TeamMember::default()
                }),
            })
            .await,
    );
    assert_eq!(violated_fields(&refused), ["member.user_id", "member.display_name"]);

    member(&mut manager, "dach", "ann", 0).await;
    member(&mut manager, "dach", "ann", 5).await;
    let members = rep.list_team_members(ListTeamMembersRequest { team_id: "dach".into() }).await.unwrap();
    let members = members.into_inner().members;
    assert_eq!((members.len(), members[0].capacity, members[0].display_name.as_str()), (1, 5, "User ann"));

    let created =
        add(&mut manager, rule("DACH", &["de", "at", "ch"], "dach", AssignmentMethod::RoundRobin)).await;
    assert_eq!(created.countries, ["DE", "AT", "CH"]);
    let update = |position: i32, etag: &str| UpdateAssignmentRuleRequest {
        rule: Some(AssignmentRule {
            id: created.id.clone(),
            position,
            etag: etag.into(),
            ..AssignmentRule::default()
        }),
        update_mask: mask(&["position"]),
    };
    let moved = manager.update_assignment_rule(update(5, &created.etag)).await.unwrap().into_inner();
    assert_eq!((moved.position, moved.team_id.as_str()), (5, "dach"));
    assert_eq!(failure(manager.update_assignment_rule(update(6, &created.etag)).await).code(), Code::Aborted);
    let listed = rep.list_assignment_rules(ListAssignmentRulesRequest {}).await.unwrap().into_inner().rules;
    assert_eq!(listed, std::slice::from_ref(&moved));
    manager
        .delete_assignment_rule(DeleteAssignmentRuleRequest { id: created.id.clone(), etag: String::new() })
        .await
        .unwrap();
    let gone = failure(
        manager
            .delete_assignment_rule(DeleteAssignmentRuleRequest {
                id: created.id.clone(),
                etag: String::new(),
            })
            .await,
    );
    assert_eq!(reason(&gone), "ASSIGNMENT_RULE_NOT_FOUND");
    app.stop().await;
}

#[tokio::test]
async fn unowned_leads_go_to_the_first_matching_rules_team_in_turn_and_are_recorded() {
    let app = TestApp::spawn().await;
    let mut manager = assignments(&app, "boss", &[Role::SalesManager]);
    for user in ["ann", "bob", "cid"] {
        member(&mut manager, "dach", user, 0).await;
    }
    member(&mut manager, "france", "dan", 0).await;
    let dach = add(&mut manager, rule("DACH", &["DE", "AT"], "dach", AssignmentMethod::RoundRobin)).await;
    let mut france = rule("France", &["FR"], "france", AssignmentMethod::RoundRobin);
    france.position = 1;
    add(&mut manager, france).await;

    let mut capture = app.client_as("web-form", &[Role::Integration]).await;
    let mut owners = Vec::new();
    for country in ["DE", "AT", "DE", "DE", "FR", "US"] {
        let created = capture
            .create_contact(CreateContactRequest { contact: Some(lead(country)), request_id: String::new() })
            .await
            .unwrap()
            .into_inner();
        owners.push((created.owner_id, created.team_id));
    }
    let owners: Vec<(&str, &str)> = owners.iter().map(|(o, t)| (o.as_str(), t.as_str())).collect();
    assert_eq!(
        owners,
        [
            ("ann", "dach"),
            ("bob", "dach"),
            ("cid", "dach"),
            ("ann", "dach"),
            ("dan", "france"),
            ("web-form", "")
        ],
        "in turn; no matching rule keeps the default owner"
    );
    // A rep's own lead stays theirs; an explicit owner is kept.
    let mut reps = app.client_as("rep-9", &[Role::SalesRep]).await;
    let own = reps
        .create_contact(CreateContactRequest { contact: Some(lead("DE")), request_id: String::new() })
        .await;
    assert_eq!(own.unwrap().into_inner().owner_id, "rep-9");

    let recorded = manager
        .list_assignments(ListAssignmentsRequest { rule_id: dach.id.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .assignments;
    assert_eq!(recorded.len(), 4);
    assert!(recorded.iter().all(|a| a.rule_id == dach.id && a.method == AssignmentMethod::RoundRobin as i32));
    assert_eq!(recorded[0].owner_id, "ann", "newest first");

    // Companies too: an inactive member is skipped.
    manager
        .set_team_member(SetTeamMemberRequest {
            member: Some(TeamMember {
                team_id: "dach".into(),
                user_id: "bob".into(),
                display_name: "Bob".into(),
                active: false,
                ..TeamMember::default()
            }),
        })
        .await
        .unwrap();
    let company = capture
        .create_company(CreateCompanyRequest {
            company: Some(Company { name: "Siemens".into(), country: "DE".into(), ..Company::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    // Turn 4 among the active two (ann, cid): ann.
    assert_eq!((company.owner_id.as_str(), company.team_id.as_str()), ("ann", "dach"), "bob is inactive");
    app.stop().await;
}

#[tokio::test]
async fn round_robin_is_fair_across_two_replicas_under_concurrent_creates() {
    let first = TestApp::spawn().await;
    let second =
        TestApp::spawn_with(Options { database_url: Some(first.database_url.clone()), ..Options::default() })
            .await;
    let mut manager = assignments(&first, "boss", &[Role::SalesManager]);
    for user in ["ann", "bob", "cid", "dee"] {
        member(&mut manager, "dach", user, 0).await;
    }
    add(&mut manager, rule("DACH", &["DE"], "dach", AssignmentMethod::RoundRobin)).await;
    let clients = [
        first.client_as("web-form", &[Role::Integration]).await,
        second.client_as("web-form", &[Role::Integration]).await,
    ];
    let creates = (0..42).map(|n| {
        let mut client = clients[n % 2].clone();
        tokio::spawn(async move {
            client
                .create_contact(CreateContactRequest { contact: Some(lead("DE")), request_id: String::new() })
                .await
                .unwrap()
                .into_inner()
                .owner_id
        })
    });
    let mut counts: HashMap<String, usize> = HashMap::new();
    for owner in futures::future::join_all(creates).await {
        *counts.entry(owner.unwrap()).or_default() += 1;
    }
    let (min, max) = (counts.values().min().copied(), counts.values().max().copied());
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert!(max.unwrap() - min.unwrap() <= 1, "counts differ by more than one: {counts:?}");
    first.stop().await;
    second.stop().await;
}

#[tokio::test]
async fn least_loaded_picks_who_owns_least_under_capacity() {
    let app = TestApp::spawn().await;
    let mut manager = assignments(&app, "boss", &[Role::SalesManager]);
    member(&mut manager, "smb", "ann", 1).await;
    member(&mut manager, "smb", "bob", 0).await;
    add(&mut manager, rule("Everyone", &[], "smb", AssignmentMethod::LeastLoaded)).await;
    let mut capture = app.client_as("import", &[Role::Admin]).await;
    let mut owners = Vec::new();
    for _ in 0..4 {
        let created = capture
            .create_contact(CreateContactRequest { contact: Some(lead("")), request_id: String::new() })
            .await
            .unwrap()
            .into_inner();
        owners.push(created.owner_id);
    }
    // Both start empty: ann (first by id), then bob; ann is then at her
    // capacity of one, so bob takes the rest.
    assert_eq!(owners, ["ann", "bob", "bob", "bob"]);
    app.stop().await;
}
