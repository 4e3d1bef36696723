//! A pipeline's stages: add, change, reorder, retire. Each is a change of
//! the pipeline (see `pipelines::begin` and `pipelines::finish`): it needs
//! the pipeline live, checks its etag, bumps its version and appends it.

use std::collections::HashSet;

use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Pipeline;
use sqlx::PgPool;

use super::Write;
use super::pipelines::{PipelineRecord, StageRecord, begin, finish, insert_stage, stage_name_taken_or};
use crate::domain::Violation;
use crate::domain::ids::{PipelineId, StageId};
use crate::domain::pipeline::{MAX_STAGES, StageDraft, StagePatch};
use crate::error::{Error, resource::STAGE};

fn stage_in(record: &PipelineRecord, stage: StageId) -> Result<&StageRecord, Error> {
    record
        .stages
        .iter()
        .find(|found| found.id == stage)
        .ok_or_else(|| Error::not_found("STAGE_NOT_FOUND", STAGE, stage))
}

fn stages_changed() -> (ChangeKind, Vec<String>) {
    (ChangeKind::Updated, vec!["stages".to_owned()])
}

/// Inserts `draft` at `position` (past the end or `None` appends).
pub async fn add(
    pool: &PgPool,
    id: PipelineId,
    etag: &str,
    (draft, position): (&StageDraft, Option<u32>),
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    let (mut tx, record) = begin(pool, id, etag).await?;
    if record.stages.len() >= MAX_STAGES {
        return Err(Error::precondition(
            "TOO_MANY_STAGES",
            format!("a pipeline has at most {MAX_STAGES} stages (retired ones included)"),
            "TOO_MANY_STAGES",
            &id.to_string(),
        ));
    }
    let count = record.stages.len() as u32;
    let position = position.unwrap_or(count).min(count) as i32;
    sqlx::query("UPDATE stages SET position = position + 1 WHERE pipeline_id = $1 AND position >= $2")
        .bind(id.uuid())
        .bind(position)
        .execute(&mut *tx)
        .await?;
    insert_stage(&mut tx, id, draft, position).await?;
    finish(tx, id, stages_changed(), Vec::new(), write).await
}

/// Applies `patch` to one stage; nothing changed writes nothing.
pub async fn update(
    pool: &PgPool,
    (id, stage): (PipelineId, StageId),
    etag: &str,
    patch: &StagePatch,
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    let (mut tx, record) = begin(pool, id, etag).await?;
    let current = stage_in(&record, stage)?;
    let name = patch.name.as_ref().filter(|name| **name != current.name);
    let probability = patch.probability.filter(|probability| *probability != current.probability);
    let rotting_days = patch.rotting_days.filter(|days| *days != current.rotting_days);
    if name.is_none() && probability.is_none() && rotting_days.is_none() {
        return Ok(crate::convert::pipeline_to_proto(&record));
    }
    sqlx::query(
        "UPDATE stages SET name = coalesce($2, name), probability = coalesce($3::int2, probability), \
           rotting_days = coalesce($4, rotting_days) WHERE id = $1",
    )
    .bind(stage.uuid())
    .bind(name)
    .bind(probability)
    .bind(rotting_days)
    .execute(&mut *tx)
    .await
    .map_err(|err| stage_name_taken_or(err, name.map_or("", String::as_str)))?;
    finish(tx, id, stages_changed(), Vec::new(), write).await
}

/// Puts the stages in the order of `order`, which must list every stage
/// of the pipeline exactly once.
pub async fn reorder(
    pool: &PgPool,
    id: PipelineId,
    etag: &str,
    order: &[StageId],
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    let (mut tx, record) = begin(pool, id, etag).await?;
    let expected: HashSet<StageId> = record.stages.iter().map(|stage| stage.id).collect();
    let given: HashSet<StageId> = order.iter().copied().collect();
    if given.len() != order.len() || given != expected {
        return Err(Violation::new(
            "stage_ids",
            format!("must list each of the pipeline's {} stages exactly once", expected.len()),
        )
        .into());
    }
    let unchanged = record.stages.iter().map(|stage| stage.id).eq(order.iter().copied());
    if unchanged {
        return Ok(crate::convert::pipeline_to_proto(&record));
    }
    let ids: Vec<uuid::Uuid> = order.iter().map(|stage| stage.uuid()).collect();
    sqlx::query(
        "UPDATE stages SET position = o.ord - 1 FROM unnest($2::uuid[]) WITH ORDINALITY AS o(id, ord) \
         WHERE stages.id = o.id AND stages.pipeline_id = $1",
    )
    .bind(id.uuid())
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    finish(tx, id, stages_changed(), Vec::new(), write).await
}

/// Retires (`retired`) or brings back a stage. The pipeline keeps one live
/// stage of each kind; a stage already in the wanted state is returned
/// unchanged.
pub async fn set_retired(
    pool: &PgPool,
    (id, stage): (PipelineId, StageId),
    etag: &str,
    retired: bool,
    write: Write<'_>,
) -> Result<Pipeline, Error> {
    let (mut tx, record) = begin(pool, id, etag).await?;
    let current = stage_in(&record, stage)?;
    if current.retired == retired {
        return Ok(crate::convert::pipeline_to_proto(&record));
    }
    let others_live =
        record.stages.iter().any(|other| other.id != stage && other.kind == current.kind && !other.retired);
    if retired && !others_live {
        return Err(Error::precondition(
            "LAST_STAGE_OF_KIND",
            format!("stage {stage} is the pipeline's last live {} stage", current.kind.name()),
            "LIVE_STAGE_OF_EACH_KIND",
            &stage.to_string(),
        ));
    }
    sqlx::query("UPDATE stages SET retired = $2 WHERE id = $1")
        .bind(stage.uuid())
        .bind(retired)
        .execute(&mut *tx)
        .await
        .map_err(|err| stage_name_taken_or(err, &current.name))?;
    finish(tx, id, stages_changed(), Vec::new(), write).await
}
