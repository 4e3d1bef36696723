//! Stored exchange rates and quotas, and the sums a forecast reads.

use chrono::{DateTime, NaiveDate, Utc};

/// A stored quota.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct QuotaRecord {
    /// The owner.
    pub owner_id: String,
    /// Year.
    pub year: i32,
    /// Month 1-12.
    pub month: i32,
    /// The amount's currency.
    pub currency_code: String,
    /// The amount.
    pub amount_minor: i64,
    /// When set.
    pub update_time: DateTime<Utc>,
}

/// A stored exchange rate.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct RateRecord {
    /// Converted from.
    pub from_currency: String,
    /// Converted to.
    pub to_currency: String,
    /// First day in force.
    pub effective_date: NaiveDate,
    /// The rate, canonical decimal text.
    pub rate: String,
    /// Who set it.
    pub actor: String,
    /// When.
    pub update_time: DateTime<Utc>,
}

/// One sum row: per (group key, category), or per category over all deals
/// (`key` is `None`).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CategorySum {
    /// The group key; `None` on total rows.
    pub key: Option<String>,
    /// The stored category name.
    pub category: String,
    /// Deals.
    pub count: i64,
    /// Sum of converted amounts.
    pub amount: i64,
    /// Sum of weighted converted amounts.
    pub weighted: i64,
    /// `YYYY-MM-DD CUR` of the earliest deal without a rate in force.
    pub missing: Option<String>,
}
