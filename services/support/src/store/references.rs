//! What Contacts' deletions do to cases (the contacts feed's effects): a
//! deleted requester is marked on their cases, a deleted company is
//! removed from them; each changed case gets an UPDATED change.

use rapport_proto::common::v1::ChangeKind;
use sqlx::PgConnection;
use uuid::Uuid;

use super::cases::{lock, save};
use super::{Ctx, sla};
use crate::error::Error;

/// Marks (or, restored, unmarks) `contact_id` deleted on the cases it
/// asked; returns the cases changed.
pub async fn mark_requester(
    tx: &mut PgConnection,
    contact_id: Uuid,
    deleted: bool,
    actor: &str,
    ctx: Ctx<'_>,
) -> Result<usize, Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM cases WHERE requester_contact_id = $1 AND requester_deleted <> $2 ORDER BY id",
    )
    .bind(contact_id)
    .bind(deleted)
    .fetch_all(&mut *tx)
    .await?;
    change_each(tx, &ids, "requester_deleted", actor, ctx, |row| row.requester_deleted = deleted).await
}

/// Removes `company_id` from the live cases naming it; returns how many.
pub async fn drop_company(
    tx: &mut PgConnection,
    company_id: Uuid,
    actor: &str,
    ctx: Ctx<'_>,
) -> Result<usize, Error> {
    let ids: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM cases WHERE company_id = $1 AND delete_time IS NULL ORDER BY id")
            .bind(company_id)
            .fetch_all(&mut *tx)
            .await?;
    change_each(tx, &ids, "company_id", actor, ctx, |row| row.company_id = None).await
}

async fn change_each(
    tx: &mut PgConnection,
    ids: &[Uuid],
    path: &str,
    actor: &str,
    ctx: Ctx<'_>,
    change: impl Fn(&mut crate::model::CaseRow),
) -> Result<usize, Error> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sla = sla::load(tx).await?;
    for id in ids {
        let mut record = lock(tx, *id).await?;
        change(&mut record.case);
        save(tx, &mut record, (ChangeKind::Updated, vec![path.to_owned()]), actor, ctx, &sla).await?;
    }
    Ok(ids.len())
}

/// Every requester and company cases name (for a resync).
pub async fn referenced(tx: &mut PgConnection) -> Result<(Vec<Uuid>, Vec<Uuid>), sqlx::Error> {
    let requesters =
        sqlx::query_scalar("SELECT DISTINCT requester_contact_id FROM cases WHERE NOT requester_deleted")
            .fetch_all(&mut *tx)
            .await?;
    let companies = sqlx::query_scalar(
        "SELECT DISTINCT company_id FROM cases WHERE company_id IS NOT NULL AND delete_time IS NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok((requesters, companies))
}
