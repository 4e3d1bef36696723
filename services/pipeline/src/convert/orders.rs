//! Stored orders, invoices and payments to their protobuf form (used by the
//! API, the change log and idempotent replays).

use rapport_kit::changelog::timestamp;
use rapport_kit::money::{Currency, Money};
use rapport_proto::common::v1::Money as ProtoMoney;
use rapport_proto::pipeline::v1::{Invoice, InvoiceStatus, Order, OrderLine, OrderStatus, Payment};

use crate::domain::invoice::{self, InvoiceStatus as Status};
use crate::domain::order::OrderStatus as State;
use crate::error::Error;
use crate::model::orders::InvoiceRecord;
use crate::model::orders::OrderRecord;
use crate::model::orders::PaymentRecord;
use rapport_kit::db::etag;

fn money(currency_code: &str, minor_units: i64) -> ProtoMoney {
    ProtoMoney { currency_code: currency_code.to_owned(), minor_units }
}

/// The stored currency of a record (checked when written).
pub(crate) fn currency(code: &str) -> Result<Currency, Error> {
    Currency::parse("currency_code", code)
        .map_err(|err| Error::Internal(anyhow::anyhow!("stored currency {code:?}: {err}")))
}

/// The wire form of an order.
pub fn order_to_proto(record: &OrderRecord) -> Result<Order, Error> {
    let status = match record.status()? {
        State::New => OrderStatus::New,
        State::Acknowledged => OrderStatus::Acknowledged,
        State::Fulfilled => OrderStatus::Fulfilled,
        State::Cancelled => OrderStatus::Cancelled,
    };
    let code = &record.currency_code;
    Ok(Order {
        id: record.id.to_string(),
        deal_id: record.deal_id.to_string(),
        company_id: record.company_id.to_string(),
        status: status.into(),
        lines: record
            .lines
            .iter()
            .map(|line| OrderLine {
                product_id: line.product_id.map(|id| id.to_string()).unwrap_or_default(),
                description: line.description.clone(),
                quantity: line.quantity.clone(),
                unit_price: Some(money(code, line.unit_price_minor)),
                discount_percent: line.discount_percent.clone(),
                amount: Some(money(code, line.amount_minor)),
            })
            .collect(),
        total: Some(money(code, record.total_minor)),
        external_ref: record.external_ref.clone().unwrap_or_default(),
        create_time: Some(timestamp(record.create_time)),
        acknowledge_time: record.acknowledge_time.map(timestamp),
        fulfill_time: record.fulfill_time.map(timestamp),
        cancel_time: record.cancel_time.map(timestamp),
        cancel_reason: record.cancel_reason.clone(),
        update_time: Some(timestamp(record.update_time)),
        owner_id: record.owner_id.clone(),
        etag: etag(record.version),
    })
}

/// The wire form of an invoice (its status as of today).
pub fn invoice_to_proto(record: &InvoiceRecord) -> Result<Invoice, Error> {
    let status = match record.status()? {
        Status::Open => InvoiceStatus::Open,
        Status::PartiallyPaid => InvoiceStatus::PartiallyPaid,
        Status::Paid => InvoiceStatus::Paid,
        Status::Overdue => InvoiceStatus::Overdue,
    };
    let currency = currency(&record.currency_code)?;
    let outstanding = Money::new(currency, record.amount_minor)
        .checked_sub(Money::new(currency, record.paid_minor))
        .map_err(|err| Error::Internal(anyhow::Error::new(err)))?;
    Ok(Invoice {
        id: record.id.to_string(),
        order_id: record.order_id.to_string(),
        company_id: record.company_id.to_string(),
        number: record.number.clone(),
        amount: Some(money(&record.currency_code, record.amount_minor)),
        paid_amount: Some(money(&record.currency_code, record.paid_minor)),
        outstanding_amount: Some(outstanding.to_proto()),
        issue_date: Some(invoice::date_to_proto(record.issue_date)),
        due_date: Some(invoice::date_to_proto(record.due_date)),
        status: status.into(),
        create_time: Some(timestamp(record.create_time)),
        paid_time: record.paid_time.map(timestamp),
        update_time: Some(timestamp(record.update_time)),
        etag: etag(record.version),
    })
}

/// The wire form of a payment.
pub fn payment_to_proto(record: &PaymentRecord) -> Payment {
    Payment {
        id: record.id.to_string(),
        invoice_id: record.invoice_id.to_string(),
        amount: Some(money(&record.currency_code, record.amount_minor)),
        payment_date: Some(invoice::date_to_proto(record.payment_date)),
        external_ref: record.external_ref.clone(),
        create_time: Some(timestamp(record.create_time)),
    }
}
