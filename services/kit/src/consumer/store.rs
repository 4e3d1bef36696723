//! The consumer's SQL: its cursor and the ids of the events it applied
//! (kit's migration `0003_feed_consumers.sql`).

use std::collections::HashSet;

use prost::Message as _;
use rapport_proto::common::v1::ChangeEvent;
use sqlx::{PgConnection, PgPool};

/// The stored cursor of `feed`, created at zero the first time.
pub(super) async fn load(pool: &PgPool, feed: &str) -> Result<i64, sqlx::Error> {
    sqlx::query(
        "INSERT INTO feed_cursors (feed, after_sequence) VALUES ($1, 0) ON CONFLICT (feed) DO NOTHING",
    )
    .bind(feed)
    .execute(pool)
    .await?;
    sqlx::query_scalar("SELECT after_sequence FROM feed_cursors WHERE feed = $1")
        .bind(feed)
        .fetch_one(pool)
        .await
}

/// The stored cursor, locked until `tx` ends: transactions of one feed
/// take turns, so none applies what another already did or moves the
/// cursor back.
pub(super) async fn lock(tx: &mut PgConnection, feed: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT after_sequence FROM feed_cursors WHERE feed = $1 FOR UPDATE")
        .bind(feed)
        .fetch_one(tx)
        .await
}

/// Records `event_ids` as applied; returns those that were not already.
pub(super) async fn mark_applied(
    tx: &mut PgConnection,
    feed: &str,
    event_ids: &[uuid::Uuid],
) -> Result<HashSet<uuid::Uuid>, sqlx::Error> {
    let fresh: Vec<uuid::Uuid> = sqlx::query_scalar(
        "INSERT INTO feed_applied_events (feed, event_id) SELECT $1, unnest($2::uuid[]) \
         ON CONFLICT (feed, event_id) DO NOTHING RETURNING event_id",
    )
    .bind(feed)
    .bind(event_ids)
    .fetch_all(tx)
    .await?;
    Ok(fresh.into_iter().collect())
}

/// Moves the cursor of `feed` to `after_sequence`.
pub(super) async fn advance(
    tx: &mut PgConnection,
    feed: &str,
    after_sequence: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE feed_cursors SET after_sequence = $2, update_time = now() WHERE feed = $1")
        .bind(feed)
        .bind(after_sequence)
        .execute(tx)
        .await?;
    Ok(())
}

/// Stores `event` of `feed` as a dead letter that failed `attempts` times,
/// last with `error` (once per sequence).
pub(super) async fn dead_letter(
    tx: &mut PgConnection,
    feed: &str,
    event: &ChangeEvent,
    error: &str,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO feed_dead_letters \
           (feed, sequence, event_id, resource_type, resource_id, change_kind, event, error, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (feed, sequence) DO NOTHING",
    )
    .bind(feed)
    .bind(event.sequence)
    .bind(&event.event_id)
    .bind(&event.resource_type)
    .bind(&event.resource_id)
    .bind(i16::try_from(event.kind).unwrap_or_default())
    .bind(event.encode_to_vec())
    .bind(error)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .execute(tx)
    .await?;
    Ok(())
}
