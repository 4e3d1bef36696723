//! Activities and tasks: reads, writes (each with its change-log row and
//! its timeline entries), listing and the caller's tasks.
//!
//! A write locks the contacts and the company it links in id order (live
//! ones only: a link to a deleted record is refused) and, when the
//! activity is a touch of the customer (a call, meeting, email or note
//! that happened, a completed task), moves their `last_activity_time`
//! forward in the same transaction — without a new version or a change
//! event of their own: the activity's event carries it. The ids whose
//! time moved are returned so their cached copies can be dropped.
//!
//! [`links`]: what other services' events do to the activities linking
//! their records (a deleted deal or case marked, a merged case re-pointed).

use chrono::{DateTime, Utc};
use prost::Message as _;
use rapport_kit::auth::Owned;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_kit::listing::{self, ListQuery, time_value};
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::contacts::v1::Activity;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

mod links;

pub use links::{mark_link, repoint_case};

use super::{Write, check_etag, deleted, timeline};
use crate::convert;
use crate::domain::activity::task::{
    priority_from_name, priority_name, recurrence_from_name, recurrence_name, reminder_from_name,
    reminder_name, status_from_name, status_name,
};
use crate::domain::activity::{
    ActivityDraft, ActivityId, ActivityState, At, Links, TaskState, direction_from_name, direction_name,
    kind_from_name, kind_name, outcome_from_name, outcome_name,
};
use crate::domain::{CompanyId, ContactId};
use crate::error::{ACTIVITY, ContactsError, Error};
use crate::model::ActivityRecord;
use crate::policy::ACTIVITIES;

pub(crate) const COLUMNS: &str = "id, kind, subject, body, direction, occur_time, duration_seconds, call_outcome, actor_id, \
    owner_id, team_id, participant_ids, contact_id, company_id, deal_id, case_id, deleted_links, task_priority, \
    task_status, complete_time, completed_by, remind_time, recurrence, reminders_sent, create_time, update_time, \
    delete_time, version";

#[derive(sqlx::FromRow)]
pub(crate) struct Row {
    id: Uuid,
    kind: String,
    subject: String,
    body: String,
    direction: String,
    occur_time: DateTime<Utc>,
    duration_seconds: i32,
    call_outcome: String,
    actor_id: String,
    owner_id: String,
    team_id: String,
    participant_ids: Vec<Uuid>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    deal_id: Option<Uuid>,
    case_id: Option<Uuid>,
    deleted_links: Vec<String>,
    task_priority: Option<String>,
    task_status: Option<String>,
    complete_time: Option<DateTime<Utc>>,
    completed_by: String,
    remind_time: Option<DateTime<Utc>>,
    recurrence: String,
    reminders_sent: Vec<String>,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<Row> for ActivityRecord {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<ActivityRecord, sqlx::Error> {
        let task = match (row.task_status, row.task_priority) {
            (Some(status), Some(priority)) => Some(TaskState {
                priority: priority_from_name(&priority)?,
                status: status_from_name(&status)?,
                complete_time: row.complete_time,
                completed_by: row.completed_by,
                remind_time: row.remind_time,
                recurrence: recurrence_from_name(&row.recurrence)?,
                reminders_sent: row
                    .reminders_sent
                    .iter()
                    .map(|name| reminder_from_name(name))
                    .collect::<Result<_, _>>()?,
            }),
            _ => None,
        };
        Ok(ActivityRecord {
            id: row.id.into(),
            actor_id: row.actor_id,
            state: ActivityState {
                kind: kind_from_name(&row.kind)?,
                subject: row.subject,
                body: row.body,
                direction: direction_from_name(&row.direction)?,
                occur_time: row.occur_time,
                duration_seconds: row.duration_seconds,
                call_outcome: outcome_from_name(&row.call_outcome)?,
                owner_id: row.owner_id,
                team_id: row.team_id,
                links: Links {
                    participants: row.participant_ids.into_iter().map(Into::into).collect(),
                    contact_id: row.contact_id.map(Into::into),
                    company_id: row.company_id.map(Into::into),
                    deal_id: row.deal_id,
                    case_id: row.case_id,
                },
                deleted_links: row.deleted_links,
                task,
            },
            create_time: row.create_time,
            update_time: row.update_time,
            delete_time: row.delete_time,
            version: row.version,
        })
    }
}

/// The records whose `last_activity_time` a write moved (their caches
/// must be dropped after the commit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    /// Contacts.
    pub contacts: Vec<Uuid>,
    /// Companies.
    pub companies: Vec<Uuid>,
}

