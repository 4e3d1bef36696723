//! Pipelines and their stages: reads, the pipeline's own writes, the
//! default data of a first start, and the lookups deals use
//! ([`stage_for_deal`], [`first_live_stage_of_kind`]). Stage writes are in
//! `store::stages`. Every write bumps the pipeline's version and appends
//! the whole pipeline (with its stages) to the change log.
//!
//! # For deals
//!
//! Call [`stage_for_deal`] inside the deal's transaction to resolve where a
//! deal goes (it takes a share lock on the pipeline and the stage, so they
//! cannot be deleted or retired before the deal commits), and
//! [`first_live_stage_of_kind`] to find e.g. the WON stage a won deal moves
//! to. Both return a [`StageRef`].

use chrono::{DateTime, Utc};
use prost::Message;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::{self, Claim};
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Pipeline;
use sqlx::{PgConnection, PgPool, Postgres, Transaction};

use super::{Write, check_etag, deleted, now, violates};
use crate::convert;
use crate::domain::ids::{PipelineId, StageId};
use crate::domain::pipeline::{
    DEFAULT_LOST_REASONS, DEFAULT_STAGES, PipelineDraft, PipelinePatch, StageDraft, StageKind,
};
use crate::error::{Error, resource::PIPELINE};

/// A stored stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    /// Id.
    pub id: StageId,
    /// Display name.
    pub name: String,
    /// Default probability, 0-100.
    pub probability: i32,
    /// What reaching it means.
    pub kind: StageKind,
    /// Position in the pipeline, 0 first.
    pub position: i32,
    /// Retired.
    pub retired: bool,
    /// Rotting period in days (0: the pipeline's).
    pub rotting_days: i32,
}

/// A stored pipeline with its stages in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRecord {
    /// Id.
    pub id: PipelineId,
    /// Display name.
    pub name: String,
    /// The default pipeline.
    pub is_default: bool,
    /// Rotting period in days.
    pub rotting_days: i32,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed (itself or a stage).
    pub update_time: DateTime<Utc>,
    /// Soft-deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Version for etags.
    pub version: i64,
    /// Stages by position, retired ones included.
    pub stages: Vec<StageRecord>,
}

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

impl From<&StageRow> for StageRecord {
    fn from(row: &StageRow) -> StageRecord {
        StageRecord {
            id: row.id.into(),
            name: row.name.clone(),
            probability: row.probability,
            kind: StageKind::from_name(&row.kind),
            position: row.position,
            retired: row.retired,
            rotting_days: row.rotting_days,
        }
    }
}

/// The rows with their stages attached.
async fn with_stages(conn: &mut PgConnection, rows: Vec<Row>) -> Result<Vec<PipelineRecord>, Error> {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.id).collect();
    let sql = format!("SELECT {STAGE_COLUMNS} FROM stages WHERE pipeline_id = ANY($1) ORDER BY position");
    let stages: Vec<StageRow> = sqlx::query_as(&sql).bind(&ids).fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|row| PipelineRecord {
            stages: stages
                .iter()
                .filter(|stage| stage.pipeline_id == row.id)
                .map(StageRecord::from)
                .collect(),
            id: row.id.into(),
            name: row.name,
            is_default: row.is_default,
            rotting_days: row.rotting_days,
            create_time: row.create_time,
            update_time: row.update_time,
            delete_time: row.delete_time,
            version: row.version,
        })
        .collect())
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

/// ALREADY_EXISTS for a name another live pipeline has, or `err` itself.
fn name_taken_or(err: sqlx::Error, name: &str) -> Error {
    if violates(&err, "pipelines_name_live") {
        rapport_kit::error::Problem::new(
            tonic::Code::AlreadyExists,
            "PIPELINE_NAME_TAKEN",
            format!("a pipeline named {name:?} already exists"),
        )
        .into()
    } else {
        err.into()
    }
}

/// Clears the default flag of every other pipeline; their change rows.
async fn clear_default(tx: &mut PgConnection, except: PipelineId, actor: &str) -> Result<Vec<Change>, Error> {
    let ids: Vec<uuid::Uuid> = sqlx::query_scalar(
        "UPDATE pipelines SET is_default = false, update_time = $2, version = version + 1 \
         WHERE is_default AND id <> $1 RETURNING id",
    )
    .bind(except.uuid())
    .bind(now())
    .fetch_all(&mut *tx)
    .await?;
    let mut changes = Vec::new();
    for id in ids {
        let pipeline = convert::pipeline_to_proto(&load(tx, id.into(), "").await?);
        changes.push(Change::of(
            PIPELINE,
            &pipeline,
            id.to_string(),
            ChangeKind::Updated,
            actor,
            vec!["is_default".to_owned()],
        ));
    }
    Ok(changes)
}

