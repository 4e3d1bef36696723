//! References to Contacts dropped from live deals when Contacts deletes
//! the company or contact (the `contacts` change-feed consumer), each deal
//! with its version bumped and an UPDATED change-log row, in the caller's
//! transaction. Orders and invoices keep their company (accounting history).

use rapport_proto::common::v1::ChangeKind;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{lock, log, write_row};
use crate::error::Error;
use crate::store::now;

/// The live deals of `company_id` lose it. Returns how many changed.
pub async fn drop_company(tx: &mut PgConnection, company_id: Uuid, actor: &str) -> Result<usize, Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM deals WHERE company_id = $1 AND delete_time IS NULL ORDER BY id FOR UPDATE",
    )
    .bind(company_id)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        let mut record = lock(tx, *id).await?;
        record.deal.company_id = None;
        record.deal.update_time = now();
        record.deal.version += 1;
        write_row(tx, &record.deal).await?;
        log(tx, &record, ChangeKind::Updated, actor, vec!["company_id".to_owned()]).await?;
    }
    Ok(ids.len())
}

/// The live deals naming `contact_id` lose it and its role. Returns how
/// many changed.
pub async fn drop_contact(tx: &mut PgConnection, contact_id: Uuid, actor: &str) -> Result<usize, Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM deals WHERE contact_ids @> ARRAY[$1] AND delete_time IS NULL ORDER BY id FOR UPDATE",
    )
    .bind(contact_id)
    .fetch_all(&mut *tx)
    .await?;
    for id in &ids {
        let mut record = lock(tx, *id).await?;
        let deal = &mut record.deal;
        let (contact_ids, contact_roles) = deal
            .contact_ids
            .iter()
            .zip(&deal.contact_roles)
            .filter(|(id, _)| **id != contact_id)
            .map(|(id, role)| (*id, role.clone()))
            .unzip();
        deal.contact_ids = contact_ids;
        deal.contact_roles = contact_roles;
        deal.update_time = now();
        deal.version += 1;
        write_row(tx, &record.deal).await?;
        log(tx, &record, ChangeKind::Updated, actor, vec!["contacts".to_owned()]).await?;
    }
    Ok(ids.len())
}

/// The distinct companies and contacts that live deals name.
pub async fn referenced(tx: &mut PgConnection) -> Result<(Vec<Uuid>, Vec<Uuid>), Error> {
    let companies = sqlx::query_scalar(
        "SELECT DISTINCT company_id FROM deals \
         WHERE company_id IS NOT NULL AND delete_time IS NULL ORDER BY company_id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let contacts = sqlx::query_scalar(
        "SELECT DISTINCT c FROM deals, unnest(contact_ids) AS c WHERE delete_time IS NULL ORDER BY c",
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok((companies, contacts))
}
