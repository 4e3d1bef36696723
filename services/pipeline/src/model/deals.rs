//! A stored deal with its line items.

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

/// A stored line item.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct LineRow {
    pub id: Uuid,
    pub deal_id: Uuid,
    pub product_id: Option<Uuid>,
    pub description: String,
    /// Canonical decimal text.
    pub quantity: String,
    pub unit_price_minor: i64,
    /// Canonical decimal text.
    pub discount_percent: String,
    pub amount_minor: i64,
}

/// A deal and its lines.
#[derive(Debug, Clone)]
pub struct DealRecord {
    /// The deal row.
    pub deal: DealRow,
    /// Its line items, in order.
    pub lines: Vec<LineRow>,
}

/// A stored deal with its current stage's default probability.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DealRow {
    pub id: Uuid,
    pub title: String,
    pub pipeline_id: Uuid,
    pub stage_id: Uuid,
    pub currency_code: String,
    pub amount_minor: i64,
    pub amount_derived: bool,
    pub expected_close_date: Option<NaiveDate>,
    pub probability_override: Option<i16>,
    pub stage_probability: i16,
    pub forecast_category: String,
    pub owner_id: String,
    pub team_id: String,
    pub team_member_ids: Vec<String>,
    pub company_id: Option<Uuid>,
    pub contact_ids: Vec<Uuid>,
    pub contact_roles: Vec<String>,
    pub lead_source: String,
    pub source_campaign_id: String,
    pub next_step: String,
    pub status: String,
    pub lost_reason_id: Option<Uuid>,
    pub lost_reason_detail: String,
    pub close_time: Option<DateTime<Utc>>,
    pub reopen_stage_id: Option<Uuid>,
    pub stage_enter_time: DateTime<Utc>,
    pub last_activity_time: DateTime<Utc>,
    pub order_id: Option<Uuid>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub delete_time: Option<DateTime<Utc>>,
    pub version: i64,
}
