//! Activities linking another service's record, changed by that
//! service's events: a deleted deal or case is marked in
//! `deleted_links` (unmarked when restored), a merged case's activities
//! move to the survivor. Each changed activity gets its timeline entries
//! rewritten and an UPDATED event, all events in one statement.

use rapport_kit::changelog::{self, Change};
use rapport_proto::common::v1::ChangeKind;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{COLUMNS, Row, save};
use crate::convert;
use crate::domain::activity::At;
use crate::error::ACTIVITY;
use crate::model::ActivityRecord;
use crate::store::timeline;

/// Saves `records` after a change made by another service's event (their
/// timeline entries rewritten) and appends their UPDATED events in one
/// statement.
async fn save_all(
    tx: &mut PgConnection,
    records: Vec<ActivityRecord>,
    paths: &[&str],
    actor: &str,
    at: At,
) -> Result<usize, sqlx::Error> {
    let mut changes = Vec::with_capacity(records.len());
    for mut record in records {
        record.update_time = at.now;
        save(tx, &record, at).await?;
        record.version += 1;
        timeline::replace_for_activity(tx, &record).await?;
        let activity = convert::activity_to_proto(&record, at.now);
        let paths = paths.iter().map(|path| (*path).to_owned()).collect();
        changes.push(Change::of(
            ACTIVITY,
            &activity,
            record.id.to_string(),
            ChangeKind::Updated,
            actor,
            paths,
        ));
    }
    changelog::append_batch(tx, &changes).await?;
    Ok(changes.len())
}

async fn linking(
    tx: &mut PgConnection,
    field: &'static str,
    id: Uuid,
) -> Result<Vec<ActivityRecord>, sqlx::Error> {
    let column = if field == "case_id" { "case_id" } else { "deal_id" };
    let sql = format!("SELECT {COLUMNS} FROM activities WHERE {column} = $1 ORDER BY id FOR UPDATE");
    let rows: Vec<Row> = sqlx::query_as(&sql).bind(id).fetch_all(&mut *tx).await?;
    rows.into_iter().map(ActivityRecord::try_from).collect()
}

/// Marks (`deleted`) or unmarks the link `field` (`deal_id`, `case_id`)
/// to record `id` on the activities holding it; returns how many changed.
pub async fn mark_link(
    tx: &mut PgConnection,
    field: &'static str,
    id: Uuid,
    deleted: bool,
    actor: &str,
    at: At,
) -> Result<usize, sqlx::Error> {
    let mut changed = Vec::new();
    for mut record in linking(tx, field, id).await? {
        let marked = record.state.deleted_links.iter().any(|link| link == field);
        if marked == deleted {
            continue;
        }
        if deleted {
            record.state.deleted_links.push(field.to_owned());
        } else {
            record.state.deleted_links.retain(|link| link != field);
        }
        changed.push(record);
    }
    save_all(tx, changed, &["deleted_links"], actor, at).await
}

/// Re-points the activities of case `merged` to `survivor`; returns how
/// many moved.
pub async fn repoint_case(
    tx: &mut PgConnection,
    merged: Uuid,
    survivor: Uuid,
    actor: &str,
    at: At,
) -> Result<usize, sqlx::Error> {
    let mut moved = linking(tx, "case_id", merged).await?;
    for record in &mut moved {
        record.state.links.case_id = Some(survivor);
        record.state.deleted_links.retain(|link| link != "case_id");
    }
    save_all(tx, moved, &["case_id"], actor, at).await
}
