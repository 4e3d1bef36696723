//! A case's clocks walked through its events, against values computed by
//! hand.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::*;
use crate::domain::calendar::Range;

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

struct One(Calendar);

impl Calendars for One {
    fn calendar(&self, _: uuid::Uuid) -> &Calendar {
        &self.0
    }
}

/// Berlin, Monday to Friday 09:00-17:00, Good Friday and Easter Monday 2026 off.
fn berlin() -> One {
    let day = || vec![Range::new("r", 9 * 60, 17 * 60).unwrap()];
    let holidays: BTreeSet<_> = ["2026-04-03", "2026-04-06"].iter().map(|day| day.parse().unwrap()).collect();
    One(Calendar::new("Europe/Berlin", [day(), day(), day(), day(), day(), vec![], vec![]], holidays)
        .unwrap())
}

fn policy(business_hours: bool) -> Policy {
    let target = |metric, hours: i64, pauses: &[&str]| TargetSpec {
        metric,
        goal_seconds: hours * 3600,
        business_hours,
        pause_statuses: pauses.iter().map(|status| (*status).to_owned()).collect(),
    };
    let targets = vec![
        target(Metric::FirstResponse, 4, &[]),
        target(Metric::NextResponse, 8, &["PENDING_CUSTOMER", "ON_HOLD"]),
        target(Metric::Resolution, 16, &["PENDING_CUSTOMER", "ON_HOLD"]),
    ];
    Policy {
        id: uuid::Uuid::nil(),
        version: 1,
        conditions: Conditions::default(),
        targets: [("NORMAL".to_owned(), targets)].into_iter().collect(),
        calendar_id: uuid::Uuid::nil(),
        escalation: Default::default(),
    }
}

fn due(clocks: &CaseClocks, metric: Metric) -> Option<DateTime<Utc>> {
    clocks.current(metric).and_then(|entry| entry.clock.due_at)
}