/// A committed (or replayed) activity write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The activity after the write.
    pub activity: Activity,
    /// Whose last activity time moved.
    pub touched: Touched,
}

impl Written {
    fn unchanged(activity: Activity) -> Written {
        Written { activity, touched: Touched::default() }
    }
}

fn owned(state: &ActivityState) -> Owned<'_> {
    Owned::new(&state.owner_id, &state.team_id)
}

/// One activity, live or deleted.
pub async fn get(pool: &PgPool, id: ActivityId) -> Result<Option<ActivityRecord>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM activities WHERE id = $1");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(pool).await?;
    row.map(ActivityRecord::try_from).transpose()
}

/// The activities with these ids that exist, in any order.
pub async fn get_many(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<ActivityRecord>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT {COLUMNS} FROM activities WHERE id = ANY($1)");
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(ids).fetch_all(pool).await?;
    rows.into_iter().map(ActivityRecord::try_from).collect()
}

async fn lock(tx: &mut PgConnection, id: ActivityId) -> Result<ActivityRecord, Error> {
    let sql = format!("SELECT {COLUMNS} FROM activities WHERE id = $1 FOR UPDATE");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *tx).await?;
    row.map(ActivityRecord::try_from).transpose()?.ok_or_else(|| crate::error::activity_not_found(id))
}

/// Locks the live contacts and company an activity links (refusing a
/// missing or deleted one).
async fn lock_links(tx: &mut PgConnection, links: &Links) -> Result<(), Error> {
    if let Some(contact_id) = links.contact_id {
        super::contacts::lock_live(tx, &[contact_id], "activity.contact_id").await?;
    }
    let others: Vec<ContactId> =
        links.participants.iter().copied().filter(|id| Some(*id) != links.contact_id).collect();
    super::contacts::lock_live(tx, &others, "activity.participant_contact_ids").await?;
    if let Some(company_id) = links.company_id {
        super::lock_live_company(tx, company_id, "activity.company_id").await?;
    }
    Ok(())
}

/// Moves the last activity time of the records `state` links forward to
/// its touch time, if it is one.
async fn touch(
    tx: &mut PgConnection,
    state: &ActivityState,
    now: DateTime<Utc>,
) -> Result<Touched, sqlx::Error> {
    let Some(time) = state.touch_time(now) else {
        return Ok(Touched::default());
    };
    let contacts: Vec<Uuid> = state.links.contacts().iter().map(|id| id.uuid()).collect();
    let contacts = if contacts.is_empty() {
        Vec::new()
    } else {
        // Their engagement changed too: their scores are queued for a
        // recompute (the contact row's update stays HOT: no indexed column).
        sqlx::query_scalar(
            "WITH queued AS (INSERT INTO score_queue SELECT unnest($1::uuid[]) \
               WHERE EXISTS (SELECT 1 FROM scoring_rules) ON CONFLICT DO NOTHING) \
             UPDATE contacts SET last_activity_time = $2 WHERE id = ANY($1) \
               AND (last_activity_time IS NULL OR last_activity_time < $2) RETURNING id",
        )
        .bind(&contacts)
        .bind(time)
        .fetch_all(&mut *tx)
        .await?
    };
    let companies = match state.links.company_id {
        Some(company_id) => {
            sqlx::query_scalar(
                "UPDATE companies SET last_activity_time = $2 WHERE id = $1 \
                   AND (last_activity_time IS NULL OR last_activity_time < $2) RETURNING id",
            )
            .bind(company_id.uuid())
            .bind(time)
            .fetch_all(&mut *tx)
            .await?
        }
        None => Vec::new(),
    };
    Ok(Touched { contacts, companies })
}

