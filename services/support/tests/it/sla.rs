//! SLA clocks through the API, on a business-hours calendar, with the
//! service's clock walked across a weekend, a DST change, a pause and
//! Easter.

use rapport_kit::auth::Role;
use rapport_proto::support::v1::*;

use crate::common::{TestApp, case, create, mask, utc};

fn hours(day: i32, start: &str, end: &str) -> BusinessHours {
    BusinessHours { day_of_week: day, start: start.into(), end: end.into() }
}

fn holiday(year: i32, month: i32, day: i32, name: &str) -> Holiday {
    Holiday { date: Some(rapport_proto::common::v1::Date { year, month, day }), name: name.into() }
}

fn goal(hours: i64) -> Option<prost_types::Duration> {
    Some(prost_types::Duration { seconds: hours * 3600, nanos: 0 })
}

/// A Berlin office calendar (Monday to Friday 09:00-17:00, Good Friday
/// and Easter Monday 2026 off) and a policy for cases tagged `vip` on it:
/// first response 4 business hours, resolution 16, both paused while
/// waiting (the default). Returns the policy.
async fn vip_policy(app: &TestApp) -> SlaPolicy {
    let mut sla = app.admin().sla;
    let calendar = Calendar {
        name: "Berlin office".into(),
        time_zone: "Europe/Berlin".into(),
        hours: (1..=5).map(|day| hours(day, "09:00", "17:00")).collect(),
        holidays: vec![holiday(2026, 4, 3, "Good Friday"), holiday(2026, 4, 6, "Easter Monday")],
        ..Calendar::default()
    };
    let calendar =
        sla.create_calendar(CreateCalendarRequest { calendar: Some(calendar) }).await.unwrap().into_inner();
    let target = |metric: SlaMetric, hours: i64| SlaPolicyTarget {
        priority: CasePriority::Normal as i32,
        metric: metric as i32,
        goal: goal(hours),
        business_hours: true,
        ..SlaPolicyTarget::default()
    };
    let policy = SlaPolicy {
        name: "VIP".into(),
        position: 1,
        conditions: Some(SlaConditions { tags: vec!["vip".into()], ..SlaConditions::default() }),
        targets: vec![target(SlaMetric::FirstResponse, 4), target(SlaMetric::Resolution, 16)],
        calendar_id: calendar.id.clone(),
        ..SlaPolicy::default()
    };
    sla.create_sla_policy(CreateSlaPolicyRequest { policy: Some(policy) }).await.unwrap().into_inner()
}

fn due(case: &Case, metric: SlaMetric) -> Option<i64> {
    case.sla_targets
        .iter()
        .find(|target| target.metric() == metric)?
        .due_time
        .as_ref()
        .map(|time| time.seconds)
}

fn at(text: &str) -> Option<i64> {
    Some(utc(text).timestamp())
}

