//! Forecast data without DealService: pipelines, stages and deals inserted
//! with SQL, and rate/quota requests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use chrono::{DateTime, NaiveDate, Utc};
use rapport_proto::common::v1::{Date, Money};
use rapport_proto::pipeline::v1::*;
use sqlx::PgPool;

use super::common::Clients;

pub fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

pub fn date(y: i32, m: i32, d: i32) -> Option<Date> {
    Some(Date { year: y, month: m, day: d })
}

pub fn at(y: i32, m: u32, d: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    day(y, m, d).and_hms_opt(hour, minute, 0).unwrap().and_utc()
}

pub fn money(code: &str, minor_units: i64) -> Option<Money> {
    Some(Money { currency_code: code.into(), minor_units })
}

/// Inserts a pipeline; returns its id. A default one replaces the
/// default pipeline created at start (which is soft-deleted, freeing its name).
pub async fn pipeline(pool: &PgPool, name: &str, is_default: bool) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    if is_default {
        sqlx::query("UPDATE pipelines SET is_default = false, delete_time = now() WHERE is_default")
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO pipelines (id, name, is_default, create_time, update_time) VALUES ($1, $2, $3, now(), now())")
        .bind(id)
        .bind(name)
        .bind(is_default)
        .execute(pool)
        .await
        .unwrap();
    id
}

/// Inserts a stage; returns its id.
pub async fn stage(
    pool: &PgPool,
    pipeline: uuid::Uuid,
    name: &str,
    probability: i16,
    kind: &str,
    position: i32,
) -> uuid::Uuid {
    let id = uuid::Uuid::now_v7();
    sqlx::query("INSERT INTO stages (id, pipeline_id, name, probability, kind, position) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind(pipeline)
        .bind(name)
        .bind(probability)
        .bind(kind)
        .bind(position)
        .execute(pool)
        .await
        .unwrap();
    id
}

/// A deal row.
#[derive(Clone)]
pub struct DealRow {
    pub pipeline: uuid::Uuid,
    pub stage: uuid::Uuid,
    pub currency: &'static str,
    pub amount: i64,
    pub expected_close: Option<NaiveDate>,
    pub probability: Option<i16>,
    pub category: &'static str,
    pub owner: &'static str,
    pub team: Vec<&'static str>,
    pub status: &'static str,
    pub close_time: Option<DateTime<Utc>>,
    pub stage_enter_time: DateTime<Utc>,
    pub deleted: bool,
}

impl DealRow {
    /// An open EUR deal of `owner` in `stage`.
    pub fn open(
        pipeline: uuid::Uuid,
        stage: uuid::Uuid,
        owner: &'static str,
        expected_close: NaiveDate,
    ) -> DealRow {
        DealRow {
            pipeline,
            stage,
            currency: "EUR",
            amount: 0,
            expected_close: Some(expected_close),
            probability: None,
            category: "PIPELINE",
            owner,
            team: Vec::new(),
            status: "OPEN",
            close_time: None,
            stage_enter_time: Utc::now(),
            deleted: false,
        }
    }

    pub fn amount(mut self, currency: &'static str, amount: i64) -> DealRow {
        self.currency = currency;
        self.amount = amount;
        self
    }

    pub fn category(mut self, category: &'static str) -> DealRow {
        self.category = category;
        self
    }

    pub fn probability(mut self, probability: i16) -> DealRow {
        self.probability = Some(probability);
        self
    }

    pub fn team(mut self, team: &[&'static str]) -> DealRow {
        self.team = team.to_vec();
        self
    }

    /// Closed (WON or LOST) at `time`, in `stage`.
    pub fn closed(mut self, status: &'static str, stage: uuid::Uuid, time: DateTime<Utc>) -> DealRow {
        self.status = status;
        self.stage = stage;
        self.close_time = Some(time);
        self.category = if status == "WON" { "CLOSED" } else { "OMITTED" };
        self
    }

    pub fn entered(mut self, time: DateTime<Utc>) -> DealRow {
        self.stage_enter_time = time;
        self
    }

    pub fn deleted(mut self) -> DealRow {
        self.deleted = true;
        self
    }

    /// Inserts the deal; returns its id.
    pub async fn insert(&self, pool: &PgPool) -> uuid::Uuid {
        let id = uuid::Uuid::now_v7();
        sqlx::query(
            "INSERT INTO deals (id, title, pipeline_id, stage_id, currency_code, amount_minor, expected_close_date, \
               probability_override, forecast_category, owner_id, team_member_ids, status, close_time, \
               stage_enter_time, last_activity_time, create_time, update_time, delete_time) \
             VALUES ($1, 'DealRow', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), now(), now(), \
               CASE WHEN $14 THEN now() END)",
        )
        .bind(id)
        .bind(self.pipeline)
        .bind(self.stage)
        .bind(self.currency)
        .bind(self.amount)
        .bind(self.expected_close)
        .bind(self.probability)
        .bind(self.category)
        .bind(self.owner)
        .bind(&self.team)
        .bind(self.status)
        .bind(self.close_time)
        .bind(self.stage_enter_time)
        .bind(self.deleted)
        .execute(pool)
        .await
        .unwrap();
        id
    }
}

/// Sets a rate through the API.
pub async fn set_rate(
    clients: &mut Clients,
    from: &str,
    to: &str,
    rate: &str,
    effective: NaiveDate,
) -> ExchangeRate {
    use chrono::Datelike;
    let exchange_rate = ExchangeRate {
        from_currency_code: from.into(),
        to_currency_code: to.into(),
        rate: rate.into(),
        effective_date: date(effective.year(), effective.month() as i32, effective.day() as i32),
        ..Default::default()
    };
    clients
        .forecasts
        .set_exchange_rate(SetExchangeRateRequest { exchange_rate: Some(exchange_rate) })
        .await
        .unwrap()
        .into_inner()
}

/// Sets a quota through the API.
pub async fn set_quota(
    clients: &mut Clients,
    owner: &str,
    year: i32,
    month: i32,
    code: &str,
    minor: i64,
) -> Quota {
    let quota = Quota { owner_id: owner.into(), year, month, amount: money(code, minor), update_time: None };
    clients.forecasts.set_quota(SetQuotaRequest { quota: Some(quota) }).await.unwrap().into_inner()
}

/// A forecast request over a range.
pub fn request(
    start: (i32, i32, i32),
    end: (i32, i32, i32),
    group_by: ForecastGrouping,
) -> GetForecastRequest {
    GetForecastRequest {
        start_date: date(start.0, start.1, start.2),
        end_date: date(end.0, end.1, end.2),
        group_by: group_by.into(),
        ..Default::default()
    }
}

/// (count, amount, weighted) of figures.
pub fn totals(figures: &ForecastFigures) -> (i64, i64, i64) {
    (
        figures.count,
        figures.amount.as_ref().unwrap().minor_units,
        figures.weighted_amount.as_ref().unwrap().minor_units,
    )
}

/// (category name, count, amount) of every category total.
pub fn categories(figures: &ForecastFigures) -> Vec<(String, i64, i64)> {
    figures
        .categories
        .iter()
        .map(|total| {
            let name = ForecastCategory::try_from(total.category)
                .unwrap()
                .as_str_name()
                .trim_start_matches("FORECAST_CATEGORY_")
                .to_owned();
            (name, total.count, total.amount.as_ref().unwrap().minor_units)
        })
        .collect()
}