/// Logs an activity, or replays the first result of the same
/// `request_id`.
pub async fn create(
    pool: &PgPool,
    draft: ActivityDraft,
    (owner_id, team_id): (String, String),
    write: Write<'_>,
    at: At,
) -> Result<Written, Error> {
    let state = draft.into_new(owner_id, team_id, at).map_err(Error::Invalid)?;
    write.may_assign(&ACTIVITIES, None, owned(&state))?;
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "LogActivity").await? {
        let activity = Activity::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")))?;
        return Ok(Written::unchanged(activity));
    }
    lock_links(&mut tx, &state.links).await?;
    let record = ActivityRecord {
        id: ActivityId::generate(),
        actor_id: write.actor.to_owned(),
        state,
        create_time: at.now,
        update_time: at.now,
        delete_time: None,
        version: 1,
    };
    insert(&mut tx, &record, at).await?;
    timeline::replace_for_activity(&mut tx, &record).await?;
    let touched = touch(&mut tx, &record.state, at.now).await?;
    let activity = convert::activity_to_proto(&record, at.now);
    changelog::append(
        &mut tx,
        &[Change::of(
            ACTIVITY,
            &activity,
            record.id.to_string(),
            ChangeKind::Created,
            write.actor,
            Vec::new(),
        )],
    )
    .await?;
    write.record(&mut tx, &activity.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(Written { activity, touched })
}

/// Inserts a new activity row.
pub(crate) async fn insert(
    tx: &mut PgConnection,
    record: &ActivityRecord,
    at: At,
) -> Result<(), sqlx::Error> {
    let state = &record.state;
    let task = state.task.as_ref();
    sqlx::query(
        "INSERT INTO activities (id, kind, subject, body, direction, occur_time, duration_seconds, call_outcome, \
           actor_id, owner_id, team_id, participant_ids, contact_id, company_id, deal_id, case_id, task_priority, \
           task_status, remind_time, recurrence, reminders_sent, next_reminder_time, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
           $22, $23, $23)",
    )
    .bind(record.id.uuid())
    .bind(kind_name(state.kind))
    .bind(&state.subject)
    .bind(&state.body)
    .bind(direction_name(state.direction))
    .bind(state.occur_time)
    .bind(state.duration_seconds)
    .bind(outcome_name(state.call_outcome))
    .bind(&record.actor_id)
    .bind(&state.owner_id)
    .bind(&state.team_id)
    .bind(state.links.participants.iter().map(|id| id.uuid()).collect::<Vec<_>>())
    .bind(state.links.contact_id.map(ContactId::uuid))
    .bind(state.links.company_id.map(CompanyId::uuid))
    .bind(state.links.deal_id)
    .bind(state.links.case_id)
    .bind(task.map(|task| priority_name(task.priority)))
    .bind(task.map(|task| status_name(task.status)))
    .bind(task.and_then(|task| task.remind_time))
    .bind(task.map_or("", |task| recurrence_name(task.recurrence)))
    .bind(reminders_sent(task))
    .bind(task.and_then(|task| task.next_reminder_time(state.occur_time, at.overdue_after)))
    .bind(record.create_time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn reminders_sent(task: Option<&TaskState>) -> Vec<&'static str> {
    task.map(|task| task.reminders_sent.iter().map(|kind| reminder_name(*kind)).collect()).unwrap_or_default()
}

