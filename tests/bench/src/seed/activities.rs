//! The shared-record seed, set-based straight into the `contacts` schema
//! (after the contacts seed):
//!
//! - `activities` calls, meetings, emails and notes over the first
//!   `subjects` contacts, each with its timeline entry, over two years;
//! - `events` projected entries from Pipeline and Support (deals opened,
//!   moved, won; cases opened) on the same contacts;
//! - `tasks` open tasks of 200 owners, one in 200 the bench caller's
//!   (`rapport-bench`), due a month either side of now, reminders sent;
//! - `due` open tasks due within the last hour whose DUE reminder is still
//!   to send: the timed sweep's work.
//!
//! Attributes are deterministic hashes of the row number; ids random.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;

/// The bench caller's subject (its ListMyTasks are the bench's).
pub const BENCH_SUBJECT: &str = "rapport-bench";

/// What seeding the shared record produced.
pub struct ActivitiesSeeded {
    /// Activities inserted (each with its timeline entry).
    pub activities: u32,
    /// Projected events inserted.
    pub events: u32,
    /// Open tasks inserted (for ListMyTasks).
    pub tasks: u32,
    /// Of them the bench caller's.
    pub mine: i64,
    /// Tasks with a reminder due (for the sweep).
    pub due: u32,
    /// The contacts timelines are read for.
    pub subjects: Vec<String>,
    /// When the seed ran (the sweep's now).
    pub start: DateTime<Utc>,
    /// Time of every insert.
    pub insert_time: Duration,
    /// Time of the `VACUUM ANALYZE` and `CHECKPOINT` after them.
    pub vacuum_time: Duration,
}

/// Seeds the shared record into the database at `url` (Contacts seeded).
pub async fn seed(
    url: &str,
    activities: u32,
    events: u32,
    tasks: u32,
    due: u32,
) -> anyhow::Result<ActivitiesSeeded> {
    let pool = PgPoolOptions::new().max_connections(2).connect(url).await.context("connecting")?;
    let subjects: i64 =
        sqlx::query_scalar("SELECT least(count(*), 10000) FROM contacts.contacts").fetch_one(&pool).await?;
    let start = rapport_kit::db::now();
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    // The first `subjects` contacts by id, numbered.
    tx.execute(
        "CREATE TEMP TABLE subjects ON COMMIT DROP AS \
         SELECT id, row_number() OVER (ORDER BY id) AS n FROM contacts.contacts ORDER BY id LIMIT 10000",
    )
    .await?;
    sqlx::query(
        "INSERT INTO contacts.activities (id, kind, subject, direction, occur_time, duration_seconds, call_outcome, \
           actor_id, owner_id, team_id, contact_id, create_time, update_time) \
         SELECT gen_random_uuid(), k.kind, k.kind || ' ' || i, \
           CASE WHEN k.kind IN ('CALL', 'EMAIL') THEN 'OUTBOUND' ELSE '' END, p.at, \
           CASE WHEN k.kind IN ('CALL', 'MEETING') THEN 300 ELSE 0 END, \
           CASE WHEN k.kind = 'CALL' THEN 'CONNECTED' ELSE '' END, \
           'rep-' || p.h % 50, 'rep-' || p.h % 50, 'emea', s.id, p.at, p.at \
         FROM generate_series(1::bigint, $1) AS i \
         CROSS JOIN LATERAL (SELECT (hashint8(i * 64 + 1)::bigint & 2147483647) AS h, \
           now() - (hashint8(i * 64 + 2)::bigint & 2147483647) % (2 * 365 * 86400) * interval '1 second' AS at) p \
         CROSS JOIN LATERAL (SELECT (ARRAY['CALL', 'MEETING', 'EMAIL', 'NOTE'])[1 + p.h % 4] AS kind) k \
         JOIN subjects s ON s.n = 1 + (hashint8(i * 64 + 3)::bigint & 2147483647) % $2",
    )
    .bind(i64::from(activities))
    .bind(subjects)
    .execute(&mut *tx)
    .await
    .context("seeding activities")?;
    tx.execute(
        "INSERT INTO contacts.timeline_entries (id, subject_type, subject_id, occur_time, source, kind, title, \
           actor_id, resource_type, resource_id, activity_id) \
         SELECT gen_random_uuid(), 'contact', contact_id, occur_time, 'CONTACTS', 'ACTIVITY', subject, actor_id, \
           'rapport.contacts.v1.Activity', id::text, id \
         FROM contacts.activities",
    )
    .await
    .context("seeding the activities' timeline entries")?;
    sqlx::query(
        "INSERT INTO contacts.timeline_entries (id, subject_type, subject_id, occur_time, source, kind, title, \
           detail, actor_id, resource_type, resource_id, event_id) \
         SELECT gen_random_uuid(), 'contact', s.id, p.at, \
           CASE WHEN p.h % 4 = 3 THEN 'SUPPORT' ELSE 'PIPELINE' END, \
           (ARRAY['DEAL_OPENED', 'DEAL_STAGE_CHANGED', 'DEAL_WON', 'CASE_OPENED'])[1 + p.h % 4], \
           'Event ' || i, 'moved to Negotiation', 'rep-' || p.h % 50, \
           CASE WHEN p.h % 4 = 3 THEN 'rapport.support.v1.Case' ELSE 'rapport.pipeline.v1.Deal' END, \
           gen_random_uuid()::text, gen_random_uuid() \
         FROM generate_series(1::bigint, $1) AS i \
         CROSS JOIN LATERAL (SELECT (hashint8(i * 64 + 4)::bigint & 2147483647) AS h, \
           now() - (hashint8(i * 64 + 5)::bigint & 2147483647) % (2 * 365 * 86400) * interval '1 second' AS at) p \
         JOIN subjects s ON s.n = 1 + (hashint8(i * 64 + 6)::bigint & 2147483647) % $2",
    )
    .bind(i64::from(events))
    .bind(subjects)
    .execute(&mut *tx)
    .await
    .context("seeding projected events")?;
    sqlx::query(
        "INSERT INTO contacts.activities (id, kind, subject, occur_time, actor_id, owner_id, team_id, contact_id, \
           task_priority, task_status, reminders_sent, create_time, update_time) \
         SELECT gen_random_uuid(), 'TASK', 'Follow up ' || i, \
           now() + ((hashint8(i * 64 + 7)::bigint & 2147483647) % (60 * 86400) - 30 * 86400) * interval '1 second', \
           o.owner, o.owner, 'emea', s.id, 'NORMAL', 'OPEN', '{REMINDER,DUE,OVERDUE}', now(), now() \
         FROM generate_series(1::bigint, $1) AS i \
         CROSS JOIN LATERAL (SELECT CASE WHEN i % 200 = 0 THEN $3 ELSE 'owner-' || i % 200 END AS owner) o \
         JOIN subjects s ON s.n = 1 + (hashint8(i * 64 + 8)::bigint & 2147483647) % $2",
    )
    .bind(i64::from(tasks))
    .bind(subjects)
    .bind(BENCH_SUBJECT)
    .execute(&mut *tx)
    .await
    .context("seeding open tasks")?;
    sqlx::query(
        "INSERT INTO contacts.activities (id, kind, subject, occur_time, actor_id, owner_id, team_id, contact_id, \
           task_priority, task_status, reminders_sent, next_reminder_time, create_time, update_time) \
         SELECT gen_random_uuid(), 'TASK', 'Call back ' || i, p.due, 'owner-' || i % 200, 'owner-' || i % 200, \
           'emea', s.id, 'NORMAL', 'OPEN', '{REMINDER,DUE,OVERDUE}', NULL, now(), now() \
         FROM generate_series(1::bigint, $1) AS i \
         CROSS JOIN LATERAL (SELECT $3::timestamptz \
           - (hashint8(i * 64 + 9)::bigint & 2147483647) % 3500 * interval '1 second' AS due) p \
         JOIN subjects s ON s.n = 1 + (hashint8(i * 64 + 10)::bigint & 2147483647) % $2",
    )
    .bind(i64::from(due))
    .bind(subjects)
    .bind(start)
    .execute(&mut *tx)
    .await
    .context("seeding due tasks")?;
    let subject_ids: Vec<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM subjects ORDER BY n").fetch_all(&mut *tx).await?;
    tx.commit().await?;
    let insert_time = started.elapsed();
    let vacuumed = Instant::now();
    pool.execute("VACUUM ANALYZE contacts.activities").await?;
    pool.execute("VACUUM ANALYZE contacts.timeline_entries").await?;
    pool.execute("CHECKPOINT").await?;
    let vacuum_time = vacuumed.elapsed();
    let mine: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM contacts.activities WHERE owner_id = $1 AND task_status = 'OPEN'",
    )
    .bind(BENCH_SUBJECT)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    Ok(ActivitiesSeeded {
        activities,
        events,
        tasks,
        mine,
        due,
        subjects: subject_ids.iter().map(ToString::to_string).collect(),
        start,
        insert_time,
        vacuum_time,
    })
}

