//! The SLA sweeper: a warning before the breach and the breach itself,
//! each announced once per case and target although two replicas sweep,
//! and the breach escalated by the policy (priority raised, the new
//! priority's goals applied, the case moved to the escalation team).

use futures::StreamExt as _;
use rapport_proto::support::v1::*;

use crate::common::{TestApp, case, create, utc};

fn duration(minutes: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: minutes * 60, nanos: 0 })
}

/// The standard policy changed to: NORMAL first response 2 h, resolution
/// 8 h; HIGH first response 1 h, resolution 4 h; warn an hour before; on
/// breach raise the priority and move the case to team t-escalation.
async fn escalating_policy(app: &TestApp) {
    let mut sla = app.admin().sla;
    let mut standard =
        sla.list_sla_policies(ListSlaPoliciesRequest {}).await.unwrap().into_inner().policies.remove(0);
    let target = |priority: CasePriority, metric: SlaMetric, minutes: i64| SlaPolicyTarget {
        priority: priority as i32,
        metric: metric as i32,
        goal: duration(minutes),
        ..SlaPolicyTarget::default()
    };
    standard.targets = vec![
        target(CasePriority::Normal, SlaMetric::FirstResponse, 120),
        target(CasePriority::Normal, SlaMetric::Resolution, 480),
        target(CasePriority::High, SlaMetric::FirstResponse, 60),
        target(CasePriority::High, SlaMetric::Resolution, 240),
    ];
    standard.escalation = Some(SlaEscalation {
        warn_before: duration(60),
        raise_priority: true,
        escalation_team_id: "t-escalation".into(),
        ..SlaEscalation::default()
    });
    sla.update_sla_policy(UpdateSlaPolicyRequest { policy: Some(standard) }).await.unwrap();
}

type Alerts = std::pin::Pin<Box<dyn futures::Stream<Item = SlaAlert> + Send>>;

async fn alerts(app: &TestApp) -> Alerts {
    let request =
        WatchChangesRequest { after_sequence: 0, resource_types: vec!["rapport.support.v1.SlaAlert".into()] };
    let stream = app.admin().cases.watch_changes(request).await.unwrap().into_inner();
    Box::pin(stream.filter_map(|message| async move {
        match message.unwrap().event? {
            watch_changes_response::Event::Change(change) => {
                Some(prost::Message::decode(change.resource.unwrap().value.as_slice()).unwrap())
            }
            watch_changes_response::Event::Heartbeat(_) => None,
        }
    }))
}

async fn next(alerts: &mut Alerts) -> (SlaMetric, SlaAlertKind, Vec<String>) {
    let alert = rapport_kit::testing::within("an SLA alert", alerts.next()).await.unwrap();
    (alert.metric(), alert.kind(), alert.escalations)
}

#[tokio::test]
async fn two_replicas_warn_and_escalate_each_target_once() {
    let mut app = TestApp::spawn_with(&[("SUPPORT_SWEEP_INTERVAL", "1s")]).await;
    app.start_support(&[("SUPPORT_SWEEP_INTERVAL", "1s")]).await;
    let second = app.another_support(&[("SUPPORT_SWEEP_INTERVAL", "1s")]).await;
    escalating_policy(&app).await;
    let ada = app.requester("ada@example.com").await;
    let created = create(&app.admin(), Case { team_id: "t-1".into(), ..case("Down", &ada) }).await.unwrap();
    let mut alerts = alerts(&app).await;
    // 10:30: first response (due 11:00) is within the hour.
    app.time.set("2026-05-04T10:30:00Z");
    assert_eq!(next(&mut alerts).await, (SlaMetric::FirstResponse, SlaAlertKind::Warning, vec![]));
    // 11:30: breached; escalated.
    app.time.set("2026-05-04T11:30:00Z");
    let escalated = vec!["priority NORMAL -> HIGH".to_owned(), "team t-1 -> t-escalation".to_owned()];
    assert_eq!(next(&mut alerts).await, (SlaMetric::FirstResponse, SlaAlertKind::Breach, escalated));
    let read =
        app.admin().cases.get_case(GetCaseRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!((read.priority(), read.team_id.as_str()), (CasePriority::High, "t-escalation"));
    // HIGH resolution is 4 h: due 13:00, warned from 12:00.
    let resolution = read.sla_targets.iter().find(|t| t.metric() == SlaMetric::Resolution).unwrap();
    assert_eq!(
        resolution.due_time.as_ref().map(|t| t.seconds),
        Some(utc("2026-05-04T13:00:00Z").timestamp())
    );
    // Every tick of both replicas from now on finds the first response
    // recorded; the next alert is the resolution's warning.
    app.time.set("2026-05-04T12:15:00Z");
    assert_eq!(next(&mut alerts).await, (SlaMetric::Resolution, SlaAlertKind::Warning, vec![]));
    // An agent's reply meets nothing more: the first response stays breached.
    let recorded: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM change_log WHERE resource_type = 'rapport.support.v1.SlaAlert'",
    )
    .fetch_one(&app.pool())
    .await
    .unwrap();
    assert_eq!(recorded, 3);
    second.stop().await;
    app.stop().await;
}