/// Writes every field of a changed activity and bumps its version.
async fn save(tx: &mut PgConnection, record: &ActivityRecord, at: At) -> Result<(), sqlx::Error> {
    let state = &record.state;
    let task = state.task.as_ref();
    sqlx::query(
        "UPDATE activities SET subject = $2, body = $3, direction = $4, occur_time = $5, duration_seconds = $6, \
           call_outcome = $7, owner_id = $8, team_id = $9, participant_ids = $10, contact_id = $11, \
           company_id = $12, deal_id = $13, case_id = $14, deleted_links = $15, task_priority = $16, \
           task_status = $17, complete_time = $18, completed_by = $19, remind_time = $20, recurrence = $21, \
           reminders_sent = $22, next_reminder_time = $23, delete_time = $24, update_time = $25, \
           version = version + 1 \
         WHERE id = $1",
    )
    .bind(record.id.uuid())
    .bind(&state.subject)
    .bind(&state.body)
    .bind(direction_name(state.direction))
    .bind(state.occur_time)
    .bind(state.duration_seconds)
    .bind(outcome_name(state.call_outcome))
    .bind(&state.owner_id)
    .bind(&state.team_id)
    .bind(state.links.participants.iter().map(|id| id.uuid()).collect::<Vec<_>>())
    .bind(state.links.contact_id.map(ContactId::uuid))
    .bind(state.links.company_id.map(CompanyId::uuid))
    .bind(state.links.deal_id)
    .bind(state.links.case_id)
    .bind(&state.deleted_links)
    .bind(task.map(|task| priority_name(task.priority)))
    .bind(task.map(|task| status_name(task.status)))
    .bind(task.and_then(|task| task.complete_time))
    .bind(task.map_or("", |task| task.completed_by.as_str()))
    .bind(task.and_then(|task| task.remind_time))
    .bind(task.map_or("", |task| recurrence_name(task.recurrence)))
    .bind(reminders_sent(task))
    .bind(
        task.filter(|_| record.delete_time.is_none())
            .and_then(|task| task.next_reminder_time(state.occur_time, at.overdue_after)),
    )
    .bind(record.delete_time)
    .bind(record.update_time)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Commits a changed record: saves it, rewrites its timeline entries,
/// touches the customer and appends the change.
async fn commit_change(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    mut record: ActivityRecord,
    kind: ChangeKind,
    paths: Vec<String>,
    write: Write<'_>,
    at: At,
) -> Result<Written, Error> {
    record.update_time = at.now;
    save(&mut tx, &record, at).await?;
    record.version += 1;
    timeline::replace_for_activity(&mut tx, &record).await?;
    let touched = if record.delete_time.is_none() {
        touch(&mut tx, &record.state, at.now).await?
    } else {
        Touched::default()
    };
    let activity = convert::activity_to_proto(&record, at.now);
    changelog::append(
        &mut tx,
        &[Change::of(ACTIVITY, &activity, record.id.to_string(), kind, write.actor, paths)],
    )
    .await?;
    tx.commit().await?;
    Ok(Written { activity, touched })
}

/// Applies `draft` to a live activity if `etag` is current (or empty).
pub async fn update(
    pool: &PgPool,
    id: ActivityId,
    etag: &str,
    draft: &ActivityDraft,
    write: Write<'_>,
    at: At,
) -> Result<Written, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(ACTIVITY, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(ACTIVITY, &id.to_string()));
    }
    if record.state.task.is_none() && draft.names_task_fields() {
        let violation = crate::domain::Violation::new("update_mask", "only tasks have task.* fields");
        return Err(Error::Invalid(vec![violation]));
    }
    let before = record.state.clone();
    let changed = record.state.apply(draft, at);
    if changed.is_empty() {
        return Ok(Written::unchanged(convert::activity_to_proto(&record, at.now)));
    }
    let violations = record.state.check();
    if !violations.is_empty() {
        return Err(Error::Invalid(violations));
    }
    let paths: Vec<&str> = changed.iter().map(String::as_str).collect();
    write.may_change(&ACTIVITIES, owned(&before), &paths)?;
    write.may_assign(&ACTIVITIES, Some(owned(&before)), owned(&record.state))?;
    if record.state.links != before.links {
        lock_links(&mut tx, &record.state.links).await?;
    }
    commit_change(tx, record, ChangeKind::Updated, changed, write, at).await
}

/// Soft-deletes (`deleted = true`) or restores an activity; one already
/// in the wanted state is returned unchanged.
pub async fn set_deleted(
    pool: &PgPool,
    id: ActivityId,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
    at: At,
) -> Result<Written, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(ACTIVITY, &id.to_string(), etag, record.version)?;
    write.may_change(&ACTIVITIES, owned(&record.state), &[])?;
    if record.delete_time.is_some() == deleted {
        return Ok(Written::unchanged(convert::activity_to_proto(&record, at.now)));
    }
    record.delete_time = deleted.then_some(at.now);
    let kind = if deleted { ChangeKind::Deleted } else { ChangeKind::Undeleted };
    commit_change(tx, record, kind, Vec::new(), write, at).await
}

