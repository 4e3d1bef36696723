//! Stored orders with their lines, invoices and payments.

use chrono::{DateTime, NaiveDate, Utc};

/// A stored invoice (with its status as of today).
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct InvoiceRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The order invoiced.
    pub order_id: uuid::Uuid,
    /// The company invoiced.
    pub company_id: uuid::Uuid,
    /// The ERP's number.
    pub number: String,
    /// The order's currency.
    pub currency_code: String,
    /// Invoiced.
    pub amount_minor: i64,
    /// Paid so far.
    pub paid_minor: i64,
    /// Issued on.
    pub issue_date: NaiveDate,
    /// Due on.
    pub due_date: NaiveDate,
    /// Stored status name, as of today.
    pub status: String,
    /// Recorded.
    pub create_time: DateTime<Utc>,
    /// Fully paid.
    pub paid_time: Option<DateTime<Utc>>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Version for etags.
    pub version: i64,
}

/// A stored order with its lines.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OrderRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The won deal.
    pub deal_id: uuid::Uuid,
    /// The company invoiced.
    pub company_id: uuid::Uuid,
    /// The deal's owner when won.
    pub owner_id: String,
    /// Stored status name.
    pub status: String,
    /// ISO 4217 code of every amount.
    pub currency_code: String,
    /// Sum of the lines.
    pub total_minor: i64,
    /// The ERP's reference.
    pub external_ref: Option<String>,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Acknowledged.
    pub acknowledge_time: Option<DateTime<Utc>>,
    /// Fulfilled.
    pub fulfill_time: Option<DateTime<Utc>>,
    /// Cancelled.
    pub cancel_time: Option<DateTime<Utc>>,
    /// Why cancelled.
    pub cancel_reason: String,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Version for etags.
    pub version: i64,
    /// The lines, in position order.
    #[sqlx(skip)]
    pub lines: Vec<OrderLineRecord>,
}

/// A stored payment.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PaymentRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// The invoice paid.
    pub invoice_id: uuid::Uuid,
    /// The invoice's currency.
    pub currency_code: String,
    /// Received.
    pub amount_minor: i64,
    /// Received on.
    pub payment_date: NaiveDate,
    /// The ERP's reference.
    pub external_ref: String,
    /// Recorded.
    pub create_time: DateTime<Utc>,
}

/// A stored order line.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct OrderLineRecord {
    /// The order.
    pub order_id: uuid::Uuid,
    /// The product, if any.
    pub product_id: Option<uuid::Uuid>,
    /// What is sold.
    pub description: String,
    /// Canonical decimal text.
    pub quantity: String,
    /// Unit price in the order's currency.
    pub unit_price_minor: i64,
    /// Canonical decimal text.
    pub discount_percent: String,
    /// The line's amount.
    pub amount_minor: i64,
}
