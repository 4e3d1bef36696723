//! Invoices and payments: parsed ERP input and the status rules.

use chrono::NaiveDate;
use rapport_kit::fields::{self, Violation};
use rapport_kit::money::Money;
use rapport_proto::common::v1::{Date, Money as ProtoMoney};

use super::ids::{InvoiceId, OrderId};
use super::order::ExternalRef;

/// Where an invoice is in being paid (stored as the proto name without prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// Nothing paid, not yet due.
    Open,
    /// Part paid, not yet due.
    PartiallyPaid,
    /// Fully paid.
    Paid,
    /// Past due and not fully paid.
    Overdue,
}

/// The stored names, in proto order.
pub const INVOICE_STATUS_NAMES: &[&str] = &["OPEN", "PARTIALLY_PAID", "PAID", "OVERDUE"];

impl InvoiceStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "OPEN",
            InvoiceStatus::PartiallyPaid => "PARTIALLY_PAID",
            InvoiceStatus::Paid => "PAID",
            InvoiceStatus::Overdue => "OVERDUE",
        }
    }

    /// The status of a stored name (`None` for anything else).
    pub fn from_stored(name: &str) -> Option<InvoiceStatus> {
        match name {
            "OPEN" => Some(InvoiceStatus::Open),
            "PARTIALLY_PAID" => Some(InvoiceStatus::PartiallyPaid),
            "PAID" => Some(InvoiceStatus::Paid),
            "OVERDUE" => Some(InvoiceStatus::Overdue),
            _ => None,
        }
    }
}

/// The status after a payment brings the paid total to `paid` of `amount`:
/// PAID when nothing is left; an invoice past due stays OVERDUE.
pub fn status_after_payment(amount: i64, paid: i64, past_due: bool) -> InvoiceStatus {
    if paid >= amount {
        InvoiceStatus::Paid
    } else if past_due {
        InvoiceStatus::Overdue
    } else {
        InvoiceStatus::PartiallyPaid
    }
}

/// A required calendar date; `field` names the input on error.
pub fn date(field: &str, raw: Option<&Date>) -> Result<NaiveDate, Violation> {
    let raw = raw.ok_or_else(|| Violation::new(field, "is required"))?;
    let valid =
        (1..=9999).contains(&raw.year) && u32::try_from(raw.month).is_ok() && u32::try_from(raw.day).is_ok();
    let parsed = valid
        .then(|| NaiveDate::from_ymd_opt(raw.year, raw.month.unsigned_abs(), raw.day.unsigned_abs()))
        .flatten();
    parsed.ok_or_else(|| {
        Violation::new(field, "must be a valid date (year 1-9999, month 1-12, day of the month)")
    })
}

/// The wire form of a date.
pub fn date_to_proto(date: NaiveDate) -> Date {
    use chrono::Datelike;
    Date { year: date.year(), month: date.month() as i32, day: date.day() as i32 }
}

/// A positive amount; `field` names the input on error.
pub fn positive_money(field: &str, raw: Option<&ProtoMoney>) -> Result<Money, Violation> {
    let raw = raw.ok_or_else(|| Violation::new(field, "is required"))?;
    let money = Money::from_proto(field, raw)?;
    if money.minor_units() <= 0 {
        return Err(Violation::new(format!("{field}.minor_units"), "must be positive"));
    }
    Ok(money)
}

/// A parsed RecordInvoice request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceDraft {
    /// The order invoiced.
    pub order_id: OrderId,
    /// The ERP's invoice number (the idempotency key).
    pub number: String,
    /// The invoiced amount, positive.
    pub amount: Money,
    /// Issued on.
    pub issue_date: NaiveDate,
    /// Due on; not before `issue_date`.
    pub due_date: NaiveDate,
}