/// Completes (`complete = true`) or reopens a live task. Completing a
/// recurring task also creates its next occurrence (with its own CREATED
/// event and timeline entries).
pub async fn set_completed(
    pool: &PgPool,
    id: ActivityId,
    etag: &str,
    complete: bool,
    write: Write<'_>,
    at: At,
) -> Result<Written, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id).await?;
    check_etag(ACTIVITY, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(ACTIVITY, &id.to_string()));
    }
    if record.state.task.is_none() {
        return Err(Error::Own(ContactsError::NotATask(id.to_string())));
    }
    write.may_change(&ACTIVITIES, owned(&record.state), &["task.status"])?;
    let due = record.state.occur_time;
    let Some(task) = record.state.task.as_mut() else {
        return Err(Error::Own(ContactsError::NotATask(id.to_string())));
    };
    let changed = if complete { task.complete(write.actor, at.now) } else { task.reopen() };
    if !changed {
        return Ok(Written::unchanged(convert::activity_to_proto(&record, at.now)));
    }
    let next = if complete { task.next_occurrence(due, at) } else { None };
    if let Some((next_due, next_task)) = next {
        let mut state = record.state.clone();
        state.occur_time = next_due;
        state.task = Some(next_task);
        let occurrence = ActivityRecord {
            id: ActivityId::generate(),
            actor_id: write.actor.to_owned(),
            state,
            create_time: at.now,
            update_time: at.now,
            delete_time: None,
            version: 1,
        };
        insert(&mut tx, &occurrence, at).await?;
        timeline::replace_for_activity(&mut tx, &occurrence).await?;
        let created = convert::activity_to_proto(&occurrence, at.now);
        changelog::append(
            &mut tx,
            &[Change::of(
                ACTIVITY,
                &created,
                occurrence.id.to_string(),
                ChangeKind::Created,
                write.actor,
                vec![],
            )],
        )
        .await?;
    }
    let paths = vec!["task.status".to_owned(), "task.complete_time".to_owned()];
    commit_change(tx, record, ChangeKind::Updated, paths, write, at).await
}

/// One page of activities and the next page's token.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<ActivityRecord>, String), Error> {
    let rows: Vec<Row> = listing::fetch(pool, query.sql(COLUMNS, "activities")?).await?;
    let mut records: Vec<ActivityRecord> =
        rows.into_iter().map(ActivityRecord::try_from).collect::<Result<_, _>>()?;
    let field = query.order.key.field;
    let next_page_token = query.next_page(&mut records, |record| {
        let time = if field == "create_time" { record.create_time } else { record.state.occur_time };
        Cursor { value: time_value(time), id: record.id.uuid() }
    });
    Ok((records, next_page_token))
}

/// One page of `owner_id`'s open tasks by due time (overdue ones come
/// first: their due time is the earliest), and whether more follow.
pub async fn open_tasks(
    pool: &PgPool,
    owner_id: &str,
    limit: u32,
    after: Option<&Cursor>,
) -> Result<(Vec<ActivityRecord>, bool), Error> {
    let after_time = super::cursor_time(after)?;
    let sql = format!(
        "SELECT {COLUMNS} FROM activities \
         WHERE owner_id = $1 AND task_status = 'OPEN' AND delete_time IS NULL \
           AND ($2::timestamptz IS NULL OR (occur_time, id) > ($2, $3)) \
         ORDER BY occur_time, id LIMIT $4"
    );
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(owner_id)
        .bind(after_time)
        .bind(after.map_or(Uuid::nil(), |cursor| cursor.id))
        .bind(i64::from(limit) + 1)
        .fetch_all(pool)
        .await?;
    let more = rows.len() > limit as usize;
    let records =
        rows.into_iter().take(limit as usize).map(ActivityRecord::try_from).collect::<Result<_, _>>()?;
    Ok((records, more))
}
