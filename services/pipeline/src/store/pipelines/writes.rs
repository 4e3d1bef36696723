//! The pipeline's own writes: create (with its stages), update, delete and
//! undelete, and inserting one stage.

use prost::Message;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Pipeline;
use sqlx::{PgConnection, PgPool};

use super::{begin, finish, load};
use crate::convert;
use crate::domain::ids::{PipelineId, StageId};
use crate::domain::pipeline::{PipelineDraft, PipelinePatch, StageDraft};
use crate::error::{Error, resource::PIPELINE};
use crate::store::{Write, check_etag, now, violates};

/// ALREADY_EXISTS for a name another live pipeline has, or `err` itself.
fn name_taken_or(err: sqlx::Error, name: &str) -> Error {
    if violates(&err, "pipelines_name_live") {
        rapport_kit::error::Problem::already_exists(
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
pub(super) async fn insert(
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
        rapport_kit::error::Problem::already_exists(
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
    if let Claim::Replay(response) = write.claim(&mut tx, "CreatePipeline").await? {
        return Pipeline::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let (pipeline, changes) = insert(&mut tx, draft, write.actor).await?;
    changelog::append(&mut tx, &changes).await?;
    write.record(&mut tx, &pipeline.encode_to_vec()).await?;
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
