//! References to Contacts dropped from live deals when Contacts deletes
//! the company or contact (the `contacts` change-feed consumer), each deal
//! with its version bumped and an UPDATED change-log row, in the caller's
//! transaction. Orders and invoices keep their company (accounting history).
//!
//! The consumer also leaves a tombstone (`deleted_references`) under an
//! exclusive advisory lock on the id; deal writes share-lock the ids they
//! name and look for tombstones in their own transaction
//! ([`refuse_deleted`], [`gone_among`]), so a deletion the consumer applies
//! while a write is between its Contacts check and its commit is not
//! missed (see the migration).

use rapport_proto::common::v1::ChangeKind;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{lock, log, write_row};
use crate::error::Error;
use crate::store::now;

/// Advisory lock class of a referenced id (`"refr"`; the key is the id's
/// `hashtext`): the consumer takes it exclusive, deal writes shared.
pub const REFERENCE_LOCK_CLASS: i32 = 0x7265_6672;

/// Asks the Contacts service, from inside a deal write's transaction (the
/// ids share-locked), which of the ids that have a tombstone are gone: a
/// tombstone may be older than an undelete the consumer has not applied
/// yet.
#[tonic::async_trait]
pub trait Recheck: Send + Sync {
    /// Those of `company` and `contacts` that do not exist or are deleted.
    async fn gone(&self, company: Option<Uuid>, contacts: &[Uuid]) -> Result<Vec<Uuid>, Error>;
}

/// The consumer's lock on `id`, until the transaction ends: deal writes
/// naming it wait.
async fn lock_exclusive(tx: &mut PgConnection, id: Uuid) -> Result<(), Error> {
    sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2::text))")
        .bind(REFERENCE_LOCK_CLASS)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Locks `id` against deal writes naming it and records it as deleted.
async fn tombstone(tx: &mut PgConnection, id: Uuid, kind: &str) -> Result<(), Error> {
    lock_exclusive(tx, id).await?;
    sqlx::query(
        "INSERT INTO deleted_references (id, kind) VALUES ($1, $2) \
         ON CONFLICT (id) DO UPDATE SET delete_time = now()",
    )
    .bind(id)
    .bind(kind)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Contacts undeleted `id`: deals may name it again (it is not put back
/// into the deals that lost it).
pub async fn restore(tx: &mut PgConnection, id: Uuid) -> Result<bool, Error> {
    lock_exclusive(tx, id).await?;
    let removed =
        sqlx::query("DELETE FROM deleted_references WHERE id = $1").bind(id).execute(&mut *tx).await?;
    Ok(removed.rows_affected() > 0)
}

/// Of `company` and `contacts`, those Contacts deleted: share-locks every
/// id until the transaction ends (so the consumer cannot apply a deletion
/// of one meanwhile), then asks `recheck` about those with a tombstone.
pub(crate) async fn gone_among(
    tx: &mut PgConnection,
    company: Option<Uuid>,
    contacts: &[Uuid],
    recheck: &dyn Recheck,
) -> Result<Vec<Uuid>, Error> {
    let mut ids: Vec<Uuid> = company.into_iter().chain(contacts.iter().copied()).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    ids.sort_unstable();
    ids.dedup();
    // One statement per step: a statement's snapshot is taken before it
    // waits for a lock, so the tombstones are read by the next one.
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock_shared($1, hashtext(id::text))) FROM unnest($2::uuid[]) AS t(id)",
    )
    .bind(REFERENCE_LOCK_CLASS)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    let tombstoned: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM deleted_references WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(&mut *tx)
        .await?;
    if tombstoned.is_empty() {
        return Ok(Vec::new());
    }
    let company = company.filter(|id| tombstoned.contains(id));
    let contacts: Vec<Uuid> = contacts.iter().copied().filter(|id| tombstoned.contains(id)).collect();
    recheck.gone(company, &contacts).await
}

/// FAILED_PRECONDITION (COMPANY_NOT_FOUND, CONTACT_NOT_FOUND) when a write
/// names a company or contact Contacts deleted (see [`gone_among`]).
pub(crate) async fn refuse_deleted(
    tx: &mut PgConnection,
    company: Option<Uuid>,
    contacts: &[Uuid],
    recheck: &dyn Recheck,
) -> Result<(), Error> {
    let gone = gone_among(tx, company, contacts, recheck).await?;
    match (company, gone.first()) {
        (_, None) => Ok(()),
        (Some(company), Some(_)) if gone.contains(&company) => {
            Err(crate::contacts::company_missing(company.into()))
        }
        (_, Some(contact)) => Err(crate::contacts::contact_missing((*contact).into())),
    }
}

/// The live deals of `company_id` lose it. Returns how many changed.
pub async fn drop_company(tx: &mut PgConnection, company_id: Uuid, actor: &str) -> Result<usize, Error> {
    tombstone(tx, company_id, "COMPANY").await?;
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
    tombstone(tx, contact_id, "CONTACT").await?;
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

/// Moves a deal's `last_activity_time` forward to `time` (an activity on
/// it in Contacts); true when it moved.
pub async fn touch(
    tx: &mut PgConnection,
    deal_id: Uuid,
    time: chrono::DateTime<chrono::Utc>,
) -> Result<bool, Error> {
    let moved =
        sqlx::query("UPDATE deals SET last_activity_time = $2 WHERE id = $1 AND last_activity_time < $2")
            .bind(deal_id)
            .bind(time)
            .execute(&mut *tx)
            .await?;
    Ok(moved.rows_affected() > 0)
}
