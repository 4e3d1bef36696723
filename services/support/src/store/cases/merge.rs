//! MergeCases: a duplicate folded into its survivor.

use rapport_proto::common::v1::ChangeKind;
use rapport_proto::support::v1::{Case, CaseStatus};
use sqlx::PgPool;
use uuid::Uuid;

use super::{lock_live, move_status, owned, save};
use crate::error::{self, Error};
use crate::model::CaseRecord;
use crate::store::{Ctx, Write, sla};

/// Folds `merged_id` into `survivor_id`: its comments move to the
/// survivor, it is closed with a pointer to it.
pub async fn merge(
    pool: &PgPool,
    survivor_id: Uuid,
    merged_id: Uuid,
    write: Write<'_>,
    ctx: Ctx<'_>,
) -> Result<Case, Error> {
    if survivor_id == merged_id {
        return Err(rapport_kit::fields::Violation::new(
            "merged_case_id",
            "must differ from survivor_case_id",
        )
        .into());
    }
    let mut tx = pool.begin().await?;
    let may = |record: &CaseRecord| match write.principal {
        Some(principal) => {
            crate::policy::may_change(principal, owned(&record.case), &["status"]).map_err(Error::from)
        }
        None => Ok(()),
    };
    // Lock in id order, so two opposite merges cannot deadlock.
    let (first, second) =
        if survivor_id < merged_id { (survivor_id, merged_id) } else { (merged_id, survivor_id) };
    let first = lock_live(&mut tx, first, "", may).await?;
    let second = lock_live(&mut tx, second, "", may).await?;
    let (mut survivor, mut merged) =
        if first.case.id == survivor_id { (first, second) } else { (second, first) };
    if survivor.case.status == "CLOSED" {
        return Err(error::case_closed(&survivor_id.to_string()));
    }
    let sla = sla::load(&mut tx).await?;
    sqlx::query("UPDATE case_comments SET case_id = $1 WHERE case_id = $2")
        .bind(survivor_id)
        .bind(merged_id)
        .execute(&mut *tx)
        .await?;
    if merged.case.status != "CLOSED" {
        move_status(&mut merged, CaseStatus::Closed, ctx, &sla)?;
    }
    merged.case.merged_into = Some(survivor_id);
    let paths = vec!["status".to_owned(), "merged_into_case_id".to_owned()];
    save(&mut tx, &mut merged, (ChangeKind::Updated, paths), write.actor, ctx, &sla).await?;
    let kept = save(
        &mut tx,
        &mut survivor,
        (ChangeKind::Updated, vec!["comments".to_owned()]),
        write.actor,
        ctx,
        &sla,
    )
    .await?;
    tx.commit().await?;
    Ok(kept)
}
