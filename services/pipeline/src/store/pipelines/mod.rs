//! Pipelines and their stages: reads here, the pipeline's own writes in
//! `writes`, the default data of a first start in `defaults`, and the
//! lookups deals use in `stage_refs` ([`stage_for_deal`],
//! [`first_live_stage_of_kind`]). Stage writes are in `store::stages`.
//! Every write bumps the pipeline's version and appends the whole pipeline
//! (with its stages) to the change log.
//!
//! # For deals
//!
//! Call [`stage_for_deal`] inside the deal's transaction to resolve where a
//! deal goes (it takes a share lock on the pipeline and the stage, so they
//! cannot be deleted or retired before the deal commits), and
//! [`first_live_stage_of_kind`] to find e.g. the WON stage a won deal moves
//! to. Both return a [`StageRef`].

mod defaults;
mod stage_refs;
mod writes;

pub use defaults::ensure_defaults;
pub use stage_refs::{StageRef, first_live_stage_of_kind, lock_live_pipeline, stage_for_deal, stage_of};
pub use writes::{create, set_deleted, update};
pub(crate) use writes::{insert_stage, stage_name_taken_or};

use chrono::{DateTime, Utc};
use rapport_kit::changelog::{self, Change};
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Pipeline;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{Write, check_etag, deleted, now};
use crate::convert;
use crate::domain::ids::PipelineId;
use crate::domain::pipeline::StageKind;
use crate::error::{Error, resource::PIPELINE};
pub use crate::model::pipelines::PipelineRecord;
pub use crate::model::pipelines::StageRecord;

const COLUMNS: &str = "id, name, is_default, rotting_days, create_time, update_time, delete_time, version";
const STAGE_COLUMNS: &str =
    "id, pipeline_id, name, probability::int4 AS probability, kind, position, retired, rotting_days";

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    name: String,
    is_default: bool,
    rotting_days: i32,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
}

#[derive(sqlx::FromRow)]
struct StageRow {
    id: uuid::Uuid,
    pipeline_id: uuid::Uuid,
    name: String,
    probability: i32,
    kind: String,
    position: i32,
    retired: bool,
    rotting_days: i32,
}

impl TryFrom<&StageRow> for StageRecord {
    type Error = sqlx::Error;

    fn try_from(row: &StageRow) -> Result<StageRecord, sqlx::Error> {
        Ok(StageRecord {
            id: row.id.into(),
            name: row.name.clone(),
            probability: row.probability,
            kind: StageKind::from_name(&row.kind)
                .ok_or_else(|| rapport_kit::db::undecodable("kind", &row.kind))?,
            position: row.position,
            retired: row.retired,
            rotting_days: row.rotting_days,
        })
    }
}

/// The rows with their stages attached.
async fn with_stages(conn: &mut PgConnection, rows: Vec<Row>) -> Result<Vec<PipelineRecord>, Error> {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.id).collect();
    let sql = format!("SELECT {STAGE_COLUMNS} FROM stages WHERE pipeline_id = ANY($1) ORDER BY position");
    let stages: Vec<StageRow> = sqlx::query_as(&sql).bind(&ids).fetch_all(&mut *conn).await?;
    rows.into_iter()
        .map(|row| {
            Ok(PipelineRecord {
                stages: stages
                    .iter()
                    .filter(|stage| stage.pipeline_id == row.id)
                    .map(StageRecord::try_from)
                    .collect::<Result<_, _>>()?,
                id: row.id.into(),
                name: row.name,
                is_default: row.is_default,
                rotting_days: row.rotting_days,
                create_time: row.create_time,
                update_time: row.update_time,
                delete_time: row.delete_time,
                version: row.version,
            })
        })
        .collect()
}

/// NOT_FOUND for a pipeline.
pub(crate) fn not_found(id: impl ToString) -> Error {
    Error::not_found("PIPELINE_NOT_FOUND", PIPELINE, id)
}