/// Inserts a pipeline and its stages; its change row.
async fn insert(
    tx: &mut PgConnection,
    draft: &PipelineDraft,
    actor: &str,
) -> Result<(Pipeline, Vec<Change>), Error> {
    let id = PipelineId::generate();
    let mut changes = if draft.is_default { clear_default(tx, id, actor).await? } else { Vec::new() };
    let now = now();
    sqlx::query(
        "INSERT INTO pipelines (id, name, is_default, rotting_days, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(id.uuid())
    .bind(&draft.name)
    .bind(draft.is_default)
    .bind(draft.rotting_days)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(|err| name_taken_or(err, &draft.name))?;
    for (position, stage) in draft.stages.iter().enumerate() {
        insert_stage(tx, id, stage, position as i32).await?;
    }
    let pipeline = convert::pipeline_to_proto(&load(tx, id, "").await?);
    changes.push(Change::of(PIPELINE, &pipeline, id.to_string(), ChangeKind::Created, actor, Vec::new()));
    Ok((pipeline, changes))
}

/// Inserts one stage at `position` (others must have made room).
pub(crate) async fn insert_stage(
    tx: &mut PgConnection,
    pipeline: PipelineId,
    stage: &StageDraft,
    position: i32,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO stages (id, pipeline_id, name, probability, kind, position, rotting_days) \
         VALUES ($1, $2, $3, $4::int2, $5, $6, $7)",
    )
    .bind(StageId::generate().uuid())
    .bind(pipeline.uuid())
    .bind(&stage.name)
    .bind(stage.probability)
    .bind(stage.kind.name())
    .bind(position)
    .bind(stage.rotting_days)
    .execute(&mut *tx)
    .await
    .map_err(|err| stage_name_taken_or(err, &stage.name))?;
    Ok(())
}

/// ALREADY_EXISTS for a name another live stage of the pipeline has.
pub(crate) fn stage_name_taken_or(err: sqlx::Error, name: &str) -> Error {
    if violates(&err, "stages_name_live") {
        rapport_kit::error::Problem::new(
            tonic::Code::AlreadyExists,
            "STAGE_NAME_TAKEN",
            format!("the pipeline already has a live stage named {name:?}"),
        )
        .into()
    } else {
        err.into()
    }
}

