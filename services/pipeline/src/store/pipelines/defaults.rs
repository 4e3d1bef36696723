//! The default data of a first start: the "Sales" pipeline and the
//! lost reasons.

use rapport_kit::changelog;
use sqlx::PgPool;

use super::writes::insert;
use crate::domain::pipeline::{DEFAULT_LOST_REASONS, DEFAULT_STAGES, PipelineDraft, StageDraft};
use crate::error::Error;

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
        changes.push(crate::store::lost_reasons::insert(&mut tx, label, "system").await?.1);
    }
    changelog::append(&mut tx, &changes).await?;
    tx.commit().await?;
    tracing::info!("created the default pipeline and lost reasons");
    Ok(())
}
