//! Exchange rates: setting (upsert per pair and day), listing, and the
//! rate book forecasts convert with.

use chrono::NaiveDate;
use rapport_kit::changelog::{self, Change};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::ExchangeRate as ProtoRate;
use sqlx::{PgConnection, PgPool};

use super::{Write, now};
use crate::convert::forecasts::{currency, rate_to_proto};
use crate::domain::forecast::{ExchangeRate, RateBook};
use crate::error::{Error, resource};
pub use crate::model::forecasts::RateRecord;

/// `rate` as text without trailing zeros (`numeric(30,10)` keeps ten decimals).
const COLUMNS: &str = "from_currency, to_currency, effective_date, \
    trim(trailing '.' from trim(trailing '0' from rate::text)) AS rate, actor, update_time";

/// The change-log id of a rate: `FROM/TO/YYYY-MM-DD`.
pub fn rate_id(from: &str, to: &str, day: NaiveDate) -> String {
    format!("{from}/{to}/{}", day.format("%Y-%m-%d"))
}

/// Sets (or replaces) the rate of a pair from a day on.
pub async fn set(pool: &PgPool, rate: ExchangeRate, write: Write<'_>) -> Result<ProtoRate, Error> {
    let mut tx = pool.begin().await?;
    let record: RateRecord = sqlx::query_as(&format!(
        "INSERT INTO exchange_rates (from_currency, to_currency, effective_date, rate, actor, update_time) \
         VALUES ($1, $2, $3, $4::numeric, $5, $6) \
         ON CONFLICT (from_currency, to_currency, effective_date) \
           DO UPDATE SET rate = EXCLUDED.rate, actor = EXCLUDED.actor, update_time = EXCLUDED.update_time \
         RETURNING {COLUMNS}"
    ))
    .bind(rate.from.code())
    .bind(rate.to.code())
    .bind(rate.effective_date)
    .bind(rate.rate.to_string())
    .bind(write.actor)
    .bind(now())
    .fetch_one(&mut *tx)
    .await?;
    let proto = rate_to_proto(&record);
    let id = rate_id(&record.from_currency, &record.to_currency, record.effective_date);
    changelog::append(
        &mut tx,
        &[Change::of(resource::EXCHANGE_RATE, &proto, id, ChangeKind::Updated, write.actor, Vec::new())],
    )
    .await?;
    tx.commit().await?;
    Ok(proto)
}

/// Rates, optionally of one source and/or target currency, newest first.
pub async fn list(pool: &PgPool, from: Option<&str>, to: Option<&str>) -> Result<Vec<ProtoRate>, Error> {
    let records: Vec<RateRecord> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM exchange_rates \
         WHERE ($1::text IS NULL OR from_currency = $1) AND ($2::text IS NULL OR to_currency = $2) \
         ORDER BY effective_date DESC, from_currency, to_currency"
    ))
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    Ok(records.iter().map(rate_to_proto).collect())
}

/// Every rate into or out of `currency` in force by `until`, as a book.
pub async fn book(db: &mut PgConnection, currency_code: &str, until: NaiveDate) -> Result<RateBook, Error> {
    let records: Vec<RateRecord> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM exchange_rates \
         WHERE (from_currency = $1 OR to_currency = $1) AND effective_date <= $2"
    ))
    .bind(currency_code)
    .bind(until)
    .fetch_all(&mut *db)
    .await?;
    let rates = records
        .iter()
        .map(|record| {
            Ok(ExchangeRate {
                from: currency(&record.from_currency)?,
                to: currency(&record.to_currency)?,
                rate: rapport_kit::money::Rate::parse("rate", &record.rate).map_err(|err| {
                    Error::Internal(anyhow::anyhow!("stored rate {:?}: {err}", record.rate))
                })?,
                effective_date: record.effective_date,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(RateBook::new(rates))
}