/// One timed sweep: its whole time, the part spent committing (the
/// change log sequences each event at commit), and the reminders sent.
pub struct Swept {
    /// From begin to committed.
    pub took: Duration,
    /// Of it, the commit.
    pub commit: Duration,
    /// Reminders published.
    pub sent: u64,
}

/// Times one reminder sweep over the due tasks (as the worker runs it),
/// then stops their later reminders so they do not fire during the other
/// scenarios.
pub async fn sweep_once(url: &str, start: DateTime<Utc>) -> anyhow::Result<Swept> {
    let env = crate::servers::base_env().with("DATABASE_URL", url);
    let config = rapport_contacts::Config::from_env(&env)?;
    let pool = rapport_kit::db::pool(&config.service.db)?;
    let at = rapport_contacts::domain::activity::At { now: start, overdue_after: chrono::Duration::hours(1) };
    // Armed now (the seed left them unarmed so that no Contacts instance
    // of the scenarios before swept them first).
    sqlx::query(
        "UPDATE activities SET reminders_sent = '{REMINDER}', next_reminder_time = occur_time \
         WHERE kind = 'TASK' AND subject LIKE 'Call back %' AND task_status = 'OPEN'",
    )
    .execute(&pool)
    .await?;
    pool.execute("VACUUM ANALYZE activities").await?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let sent = rapport_contacts::store::reminders::sweep(&mut tx, at, "bench-sweep", 1_000_000).await?;
    let committing = Instant::now();
    tx.commit().await?;
    let (took, commit) = (started.elapsed(), committing.elapsed());
    sqlx::query("UPDATE activities SET next_reminder_time = NULL WHERE next_reminder_time IS NOT NULL")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(Swept { took, commit, sent })
}
