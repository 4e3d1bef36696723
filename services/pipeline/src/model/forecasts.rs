//! Stored exchange rates and quotas, and a pipeline summary's sums.

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

/// One OPEN stage's open deals, converted at `today`'s rates.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct StageSum {
    /// The stage.
    pub stage_id: uuid::Uuid,
    /// Its name.
    pub name: String,
    /// Open deals in it.
    pub count: i64,
    /// Converted amounts.
    pub amount: i64,
    /// Weighted converted amounts.
    pub weighted: i64,
    /// Mean time in the stage, microseconds.
    pub average_age_micros: i64,
    /// `YYYY-MM-DD CUR` of a deal without a rate in force.
    pub missing: Option<String>,
}

/// A pipeline summary's pipeline and its OPEN stages' sums.
#[derive(Debug)]
pub struct Summary {
    /// The pipeline (the default one when none was asked for).
    pub pipeline_id: uuid::Uuid,
    /// Its OPEN stages, in order.
    pub stages: Vec<StageSum>,
}
