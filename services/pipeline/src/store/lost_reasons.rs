//! Lost reasons: the managed list deals are lost for. Every write appends
//! the reason to the change log.

use prost::Message;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::LostReason;
use sqlx::{PgConnection, PgPool};

use super::{Write, check_etag, now, violates};
use crate::convert;
use crate::domain::ids::LostReasonId;
use crate::error::{Error, resource::LOST_REASON};
pub use crate::model::pipelines::LostReasonRecord;

const COLUMNS: &str = "id, label, retired, create_time, version";

/// ALREADY_EXISTS for a label another live reason has, or `err` itself.
fn label_taken_or(err: sqlx::Error, label: &str) -> Error {
    if violates(&err, "lost_reasons_label_live") {
        rapport_kit::error::Problem::already_exists(
            "LOST_REASON_LABEL_TAKEN",
            format!("a live lost reason {label:?} already exists"),
        )
        .into()
    } else {
        err.into()
    }
}

/// Inserts a reason; it and its change row.
pub(crate) async fn insert(
    tx: &mut PgConnection,
    label: &str,
    actor: &str,
) -> Result<(LostReason, Change), Error> {
    let record = LostReasonRecord {
        id: LostReasonId::generate().uuid(),
        label: label.to_owned(),
        retired: false,
        create_time: now(),
        version: 1,
    };
    sqlx::query("INSERT INTO lost_reasons (id, label, create_time) VALUES ($1, $2, $3)")
        .bind(record.id)
        .bind(&record.label)
        .bind(record.create_time)
        .execute(&mut *tx)
        .await
        .map_err(|err| label_taken_or(err, label))?;
    let reason = convert::lost_reason_to_proto(&record);
    let change =
        Change::of(LOST_REASON, &reason, record.id.to_string(), ChangeKind::Created, actor, Vec::new());
    Ok((reason, change))
}

/// Creates a reason, or replays the first result of the same `request_id`.
pub async fn create(pool: &PgPool, label: &str, write: Write<'_>) -> Result<LostReason, Error> {
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "CreateLostReason").await? {
        return LostReason::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let (reason, change) = insert(&mut tx, label, write.actor).await?;
    changelog::append(&mut tx, &[change]).await?;
    write.record(&mut tx, &reason.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(reason)
}

/// Sets the label and/or retired flag of a reason if `etag` is current.
pub async fn update(
    pool: &PgPool,
    id: LostReasonId,
    etag: &str,
    (label, retired): (Option<&str>, Option<bool>),
    write: Write<'_>,
) -> Result<LostReason, Error> {
    let mut tx = pool.begin().await?;
    let sql = format!("SELECT {COLUMNS} FROM lost_reasons WHERE id = $1 FOR UPDATE");
    let record: Option<LostReasonRecord> =
        sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *tx).await?;
    let mut record = record.ok_or_else(|| Error::not_found("LOST_REASON_NOT_FOUND", LOST_REASON, id))?;
    check_etag(LOST_REASON, &id.to_string(), etag, record.version)?;
    let mut paths = Vec::new();
    if let Some(label) = label.filter(|label| *label != record.label) {
        record.label = label.to_owned();
        paths.push("label".to_owned());
    }
    if let Some(retired) = retired.filter(|retired| *retired != record.retired) {
        record.retired = retired;
        paths.push("retired".to_owned());
    }
    if paths.is_empty() {
        return Ok(convert::lost_reason_to_proto(&record));
    }
    sqlx::query("UPDATE lost_reasons SET label = $2, retired = $3, version = version + 1 WHERE id = $1")
        .bind(id.uuid())
        .bind(&record.label)
        .bind(record.retired)
        .execute(&mut *tx)
        .await
        .map_err(|err| label_taken_or(err, &record.label))?;
    record.version += 1;
    let reason = convert::lost_reason_to_proto(&record);
    changelog::append(
        &mut tx,
        &[Change::of(LOST_REASON, &reason, id.to_string(), ChangeKind::Updated, write.actor, paths)],
    )
    .await?;
    tx.commit().await?;
    Ok(reason)
}

/// Every reason (retired ones with `show_retired`), by label.
pub async fn list(pool: &PgPool, show_retired: bool) -> Result<Vec<LostReason>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM lost_reasons WHERE $1 OR NOT retired ORDER BY lower(label), id");
    let records: Vec<LostReasonRecord> = sqlx::query_as(&sql).bind(show_retired).fetch_all(pool).await?;
    Ok(records.iter().map(convert::lost_reason_to_proto).collect())
}
