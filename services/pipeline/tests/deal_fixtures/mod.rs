//! Fixtures of the deal tests: a default pipeline with stages, a lost
//! reason and priced products written straight to the database (their own
//! RPCs belong to PipelineService/ProductService), and companies and
//! contacts created through the real Contacts service.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use rapport_proto::common::v1::Money;
use rapport_proto::contacts::v1::{Company, Contact, CreateCompanyRequest, CreateContactRequest, LeadSource};
use rapport_proto::pipeline::v1::{CreateDealRequest, Deal};
use sqlx::PgPool;
use uuid::Uuid;

use crate::common::{Clients, TestApp};

/// The seeded pipeline.
pub struct Seed {
    pub pipeline: Uuid,
    pub qualify: Uuid,
    pub proposal: Uuid,
    pub won: Uuid,
    pub lost: Uuid,
    pub lost_reason: Uuid,
    pub retired_reason: Uuid,
    pub product: Uuid,
}

async fn stage(
    pool: &PgPool,
    pipeline: Uuid,
    name: &str,
    probability: i16,
    kind: &str,
    position: i32,
) -> Uuid {
    let id = Uuid::now_v7();
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

/// The default pipeline (seeded by a migration, or created here), with
/// test stages of its own.
pub async fn seed(app: &TestApp) -> Seed {
    let pool = app.pool();
    let existing: Option<Uuid> =
        sqlx::query_scalar("SELECT id FROM pipelines WHERE is_default AND delete_time IS NULL")
            .fetch_optional(&pool)
            .await
            .unwrap();
    let pipeline = match existing {
        Some(id) => {
            sqlx::query("UPDATE stages SET retired = true WHERE pipeline_id = $1")
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
            id
        }
        None => {
            let id = Uuid::now_v7();
            sqlx::query("INSERT INTO pipelines (id, name, is_default, create_time, update_time) VALUES ($1, 'Sales', true, now(), now())")
                .bind(id)
                .execute(&pool)
                .await
                .unwrap();
            id
        }
    };
    let qualify = stage(&pool, pipeline, "T Qualify", 10, "OPEN", 100).await;
    let proposal = stage(&pool, pipeline, "T Proposal", 60, "OPEN", 101).await;
    let won = stage(&pool, pipeline, "T Won", 100, "WON", 102).await;
    let lost = stage(&pool, pipeline, "T Lost", 0, "LOST", 103).await;
    let reason = |label: &'static str, retired: bool| {
        let pool = pool.clone();
        async move {
            let id = Uuid::now_v7();
            sqlx::query(
                "INSERT INTO lost_reasons (id, label, retired, create_time) VALUES ($1, $2, $3, now())",
            )
            .bind(id)
            .bind(label)
            .bind(retired)
            .execute(&pool)
            .await
            .unwrap();
            id
        }
    };
    let lost_reason = reason("T Price", false).await;
    let retired_reason = reason("T Old", true).await;
    let product = product(&pool, "Widget", &[("EUR", 1999), ("JPY", 2500), ("KWD", 6125)]).await;
    Seed { pipeline, qualify, proposal, won, lost, lost_reason, retired_reason, product }
}

/// An active product priced in `prices`.
pub async fn product(pool: &PgPool, name: &str, prices: &[(&str, i64)]) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO products (id, sku, name, create_time, update_time) VALUES ($1, $2, $3, now(), now())",
    )
    .bind(id)
    .bind(id.to_string())
    .bind(name)
    .execute(pool)
    .await
    .unwrap();
    for (code, minor) in prices {
        sqlx::query(
            "INSERT INTO product_prices (product_id, currency_code, minor_units) VALUES ($1, $2, $3)",
        )
        .bind(id)
        .bind(code)
        .bind(minor)
        .execute(pool)
        .await
        .unwrap();
    }
    id
}

pub async fn company(clients: &Clients, name: &str) -> Company {
    let company = Company { name: name.into(), ..Company::default() };
    clients
        .contacts
        .clone()
        .create_company(CreateCompanyRequest { company: Some(company), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

pub async fn contact(clients: &Clients, email: &str, source: LeadSource, campaign: &str) -> Contact {
    let contact = Contact {
        given_name: "Ada".into(),
        email: email.into(),
        lead_source: source.into(),
        source_campaign_id: campaign.into(),
        ..Contact::default()
    };
    clients
        .contacts
        .clone()
        .create_contact(CreateContactRequest { contact: Some(contact), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
}

pub fn money(code: &str, minor_units: i64) -> Option<Money> {
    Some(Money { currency_code: code.into(), minor_units })
}

/// A minimal valid deal in `currency`.
pub fn deal(title: &str, currency: &str) -> Deal {
    Deal { title: title.into(), currency_code: currency.into(), ..Deal::default() }
}

pub async fn create(clients: &Clients, deal: Deal) -> Result<Deal, tonic::Status> {
    clients
        .deals
        .clone()
        .create_deal(CreateDealRequest { deal: Some(deal), request_id: String::new() })
        .await
        .map(|r| r.into_inner())
}

pub async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}
