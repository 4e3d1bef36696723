//! Creating the Order of a won deal, and cancelling it when the deal is
//! reopened: rows, and the change-log row carrying the Order, in the
//! caller's transaction. Self-contained, for OrderService to reuse.

use chrono::{DateTime, Utc};
use rapport_kit::changelog::{self, Change};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Order;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::convert::orders::order_to_proto;
use crate::error::{Error, resource::ORDER};
use crate::model::orders::{OrderLineRecord, OrderRecord};

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
    let record = OrderRecord {
        id,
        deal_id: new.deal_id,
        company_id: new.company_id,
        owner_id: new.owner_id.clone(),
        status: "NEW".to_owned(),
        currency_code: new.currency_code.clone(),
        total_minor: new.total_minor,
        external_ref: None,
        create_time: now,
        acknowledge_time: None,
        fulfill_time: None,
        cancel_time: None,
        cancel_reason: String::new(),
        update_time: now,
        version: 1,
        lines: new
            .lines
            .iter()
            .map(|line| OrderLineRecord {
                order_id: id,
                product_id: line.product_id,
                description: line.description.clone(),
                quantity: line.quantity.clone(),
                unit_price_minor: line.unit_price_minor,
                discount_percent: line.discount_percent.clone(),
                amount_minor: line.amount_minor,
            })
            .collect(),
    };
    let order = order_to_proto(&record)?;
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
    let order = order_to_proto(&super::orders::read(tx, order_id.into()).await?)?;
    changelog::append(
        tx,
        &[Change::of(ORDER, &order, order_id.to_string(), ChangeKind::Updated, actor, vec!["status".into()])],
    )
    .await?;
    Ok(())
}