/// Creates a pipeline, or replays the first result of the same `request_id`.
pub async fn create(pool: &PgPool, draft: &PipelineDraft, write: Write<'_>) -> Result<Pipeline, Error> {
    let mut tx = pool.begin().await?;
    if let Some((request_id, request)) = write.request
        && let Claim::Replay(response) =
            idempotency::claim(&mut tx, "CreatePipeline", request_id, request).await?
    {
        return Pipeline::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let (pipeline, changes) = insert(&mut tx, draft, write.actor).await?;
    changelog::append(&mut tx, &changes).await?;
    if let Some((request_id, _)) = write.request {
        idempotency::record(&mut tx, request_id, &pipeline.encode_to_vec()).await?;
    }
    tx.commit().await?;
    Ok(pipeline)
}

/// Applies `patch` to a live pipeline; nothing changed writes nothing.
pub async fn update(
    pool: &PgPool,
    id: PipelineId,
    etag: &str,
    patch: &PipelinePatch,
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    let (mut tx, record) = begin(pool, id, etag).await?;
    let mut paths = Vec::new();
    let name = patch.name.as_ref().filter(|name| **name != record.name);
    if name.is_some() {
        paths.push("name".to_owned());
    }
    let rotting_days = patch.rotting_days.filter(|days| *days != record.rotting_days);
    if rotting_days.is_some() {
        paths.push("rotting_days".to_owned());
    }
    let mut earlier = Vec::new();
    if patch.make_default && !record.is_default {
        paths.push("is_default".to_owned());
        earlier = clear_default(&mut tx, id, write.actor).await?;
    }
    if paths.is_empty() {
        return Ok(convert::pipeline_to_proto(&record));
    }
    sqlx::query(
        "UPDATE pipelines SET name = coalesce($2, name), rotting_days = coalesce($3, rotting_days), \
           is_default = is_default OR $4 WHERE id = $1",
    )
    .bind(id.uuid())
    .bind(name)
    .bind(rotting_days)
    .bind(patch.make_default)
    .execute(&mut *tx)
    .await
    .map_err(|err| name_taken_or(err, name.map_or("", String::as_str)))?;
    finish(tx, id, (ChangeKind::Updated, paths), earlier, write).await
}

/// Soft-deletes (`deleted`) or restores a pipeline; one already in the
/// wanted state is returned unchanged. The default pipeline and one with
/// open deals cannot be deleted.
pub async fn set_deleted(
    pool: &PgPool,
    id: PipelineId,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    let mut tx = pool.begin().await?;
    let record = load(&mut tx, id, "FOR UPDATE").await?;
    check_etag(PIPELINE, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() == deleted {
        return Ok(convert::pipeline_to_proto(&record));
    }
    if deleted && record.is_default {
        return Err(Error::precondition(
            "PIPELINE_IS_DEFAULT",
            "the default pipeline cannot be deleted; make another pipeline the default first",
            "PIPELINE_NOT_DEFAULT",
            &id.to_string(),
        ));
    }
    if deleted {
        let open: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM deals WHERE pipeline_id = $1 AND status = 'OPEN' AND delete_time IS NULL LIMIT 1",
        )
        .bind(id.uuid())
        .fetch_optional(&mut *tx)
        .await?;
        if open.is_some() {
            return Err(Error::precondition(
                "PIPELINE_HAS_OPEN_DEALS",
                "the pipeline still has open deals; move, close or delete them first",
                "PIPELINE_WITHOUT_OPEN_DEALS",
                &id.to_string(),
            ));
        }
    }
    sqlx::query("UPDATE pipelines SET delete_time = $2 WHERE id = $1")
        .bind(id.uuid())
        .bind(deleted.then(now))
        .execute(&mut *tx)
        .await
        .map_err(|err| name_taken_or(err, &record.name))?;
    let kind = if deleted { ChangeKind::Deleted } else { ChangeKind::Undeleted };
    finish(tx, id, (kind, Vec::new()), Vec::new(), write).await
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

/// Creates the default pipeline and lost reasons when no pipeline exists at
/// all, once even when several replicas start together (a transaction-
/// scoped advisory lock serializes them).
pub async fn ensure_defaults(pool: &PgPool) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('rapport.pipeline.defaults'))")
        .execute(&mut *tx)
        .await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pipelines)").fetch_one(&mut *tx).await?;
    if exists {
        return Ok(());
    }
    let draft = PipelineDraft {
        name: "Sales".to_owned(),
        is_default: true,
        rotting_days: 30,
        stages: DEFAULT_STAGES
            .iter()
            .map(|(name, kind, probability)| StageDraft {
                name: (*name).to_owned(),
                probability: *probability,
                kind: *kind,
                rotting_days: 0,
            })
            .collect(),
    };
    let (_, mut changes) = insert(&mut tx, &draft, "system").await?;
    for label in DEFAULT_LOST_REASONS {
        changes.push(super::lost_reasons::insert(&mut tx, label, "system").await?.1);
    }
    changelog::append(&mut tx, &changes).await?;
    tx.commit().await?;
    tracing::info!("created the default pipeline and lost reasons");
    Ok(())
}

/// Where a deal goes: a pipeline's stage with what deals need of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StageRef {
    /// The pipeline.
    pub pipeline_id: PipelineId,
    /// The stage.
    pub stage_id: StageId,
    /// What reaching it means.
    pub kind: StageKind,
    /// Its default probability, 0-100.
    pub probability: i32,
    /// Whether it is retired (only ever true from [`stage_of`]).
    pub retired: bool,
    /// Its position in the pipeline.
    pub position: i32,
}

/// The live pipeline `pipeline` (or the default one), share-locked.
async fn live_pipeline(conn: &mut PgConnection, pipeline: Option<PipelineId>) -> Result<PipelineId, Error> {
    let row: Option<(uuid::Uuid, Option<DateTime<Utc>>)> =
        match pipeline {
            Some(id) => {
                sqlx::query_as("SELECT id, delete_time FROM pipelines WHERE id = $1 FOR SHARE")
                    .bind(id.uuid())
                    .fetch_optional(&mut *conn)
                    .await?
            }
            None => sqlx::query_as(
                "SELECT id, delete_time FROM pipelines WHERE is_default AND delete_time IS NULL FOR SHARE",
            )
            .fetch_optional(&mut *conn)
            .await?,
        };
    match row {
        Some((id, None)) => Ok(id.into()),
        Some((id, Some(_))) => Err(deleted(PIPELINE, &id.to_string())),
        None => match pipeline {
            Some(id) => Err(not_found(id)),
            None => Err(Error::precondition(
                "NO_DEFAULT_PIPELINE",
                "there is no default pipeline; name a pipeline_id",
                "DEFAULT_PIPELINE",
                "pipelines",
            )),
        },
    }
}

