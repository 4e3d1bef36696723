//! Payments: recording (idempotent by external reference, never more than
//! is outstanding) and listing.

use chrono::{DateTime, Utc};
use rapport_kit::changelog::{self, Change};
use rapport_kit::money::Money;
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::{Invoice, Payment};
use sqlx::{PgConnection, PgPool};

use super::invoices::{self, InvoiceRecord, currency_of};
use super::{Write, now};
use crate::convert::orders::{invoice_to_proto, payment_to_proto};
use crate::domain::Violation;
use crate::domain::ids::{InvoiceId, PaymentId};
use crate::domain::invoice::{InvoiceStatus, PaymentDraft, status_after_payment};
use crate::error::{Error, resource};
pub use crate::model::orders::PaymentRecord;

impl PaymentRecord {
    fn same_content(&self, draft: &PaymentDraft) -> bool {
        self.invoice_id == draft.invoice_id.uuid()
            && self.currency_code == draft.amount.currency().code()
            && self.amount_minor == draft.amount.minor_units()
            && self.payment_date == draft.payment_date
    }
}

const COLUMNS: &str = "id, invoice_id, currency_code, amount_minor, payment_date, external_ref, create_time";

async fn by_ref(db: &mut PgConnection, external_ref: &str) -> Result<Option<PaymentRecord>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE external_ref = $1");
    Ok(sqlx::query_as(&sql).bind(external_ref).fetch_optional(&mut *db).await?)
}

/// The first payment of this reference (with its invoice now) if its
/// content is the draft's; `EXTERNAL_REF_CONFLICT` if not.
async fn replay(
    db: &mut PgConnection,
    existing: &PaymentRecord,
    draft: &PaymentDraft,
) -> Result<(Payment, Invoice), Error> {
    if !existing.same_content(draft) {
        return Err(crate::error::external_ref_conflict(
            resource::PAYMENT,
            "external_ref",
            draft.external_ref.as_str(),
            &existing.id.to_string(),
        ));
    }
    let invoice = invoices::load(db, InvoiceId::from(existing.invoice_id), "").await?;
    Ok((payment_to_proto(existing), invoice_to_proto(&invoice)?))
}

/// Records a payment against an invoice locked for the whole transaction,
/// so concurrent payments are booked one after the other and never exceed
/// what is outstanding; or returns the first payment of the same reference.
pub async fn record(
    pool: &PgPool,
    draft: PaymentDraft,
    write: Write<'_>,
) -> Result<(Payment, Invoice), Error> {
    let mut tx = pool.begin().await?;
    let mut invoice = invoices::load(&mut tx, draft.invoice_id, "FOR UPDATE").await?;
    if let Some(existing) = by_ref(&mut tx, draft.external_ref.as_str()).await? {
        return replay(&mut tx, &existing, &draft).await;
    }
    let currency = currency_of(&invoice)?;
    if draft.amount.currency() != currency {
        return Err(Violation::new(
            "amount.currency_code",
            format!("must be {}, the invoice's currency", currency.code()),
        )
        .into());
    }
    let outstanding = invoice.amount_minor - invoice.paid_minor;
    if draft.amount.minor_units() > outstanding {
        let outstanding = Money::new(currency, outstanding).to_string();
        return Err(crate::error::payment_exceeds_outstanding(&invoice.id.to_string(), &outstanding));
    }
    let now = now();
    let sql = format!(
        "INSERT INTO payments (id, invoice_id, currency_code, amount_minor, payment_date, external_ref, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (external_ref) DO NOTHING RETURNING {COLUMNS}"
    );
    let inserted: Option<PaymentRecord> = sqlx::query_as(&sql)
        .bind(PaymentId::generate().uuid())
        .bind(invoice.id)
        .bind(currency.code())
        .bind(draft.amount.minor_units())
        .bind(draft.payment_date)
        .bind(draft.external_ref.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(payment) = inserted else {
        // Recorded concurrently against another invoice under this reference.
        let existing = by_ref(&mut tx, draft.external_ref.as_str()).await?;
        return match existing {
            Some(existing) => replay(&mut tx, &existing, &draft).await,
            None => Err(Error::Internal(anyhow::anyhow!("payment {} vanished", draft.external_ref.as_str()))),
        };
    };
    let paths = apply(&mut invoice, payment.amount_minor, now)?;
    sqlx::query(
        "UPDATE invoices SET paid_minor = $2, status = $3, paid_time = $4, update_time = $5, version = $6 \
         WHERE id = $1",
    )
    .bind(invoice.id)
    .bind(invoice.paid_minor)
    .bind(&invoice.status)
    .bind(invoice.paid_time)
    .bind(invoice.update_time)
    .bind(invoice.version)
    .execute(&mut *tx)
    .await?;
    let payment = payment_to_proto(&payment);
    let updated = invoice_to_proto(&invoice)?;
    changelog::append(
        &mut tx,
        &[
            Change::of(
                resource::PAYMENT,
                &payment,
                &payment.id,
                ChangeKind::Created,
                write.actor,
                Vec::new(),
            ),
            Change::of(resource::INVOICE, &updated, &updated.id, ChangeKind::Updated, write.actor, paths),
        ],
    )
    .await?;
    tx.commit().await?;
    Ok((payment, updated))
}

/// Books `amount` on the locked invoice; returns the changed field paths.
fn apply(invoice: &mut InvoiceRecord, amount: i64, now: DateTime<Utc>) -> Result<Vec<String>, Error> {
    let past_due = invoice.status()? == InvoiceStatus::Overdue;
    invoice.paid_minor += amount;
    let status = status_after_payment(invoice.amount_minor, invoice.paid_minor, past_due);
    let mut paths: Vec<String> = ["paid_amount", "outstanding_amount"].map(String::from).to_vec();
    if status.as_str() != invoice.status {
        invoice.status = status.as_str().to_owned();
        paths.push("status".to_owned());
    }
    if status == InvoiceStatus::Paid {
        invoice.paid_time = Some(now);
        paths.push("paid_time".to_owned());
    }
    invoice.update_time = now;
    invoice.version += 1;
    paths.push("update_time".to_owned());
    Ok(paths)
}

/// The payments of an invoice, oldest first.
pub async fn list(pool: &PgPool, invoice_id: InvoiceId) -> Result<Vec<Payment>, Error> {
    let mut conn = pool.acquire().await?;
    invoices::load(&mut conn, invoice_id, "").await?;
    let sql = format!("SELECT {COLUMNS} FROM payments WHERE invoice_id = $1 ORDER BY create_time, id");
    let records: Vec<PaymentRecord> =
        sqlx::query_as(&sql).bind(invoice_id.uuid()).fetch_all(&mut *conn).await?;
    Ok(records.iter().map(payment_to_proto).collect())
}
