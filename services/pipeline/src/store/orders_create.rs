//! Creating the Order of a won deal, and cancelling it when the deal is
//! reopened: rows, and the change-log row carrying the Order, in the
//! caller's transaction. Self-contained, for OrderService to reuse.

use chrono::{DateTime, Utc};
use rapport_kit::changelog::{self, Change, timestamp};
use rapport_proto::common::v1::{ChangeKind, Money};
use rapport_proto::pipeline::v1::{Order, OrderLine, OrderStatus};
use sqlx::PgConnection;
use uuid::Uuid;

use super::etag;
use crate::error::{Error, resource::ORDER};

/// One line of a new order.
#[derive(Debug, Clone)]
pub struct NewOrderLine {
    /// The product, if any.
    pub product_id: Option<Uuid>,
    /// What is sold.
    pub description: String,
    /// Canonical decimal text, e.g. `1.5`.
    pub quantity: String,
    /// Unit price in minor units of the order currency.
    pub unit_price_minor: i64,
    /// Canonical decimal text, e.g. `12.5`.
    pub discount_percent: String,
    /// The line amount in minor units.
    pub amount_minor: i64,
}

/// What an order is created from (a won deal).
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The won deal.
    pub deal_id: Uuid,
    /// The company to invoice.
    pub company_id: Uuid,
    /// The deal's owner.
    pub owner_id: String,
    /// ISO 4217 code.
    pub currency_code: String,
    /// The lines; their amounts sum to `total_minor`.
    pub lines: Vec<NewOrderLine>,
    /// The total in minor units.
    pub total_minor: i64,
}

/// `1.5000` → `1.5` (numeric text as stored → the API's form).
fn trim(decimal: &str) -> String {
    if decimal.contains('.') {
        decimal.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        decimal.to_owned()
    }
}

fn money(currency_code: &str, minor_units: i64) -> Option<Money> {
    Some(Money { currency_code: currency_code.to_owned(), minor_units })
}

/// Inserts a NEW order with its lines and appends its CREATED change.
pub async fn create_order(
    tx: &mut PgConnection,
    new: &NewOrder,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<Order, Error> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, deal_id, company_id, owner_id, status, currency_code, total_minor, \
           create_time, update_time) VALUES ($1, $2, $3, $4, 'NEW', $5, $6, $7, $7)",
    )
    .bind(id)
    .bind(new.deal_id)
    .bind(new.company_id)
    .bind(&new.owner_id)
    .bind(&new.currency_code)
    .bind(new.total_minor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    for (position, line) in (0_i32..).zip(&new.lines) {
        sqlx::query(
            "INSERT INTO order_lines (order_id, position, product_id, description, quantity, unit_price_minor, \
               discount_percent, amount_minor) VALUES ($1, $2, $3, $4, $5::numeric, $6, $7::numeric, $8)",
        )
        .bind(id)
        .bind(position)
        .bind(line.product_id)
        .bind(&line.description)
        .bind(&line.quantity)
        .bind(line.unit_price_minor)
        .bind(&line.discount_percent)
        .bind(line.amount_minor)
        .execute(&mut *tx)
        .await?;
    }
    let code = new.currency_code.as_str();
    let order = Order {
        id: id.to_string(),
        deal_id: new.deal_id.to_string(),
        company_id: new.company_id.to_string(),
        status: OrderStatus::New.into(),
        lines: new
            .lines
            .iter()
            .map(|line| OrderLine {
                product_id: line.product_id.map(|id| id.to_string()).unwrap_or_default(),
                description: line.description.clone(),
                quantity: line.quantity.clone(),
                unit_price: money(code, line.unit_price_minor),
                discount_percent: line.discount_percent.clone(),
                amount: money(code, line.amount_minor),
            })
            .collect(),
        total: money(code, new.total_minor),
        create_time: Some(timestamp(now)),
        update_time: Some(timestamp(now)),
        owner_id: new.owner_id.clone(),
        etag: etag(1),
        ..Order::default()
    };
    changelog::append(
        tx,
        &[Change::of(ORDER, &order, id.to_string(), ChangeKind::Created, actor, Vec::new())],
    )
    .await?;
    Ok(order)
}

