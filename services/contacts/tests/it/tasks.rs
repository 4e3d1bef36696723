//! Tasks: the caller's to-do list, completing and reopening, recurrence,
//! and reminders published exactly once — across replicas, after a sweep
//! cut short — to the owner's `only_mine` change stream.

use crate::common;

use chrono::{DateTime, Duration, TimeZone, Utc};
use common::{ManualClock, Options, TestApp, contact, create, failure, get, principal, reason, unique_email};
use futures::StreamExt as _;
use prost::Message as _;
use rapport_kit::auth::Role;
use rapport_proto::contacts::v1::watch_changes_response::Event;
use rapport_proto::contacts::v1::{
    Activity, ActivityKind, CompleteTaskRequest, ListMyTasksRequest, Recurrence, ReminderKind,
    ReopenTaskRequest, Task, TaskPriority, TaskReminder, TaskStatus, WatchChangesRequest,
};
use tonic::Code;

use crate::activities::{call, log};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

fn ts(time: DateTime<Utc>) -> Option<prost_types::Timestamp> {
    Some(rapport_kit::changelog::timestamp(time))
}

fn task(subject: &str, due: DateTime<Utc>) -> Activity {
    Activity {
        kind: ActivityKind::Task.into(),
        subject: subject.into(),
        occur_time: ts(due),
        task: Some(Task::default()),
        ..Activity::default()
    }
}

fn clocked(clock: &ManualClock) -> Options {
    Options {
        now: Some(clock.now()),
        env: vec![("CONTACTS_REMINDER_INTERVAL".into(), "1s".into())],
        ..Options::default()
    }
}

