//! The timeline projection: one row per record an entry shows on.
//! Activities keep theirs current in their own transactions
//! ([`replace_for_activity`]); lifecycle moves add theirs; events from
//! other services' feeds arrive through [`insert`] with their event id (a
//! replay inserts nothing). [`page`] reads one subject's entries newest
//! first, from one index.

use chrono::{DateTime, Utc};
use rapport_kit::paging::Cursor;
use rapport_proto::contacts::v1::{TimelineEntryKind, TimelineSource};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::activity::ActivityId;
use crate::model::{ActivityRecord, TimelineRecord};

/// What a timeline belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A contact.
    Contact(Uuid),
    /// A company.
    Company(Uuid),
    /// A Pipeline deal.
    Deal(Uuid),
    /// A Support case.
    Case(Uuid),
}

impl Subject {
    fn parts(self) -> (&'static str, Uuid) {
        match self {
            Subject::Contact(id) => ("contact", id),
            Subject::Company(id) => ("company", id),
            Subject::Deal(id) => ("deal", id),
            Subject::Case(id) => ("case", id),
        }
    }
}

/// An entry to write.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Whose timeline it shows on.
    pub subject: Subject,
    /// When it happened.
    pub occur_time: DateTime<Utc>,
    /// Which service.
    pub source: TimelineSource,
    /// What.
    pub kind: TimelineEntryKind,
    /// Summary.
    pub title: String,
    /// Detail.
    pub detail: String,
    /// Who.
    pub actor_id: String,
    /// The record's type in its service.
    pub resource_type: String,
    /// The record's id.
    pub resource_id: String,
    /// The activity, for ACTIVITY entries.
    pub activity_id: Option<ActivityId>,
    /// The projected event, for entries from change feeds.
    pub event_id: Option<Uuid>,
}

/// Writes `entries` in one statement; an entry whose event was already
/// projected onto the same subject is skipped. Returns how many were new.
pub async fn insert(tx: &mut PgConnection, entries: &[Entry]) -> Result<u64, sqlx::Error> {
    if entries.is_empty() {
        return Ok(0);
    }
    let mut columns = Columns::default();
    for entry in entries {
        columns.push(entry);
    }
    let inserted = sqlx::query(
        "INSERT INTO timeline_entries (id, subject_type, subject_id, occur_time, source, kind, title, detail, \
           actor_id, resource_type, resource_id, activity_id, event_id) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::timestamptz[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::uuid[], $13::uuid[]) \
         ON CONFLICT (event_id, subject_type, subject_id) DO NOTHING",
    )
    .bind(columns.ids)
    .bind(columns.subject_types)
    .bind(columns.subject_ids)
    .bind(columns.occur_times)
    .bind(columns.sources)
    .bind(columns.kinds)
    .bind(columns.titles)
    .bind(columns.details)
    .bind(columns.actors)
    .bind(columns.resource_types)
    .bind(columns.resource_ids)
    .bind(columns.activity_ids)
    .bind(columns.event_ids)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected())
}

#[derive(Default)]
struct Columns {
    ids: Vec<Uuid>,
    subject_types: Vec<&'static str>,
    subject_ids: Vec<Uuid>,
    occur_times: Vec<DateTime<Utc>>,
    sources: Vec<&'static str>,
    kinds: Vec<&'static str>,
    titles: Vec<String>,
    details: Vec<String>,
    actors: Vec<String>,
    resource_types: Vec<String>,
    resource_ids: Vec<String>,
    activity_ids: Vec<Option<Uuid>>,
    event_ids: Vec<Option<Uuid>>,
}

impl Columns {
    fn push(&mut self, entry: &Entry) {
        let (subject_type, subject_id) = entry.subject.parts();
        self.ids.push(Uuid::now_v7());
        self.subject_types.push(subject_type);
        self.subject_ids.push(subject_id);
        self.occur_times.push(entry.occur_time);
        self.sources.push(source_name(entry.source));
        self.kinds.push(kind_name(entry.kind));
        self.titles.push(entry.title.clone());
        self.details.push(entry.detail.clone());
        self.actors.push(entry.actor_id.clone());
        self.resource_types.push(entry.resource_type.clone());
        self.resource_ids.push(entry.resource_id.clone());
        self.activity_ids.push(entry.activity_id.map(ActivityId::uuid));
        self.event_ids.push(entry.event_id);
    }
}