/// The stage `stage` wherever it is, share-locked, retired or not.
/// NOT_FOUND (reason STAGE_NOT_FOUND) when unknown.
pub async fn stage_of(conn: &mut PgConnection, stage: StageId) -> Result<StageRef, Error> {
    let sql = format!("SELECT {STAGE_COLUMNS} FROM stages WHERE id = $1 FOR SHARE");
    let row: Option<StageRow> = sqlx::query_as(&sql).bind(stage.uuid()).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(|| stage_not_found(stage))?;
    Ok(stage_ref(&row))
}

fn stage_not_found(stage: StageId) -> Error {
    Error::not_found("STAGE_NOT_FOUND", crate::error::resource::STAGE, stage)
}

fn stage_ref(row: &StageRow) -> StageRef {
    StageRef {
        pipeline_id: row.pipeline_id.into(),
        stage_id: row.id.into(),
        kind: StageKind::from_name(&row.kind),
        probability: row.probability,
        retired: row.retired,
        position: row.position,
    }
}

/// Resolves where a new or moved deal goes, inside the caller's
/// transaction (share-locking the pipeline and stage until it commits):
///
/// - neither set: the default pipeline's first live OPEN stage;
/// - only `pipeline`: that pipeline's first live OPEN stage;
/// - only `stage`: that stage, in its own pipeline;
/// - both: the stage, which must be in the pipeline.
///
/// Errors: NOT_FOUND (PIPELINE_NOT_FOUND, STAGE_NOT_FOUND);
/// FAILED_PRECONDITION NO_DEFAULT_PIPELINE when neither is set and there
/// is no default, PIPELINE_DELETED for a deleted pipeline and
/// STAGE_RETIRED for a retired stage; INVALID_ARGUMENT on field `stage_id`
/// when the stage is in another pipeline (rename the field for your
/// request, e.g. `deal.stage_id`).
pub async fn stage_for_deal(
    conn: &mut PgConnection,
    pipeline: Option<PipelineId>,
    stage: Option<StageId>,
) -> Result<StageRef, Error> {
    let Some(stage) = stage else {
        let pipeline = live_pipeline(conn, pipeline).await?;
        return first_live_stage_of_kind(conn, pipeline, StageKind::Open).await;
    };
    // The pipeline is share-locked before the stage, in the order pipeline
    // writes lock them (pipeline, then its stages), so the two cannot deadlock.
    let owner: Option<uuid::Uuid> = sqlx::query_scalar("SELECT pipeline_id FROM stages WHERE id = $1")
        .bind(stage.uuid())
        .fetch_optional(&mut *conn)
        .await?;
    let owner = PipelineId::from(owner.ok_or_else(|| stage_not_found(stage))?);
    if pipeline.is_some_and(|pipeline| pipeline != owner) {
        return Err(crate::domain::Violation::new("stage_id", "is a stage of another pipeline").into());
    }
    live_pipeline(conn, Some(owner)).await?;
    let found = stage_of(conn, stage).await?;
    if found.retired {
        return Err(Error::precondition(
            "STAGE_RETIRED",
            format!("stage {stage} is retired; deals cannot be moved into it"),
            "STAGE_LIVE",
            &stage.to_string(),
        ));
    }
    Ok(found)
}

/// The first (lowest position) live stage of `kind` in `pipeline`,
/// share-locked. FAILED_PRECONDITION NO_LIVE_STAGE_OF_KIND when there is
/// none (the stage methods keep one of each kind, so only for an unknown
/// pipeline).
pub async fn first_live_stage_of_kind(
    conn: &mut PgConnection,
    pipeline: PipelineId,
    kind: StageKind,
) -> Result<StageRef, Error> {
    let sql = format!(
        "SELECT {STAGE_COLUMNS} FROM stages WHERE pipeline_id = $1 AND kind = $2 AND NOT retired \
         ORDER BY position LIMIT 1 FOR SHARE"
    );
    let row: Option<StageRow> =
        sqlx::query_as(&sql).bind(pipeline.uuid()).bind(kind.name()).fetch_optional(&mut *conn).await?;
    row.map(|row| stage_ref(&row)).ok_or_else(|| {
        Error::precondition(
            "NO_LIVE_STAGE_OF_KIND",
            format!("pipeline {pipeline} has no live {} stage", kind.name()),
            "STAGE_OF_KIND",
            &pipeline.to_string(),
        )
    })
}