/// Cancels the NEW order `order_id` of a reopened deal (and appends its
/// change); FAILED_PRECONDITION ORDER_ALREADY_ACKNOWLEDGED once the ERP
/// took it over. An already cancelled order is left as it is.
pub async fn cancel_for_reopen(
    tx: &mut PgConnection,
    order_id: Uuid,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM orders WHERE id = $1 FOR UPDATE")
        .bind(order_id)
        .fetch_optional(&mut *tx)
        .await?;
    match status.as_deref() {
        Some("NEW") => {}
        Some("CANCELLED") | None => return Ok(()),
        Some(_) => {
            return Err(Error::precondition(
                "ORDER_ALREADY_ACKNOWLEDGED",
                format!("order {order_id} was acknowledged by accounting; the deal cannot be reopened"),
                "ORDER_NEW",
                &order_id.to_string(),
            ));
        }
    }
    sqlx::query(
        "UPDATE orders SET status = 'CANCELLED', cancel_time = $2, cancel_reason = 'deal reopened', \
           update_time = $2, version = version + 1 WHERE id = $1",
    )
    .bind(order_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let order = read_order(tx, order_id).await?;
    changelog::append(
        tx,
        &[Change::of(ORDER, &order, order_id.to_string(), ChangeKind::Updated, actor, vec!["status".into()])],
    )
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    deal_id: Uuid,
    company_id: Uuid,
    owner_id: String,
    status: String,
    currency_code: String,
    total_minor: i64,
    external_ref: Option<String>,
    create_time: DateTime<Utc>,
    acknowledge_time: Option<DateTime<Utc>>,
    fulfill_time: Option<DateTime<Utc>>,
    cancel_time: Option<DateTime<Utc>>,
    cancel_reason: String,
    update_time: DateTime<Utc>,
    version: i64,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    product_id: Option<Uuid>,
    description: String,
    quantity: String,
    unit_price_minor: i64,
    discount_percent: String,
    amount_minor: i64,
}

/// One order as stored, as the API shows it.
pub async fn read_order(tx: &mut PgConnection, order_id: Uuid) -> Result<Order, Error> {
    let row: OrderRow = sqlx::query_as(
        "SELECT id, deal_id, company_id, owner_id, status, currency_code, total_minor, external_ref, create_time, \
           acknowledge_time, fulfill_time, cancel_time, cancel_reason, update_time, version FROM orders WHERE id = $1",
    )
    .bind(order_id)
    .fetch_one(&mut *tx)
    .await?;
    let lines: Vec<LineRow> = sqlx::query_as(
        "SELECT product_id, description, quantity::text AS quantity, unit_price_minor, \
           discount_percent::text AS discount_percent, amount_minor FROM order_lines WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id)
    .fetch_all(&mut *tx)
    .await?;
    let code = row.currency_code.as_str();
    Ok(Order {
        id: row.id.to_string(),
        deal_id: row.deal_id.to_string(),
        company_id: row.company_id.to_string(),
        status: rapport_kit::db::stored_enum(
            "status",
            "ORDER_STATUS_",
            &row.status,
            OrderStatus::from_str_name,
        )?
        .into(),
        lines: lines
            .iter()
            .map(|line| OrderLine {
                product_id: line.product_id.map(|id| id.to_string()).unwrap_or_default(),
                description: line.description.clone(),
                quantity: trim(&line.quantity),
                unit_price: money(code, line.unit_price_minor),
                discount_percent: trim(&line.discount_percent),
                amount: money(code, line.amount_minor),
            })
            .collect(),
        total: money(code, row.total_minor),
        external_ref: row.external_ref.unwrap_or_default(),
        create_time: Some(timestamp(row.create_time)),
        acknowledge_time: row.acknowledge_time.map(timestamp),
        fulfill_time: row.fulfill_time.map(timestamp),
        cancel_time: row.cancel_time.map(timestamp),
        cancel_reason: row.cancel_reason,
        update_time: Some(timestamp(row.update_time)),
        owner_id: row.owner_id,
        etag: etag(row.version),
    })
}