impl InvoiceDraft {
    /// Parses the request fields, reporting every violation.
    pub fn parse(
        order_id: &str,
        number: &str,
        amount: Option<&ProtoMoney>,
        issue_date: Option<&Date>,
        due_date: Option<&Date>,
    ) -> Result<InvoiceDraft, Vec<Violation>> {
        let order_id = OrderId::parse("order_id", order_id);
        let number = fields::text("number", number, true, 64);
        let amount = positive_money("amount", amount);
        let issue = date("issue_date", issue_date);
        let due = date("due_date", due_date);
        let mut violations = Vec::new();
        let order_id = order_id.map_err(|v| violations.push(v)).ok();
        let number = number.map_err(|v| violations.push(v)).ok();
        let amount = amount.map_err(|v| violations.push(v)).ok();
        let issue = issue.map_err(|v| violations.push(v)).ok();
        let due = due.map_err(|v| violations.push(v)).ok();
        if let (Some(issue), Some(due)) = (issue, due)
            && due < issue
        {
            violations.push(Violation::new("due_date", "must be on or after issue_date"));
        }
        match (order_id, number, amount, issue, due) {
            (Some(order_id), Some(number), Some(amount), Some(issue_date), Some(due_date))
                if violations.is_empty() =>
            {
                Ok(InvoiceDraft { order_id, number, amount, issue_date, due_date })
            }
            _ => Err(violations),
        }
    }
}

/// A parsed RecordPayment request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDraft {
    /// The invoice paid.
    pub invoice_id: InvoiceId,
    /// The amount received, positive.
    pub amount: Money,
    /// When it was received.
    pub payment_date: NaiveDate,
    /// The ERP's reference (the idempotency key).
    pub external_ref: ExternalRef,
}

impl PaymentDraft {
    /// Parses the request fields, reporting every violation.
    pub fn parse(
        invoice_id: &str,
        amount: Option<&ProtoMoney>,
        payment_date: Option<&Date>,
        external_ref: &str,
    ) -> Result<PaymentDraft, Vec<Violation>> {
        let invoice_id = InvoiceId::parse("invoice_id", invoice_id);
        let amount = positive_money("amount", amount);
        let payment_date = date("payment_date", payment_date);
        let external_ref = ExternalRef::parse("external_ref", external_ref, 128);
        match (invoice_id, amount, payment_date, external_ref) {
            (Ok(invoice_id), Ok(amount), Ok(payment_date), Ok(external_ref)) => {
                Ok(PaymentDraft { invoice_id, amount, payment_date, external_ref })
            }
            (invoice_id, amount, payment_date, external_ref) => {
                Err([invoice_id.err(), amount.err(), payment_date.err(), external_ref.err()]
                    .into_iter()
                    .flatten()
                    .collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(year: i32, month: i32, day: i32) -> Option<Date> {
        Some(Date { year, month, day })
    }

    fn eur(minor_units: i64) -> Option<ProtoMoney> {
        Some(ProtoMoney { currency_code: "EUR".into(), minor_units })
    }

    #[test]
    fn payments_settle_or_leave_the_invoice_part_paid_or_overdue() {
        assert_eq!(status_after_payment(100, 100, false), InvoiceStatus::Paid);
        assert_eq!(status_after_payment(100, 100, true), InvoiceStatus::Paid);
        assert_eq!(status_after_payment(100, 40, false), InvoiceStatus::PartiallyPaid);
        assert_eq!(status_after_payment(100, 40, true), InvoiceStatus::Overdue);
    }

    #[test]
    fn invoice_drafts_report_every_violation() {
        let id = uuid::Uuid::now_v7().to_string();
        let ok = InvoiceDraft::parse(
            &id,
            "INV-1",
            eur(100).as_ref(),
            day(2026, 1, 1).as_ref(),
            day(2026, 1, 31).as_ref(),
        );
        assert!(ok.is_ok());
        let err =
            InvoiceDraft::parse("x", " ", eur(0).as_ref(), day(2026, 2, 30).as_ref(), None).unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["order_id", "number", "amount.minor_units", "issue_date", "due_date"]);
        let early = InvoiceDraft::parse(
            &id,
            "INV-1",
            eur(1).as_ref(),
            day(2026, 2, 1).as_ref(),
            day(2026, 1, 1).as_ref(),
        );
        assert_eq!(early.unwrap_err()[0].field, "due_date");
    }

    #[test]
    fn payment_drafts_report_every_violation() {
        let err = PaymentDraft::parse(
            "",
            Some(&ProtoMoney { currency_code: "XYZ".into(), minor_units: 5 }),
            None,
            "",
        )
        .unwrap_err();
        let fields: Vec<_> = err.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["invoice_id", "amount.currency_code", "payment_date", "external_ref"]);
    }
}
