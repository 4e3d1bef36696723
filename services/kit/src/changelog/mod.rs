//! The change log: every state change a service makes, appended in the same
//! transaction as the change. It is the audit trail, the outbox, and the
//! source of `WatchChanges`.
//!
//! Commit order: [`append`] inserts rows without a sequence; at COMMIT a
//! deferred trigger takes a transaction-scoped advisory lock and only then
//! draws each sequence number, and the lock is released only once the
//! commit is visible. A transaction holding sequence N is therefore visible
//! before any transaction can draw N+1, so a consumer that has read up to N
//! can never later meet a smaller number. The lock is held only while
//! committing, never across a round trip to the client.
//!
//! Submodules: [`watch`] (replay then follow, heartbeats, expired cursors).

pub mod watch;

use std::time::Duration;

use prost_types::{Any, Timestamp};
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use sqlx::{PgConnection, PgPool};

pub use watch::{
    CURSOR_EXPIRED, Feed, FeedItem, FeedReads, MAX_RESOURCE_TYPES, Visible, WatchStream, resync_point,
};

/// Advisory lock class under which sequences are drawn at commit (the
/// second key is the schema's hash, so services do not serialize each
/// other). Written into kit's migration; kept here for reference and tests.
pub const APPEND_LOCK_CLASS: i32 = 0x7261_7070; // "rapp"

/// One change to append.
#[derive(Debug, Clone)]
pub struct Change {
    /// Fully-qualified message name, e.g. `rapport.contacts.v1.Contact`.
    pub resource_type: &'static str,
    /// The resource's id.
    pub resource_id: String,
    /// What happened.
    pub kind: ChangeKind,
    /// Who did it (the principal's subject).
    pub actor: String,
    /// Changed field paths (updates only).
    pub field_paths: Vec<String>,
    /// The resource after the change, encoded.
    pub resource: Vec<u8>,
}

impl Change {
    /// A change of the resource of type `resource_type` (its fully-qualified
    /// message name), carrying it encoded.
    pub fn of(
        resource_type: &'static str,
        resource: &impl prost::Message,
        resource_id: impl Into<String>,
        kind: ChangeKind,
        actor: impl Into<String>,
        field_paths: Vec<String>,
    ) -> Change {
        Change {
            resource_type,
            resource_id: resource_id.into(),
            kind,
            actor: actor.into(),
            field_paths,
            resource: resource.encode_to_vec(),
        }
    }
}

/// Appends `changes` to the caller's transaction and returns their event
/// ids. The sequences are drawn at COMMIT, in commit order (see the
/// migration's deferred trigger), so nothing here waits on other writers;
/// read them afterwards with [`sequences`] if needed.
///
/// Watchers are not notified here: after committing, call
/// [`Feed::announce`] (a wakeup only; watchers also poll on their heartbeat,
/// so a lost wakeup delays delivery, never loses an event).
pub async fn append(tx: &mut PgConnection, changes: &[Change]) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    let mut event_ids = Vec::with_capacity(changes.len());
    for change in changes {
        let event_id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO change_log \
               (event_id, resource_type, resource_id, change_kind, actor, field_paths, resource) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(event_id)
        .bind(change.resource_type)
        .bind(&change.resource_id)
        .bind(i16::try_from(change.kind as i32).unwrap_or_default())
        .bind(&change.actor)
        .bind(&change.field_paths)
        .bind(&change.resource)
        .execute(&mut *tx)
        .await?;
        event_ids.push(event_id);
    }
    Ok(event_ids)
}