/// The entries a live activity shows as: one on each record it hangs from.
fn activity_entries(record: &ActivityRecord) -> Vec<Entry> {
    let state = &record.state;
    let links = &state.links;
    let mut subjects: Vec<Subject> =
        links.contacts().into_iter().map(|id| Subject::Contact(id.uuid())).collect();
    subjects.extend(links.company_id.map(|id| Subject::Company(id.uuid())));
    subjects.extend(links.deal_id.map(Subject::Deal));
    subjects.extend(links.case_id.map(Subject::Case));
    subjects
        .into_iter()
        .map(|subject| Entry {
            subject,
            occur_time: state.occur_time,
            source: TimelineSource::Contacts,
            kind: TimelineEntryKind::Activity,
            title: state.subject.clone(),
            detail: String::new(),
            actor_id: record.actor_id.clone(),
            resource_type: crate::error::ACTIVITY.to_owned(),
            resource_id: record.id.to_string(),
            activity_id: Some(record.id),
            event_id: None,
        })
        .collect()
}

/// Rewrites an activity's entries after a write: none while it is
/// deleted, one per linked record otherwise.
pub async fn replace_for_activity(tx: &mut PgConnection, record: &ActivityRecord) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM timeline_entries WHERE activity_id = $1")
        .bind(record.id.uuid())
        .execute(&mut *tx)
        .await?;
    if record.delete_time.is_none() {
        insert(tx, &activity_entries(record)).await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    occur_time: DateTime<Utc>,
    source: String,
    kind: String,
    title: String,
    detail: String,
    actor_id: String,
    resource_type: String,
    resource_id: String,
    activity_id: Option<Uuid>,
    actor_display_name: Option<String>,
}

/// One page of a subject's timeline, newest first, optionally of some
/// kinds only: the entries (activities attached) and whether more follow.
pub async fn page(
    pool: &PgPool,
    subject: Subject,
    kinds: &[TimelineEntryKind],
    limit: u32,
    after: Option<&Cursor>,
) -> Result<(Vec<TimelineRecord>, bool), sqlx::Error> {
    let (subject_type, subject_id) = subject.parts();
    let kinds: Vec<&str> = kinds.iter().map(|kind| kind_name(*kind)).collect();
    let after_time = super::cursor_time(after)?;
    let after_id = after.map_or(Uuid::max(), |cursor| cursor.id);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, occur_time, source, kind, title, detail, actor_id, resource_type, resource_id, activity_id, \
           (SELECT m.display_name FROM team_members m WHERE m.user_id = t.actor_id \
            ORDER BY m.update_time DESC LIMIT 1) AS actor_display_name \
         FROM timeline_entries t \
         WHERE subject_type = $1 AND subject_id = $2 \
           AND (cardinality($3::text[]) = 0 OR kind = ANY($3)) \
           AND ($4::timestamptz IS NULL OR (occur_time, id) < ($4, $5)) \
         ORDER BY occur_time DESC, id DESC LIMIT $6",
    )
    .bind(subject_type)
    .bind(subject_id)
    .bind(&kinds)
    .bind(after_time)
    .bind(after_id)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let more = rows.len() > limit as usize;
    let activity_ids: Vec<Uuid> = rows.iter().filter_map(|row| row.activity_id).collect();
    let activities = super::activities::get_many(pool, &activity_ids).await?;
    let records = rows
        .into_iter()
        .take(limit as usize)
        .map(|row| {
            let activity = row
                .activity_id
                .and_then(|id| activities.iter().find(|record| record.id.uuid() == id).cloned());
            Ok(TimelineRecord {
                actor_display_name: row.actor_display_name.unwrap_or_default(),
                id: row.id,
                occur_time: row.occur_time,
                source: source_from_name(&row.source)?,
                kind: kind_from_name(&row.kind)?,
                title: row.title,
                detail: row.detail,
                actor_id: row.actor_id,
                resource_type: row.resource_type,
                resource_id: row.resource_id,
                activity,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((records, more))
}

fn source_name(source: TimelineSource) -> &'static str {
    source.as_str_name().trim_start_matches("TIMELINE_SOURCE_")
}

fn source_from_name(name: &str) -> Result<TimelineSource, sqlx::Error> {
    rapport_kit::db::stored_enum("source", "TIMELINE_SOURCE_", name, TimelineSource::from_str_name)
}

fn kind_name(kind: TimelineEntryKind) -> &'static str {
    kind.as_str_name().trim_start_matches("TIMELINE_ENTRY_KIND_")
}

fn kind_from_name(name: &str) -> Result<TimelineEntryKind, sqlx::Error> {
    rapport_kit::db::stored_enum("kind", "TIMELINE_ENTRY_KIND_", name, TimelineEntryKind::from_str_name)
}
