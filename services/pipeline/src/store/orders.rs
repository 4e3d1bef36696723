//! Orders: reads, the ERP's transitions (each with its change-log row) and
//! listing. Orders are created by WinDeal (deals' store), not here.

use rapport_kit::changelog::{self, Change};
use rapport_kit::paging::Cursor;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::Order;
use sqlx::{PgConnection, PgPool};

use super::{Write, now, violates};
use crate::convert;
use crate::domain::ids::OrderId;
use crate::domain::order::{self, ExternalRef, OrderStatus, Transition};
use crate::error::{Error, resource};
pub use crate::model::orders::OrderLineRecord;
pub use crate::model::orders::OrderRecord;
use rapport_kit::listing::{self, ListQuery, ListShape, time_value};

impl OrderRecord {
    /// The parsed status.
    pub fn status(&self) -> Result<OrderStatus, Error> {
        OrderStatus::from_stored(&self.status)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("order {} has status {:?}", self.id, self.status)))
    }
}

const COLUMNS: &str = "id, deal_id, company_id, owner_id, status, currency_code, total_minor, external_ref, \
    create_time, acknowledge_time, fulfill_time, cancel_time, cancel_reason, update_time, version";

async fn attach_lines(db: &mut PgConnection, orders: &mut [OrderRecord]) -> Result<(), Error> {
    let ids: Vec<uuid::Uuid> = orders.iter().map(|order| order.id).collect();
    let lines: Vec<OrderLineRecord> = sqlx::query_as(
        "SELECT order_id, product_id, description, trim_scale(quantity)::text AS quantity, unit_price_minor, \
           trim_scale(discount_percent)::text AS discount_percent, amount_minor \
         FROM order_lines WHERE order_id = ANY($1) ORDER BY order_id, position",
    )
    .bind(&ids)
    .fetch_all(&mut *db)
    .await?;
    for line in lines {
        if let Some(order) = orders.iter_mut().find(|order| order.id == line.order_id) {
            order.lines.push(line);
        }
    }
    Ok(())
}

async fn load(db: &mut PgConnection, id: OrderId, lock: &str) -> Result<Option<OrderRecord>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM orders WHERE id = $1 {lock}");
    let found: Option<OrderRecord> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *db).await?;
    let Some(record) = found else { return Ok(None) };
    let mut records = [record];
    attach_lines(db, &mut records).await?;
    let [record] = records;
    Ok(Some(record))
}

/// One order, read in the caller's transaction.
pub(crate) async fn read(db: &mut PgConnection, id: OrderId) -> Result<OrderRecord, Error> {
    load(db, id, "").await?.ok_or_else(|| not_found(id))
}

fn not_found(id: OrderId) -> Error {
    Error::not_found("ORDER_NOT_FOUND", resource::ORDER, id)
}

/// One order.
pub async fn get(pool: &PgPool, id: OrderId) -> Result<Order, Error> {
    let mut conn = pool.acquire().await?;
    let record = load(&mut conn, id, "").await?.ok_or_else(|| not_found(id))?;
    convert::orders::order_to_proto(&record)
}

/// Locks an order until commit (`FOR UPDATE` or `FOR SHARE`).
pub(crate) async fn lock(tx: &mut PgConnection, id: OrderId, mode: &str) -> Result<OrderRecord, Error> {
    load(tx, id, mode).await?.ok_or_else(|| not_found(id))
}

/// Sortable order fields.
pub const ORDERS: &[rapport_kit::paging::SortKey] = &[
    rapport_kit::paging::SortKey {
        field: "create_time",
        column: "create_time",
        kind: rapport_kit::paging::SortKind::Timestamp,
    },
    rapport_kit::paging::SortKey {
        field: "update_time",
        column: "update_time",
        kind: rapport_kit::paging::SortKind::Timestamp,
    },
];

/// How ListOrders reads its request.
pub const LIST: ListShape<'static> = ListShape {
    filters: FILTERS,
    orders: ORDERS,
    default_order: "create_time desc",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: false,
};

/// One page of orders.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<Order>, String), Error> {
    let by_update = query.order.key.field == "update_time";
    let mut conn = pool.acquire().await?;
    let mut records: Vec<OrderRecord> = listing::fetch(&mut *conn, query.sql(COLUMNS, "orders")?).await?;
    let next_page_token = query.next_page(&mut records, |record| Cursor {
        value: time_value(if by_update { record.update_time } else { record.create_time }),
        id: record.id,
    });
    attach_lines(&mut conn, &mut records).await?;
    let orders = records.iter().map(convert::orders::order_to_proto).collect::<Result<_, _>>()?;
    Ok((orders, next_page_token))
}

