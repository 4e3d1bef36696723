//! Where a deal goes: the lookups the deals store makes inside its own
//! transaction, share-locking what it finds.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use super::{STAGE_COLUMNS, StageRow, not_found};
use crate::domain::ids::{PipelineId, StageId};
use crate::domain::pipeline::StageKind;
use crate::error::{Error, resource::PIPELINE};
use crate::store::deleted;

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

/// A stage with its pipeline's delete time.
#[derive(sqlx::FromRow)]
struct StageWithPipeline {
    #[sqlx(flatten)]
    stage: StageRow,
    pipeline_delete_time: Option<DateTime<Utc>>,
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
    Ok(stage_ref(&row)?)
}

fn stage_not_found(stage: StageId) -> Error {
    Error::not_found("STAGE_NOT_FOUND", crate::error::resource::STAGE, stage)
}

fn stage_ref(row: &StageRow) -> Result<StageRef, sqlx::Error> {
    Ok(StageRef {
        pipeline_id: row.pipeline_id.into(),
        stage_id: row.id.into(),
        kind: StageKind::from_name(&row.kind)
            .ok_or_else(|| rapport_kit::db::undecodable("kind", &row.kind))?,
        probability: row.probability,
        retired: row.retired,
        position: row.position,
    })
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
    // One statement share-locks the pipeline, then the stage (row locks
    // are taken in FROM order), in the order pipeline writes lock them
    // (pipeline, then its stages), so the two cannot deadlock.
    const SQL: &str = "SELECT s.id, s.pipeline_id, s.name, s.probability::int4 AS probability, s.kind, \
        s.position, s.retired, s.rotting_days, p.delete_time AS pipeline_delete_time \
        FROM pipelines p JOIN stages s ON s.pipeline_id = p.id WHERE s.id = $1 FOR SHARE";
    let row: Option<StageWithPipeline> =
        sqlx::query_as(SQL).bind(stage.uuid()).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(|| stage_not_found(stage))?;
    let owner = PipelineId::from(row.stage.pipeline_id);
    if pipeline.is_some_and(|pipeline| pipeline != owner) {
        return Err(crate::domain::Violation::new("stage_id", "is a stage of another pipeline").into());
    }
    if row.pipeline_delete_time.is_some() {
        return Err(deleted(PIPELINE, &owner.to_string()));
    }
    let found = stage_ref(&row.stage)?;
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

/// The first (lowest position) live stage of `kind` in the live pipeline
/// `pipeline`, share-locked with the pipeline (so a concurrent
/// DeletePipeline, which checks for open deals under its row lock, either
/// commits first and is seen here, or waits for this transaction).
/// FAILED_PRECONDITION PIPELINE_DELETED for a deleted pipeline, and
/// NO_LIVE_STAGE_OF_KIND when there is no such stage (the stage methods
/// keep one of each kind, so only for an unknown pipeline).
pub async fn first_live_stage_of_kind(
    conn: &mut PgConnection,
    pipeline: PipelineId,
    kind: StageKind,
) -> Result<StageRef, Error> {
    const SQL: &str = "SELECT s.id, s.pipeline_id, s.name, s.probability::int4 AS probability, s.kind, \
        s.position, s.retired, s.rotting_days, p.delete_time AS pipeline_delete_time \
        FROM pipelines p JOIN stages s ON s.pipeline_id = p.id \
        WHERE p.id = $1 AND s.kind = $2 AND NOT s.retired ORDER BY s.position LIMIT 1 FOR SHARE";
    let row: Option<StageWithPipeline> =
        sqlx::query_as(SQL).bind(pipeline.uuid()).bind(kind.name()).fetch_optional(&mut *conn).await?;
    match row {
        Some(row) if row.pipeline_delete_time.is_some() => Err(deleted(PIPELINE, &pipeline.to_string())),
        Some(row) => Ok(stage_ref(&row.stage)?),
        None => Err(Error::precondition(
            "NO_LIVE_STAGE_OF_KIND",
            format!("pipeline {pipeline} has no live {} stage", kind.name()),
            "STAGE_OF_KIND",
            &pipeline.to_string(),
        )),
    }
}

/// Checks that `pipeline` is live, share-locking it until the caller's
/// transaction ends. FAILED_PRECONDITION PIPELINE_DELETED when it is not.
pub async fn lock_live_pipeline(conn: &mut PgConnection, pipeline: PipelineId) -> Result<(), Error> {
    live_pipeline(conn, Some(pipeline)).await.map(drop)
}
