use chrono::{Duration, TimeZone};
use rapport_proto::contacts::v1::{Recurrence, ReminderKind, Task, TaskStatus};

use super::*;

fn at(hour: u32) -> At {
    At { now: Utc.with_ymd_and_hms(2026, 12, 7, hour, 0, 0).unwrap(), overdue_after: Duration::hours(1) }
}

fn task_input(due_hour: u32, remind_hour: Option<u32>) -> Activity {
    Activity {
        kind: ActivityKind::Task as i32,
        subject: " Send the proposal ".into(),
        occur_time: Some(rapport_kit::changelog::timestamp(at(due_hour).now)),
        task: Some(Task {
            remind_time: remind_hour.map(|hour| rapport_kit::changelog::timestamp(at(hour).now)),
            recurrence: Recurrence::Weekly as i32,
            ..Task::default()
        }),
        ..Activity::default()
    }
}

fn new(input: &Activity, now: At) -> Result<ActivityState, Vec<Violation>> {
    ActivityDraft::parse(input, &ActivityField::ALL)?.into_new("rep-1".into(), "emea".into(), now)
}

fn fields(violations: &[Violation]) -> Vec<&str> {
    violations.iter().map(|violation| violation.field.as_str()).collect()
}

#[test]
fn a_call_defaults_to_now_and_keeps_its_details() {
    let input = Activity {
        kind: ActivityKind::Call as i32,
        subject: "Intro call".into(),
        direction: Direction::Outbound as i32,
        call_outcome: CallOutcome::LeftVoicemail as i32,
        duration: Some(prost_types::Duration { seconds: 90, nanos: 0 }),
        ..Activity::default()
    };
    let state = new(&input, at(9)).unwrap();
    assert_eq!(state.occur_time, at(9).now);
    assert_eq!(state.duration_seconds, 90);
    assert!(state.task.is_none());
    assert_eq!(state.touch_time(at(9).now), Some(at(9).now), "a call that happened touches the customer");
}

#[test]
fn cross_field_rules_report_every_field() {
    let input = Activity {
        kind: ActivityKind::Note as i32,
        subject: "x".into(),
        direction: Direction::Inbound as i32,
        call_outcome: CallOutcome::Connected as i32,
        duration: Some(prost_types::Duration { seconds: 60, nanos: 0 }),
        ..Activity::default()
    };
    let violations = new(&input, at(9)).unwrap_err();
    assert_eq!(fields(&violations), ["activity.direction", "activity.call_outcome", "activity.duration"]);
    let bad = Activity {
        kind: 42,
        subject: String::new(),
        body: "nul\0".into(),
        participant_contact_ids: vec!["nope".into()],
        deal_id: "x".into(),
        duration: Some(prost_types::Duration { seconds: 90_000, nanos: 0 }),
        ..Activity::default()
    };
    let violations = ActivityDraft::parse(&bad, &ActivityField::ALL).unwrap_err();
    assert_eq!(
        fields(&violations),
        [
            "activity.kind",
            "activity.subject",
            "activity.body",
            "activity.duration",
            "activity.participant_contact_ids[0]",
            "activity.deal_id"
        ]
    );
}

#[test]
fn only_tasks_have_task_details() {
    let mut note = task_input(12, Some(11));
    note.kind = ActivityKind::Note as i32;
    assert_eq!(fields(&new(&note, at(9)).unwrap_err()), ["activity.task"]);
}

#[test]
fn a_task_needs_a_due_time_and_a_reminder_before_it() {
    let mut input = task_input(12, Some(13));
    let violations = new(&input, at(9)).unwrap_err();
    assert_eq!(fields(&violations), ["activity.task.remind_time"]);
    input.occur_time = None;
    assert_eq!(fields(&new(&input, at(9)).unwrap_err()), ["activity.occur_time"]);
}

#[test]
fn reminders_fire_in_order_once_each() {
    let state = new(&task_input(12, Some(11)), at(9)).unwrap();
    let mut task = state.task.clone().unwrap();
    let due = state.occur_time;
    assert_eq!(task.priority, rapport_proto::contacts::v1::TaskPriority::Normal);
    assert_eq!(task.next_reminder_time(due, Duration::hours(1)), Some(at(11).now));
    assert!(task.due_reminders(due, at(10)).is_empty());
    let fired = task.due_reminders(due, at(12));
    assert_eq!(fired, [(ReminderKind::Reminder, at(11).now), (ReminderKind::Due, at(12).now)]);
    task.reminders_sent.extend(fired.iter().map(|(kind, _)| *kind));
    assert_eq!(task.next_reminder_time(due, Duration::hours(1)), Some(at(13).now));
    assert_eq!(task.due_reminders(due, at(14)), [(ReminderKind::Overdue, at(13).now)]);
    task.reminders_sent.push(ReminderKind::Overdue);
    assert_eq!(task.next_reminder_time(due, Duration::hours(1)), None, "none left");
    assert!(task.due_reminders(due, at(20)).is_empty());
}

#[test]
fn reminders_already_past_at_creation_are_skipped_and_rescheduling_rearms() {
    // Due at 9:00, created at 9:30: DUE is past, OVERDUE (10:00) still ahead.
    let now = At { now: at(9).now + Duration::minutes(30), ..at(9) };
    let mut state = new(&task_input(9, Some(8)), now).unwrap();
    let task = state.task.clone().unwrap();
    assert_eq!(task.reminders_sent, [ReminderKind::Reminder, ReminderKind::Due]);
    assert_eq!(task.next_reminder_time(state.occur_time, Duration::hours(1)), Some(at(10).now));
    // Moved to 15:00 at 10:30: DUE and OVERDUE are ahead again; the 8:00
    // reminder has passed.
    let update =
        Activity { occur_time: Some(rapport_kit::changelog::timestamp(at(15).now)), ..Activity::default() };
    let draft = ActivityDraft::parse(&update, &[ActivityField::OccurTime]).unwrap();
    let later = At { now: at(10).now + Duration::minutes(30), ..at(10) };
    assert_eq!(state.apply(&draft, later), ["occur_time"]);
    let task = state.task.unwrap();
    assert_eq!(task.reminders_sent, [ReminderKind::Reminder]);
    assert_eq!(task.next_reminder_time(state.occur_time, Duration::hours(1)), Some(at(15).now));
}

#[test]
fn completing_stops_reminders_and_a_weekly_task_recurs() {
    let state = new(&task_input(12, Some(11)), at(9)).unwrap();
    let mut task = state.task.clone().unwrap();
    assert!(task.complete("rep-1", at(10).now));
    assert!(!task.complete("rep-1", at(10).now), "completing twice changes nothing");
    assert_eq!(task.status, TaskStatus::Completed);
    assert_eq!(task.next_reminder_time(state.occur_time, Duration::hours(1)), None);
    assert!(task.due_reminders(state.occur_time, at(23)).is_empty());
    let (next_due, next) = task.next_occurrence(state.occur_time, at(10)).unwrap();
    assert_eq!(next_due, at(12).now + Duration::weeks(1));
    assert_eq!(next.remind_time, Some(at(11).now + Duration::weeks(1)), "the reminder offset is kept");
    assert_eq!(next.status, TaskStatus::Open);
    assert!(task.reopen() && task.complete_time.is_none());
}
