//! Automatic assignment: round robin and least-open among eligible agents,
//! fair under concurrent creates; away agents, full agents and agents out
//! of their hours skipped; nobody eligible leaves the case in the queue.

use std::collections::BTreeMap;

use rapport_kit::auth::Role;
use rapport_proto::support::v1::*;

use crate::common::{TestApp, case, create};

async fn team(app: &TestApp, team_id: &str, mode: AssignmentMode, agents: &[&str]) {
    let team = Team {
        team_id: team_id.into(),
        mode: mode as i32,
        agent_ids: agents.iter().map(|agent| (*agent).to_owned()).collect(),
        ..Team::default()
    };
    app.admin().assignment.set_team(SetTeamRequest { team: Some(team) }).await.unwrap();
}

async fn set_agent(app: &TestApp, agent: Agent, fields: &[&str]) -> Result<Agent, tonic::Status> {
    let fields = fields.iter().map(|field| (*field).to_owned()).collect();
    app.admin()
        .assignment
        .set_agent(SetAgentRequest { agent: Some(agent), fields })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn round_robin_deals_concurrent_cases_out_evenly() {
    let app = TestApp::spawn().await;
    team(&app, "t-1", AssignmentMode::RoundRobin, &["ann", "bob", "cid"]).await;
    let ada = app.requester("ada@example.com").await;
    let rep = app.clients_as("rep", &[Role::SalesRep], &["sales"]);
    let mut calls = Vec::new();
    for n in 0..12 {
        let rep = rep.clone();
        let case = Case { team_id: "t-1".into(), ..case(&format!("case {n}"), &ada) };
        calls.push(tokio::spawn(async move { create(&rep, case).await.unwrap() }));
    }
    let mut counts = BTreeMap::new();
    for call in calls {
        *counts.entry(call.await.unwrap().assignee_id).or_insert(0) += 1;
    }
    assert_eq!(counts, BTreeMap::from([("ann".to_owned(), 4), ("bob".to_owned(), 4), ("cid".to_owned(), 4)]));
    app.stop().await;
}

#[tokio::test]
async fn least_open_skips_away_full_and_off_hours_agents() {
    let app = TestApp::spawn().await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    // ann already has two open cases (assigned by hand).
    for subject in ["old 1", "old 2"] {
        create(&admin, Case { team_id: "t-1".into(), assignee_id: "ann".into(), ..case(subject, &ada) })
            .await
            .unwrap();
    }
    team(&app, "t-1", AssignmentMode::LeastOpen, &["ann", "bob", "cid", "dan"]).await;
    // bob is away; cid works only at night (it is 09:00 UTC); dan may hold one case.
    set_agent(&app, Agent { agent_id: "bob".into(), available: false, ..Agent::default() }, &["available"])
        .await
        .unwrap();
    let night = Calendar {
        name: "Night".into(),
        time_zone: "UTC".into(),
        hours: (1..=7)
            .map(|day| BusinessHours { day_of_week: day, start: "20:00".into(), end: "24:00".into() })
            .collect(),
        ..Calendar::default()
    };
    let night = admin
        .sla
        .clone()
        .create_calendar(CreateCalendarRequest { calendar: Some(night) })
        .await
        .unwrap()
        .into_inner();
    set_agent(
        &app,
        Agent { agent_id: "cid".into(), calendar_id: night.id.clone(), ..Agent::default() },
        &["calendar_id"],
    )
    .await
    .unwrap();
    set_agent(&app, Agent { agent_id: "dan".into(), capacity: 1, ..Agent::default() }, &["capacity"])
        .await
        .unwrap();
    let assignee = |subject: &'static str| {
        let admin = admin.clone();
        let ada = ada.clone();
        async move {
            create(&admin, Case { team_id: "t-1".into(), ..case(subject, &ada) }).await.unwrap().assignee_id
        }
    };
    // dan has none open: his; then he is full, ann (2 open) is the only one
    // left; then she has 3, still the only one.
    assert_eq!(assignee("a").await, "dan");
    assert_eq!(assignee("b").await, "ann");
    // At night cid works and has none.
    app.time.set("2026-05-04T21:00:00Z");
    assert_eq!(assignee("c").await, "cid");
    // Everyone away or full: the case waits in the queue.
    for agent in ["ann", "cid"] {
        set_agent(
            &app,
            Agent { agent_id: agent.into(), available: false, ..Agent::default() },
            &["available"],
        )
        .await
        .unwrap();
    }
    assert_eq!(assignee("d").await, "");
    let team = admin
        .assignment
        .clone()
        .get_team(GetTeamRequest { team_id: "t-1".into() })
        .await
        .unwrap()
        .into_inner();
    let open: Vec<(String, i32)> =
        team.agents.into_iter().map(|agent| (agent.agent_id, agent.open_cases)).collect();
    assert_eq!(
        open,
        [("ann".to_owned(), 3), ("bob".to_owned(), 0), ("cid".to_owned(), 1), ("dan".to_owned(), 1)]
    );
    app.stop().await;
}

#[tokio::test]
async fn agents_set_only_their_own_availability() {
    let app = TestApp::spawn().await;
    let mut ann = app.clients_as("ann", &[Role::SupportAgent], &["t-1"]).assignment;
    let away = |agent: &str, fields: &[&str]| SetAgentRequest {
        agent: Some(Agent { agent_id: agent.into(), available: false, capacity: 9, ..Agent::default() }),
        fields: fields.iter().map(|field| (*field).to_owned()).collect(),
    };
    assert!(!ann.set_agent(away("ann", &["available"])).await.unwrap().into_inner().available);
    let refused = ann.set_agent(away("bob", &["available"])).await.unwrap_err();
    assert_eq!(crate::common::reason(&refused), "NOT_OWNER");
    let refused = ann.set_agent(away("ann", &["capacity"])).await.unwrap_err();
    assert_eq!(crate::common::reason(&refused), "NOT_OWNER");
    app.stop().await;
}