/// [`append`] for many changes in one statement (a sweep's or an import's
/// batch): one round trip whatever their number. Field paths must not
/// contain commas (protobuf field paths never do).
pub async fn append_batch(tx: &mut PgConnection, changes: &[Change]) -> Result<Vec<uuid::Uuid>, sqlx::Error> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let event_ids: Vec<uuid::Uuid> = changes.iter().map(|_| uuid::Uuid::now_v7()).collect();
    let resource_types: Vec<&str> = changes.iter().map(|change| change.resource_type).collect();
    let resource_ids: Vec<&str> = changes.iter().map(|change| change.resource_id.as_str()).collect();
    let kinds: Vec<i16> =
        changes.iter().map(|change| i16::try_from(change.kind as i32).unwrap_or_default()).collect();
    let actors: Vec<&str> = changes.iter().map(|change| change.actor.as_str()).collect();
    let paths: Vec<String> = changes.iter().map(|change| change.field_paths.join(",")).collect();
    let resources: Vec<&[u8]> = changes.iter().map(|change| change.resource.as_slice()).collect();
    sqlx::query(
        "INSERT INTO change_log (event_id, resource_type, resource_id, change_kind, actor, field_paths, resource) \
         SELECT event_id, resource_type, resource_id, change_kind, actor, string_to_array(paths, ','), resource \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int2[], $5::text[], $6::text[], $7::bytea[]) \
           AS c(event_id, resource_type, resource_id, change_kind, actor, paths, resource)",
    )
    .bind(&event_ids)
    .bind(&resource_types)
    .bind(&resource_ids)
    .bind(&kinds)
    .bind(&actors)
    .bind(&paths)
    .bind(&resources)
    .execute(&mut *tx)
    .await?;
    Ok(event_ids)
}

/// The sequences of committed events, in the order of `event_ids` (an
/// event not committed, or rolled back, is missing).
pub async fn sequences(pool: &PgPool, event_ids: &[uuid::Uuid]) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT c.sequence FROM unnest($1::uuid[]) WITH ORDINALITY AS e(id, position) \
         JOIN change_log c ON c.event_id = e.id WHERE c.sequence IS NOT NULL ORDER BY e.position",
    )
    .bind(event_ids)
    .fetch_all(pool)
    .await
}

/// A change-log row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct Row {
    pub sequence: i64,
    pub event_id: uuid::Uuid,
    pub resource_type: String,
    pub resource_id: String,
    pub change_kind: i16,
    pub actor: String,
    pub change_time: chrono::DateTime<chrono::Utc>,
    pub field_paths: Vec<String>,
    pub resource: Vec<u8>,
}

impl Row {
    pub(crate) fn into_event(self) -> ChangeEvent {
        ChangeEvent {
            sequence: self.sequence,
            event_id: self.event_id.to_string(),
            resource: Some(Any {
                type_url: format!("type.googleapis.com/{}", self.resource_type),
                value: self.resource,
            }),
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            kind: i32::from(self.change_kind),
            actor: self.actor,
            change_time: Some(timestamp(self.change_time)),
            field_paths: self.field_paths,
        }
    }
}

/// A protobuf timestamp.
pub fn timestamp(time: chrono::DateTime<chrono::Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or_default(),
    }
}

/// The history of one resource, oldest first (the audit trail).
pub async fn history(
    pool: &PgPool,
    resource_type: &str,
    resource_id: &str,
) -> Result<Vec<ChangeEvent>, sqlx::Error> {
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT * FROM change_log WHERE resource_type = $1 AND resource_id = $2 AND sequence IS NOT NULL \
         ORDER BY sequence",
    )
    .bind(resource_type)
    .bind(resource_id)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Row::into_event).collect())
}

/// Deletes events older than `retention` and moves the expiry horizon, so
/// consumers with older cursors are told to resync. Returns how many rows
/// went.
pub async fn prune(db: impl sqlx::PgExecutor<'_>, retention: Duration) -> Result<u64, sqlx::Error> {
    let pruned: i64 = sqlx::query_scalar(
        // Events are in time order along the sequence, so the cutoff is just
        // below the first event inside the retention window: found by walking
        // the sequence index from the oldest event (no time index to keep).
        "WITH cutoff AS ( \
           SELECT coalesce( \
             (SELECT sequence FROM change_log \
              WHERE sequence IS NOT NULL AND change_time >= now() - make_interval(secs => $1) \
              ORDER BY sequence LIMIT 1), \
             (SELECT max(sequence) + 1 FROM change_log)) - 1 AS through), \
         gone AS ( \
           DELETE FROM change_log WHERE sequence <= (SELECT through FROM cutoff) RETURNING sequence), \
         moved AS ( \
           UPDATE change_log_horizon \
           SET pruned_through = GREATEST(pruned_through, (SELECT coalesce(max(sequence), 0) FROM gone)) \
           RETURNING pruned_through) \
         SELECT count(*) FROM gone, moved",
    )
    .bind(retention.as_secs_f64())
    .fetch_one(db)
    .await?;
    Ok(u64::try_from(pruned).unwrap_or_default())
}

/// How long idempotency keys are kept.
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(7 * 86_400);
