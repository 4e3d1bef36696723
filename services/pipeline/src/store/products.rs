//! Products and their prices: reads, writes (each with its change-log
//! row) and listing.

use chrono::{DateTime, Utc};
use prost::Message;
use rapport_kit::changelog::{self, Change};
use rapport_kit::idempotency::Claim;
use rapport_kit::listing::{self, ListQuery, time_value};
use rapport_kit::money::{Currency, Money};
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Product;
use sqlx::{PgConnection, PgPool};

use super::{Write, check_etag, deleted, now, violates};
use crate::convert;
use crate::domain::ids::ProductId;
use crate::domain::product::ProductDraft;
use crate::error::{Error, resource::PRODUCT};
pub use crate::model::products::ProductRecord;

const COLUMNS: &str = "id, sku, name, description, active, create_time, update_time, delete_time, version";

#[derive(sqlx::FromRow)]
struct Row {
    id: uuid::Uuid,
    sku: String,
    name: String,
    description: String,
    active: bool,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    delete_time: Option<DateTime<Utc>>,
    version: i64,
}

/// The rows with their prices attached.
async fn with_prices(conn: &mut PgConnection, rows: Vec<Row>) -> Result<Vec<ProductRecord>, Error> {
    let ids: Vec<uuid::Uuid> = rows.iter().map(|row| row.id).collect();
    let prices: Vec<(uuid::Uuid, String, i64)> = sqlx::query_as(
        "SELECT product_id, currency_code, minor_units FROM product_prices WHERE product_id = ANY($1) \
         ORDER BY currency_code",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            let prices = prices
                .iter()
                .filter(|(id, _, _)| *id == row.id)
                .map(|(_, code, minor_units)| {
                    let currency = Currency::parse("currency_code", code)
                        .map_err(|err| Error::Internal(anyhow::anyhow!("stored price: {err}")))?;
                    Ok(Money::new(currency, *minor_units))
                })
                .collect::<Result<_, Error>>()?;
            Ok(ProductRecord {
                id: row.id.into(),
                sku: row.sku,
                name: row.name,
                description: row.description,
                prices,
                active: row.active,
                create_time: row.create_time,
                update_time: row.update_time,
                delete_time: row.delete_time,
                version: row.version,
            })
        })
        .collect()
}

async fn load(conn: &mut PgConnection, id: ProductId, lock: &str) -> Result<ProductRecord, Error> {
    let sql = format!("SELECT {COLUMNS} FROM products WHERE id = $1 {lock}");
    let row: Option<Row> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *conn).await?;
    let row = row.ok_or_else(|| Error::not_found("PRODUCT_NOT_FOUND", PRODUCT, id))?;
    with_prices(conn, vec![row])
        .await?
        .pop()
        .ok_or_else(|| Error::not_found("PRODUCT_NOT_FOUND", PRODUCT, id))
}

/// One product, live or deleted.
pub async fn get(pool: &PgPool, id: ProductId) -> Result<Product, Error> {
    let mut conn = pool.acquire().await?;
    Ok(convert::product_to_proto(&load(&mut conn, id, "").await?))
}

/// ALREADY_EXISTS PRODUCT_SKU_TAKEN naming the live product with `sku`.
async fn sku_taken_or(pool: &PgPool, sku: &str, err: sqlx::Error) -> Error {
    if !violates(&err, "products_sku_live") {
        return err.into();
    }
    let existing: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT id FROM products WHERE lower(sku) = lower($1) AND delete_time IS NULL")
            .bind(sku)
            .fetch_optional(pool)
            .await
            .ok()
            .flatten();
    let existing = existing.map(|id| id.to_string()).unwrap_or_default();
    rapport_kit::error::Problem::already_exists(
        "PRODUCT_SKU_TAKEN",
        format!("a live product already has SKU {sku:?}"),
    )
    .resource(PRODUCT, &existing, "the live product with this SKU")
    .into()
}