#[tokio::test]
async fn a_vip_case_is_due_in_business_hours_across_the_weekend_dst_a_pause_and_easter() {
    let app = TestApp::spawn().await;
    let vip = vip_policy(&app).await;
    let ada = app.requester("ada@example.com").await;
    let mut agent = app.clients_as("agent-1", &[Role::SupportAgent], &[]).cases;
    // Thursday 2026-03-26 15:00 CET.
    app.time.set("2026-03-26T14:00:00Z");
    let created =
        create(&app.admin(), Case { tags: vec!["VIP".into()], ..case("Outage", &ada) }).await.unwrap();
    assert_eq!(created.sla_policy_id, vip.id);
    // First response: 2 h Thursday + 2 h Friday = Friday 11:00 CET.
    assert_eq!(due(&created, SlaMetric::FirstResponse), at("2026-03-27T10:00:00Z"));
    // Resolution: 10 h by Friday night; clocks go forward on Sunday;
    // Monday 09:00 CEST + 6 h = 15:00 CEST.
    assert_eq!(due(&created, SlaMetric::Resolution), at("2026-03-30T13:00:00Z"));
    // Friday 12:00 CET: waiting on the customer (5 h run).
    app.time.set("2026-03-27T11:00:00Z");
    let pending = UpdateCaseRequest {
        case: Some(Case {
            id: created.id.clone(),
            status: CaseStatus::PendingCustomer as i32,
            ..Case::default()
        }),
        update_mask: mask(&["status"]),
    };
    let paused = agent.update_case(pending).await.unwrap().into_inner();
    let resolution = paused.sla_targets.iter().find(|t| t.metric() == SlaMetric::Resolution).unwrap();
    assert_eq!((resolution.state(), resolution.due_time.is_none()), (SlaState::Paused, true));
    // Wednesday 2026-04-01 09:00 CEST: the customer writes back; 11 h left:
    // 8 h Wednesday, Thursday 09:00 + 3 h.
    app.time.set("2026-04-01T07:00:00Z");
    let mut bridge = app.clients_as("mail-bridge", &[Role::Integration], &[]).cases;
    let answer = Comment {
        body: "Here are the logs".into(),
        author_kind: CommentAuthorKind::Requester as i32,
        ..Comment::default()
    };
    let back = bridge
        .add_comment(AddCommentRequest {
            case_id: created.id.clone(),
            comment: Some(answer),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(back.status(), CaseStatus::Open);
    assert_eq!(due(&back, SlaMetric::Resolution), at("2026-04-02T10:00:00Z"));
    // On hold Thursday 09:00 CEST (3 h left) until Tuesday after Easter
    // 10:00 CEST: Good Friday and Easter Monday do not count; Tuesday
    // 10:00 + 3 h = 13:00 CEST.
    app.time.set("2026-04-02T07:00:00Z");
    let hold = UpdateCaseRequest {
        case: Some(Case { id: created.id.clone(), status: CaseStatus::OnHold as i32, ..Case::default() }),
        update_mask: mask(&["status"]),
    };
    agent.update_case(hold).await.unwrap();
    app.time.set("2026-04-07T08:00:00Z");
    let open = UpdateCaseRequest {
        case: Some(Case { id: created.id.clone(), status: CaseStatus::Open as i32, ..Case::default() }),
        update_mask: mask(&["status"]),
    };
    let resumed = agent.update_case(open).await.unwrap().into_inner();
    assert_eq!(due(&resumed, SlaMetric::Resolution), at("2026-04-07T11:00:00Z"));
    assert_eq!(
        resumed.next_due_time.as_ref().map(|time| time.seconds),
        at("2026-03-27T10:00:00Z"),
        "first response is overdue"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_policy_change_reprojects_its_open_cases_and_says_how_many_deadlines_moved() {
    let app = TestApp::spawn().await;
    let vip = vip_policy(&app).await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    // Monday 2026-05-04 09:00 UTC = 11:00 CEST: two VIP cases, one plain one.
    let one = create(&admin, Case { tags: vec!["vip".into()], ..case("One", &ada) }).await.unwrap();
    let two = create(&admin, Case { tags: vec!["vip".into()], ..case("Two", &ada) }).await.unwrap();
    let plain = create(&admin, case("Plain", &ada)).await.unwrap();
    // First response 4 h: 15:00 CEST.
    assert_eq!(due(&one, SlaMetric::FirstResponse), at("2026-05-04T13:00:00Z"));
    // An hour later, first response becomes 2 business hours: 13:00 CEST;
    // resolution stays 16 h.
    app.time.set("2026-05-04T10:00:00Z");
    let mut changed = vip.clone();
    changed.targets[0].goal = goal(2);
    let response = admin
        .sla
        .clone()
        .update_sla_policy(UpdateSlaPolicyRequest { policy: Some(changed) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.policy.as_ref().unwrap().version, 2);
    let done = response.reprojection.unwrap();
    assert_eq!((done.cases, done.deadlines_changed), (2, 2));
    let mut cases = admin.cases.clone();
    for id in [&one.id, &two.id] {
        let read = cases.get_case(GetCaseRequest { id: id.clone() }).await.unwrap().into_inner();
        assert_eq!(due(&read, SlaMetric::FirstResponse), at("2026-05-04T11:00:00Z"));
        assert_eq!(due(&read, SlaMetric::Resolution), due(&one, SlaMetric::Resolution));
        assert_eq!(read.sla_policy_version, 2);
    }
    let untouched = cases.get_case(GetCaseRequest { id: plain.id.clone() }).await.unwrap().into_inner();
    assert_eq!(untouched.etag, plain.etag);
    // The explanation shows the segments and the version.
    let explained = admin
        .sla
        .clone()
        .get_case_sla(GetCaseSlaRequest { case_id: one.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((explained.policy_id.as_str(), explained.policy_version), (vip.id.as_str(), 2));
    assert!(
        explained
            .timelines
            .iter()
            .all(|timeline| timeline.segments.len() == 1 && timeline.segments[0].running)
    );
    app.stop().await;
}

#[tokio::test]
async fn holidays_imported_from_an_ics_file_move_open_deadlines() {
    let app = TestApp::spawn().await;
    let vip = vip_policy(&app).await;
    let ada = app.requester("ada@example.com").await;
    let admin = app.admin();
    // Friday 2026-05-08 16:00 CEST: first response 4 h = 1 h Friday + 3 h
    // Monday = 12:00 CEST Monday, unless Monday is a holiday.
    app.time.set("2026-05-08T14:00:00Z");
    let created = create(&admin, Case { tags: vec!["vip".into()], ..case("Before the long weekend", &ada) })
        .await
        .unwrap();
    assert_eq!(due(&created, SlaMetric::FirstResponse), at("2026-05-11T10:00:00Z"));
    let ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:a\r\n\
        DTSTART;VALUE=DATE:20260511\r\nSUMMARY:Company day\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:b\r\n\
        DTSTART:20260512T100000Z\r\nSUMMARY:Meeting\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    let imported = admin
        .sla
        .clone()
        .import_holidays(ImportHolidaysRequest { calendar_id: vip.calendar_id.clone(), ics: ics.into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.skipped_events, 1);
    assert_eq!(imported.calendar.unwrap().holidays.len(), 3);
    assert_eq!(imported.reprojection.map(|done| done.deadlines_changed), Some(2));
    let read =
        admin.cases.clone().get_case(GetCaseRequest { id: created.id.clone() }).await.unwrap().into_inner();
    assert_eq!(due(&read, SlaMetric::FirstResponse), at("2026-05-12T10:00:00Z"));
    // The clocks say which version of the calendar measured them.
    let explained = admin
        .sla
        .clone()
        .get_case_sla(GetCaseSlaRequest { case_id: created.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(explained.timelines.iter().all(|timeline| timeline.calendar_version == 2), "{explained:?}");
    app.stop().await;
}

#[tokio::test]
async fn simulate_answers_when_a_case_would_be_due() {
    let app = TestApp::spawn().await;
    let vip = vip_policy(&app).await;
    let time = |text: &str| Some(prost_types::Timestamp { seconds: utc(text).timestamp(), nanos: 0 });
    let request = SimulateSlaRequest {
        policy_id: vip.id.clone(),
        priority: CasePriority::Normal as i32,
        // Friday 2026-03-27 16:00 CET, pending from Monday 10:00 CEST to
        // Tuesday 10:00 CEST.
        open_time: time("2026-03-27T15:00:00Z"),
        events: vec![
            SimulatedEvent {
                time: time("2026-03-30T08:00:00Z"),
                event: Some(simulated_event::Event::AgentReply(true)),
            },
            SimulatedEvent {
                time: time("2026-03-30T08:00:00Z"),
                event: Some(simulated_event::Event::Status(CaseStatus::PendingCustomer as i32)),
            },
            SimulatedEvent {
                time: time("2026-03-31T08:00:00Z"),
                event: Some(simulated_event::Event::RequesterReply(true)),
            },
        ],
        ..SimulateSlaRequest::default()
    };
    let simulated = app.admin().sla.clone().simulate_sla(request).await.unwrap().into_inner();
    let resolution = simulated
        .timelines
        .iter()
        .find(|t| t.target.as_ref().unwrap().metric() == SlaMetric::Resolution)
        .unwrap();
    // 1 h Friday + 1 h Monday ran; 14 h left from Tuesday 10:00 CEST:
    // 7 h Tuesday, 7 h Wednesday = Wednesday 16:00 CEST.
    assert_eq!(
        resolution.target.as_ref().unwrap().due_time.as_ref().map(|t| t.seconds),
        at("2026-04-01T14:00:00Z")
    );
    assert_eq!(resolution.segments.len(), 3);
    let first = simulated
        .timelines
        .iter()
        .find(|t| t.target.as_ref().unwrap().metric() == SlaMetric::FirstResponse)
        .unwrap();
    assert_eq!(first.target.as_ref().unwrap().state(), SlaState::Achieved);
    app.stop().await;
}

#[tokio::test]
async fn bad_calendars_and_policies_are_refused_and_the_fallback_stays() {
    let app = TestApp::spawn().await;
    let mut sla = app.admin().sla;
    let bad = Calendar {
        name: "".into(),
        time_zone: "Mars/Olympus".into(),
        hours: vec![hours(8, "09:00", "17:00"), hours(1, "17:00", "09:00"), hours(2, "25:00", "26:00")],
        ..Calendar::default()
    };
    let refused = sla.create_calendar(CreateCalendarRequest { calendar: Some(bad) }).await.unwrap_err();
    let mut fields = crate::common::violated_fields(&refused);
    fields.sort();
    assert_eq!(
        fields,
        [
            "calendar.hours[0].day_of_week",
            "calendar.hours[1].end",
            "calendar.hours[2].end",
            "calendar.hours[2].start",
            "calendar.name",
            "calendar.time_zone",
            "calendar.weekly_hours"
        ]
    );
    let policies = sla.list_sla_policies(ListSlaPoliciesRequest {}).await.unwrap().into_inner().policies;
    assert_eq!(policies.len(), 1);
    let standard = &policies[0];
    let refused =
        sla.delete_sla_policy(DeleteSlaPolicyRequest { id: standard.id.clone() }).await.unwrap_err();
    assert_eq!(crate::common::reason(&refused), "SLA_FALLBACK_REQUIRED");
    let mut twice = standard.clone();
    twice.targets.truncate(11);
    twice.targets.push(twice.targets[0].clone());
    twice.targets[1].goal = goal(0);
    let refused = sla.update_sla_policy(UpdateSlaPolicyRequest { policy: Some(twice) }).await.unwrap_err();
    assert_eq!(
        crate::common::violated_fields(&refused),
        ["policy.targets[1].goal", "policy.targets[11].metric"]
    );
    let agent = app.clients_as("agent", &[Role::SupportAgent], &[]).sla;
    let denied = agent.clone().list_sla_policies(ListSlaPoliciesRequest {}).await;
    assert!(denied.is_ok(), "reads are open");
    let denied = agent
        .clone()
        .update_sla_policy(UpdateSlaPolicyRequest { policy: Some(standard.clone()) })
        .await
        .unwrap_err();
    assert_eq!(crate::common::reason(&denied), "PERMISSION_DENIED_ROLE");
    app.stop().await;
}
