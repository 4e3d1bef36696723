//! The reminder sweep: every open task whose next reminder is due gets its
//! due reminders published as `TaskReminder` CREATED events, and the
//! reminders marked sent, in the caller's transaction — so a reminder is
//! published exactly when its mark commits: once, whatever replica sweeps
//! and however a sweep is cut short (a crashed sweep rolls back whole).
//!
//! Tasks are taken in batches (`FOR UPDATE SKIP LOCKED`: one being
//! edited right now is left for the next sweep), each batch marked in one
//! statement and its events appended in one statement.

use chrono::{DateTime, Utc};
use rapport_kit::changelog::{self, Change};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::TaskReminder;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::convert;
use crate::domain::activity::At;
use crate::domain::activity::task::reminder_name;
use crate::error::TASK_REMINDER;
use crate::model::ActivityRecord;

/// Tasks read per batch.
const BATCH: i64 = 5_000;

/// Publishes the reminders due at `at.now`, at most `max_tasks` tasks'
/// worth; returns how many reminders went out.
pub async fn sweep(tx: &mut PgConnection, at: At, actor: &str, max_tasks: usize) -> Result<u64, sqlx::Error> {
    let mut sent = 0;
    let mut seen = 0;
    while seen < max_tasks {
        let sql = format!(
            "SELECT {} FROM activities \
             WHERE next_reminder_time <= $1 AND task_status = 'OPEN' AND delete_time IS NULL \
             ORDER BY next_reminder_time LIMIT $2 FOR UPDATE SKIP LOCKED",
            super::activities::COLUMNS
        );
        let rows: Vec<super::activities::Row> =
            sqlx::query_as(&sql).bind(at.now).bind(BATCH).fetch_all(&mut *tx).await?;
        let count = rows.len();
        let records: Vec<ActivityRecord> =
            rows.into_iter().map(ActivityRecord::try_from).collect::<Result<_, _>>()?;
        sent += publish(tx, &records, at, actor).await?;
        seen += count;
        if count < usize::try_from(BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(sent)
}

/// Marks and publishes the due reminders of `records`.
async fn publish(
    tx: &mut PgConnection,
    records: &[ActivityRecord],
    at: At,
    actor: &str,
) -> Result<u64, sqlx::Error> {
    let mut ids: Vec<Uuid> = Vec::with_capacity(records.len());
    let mut sent_lists: Vec<String> = Vec::with_capacity(records.len());
    let mut next_times: Vec<Option<DateTime<Utc>>> = Vec::with_capacity(records.len());
    let mut changes = Vec::new();
    for record in records {
        let Some(task) = &record.state.task else { continue };
        let due = record.state.occur_time;
        let fired = task.due_reminders(due, at);
        let mut task = task.clone();
        task.reminders_sent.extend(fired.iter().map(|(kind, _)| *kind));
        let mut after = record.clone();
        after.state.task = Some(task.clone());
        let activity = convert::activity_to_proto(&after, at.now);
        for (kind, fire_time) in &fired {
            let reminder = TaskReminder {
                kind: (*kind).into(),
                task: Some(activity.clone()),
                fire_time: Some(rapport_kit::changelog::timestamp(*fire_time)),
            };
            changes.push(Change::of(
                TASK_REMINDER,
                &reminder,
                record.id.to_string(),
                ChangeKind::Created,
                actor,
                Vec::new(),
            ));
        }
        ids.push(record.id.uuid());
        sent_lists
            .push(task.reminders_sent.iter().map(|kind| reminder_name(*kind)).collect::<Vec<_>>().join(","));
        next_times.push(task.next_reminder_time(due, at.overdue_after));
    }
    // Reminders are not changes of the task: its version stays (an etag a
    // client holds remains good).
    sqlx::query(
        "UPDATE activities a SET reminders_sent = string_to_array(s.sent, ','), next_reminder_time = s.next \
         FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]) AS s(id, sent, next) WHERE a.id = s.id",
    )
    .bind(&ids)
    .bind(&sent_lists)
    .bind(&next_times)
    .execute(&mut *tx)
    .await?;
    changelog::append_batch(tx, &changes).await?;
    Ok(u64::try_from(changes.len()).unwrap_or(u64::MAX))
}