/// One pipeline, `lock`ed (`FOR UPDATE`, `FOR SHARE`) or not.
pub(crate) async fn load(
    conn: &mut PgConnection,
    id: PipelineId,
    lock: &str,
) -> Result<PipelineRecord, Error> {
    let sql = format!("SELECT {COLUMNS} FROM pipelines WHERE id = $1 {lock}");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(|| not_found(id))?;
    with_stages(conn, vec![row]).await?.pop().ok_or_else(|| not_found(id))
}

/// One pipeline, live or deleted.
pub async fn get(pool: &PgPool, id: PipelineId) -> Result<Pipeline, Error> {
    let mut conn = pool.acquire().await?;
    Ok(convert::pipeline_to_proto(&load(&mut conn, id, "").await?))
}

/// Opens a change of a live pipeline: locks it and checks `etag`.
pub(crate) async fn begin(
    pool: &PgPool,
    id: PipelineId,
    etag: &str,
) -> Result<(Transaction<'static, Postgres>, PipelineRecord), Error> {
    let mut tx = pool.begin().await?;
    let record = load(&mut tx, id, "FOR UPDATE").await?;
    check_etag(PIPELINE, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(PIPELINE, &id.to_string()));
    }
    Ok((tx, record))
}

/// Closes a change: bumps the version, appends the pipeline as it now is
/// (after `earlier` changes, e.g. of the previous default), and commits.
pub(crate) async fn finish(
    mut tx: Transaction<'static, Postgres>,
    id: PipelineId,
    (kind, paths): (ChangeKind, Vec<String>),
    earlier: Vec<Change>,
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    sqlx::query("UPDATE pipelines SET update_time = $2, version = version + 1 WHERE id = $1")
        .bind(id.uuid())
        .bind(now())
        .execute(&mut *tx)
        .await?;
    let pipeline = convert::pipeline_to_proto(&load(&mut tx, id, "").await?);
    let mut changes = earlier;
    changes.push(Change::of(PIPELINE, &pipeline, id.to_string(), kind, write.actor, paths));
    changelog::append(&mut tx, &changes).await?;
    tx.commit().await?;
    Ok(pipeline)
}

/// One page of pipelines (the default first, then by creation time) and
/// the cursor of its last one when more follow.
pub async fn list(
    pool: &PgPool,
    page_size: u32,
    after: Option<&Cursor>,
    show_deleted: bool,
) -> Result<(Vec<Pipeline>, Option<Cursor>), Error> {
    let (rank, time, id) = match after {
        Some(cursor) => {
            let (rank, time) = cursor.value.split_once('|').unwrap_or(("", ""));
            let time = DateTime::parse_from_rfc3339(time).map_err(|_| {
                rapport_kit::error::Problem::invalid_field("INVALID_PAGE_TOKEN", "page_token", "is corrupt")
            })?;
            (rank.parse::<i32>().ok(), Some(time.to_utc()), Some(cursor.id))
        }
        None => (None, None, None),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM pipelines WHERE ($1 OR delete_time IS NULL) \
           AND ($4::uuid IS NULL OR (CASE WHEN is_default THEN 0 ELSE 1 END, create_time, id) > ($2, $3, $4)) \
         ORDER BY is_default DESC, create_time, id LIMIT $5"
    );
    let mut conn = pool.acquire().await?;
    let rows: Vec<Row> = sqlx::query_as(&sql)
        .bind(show_deleted)
        .bind(rank.unwrap_or(1))
        .bind(time)
        .bind(id)
        .bind(i64::from(page_size) + 1)
        .fetch_all(&mut *conn)
        .await?;
    let mut records = with_stages(&mut conn, rows).await?;
    let more = records.len() > page_size as usize;
    records.truncate(page_size as usize);
    let next = records.last().filter(|_| more).map(|last| Cursor {
        value: format!(
            "{}|{}",
            if last.is_default { 0 } else { 1 },
            last.create_time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        id: last.id.uuid(),
    });
    Ok((records.iter().map(convert::pipeline_to_proto).collect(), next))
}
