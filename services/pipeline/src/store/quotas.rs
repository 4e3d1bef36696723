//! Quotas: setting (upsert per owner and month), listing, and the quotas
//! of a forecast's range.

use chrono::NaiveDate;
use rapport_kit::auth::{ReadScope, ScopeColumns};
use rapport_kit::changelog::{self, Change};
use rapport_kit::money::Money;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Quota;
use sqlx::{PgConnection, PgPool};

use super::{Write, now};
use crate::convert::forecasts::currency;
use crate::convert::forecasts::quota_to_proto;
use crate::domain::forecast::{MonthQuota, QuotaDraft};
use crate::error::{Error, resource};
pub use crate::model::forecasts::QuotaRecord;

const COLUMNS: &str = "owner_id, year, month, currency_code, amount_minor, update_time";

/// The change-log id of a quota: `OWNER/YYYY-MM`.
pub fn quota_id(owner_id: &str, year: i32, month: i32) -> String {
    format!("{owner_id}/{year:04}-{month:02}")
}

/// Sets (or replaces) an owner's quota for a month.
pub async fn set(pool: &PgPool, draft: QuotaDraft, write: Write<'_>) -> Result<Quota, Error> {
    let mut tx = pool.begin().await?;
    let record: QuotaRecord = sqlx::query_as(&format!(
        "INSERT INTO quotas (owner_id, year, month, currency_code, amount_minor, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (owner_id, year, month) DO UPDATE SET currency_code = EXCLUDED.currency_code, \
           amount_minor = EXCLUDED.amount_minor, update_time = EXCLUDED.update_time \
         RETURNING {COLUMNS}"
    ))
    .bind(&draft.owner_id)
    .bind(draft.year)
    .bind(draft.month as i32)
    .bind(draft.amount.currency().code())
    .bind(draft.amount.minor_units())
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    let quota = quota_to_proto(&record);
    let id = quota_id(&record.owner_id, record.year, record.month);
    changelog::append(
        &mut tx,
        &[Change::of(resource::QUOTA, &quota, id, ChangeKind::Updated, write.actor, Vec::new())],
    )
    .await?;
    tx.commit().await?;
    Ok(quota)
}

/// The quota columns a read scope is checked against (a quota has no team).
const SCOPE_COLUMNS: ScopeColumns = ScopeColumns { owner: "owner_id", team: None, members: None };

/// Quotas of a year (or one month of it), optionally of one owner, by owner
/// then month; only those `scope` may read.
pub async fn list(
    pool: &PgPool,
    year: i32,
    month: Option<i32>,
    owner_id: Option<&str>,
    scope: &ReadScope,
) -> Result<Vec<Quota>, Error> {
    let readable = scope.condition(SCOPE_COLUMNS, 4);
    let sql = format!(
        "SELECT {COLUMNS} FROM quotas WHERE year = $1 AND ($2::int IS NULL OR month = $2) \
           AND ($3::text IS NULL OR owner_id = $3) AND {} ORDER BY owner_id, month",
        readable.sql
    );
    let statement = readable.bind_to(sqlx::query_as(&sql).bind(year).bind(month).bind(owner_id));
    let records: Vec<QuotaRecord> = statement.fetch_all(pool).await?;
    Ok(records.iter().map(quota_to_proto).collect())
}

/// The quotas of `months` (of `owner_ids`, or everyone's when empty), for a
/// forecast. An impossible stored month or currency is an internal error,
/// never a default.
pub async fn of_months(
    db: &mut PgConnection,
    months: &[(i32, u32)],
    owner_ids: &[String],
    scope: &ReadScope,
) -> Result<Vec<MonthQuota>, Error> {
    let keys: Vec<i32> = months.iter().map(|(year, month)| year * 100 + *month as i32).collect();
    let readable = scope.condition(SCOPE_COLUMNS, 3);
    let sql = format!(
        "SELECT {COLUMNS} FROM quotas WHERE year * 100 + month = ANY($1) \
           AND (cardinality($2::text[]) = 0 OR owner_id = ANY($2)) AND {} ORDER BY owner_id, year, month",
        readable.sql
    );
    let statement = readable.bind_to(sqlx::query_as(&sql).bind(keys).bind(owner_ids));
    let records: Vec<QuotaRecord> = statement.fetch_all(&mut *db).await?;
    records
        .into_iter()
        .map(|record| {
            let first_day = u32::try_from(record.month)
                .ok()
                .and_then(|month| NaiveDate::from_ymd_opt(record.year, month, 1))
                .ok_or_else(|| Error::undecodable("quota month", (record.year, record.month)))?;
            let amount = Money::new(currency(&record.currency_code)?, record.amount_minor);
            Ok(MonthQuota { owner_id: record.owner_id, first_day, amount })
        })
        .collect()
}