/// What the ERP asks of an order.
#[derive(Debug, Clone)]
pub enum Step {
    /// AcknowledgeOrder under this reference.
    Acknowledge(ExternalRef),
    /// FulfillOrder.
    Fulfill,
    /// CancelOrder with this reason.
    Cancel(String),
}

/// Applies `step` to an order under lock; a replay returns the order
/// unchanged and records nothing.
pub async fn transition(pool: &PgPool, id: OrderId, step: Step, write: Write<'_>) -> Result<Order, Error> {
    let mut tx = pool.begin().await?;
    let mut record = lock(&mut tx, id, "FOR UPDATE").await?;
    let status = record.status()?;
    let decided = match &step {
        Step::Acknowledge(external_ref) => {
            order::acknowledge(status, record.external_ref.as_deref(), external_ref)
        }
        Step::Fulfill => order::fulfill(status),
        Step::Cancel(_) => {
            let has_invoices: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM invoices WHERE order_id = $1)")
                    .bind(id.uuid())
                    .fetch_one(&mut *tx)
                    .await?;
            order::cancel(status, has_invoices)
        }
    };
    let target = match decided.map_err(|refusal| crate::error::order_refused(refusal, &id.to_string()))? {
        Transition::Unchanged => return convert::orders::order_to_proto(&record),
        Transition::To(target) => target,
    };
    let now = now();
    let mut paths = vec!["status".to_owned()];
    match step {
        Step::Acknowledge(external_ref) => {
            record.external_ref = Some(external_ref.as_str().to_owned());
            record.acknowledge_time = Some(now);
            paths.extend(["external_ref".to_owned(), "acknowledge_time".to_owned()]);
        }
        Step::Fulfill => {
            record.fulfill_time = Some(now);
            paths.push("fulfill_time".to_owned());
        }
        Step::Cancel(reason) => {
            record.cancel_time = Some(now);
            record.cancel_reason = reason;
            paths.extend(["cancel_time".to_owned(), "cancel_reason".to_owned()]);
        }
    }
    record.status = target.as_str().to_owned();
    record.update_time = now;
    record.version += 1;
    let updated = sqlx::query(
        "UPDATE orders SET status = $2, external_ref = $3, acknowledge_time = $4, fulfill_time = $5, \
           cancel_time = $6, cancel_reason = $7, update_time = $8, version = $9 WHERE id = $1",
    )
    .bind(record.id)
    .bind(&record.status)
    .bind(&record.external_ref)
    .bind(record.acknowledge_time)
    .bind(record.fulfill_time)
    .bind(record.cancel_time)
    .bind(&record.cancel_reason)
    .bind(record.update_time)
    .bind(record.version)
    .execute(&mut *tx)
    .await;
    if let Err(err) = updated {
        drop(tx);
        return Err(ref_taken_or(pool, record.external_ref.as_deref(), err).await);
    }
    paths.push("update_time".to_owned());
    let order = convert::orders::order_to_proto(&record)?;
    changelog::append(
        &mut tx,
        &[Change::of(resource::ORDER, &order, id.to_string(), ChangeKind::Updated, write.actor, paths)],
    )
    .await?;
    tx.commit().await?;
    Ok(order)
}

/// `EXTERNAL_REF_CONFLICT` when `err` is the reference being taken by
/// another order; otherwise `err` itself.
async fn ref_taken_or(pool: &PgPool, external_ref: Option<&str>, err: sqlx::Error) -> Error {
    let Some(external_ref) = external_ref.filter(|_| violates(&err, "orders_external_ref")) else {
        return err.into();
    };
    let existing: Result<Option<uuid::Uuid>, _> =
        sqlx::query_scalar("SELECT id FROM orders WHERE external_ref = $1")
            .bind(external_ref)
            .fetch_optional(pool)
            .await;
    let existing = existing.ok().flatten().map(|id| id.to_string()).unwrap_or_default();
    crate::error::external_ref_conflict(resource::ORDER, "external_ref", external_ref, &existing)
}

/// Filterable order fields.
pub const FILTERS: &[rapport_kit::filter::Field] = {
    use rapport_kit::filter::{Field, FieldKind};
    &[
        Field { name: "deal_id", column: "deal_id", kind: FieldKind::Uuid },
        Field { name: "company_id", column: "company_id", kind: FieldKind::Uuid },
        Field {
            name: "status",
            column: "status",
            kind: FieldKind::Enum {
                prefix: "ORDER_STATUS_",
                values: crate::domain::order::ORDER_STATUS_NAMES,
            },
        },
        Field { name: "owner_id", column: "owner_id", kind: FieldKind::Text },
        Field { name: "external_ref", column: "external_ref", kind: FieldKind::Text },
        Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
        Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
    ]
};