async fn write_prices(tx: &mut PgConnection, id: ProductId, prices: &[Money]) -> Result<(), Error> {
    sqlx::query("DELETE FROM product_prices WHERE product_id = $1").bind(id.uuid()).execute(&mut *tx).await?;
    for price in prices {
        sqlx::query(
            "INSERT INTO product_prices (product_id, currency_code, minor_units) VALUES ($1, $2, $3)",
        )
        .bind(id.uuid())
        .bind(price.currency().code())
        .bind(price.minor_units())
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Creates a product, or replays the first result of the same `request_id`.
pub async fn create(pool: &PgPool, draft: &ProductDraft, write: Write<'_>) -> Result<Product, Error> {
    let mut tx = pool.begin().await?;
    if let Claim::Replay(response) = write.claim(&mut tx, "CreateProduct").await? {
        return Product::decode(response.as_slice())
            .map_err(|err| Error::Internal(anyhow::Error::new(err).context("stored response")));
    }
    let id = ProductId::generate();
    let sku = draft.sku.clone().unwrap_or_default();
    let inserted = sqlx::query(
        "INSERT INTO products (id, sku, name, description, active, create_time, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(id.uuid())
    .bind(&sku)
    .bind(draft.name.clone().unwrap_or_default())
    .bind(draft.description.clone().unwrap_or_default())
    .bind(draft.active.unwrap_or(true))
    .bind(now())
    .execute(&mut *tx)
    .await;
    if let Err(err) = inserted {
        drop(tx);
        return Err(sku_taken_or(pool, &sku, err).await);
    }
    write_prices(&mut tx, id, draft.prices.as_deref().unwrap_or_default()).await?;
    let product = convert::product_to_proto(&load(&mut tx, id, "").await?);
    changelog::append(
        &mut tx,
        &[Change::of(PRODUCT, &product, id.to_string(), ChangeKind::Created, write.actor, Vec::new())],
    )
    .await?;
    write.record(&mut tx, &product.encode_to_vec()).await?;
    tx.commit().await?;
    Ok(product)
}

/// Applies `draft` to a live product if `etag` is current; nothing
/// changed writes nothing.
pub async fn update(
    pool: &PgPool,
    id: ProductId,
    etag: &str,
    draft: &ProductDraft,
    write: Write<'_>,
) -> Result<Product, Error> {
    let mut tx = pool.begin().await?;
    let mut record = load(&mut tx, id, "FOR UPDATE").await?;
    check_etag(PRODUCT, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() {
        return Err(deleted(PRODUCT, &id.to_string()));
    }
    let mut paths = Vec::new();
    let mut set = |path: &str, changed: bool| {
        if changed {
            paths.push(path.to_owned());
        }
    };
    if let Some(sku) = &draft.sku {
        set("sku", *sku != record.sku);
        record.sku.clone_from(sku);
    }
    if let Some(name) = &draft.name {
        set("name", *name != record.name);
        record.name.clone_from(name);
    }
    if let Some(description) = &draft.description {
        set("description", *description != record.description);
        record.description.clone_from(description);
    }
    if let Some(prices) = &draft.prices {
        let mut sorted = prices.clone();
        sorted.sort_by_key(|price| price.currency().code());
        set("prices", sorted != record.prices);
        record.prices = sorted;
    }
    if let Some(active) = draft.active {
        set("active", active != record.active);
        record.active = active;
    }
    if paths.is_empty() {
        return Ok(convert::product_to_proto(&record));
    }
    let updated = sqlx::query(
        "UPDATE products SET sku = $2, name = $3, description = $4, active = $5, update_time = $6, \
           version = version + 1 WHERE id = $1",
    )
    .bind(id.uuid())
    .bind(&record.sku)
    .bind(&record.name)
    .bind(&record.description)
    .bind(record.active)
    .bind(now())
    .execute(&mut *tx)
    .await;
    if let Err(err) = updated {
        drop(tx);
        return Err(sku_taken_or(pool, &record.sku, err).await);
    }
    if paths.iter().any(|path| path == "prices") {
        write_prices(&mut tx, id, &record.prices).await?;
    }
    let product = convert::product_to_proto(&load(&mut tx, id, "").await?);
    changelog::append(
        &mut tx,
        &[Change::of(PRODUCT, &product, id.to_string(), ChangeKind::Updated, write.actor, paths)],
    )
    .await?;
    tx.commit().await?;
    Ok(product)
}

/// Soft-deletes (`deleted`) or restores a product; one already in the
/// wanted state is returned unchanged.
pub async fn set_deleted(
    pool: &PgPool,
    id: ProductId,
    etag: &str,
    deleted: bool,
    write: Write<'_>,
) -> Result<Product, Error> {
    let mut tx = pool.begin().await?;
    let record = load(&mut tx, id, "FOR UPDATE").await?;
    check_etag(PRODUCT, &id.to_string(), etag, record.version)?;
    if record.delete_time.is_some() == deleted {
        return Ok(convert::product_to_proto(&record));
    }
    let result = sqlx::query(
        "UPDATE products SET delete_time = $2, update_time = $3, version = version + 1 WHERE id = $1",
    )
    .bind(id.uuid())
    .bind(deleted.then(now))
    .bind(now())
    .execute(&mut *tx)
    .await;
    if let Err(err) = result {
        drop(tx);
        return Err(sku_taken_or(pool, &record.sku, err).await);
    }
    let product = convert::product_to_proto(&load(&mut tx, id, "").await?);
    let kind = if deleted { ChangeKind::Deleted } else { ChangeKind::Undeleted };
    changelog::append(
        &mut tx,
        &[Change::of(PRODUCT, &product, id.to_string(), kind, write.actor, Vec::new())],
    )
    .await?;
    tx.commit().await?;
    Ok(product)
}

/// One page of products and the next page's token.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<Product>, String), Error> {
    let mut conn = pool.acquire().await?;
    let rows: Vec<Row> = listing::fetch(&mut *conn, query.sql(COLUMNS, "products")?).await?;
    let mut records = with_prices(&mut conn, rows).await?;
    let field = query.order.key.field;
    let next_page_token = query.next_page(&mut records, |record| Cursor {
        value: match field {
            "update_time" => time_value(record.update_time),
            "sku" => record.sku.clone(),
            "name" => record.name.clone(),
            _ => time_value(record.create_time),
        },
        id: record.id.uuid(),
    });
    Ok((records.iter().map(convert::product_to_proto).collect(), next_page_token))
}