#[test]
fn a_case_walks_across_the_easter_weekend_and_the_dst_change() {
    let calendars = berlin();
    let policy = policy(true);
    let mut clocks = CaseClocks::default();
    let normal = CasePriority::Normal;
    // Opened Thursday 2026-03-26 15:00 CET (14:00 UTC).
    clocks.apply(
        Event::Created(CaseStatus::New),
        utc("2026-03-26T14:00:00Z"),
        Some(&policy),
        normal,
        &calendars,
    );
    // First response: 2 h Thursday + 2 h Friday: Friday 11:00 CET = 10:00 UTC.
    assert_eq!(due(&clocks, Metric::FirstResponse), Some(utc("2026-03-27T10:00:00Z")));
    // Resolution, 16 h: 2 h Thursday, 8 h Friday, then clocks go forward on
    // Sunday: Monday 09:00 CEST (07:00 UTC) + 6 h = 15:00 CEST = 13:00 UTC.
    assert_eq!(due(&clocks, Metric::Resolution), Some(utc("2026-03-30T13:00:00Z")));
    // An agent answers Friday 10:00 CET: first response met in time.
    clocks.apply(Event::AgentReply, utc("2026-03-27T09:00:00Z"), Some(&policy), normal, &calendars);
    let first = clocks.current(Metric::FirstResponse).unwrap();
    assert_eq!(first.clock.state_at(utc("2026-04-20T00:00:00Z")), crate::domain::clock::ClockState::Achieved);
    // Waiting for the customer from Friday 12:00 CET to Wednesday
    // 2026-04-01 09:00 CEST: resolution paused, 5 h run so far.
    let pending = CaseStatus::PendingCustomer;
    let status = Event::Status { from: CaseStatus::Open, to: pending };
    clocks.apply(status, utc("2026-03-27T11:00:00Z"), Some(&policy), normal, &calendars);
    assert_eq!(due(&clocks, Metric::Resolution), None);
    let reopen = Event::Status { from: pending, to: CaseStatus::Open };
    clocks.apply(reopen, utc("2026-04-01T07:00:00Z"), Some(&policy), normal, &calendars);
    clocks.apply(
        Event::RequesterReply(CaseStatus::Open),
        utc("2026-04-01T07:00:00Z"),
        Some(&policy),
        normal,
        &calendars,
    );
    // Resolution: 11 h left from Wednesday 09:00 CEST: 8 h Wednesday, then
    // Thursday 09:00 + 3 h = 12:00 CEST = 10:00 UTC.
    assert_eq!(due(&clocks, Metric::Resolution), Some(utc("2026-04-02T10:00:00Z")));
    // Next response, 8 h: Wednesday 17:00 CEST = 15:00 UTC.
    assert_eq!(due(&clocks, Metric::NextResponse), Some(utc("2026-04-01T15:00:00Z")));
    assert_eq!(clocks.next_due(), Some(utc("2026-04-01T15:00:00Z")));
    // Nobody answers; on hold Thursday 2026-04-02 16:00 CEST until Tuesday
    // 2026-04-07 10:00 CEST, across Good Friday and Easter Monday.
    let hold = Event::Status { from: CaseStatus::Open, to: CaseStatus::OnHold };
    clocks.apply(hold, utc("2026-04-02T14:00:00Z"), Some(&policy), normal, &calendars);
    let next = clocks.current(Metric::NextResponse).unwrap();
    // It breached Wednesday 17:00 CEST, while it ran.
    assert_eq!(next.clock.breached_at, Some(utc("2026-04-01T15:00:00Z")));
    let resolution = clocks.current(Metric::Resolution).unwrap();
    assert_eq!(resolution.clock.elapsed, chrono::Duration::hours(5 + 8 + 7));
    let back = Event::Status { from: CaseStatus::OnHold, to: CaseStatus::Open };
    clocks.apply(back, utc("2026-04-07T08:00:00Z"), Some(&policy), normal, &calendars);
    // Resolution ran 20 h of 16: breached Thursday 2026-04-02 12:00 CEST.
    assert_eq!(due(&clocks, Metric::Resolution), Some(utc("2026-04-02T10:00:00Z")));
}

#[test]
fn a_resolved_case_reopened_keeps_its_resolution_time_and_the_first_matching_policy_applies() {
    let calendars = berlin();
    let policy = policy(false);
    let mut clocks = CaseClocks::default();
    let normal = CasePriority::Normal;
    clocks.apply(
        Event::Created(CaseStatus::New),
        utc("2026-05-04T08:00:00Z"),
        Some(&policy),
        normal,
        &calendars,
    );
    let resolve = Event::Status { from: CaseStatus::New, to: CaseStatus::Resolved };
    clocks.apply(resolve, utc("2026-05-04T18:00:00Z"), Some(&policy), normal, &calendars);
    assert_eq!(clocks.next_due(), None);
    // Calendar hours: 10 h ran, 6 left after reopening on the 6th at 08:00.
    let reopen = Event::Status { from: CaseStatus::Resolved, to: CaseStatus::Open };
    clocks.apply(reopen, utc("2026-05-06T08:00:00Z"), Some(&policy), normal, &calendars);
    assert_eq!(due(&clocks, Metric::Resolution), Some(utc("2026-05-06T14:00:00Z")));
    // First response stays met: resolving met it.
    assert!(clocks.current(Metric::FirstResponse).unwrap().clock.is_met());

    let vip = Policy {
        conditions: Conditions { tags: vec!["vip".to_owned()], ..Conditions::default() },
        ..policy.clone()
    };
    let policies = [vip, policy];
    let tags = ["VIP".to_owned()];
    let facts = CaseFacts { priority: normal, channel: CaseChannel::Email, category: "", tags: &tags };
    assert!(choose(&policies, &facts).is_some_and(|chosen| !chosen.conditions.tags.is_empty()));
    let facts = CaseFacts { tags: &[], ..facts };
    assert!(choose(&policies, &facts).is_some_and(|chosen| chosen.conditions.tags.is_empty()));
}