#[tokio::test]
async fn my_tasks_lists_my_open_tasks_overdue_first_then_by_due_time() {
    let clock = ManualClock::new(t0());
    let app = TestApp::spawn_with(clocked(&clock)).await;
    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let mut mine = app.activities_for(&rep);
    let mut others = app.activities_as("rep-2", &[Role::SalesRep]);
    let later = log(&mut mine, task("Later", t0() + Duration::days(2))).await;
    let overdue = log(&mut mine, task("Overdue", t0() - Duration::hours(3))).await;
    let soon = log(&mut mine, task("Soon", t0() + Duration::hours(1))).await;
    let done = log(&mut mine, task("Done", t0() - Duration::days(1))).await;
    mine.complete_task(CompleteTaskRequest { id: done.id.clone(), etag: String::new() }).await.unwrap();
    log(&mut others, task("Not mine", t0())).await;
    log(&mut mine, call("A call, not a task", "")).await;

    let first =
        mine.list_my_tasks(ListMyTasksRequest { page_size: 2, page_token: String::new() }).await.unwrap();
    let first = first.into_inner();
    let subjects = |tasks: &[Activity]| tasks.iter().map(|task| task.subject.clone()).collect::<Vec<_>>();
    assert_eq!(subjects(&first.tasks), ["Overdue", "Soon"]);
    assert!(first.tasks[0].task.as_ref().unwrap().overdue);
    assert!(!first.tasks[1].task.as_ref().unwrap().overdue);
    let rest = mine
        .list_my_tasks(ListMyTasksRequest { page_size: 2, page_token: first.next_page_token })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(subjects(&rest.tasks), ["Later"]);
    assert!(rest.next_page_token.is_empty());
    assert_eq!([&overdue.id, &soon.id, &later.id].len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn completing_a_task_marks_it_done_touches_the_contact_and_a_recurring_one_comes_back() {
    let clock = ManualClock::new(t0());
    let app = TestApp::spawn_with(clocked(&clock)).await;
    let mut contacts = app.client().await;
    let person = create(&mut contacts, contact("Ada", &unique_email("ada"))).await;
    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let mut activities = app.activities_for(&rep);
    let mut weekly = task("Weekly check-in", t0() + Duration::hours(2));
    weekly.contact_id = person.id.clone();
    weekly.task = Some(Task {
        priority: TaskPriority::High.into(),
        recurrence: Recurrence::Weekly.into(),
        remind_time: ts(t0() + Duration::hours(1)),
        ..Task::default()
    });
    let created = log(&mut activities, weekly).await;
    assert_eq!(created.task.as_ref().unwrap().status, TaskStatus::Open as i32);
    assert!(get(&mut contacts, &person.id).await.last_activity_time.is_none(), "an open task is no touch");

    let other = app.activities_as("rep-2", &[Role::SalesRep]);
    let refused = failure(
        other
            .clone()
            .complete_task(CompleteTaskRequest { id: created.id.clone(), etag: String::new() })
            .await,
    );
    assert_eq!(reason(&refused), "NOT_OWNER");

    clock.set(t0() + Duration::minutes(30));
    let completed = activities
        .complete_task(CompleteTaskRequest { id: created.id.clone(), etag: created.etag.clone() })
        .await
        .unwrap()
        .into_inner();
    let done = completed.task.as_ref().unwrap();
    assert_eq!((done.status, done.completed_by.as_str()), (TaskStatus::Completed as i32, "rep-1"));
    assert_eq!(done.complete_time, ts(t0() + Duration::minutes(30)));
    assert_eq!(get(&mut contacts, &person.id).await.last_activity_time, ts(t0() + Duration::minutes(30)));
    // Completing again changes nothing (and creates no second occurrence).
    let again = activities
        .complete_task(CompleteTaskRequest { id: created.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.etag, completed.etag);

    let open = activities.list_my_tasks(ListMyTasksRequest::default()).await.unwrap().into_inner().tasks;
    assert_eq!(open.len(), 1, "the next occurrence");
    let next = &open[0];
    assert_eq!(next.occur_time, ts(t0() + Duration::hours(2) + Duration::weeks(1)));
    let next_task = next.task.as_ref().unwrap();
    assert_eq!(next_task.remind_time, ts(t0() + Duration::hours(1) + Duration::weeks(1)));
    assert_eq!(
        (next_task.priority, next.contact_id.as_str()),
        (TaskPriority::High as i32, person.id.as_str())
    );

    let reopened = activities
        .reopen_task(ReopenTaskRequest { id: created.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reopened.task.unwrap().status, TaskStatus::Open as i32);
    let note = log(&mut activities, call("Not a task", &person.id)).await;
    let refused =
        failure(activities.complete_task(CompleteTaskRequest { id: note.id, etag: String::new() }).await);
    assert_eq!((refused.code(), reason(&refused).as_str()), (Code::FailedPrecondition, "NOT_A_TASK"));
    app.stop().await;
}

/// The reminders published so far: (task id, kind) for each.
async fn published(pool: &sqlx::PgPool) -> Vec<(String, ReminderKind)> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT resource_id, resource FROM change_log WHERE resource_type = 'rapport.contacts.v1.TaskReminder' \
         ORDER BY sequence",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(id, bytes)| (id, TaskReminder::decode(bytes.as_slice()).unwrap().kind())).collect()
}

#[tokio::test]
async fn reminders_go_out_once_each_to_the_owners_stream_across_two_replicas_and_a_crashed_sweep() {
    let clock = ManualClock::new(t0());
    let first = TestApp::spawn_with(clocked(&clock)).await;
    let mut second_options = clocked(&clock);
    second_options.database_url = Some(first.database_url.clone());
    let second = TestApp::spawn_with(second_options).await;
    let pool = first.pool();

    let rep = principal("rep-1", &[Role::SalesRep], &["emea"]);
    let mut activities = first.activities_for(&rep);
    let mut with_reminder = task("Call back", t0() + Duration::hours(2));
    with_reminder.task = Some(Task { remind_time: ts(t0() + Duration::hours(1)), ..Task::default() });
    let reminded = log(&mut activities, with_reminder).await;
    let done_early = log(&mut activities, task("Done early", t0() + Duration::hours(2))).await;
    activities
        .complete_task(CompleteTaskRequest { id: done_early.id.clone(), etag: String::new() })
        .await
        .unwrap();
    let someone_elses =
        log(&mut first.activities_as("rep-2", &[Role::SalesRep]), task("Theirs", t0() + Duration::hours(2)))
            .await;

    // The owner follows their own tasks, from the second replica.
    let mut watch = second
        .client_for(&rep)
        .watch_changes(WatchChangesRequest { only_mine: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner();

    // A sweep cut short (its transaction never commits) publishes nothing.
    // It sweeps as of later while the replicas' clock still shows t0, so
    // their workers find nothing due meanwhile.
    let later = t0() + Duration::hours(3) + Duration::minutes(30);
    {
        let mut tx = pool.begin().await.unwrap();
        let at = rapport_contacts::domain::activity::At { now: later, overdue_after: Duration::hours(1) };
        let sent =
            rapport_contacts::store::reminders::sweep(&mut tx, at, "crashing-sweep", 1000).await.unwrap();
        assert_eq!(sent, 5, "REMINDER, DUE and OVERDUE of one task, DUE and OVERDUE of the other");
        drop(tx);
    }
    assert!(published(&pool).await.is_empty());
    clock.set(later);

    // Both replicas' workers sweep; every reminder arrives once, in order.
    let mut mine = Vec::new();
    while mine.len() < 3 {
        let response = tokio::time::timeout(std::time::Duration::from_secs(30), watch.next())
            .await
            .expect("reminders within 30 s")
            .unwrap()
            .unwrap();
        if let Some(Event::Change(change)) = response.event {
            if change.resource_type == "rapport.contacts.v1.TaskReminder" {
                let reminder = TaskReminder::decode(change.resource.unwrap().value.as_slice()).unwrap();
                assert_eq!(reminder.task.as_ref().unwrap().owner_id, "rep-1");
                mine.push((change.resource_id, reminder.kind()));
            } else {
                assert_eq!(change.resource_type, "rapport.contacts.v1.Activity");
                let activity = Activity::decode(change.resource.unwrap().value.as_slice()).unwrap();
                assert_eq!(activity.owner_id, "rep-1", "only my own activities");
            }
        }
    }
    assert_eq!(
        mine,
        [
            (reminded.id.clone(), ReminderKind::Reminder),
            (reminded.id.clone(), ReminderKind::Due),
            (reminded.id.clone(), ReminderKind::Overdue),
        ]
    );
    // Wait until the other owner's reminders are out too, then check the log.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while published(&pool).await.len() < 5 {
        assert!(std::time::Instant::now() < deadline, "reminders of the other task");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let mut all = published(&pool).await;
    all.sort();
    let mut expected = vec![
        (reminded.id.clone(), ReminderKind::Reminder),
        (reminded.id.clone(), ReminderKind::Due),
        (reminded.id.clone(), ReminderKind::Overdue),
        (someone_elses.id.clone(), ReminderKind::Due),
        (someone_elses.id.clone(), ReminderKind::Overdue),
    ];
    expected.sort();
    assert_eq!(all, expected, "each reminder exactly once; none for the completed task");
    // Later sweeps add nothing.
    let at =
        rapport_contacts::domain::activity::At { now: clock.now().now(), overdue_after: Duration::hours(1) };
    let mut tx = pool.begin().await.unwrap();
    assert_eq!(rapport_contacts::store::reminders::sweep(&mut tx, at, "late-sweep", 1000).await.unwrap(), 0);
    tx.commit().await.unwrap();
    first.stop().await;
    second.stop().await;
}
