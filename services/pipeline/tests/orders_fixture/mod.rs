//! Orders without WinDeal: a pipeline, a WON stage, a WON deal and a NEW
//! order with lines, inserted with SQL; and small builders for requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{Datelike, NaiveDate};
use rapport_proto::common::v1::{Date, Money};
use sqlx::PgPool;

/// What an inserted order is.
pub struct OrderSpec<'a> {
    pub company_id: uuid::Uuid,
    pub owner_id: &'a str,
    pub currency: &'a str,
    /// (quantity, unit price in minor units, discount percent, line amount)
    pub lines: &'a [(&'a str, i64, &'a str, i64)],
}

impl OrderSpec<'_> {
    pub fn eur(company_id: uuid::Uuid) -> OrderSpec<'static> {
        OrderSpec { company_id, owner_id: "rep-1", currency: "EUR", lines: &[("2", 5_000, "0", 10_000)] }
    }
}

/// Inserts a won deal and its NEW order; returns (order id, deal id).
pub async fn insert_order(pool: &PgPool, spec: &OrderSpec<'_>) -> (String, String) {
    let mut tx = pool.begin().await.unwrap();
    let pipeline_id = uuid::Uuid::now_v7();
    let stage_id = uuid::Uuid::now_v7();
    let deal_id = uuid::Uuid::now_v7();
    let order_id = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO pipelines (id, name, create_time, update_time) VALUES ($1, $2, now(), now())")
        .bind(pipeline_id)
        .bind(format!("pipeline {pipeline_id}"))
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO stages (id, pipeline_id, name, probability, kind, position) VALUES ($1, $2, 'Won', 100, 'WON', 1)",
    )
    .bind(stage_id)
    .bind(pipeline_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    let total: i64 = spec.lines.iter().map(|line| line.3).sum();
    sqlx::query(
        "INSERT INTO deals (id, title, pipeline_id, stage_id, currency_code, amount_minor, forecast_category, \
           owner_id, company_id, status, close_time, stage_enter_time, last_activity_time, order_id, \
           create_time, update_time) \
         VALUES ($1, 'Deal', $2, $3, $4, $5, 'CLOSED', $6, $7, 'WON', now(), now(), now(), $8, now(), now())",
    )
    .bind(deal_id)
    .bind(pipeline_id)
    .bind(stage_id)
    .bind(spec.currency)
    .bind(total)
    .bind(spec.owner_id)
    .bind(spec.company_id)
    .bind(order_id)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO orders (id, deal_id, company_id, owner_id, status, currency_code, total_minor, create_time, \
           update_time) VALUES ($1, $2, $3, $4, 'NEW', $5, $6, clock_timestamp(), clock_timestamp())",
    )
    .bind(order_id)
    .bind(deal_id)
    .bind(spec.company_id)
    .bind(spec.owner_id)
    .bind(spec.currency)
    .bind(total)
    .execute(&mut *tx)
    .await
    .unwrap();
    for (position, (quantity, unit, discount, amount)) in spec.lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO order_lines (order_id, position, description, quantity, unit_price_minor, \
               discount_percent, amount_minor) VALUES ($1, $2, 'Widget', $3::numeric, $4, $5::numeric, $6)",
        )
        .bind(order_id)
        .bind(position as i32)
        .bind(quantity)
        .bind(unit)
        .bind(discount)
        .bind(amount)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    (order_id.to_string(), deal_id.to_string())
}

/// Change-log rows about one resource.
pub async fn changes(pool: &PgPool, resource_type: &str, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM change_log WHERE resource_type = $1 AND resource_id = $2")
        .bind(resource_type)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The database's today.
pub async fn today(pool: &PgPool) -> NaiveDate {
    sqlx::query_scalar("SELECT current_date").fetch_one(pool).await.unwrap()
}

pub fn date(day: NaiveDate) -> Option<Date> {
    Some(Date { year: day.year(), month: day.month() as i32, day: day.day() as i32 })
}

pub fn money(code: &str, minor_units: i64) -> Option<Money> {
    Some(Money { currency_code: code.into(), minor_units })
}

pub fn days(n: i64) -> chrono::TimeDelta {
    chrono::TimeDelta::days(n)
}
