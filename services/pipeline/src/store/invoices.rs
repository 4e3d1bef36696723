//! Invoices: recording (idempotent by number), reads, listing, the overdue
//! sweep and a company's account standing.

use chrono::NaiveDate;
use rapport_kit::changelog::{self, Change};
use rapport_kit::paging::{Cursor, SortKey, SortKind};
use rapport_proto::common::v1::ChangeKind;
use rapport_proto::pipeline::v1::{AccountStanding, Invoice};
use sqlx::{PgConnection, PgPool, Postgres};

use super::{Write, now, orders};
use crate::convert::{self, orders::invoice_to_proto};
use crate::domain::Violation;
use crate::domain::ids::{CompanyId, InvoiceId};
use crate::domain::invoice::{self, InvoiceDraft, InvoiceStatus};
use crate::domain::order;
use crate::error::{Error, resource};
pub use crate::model::orders::InvoiceRecord;
use rapport_kit::listing::{self, ListQuery, ListShape, time_value};

/// The status as of today: an unpaid invoice past its due date reads as
/// OVERDUE even before the worker has marked it.
pub const STATUS: &str = "(CASE WHEN status IN ('OPEN', 'PARTIALLY_PAID') AND due_date < current_date \
    THEN 'OVERDUE' ELSE status END)";

/// The actor of the overdue sweep's change-log rows.
pub const OVERDUE_ACTOR: &str = "system:overdue";

impl InvoiceRecord {
    /// The parsed status.
    pub fn status(&self) -> Result<InvoiceStatus, Error> {
        InvoiceStatus::from_stored(&self.status).ok_or_else(|| {
            Error::Internal(anyhow::anyhow!("invoice {} has status {:?}", self.id, self.status))
        })
    }

    fn same_content(&self, draft: &InvoiceDraft) -> bool {
        self.order_id == draft.order_id.uuid()
            && self.currency_code == draft.amount.currency().code()
            && self.amount_minor == draft.amount.minor_units()
            && self.issue_date == draft.issue_date
            && self.due_date == draft.due_date
    }
}

fn columns() -> String {
    format!(
        "id, order_id, company_id, number, currency_code, amount_minor, paid_minor, issue_date, due_date, \
         {STATUS} AS status, create_time, paid_time, update_time, version"
    )
}

pub(crate) fn not_found(id: impl ToString) -> Error {
    Error::not_found("INVOICE_NOT_FOUND", resource::INVOICE, id)
}

/// One invoice by id, optionally locked (`FOR UPDATE`).
pub(crate) async fn load(db: &mut PgConnection, id: InvoiceId, lock: &str) -> Result<InvoiceRecord, Error> {
    let sql = format!("SELECT {} FROM invoices WHERE id = $1 {lock}", columns());
    let found: Option<InvoiceRecord> = sqlx::query_as(&sql).bind(id.uuid()).fetch_optional(&mut *db).await?;
    found.ok_or_else(|| not_found(id))
}

async fn by_number(db: &mut PgConnection, number: &str) -> Result<Option<InvoiceRecord>, Error> {
    let sql = format!("SELECT {} FROM invoices WHERE number = $1", columns());
    Ok(sqlx::query_as(&sql).bind(number).fetch_optional(&mut *db).await?)
}

/// The first invoice of this number if its content is the draft's;
/// `EXTERNAL_REF_CONFLICT` if not.
fn replay(existing: &InvoiceRecord, draft: &InvoiceDraft) -> Result<Invoice, Error> {
    if existing.same_content(draft) {
        invoice_to_proto(existing)
    } else {
        Err(crate::error::external_ref_conflict(
            resource::INVOICE,
            "number",
            &draft.number,
            &existing.id.to_string(),
        ))
    }
}

/// One invoice.
pub async fn get(pool: &PgPool, id: InvoiceId) -> Result<Invoice, Error> {
    let mut conn = pool.acquire().await?;
    invoice_to_proto(&load(&mut conn, id, "").await?)
}

/// Records an invoice for an acknowledged or fulfilled order, or returns the
/// first one recorded under the same number with the same content.
pub async fn record(pool: &PgPool, draft: InvoiceDraft, write: Write<'_>) -> Result<Invoice, Error> {
    let mut tx = pool.begin().await?;
    if let Some(existing) = by_number(&mut tx, &draft.number).await? {
        return replay(&existing, &draft);
    }
    let order_record = orders::lock(&mut tx, draft.order_id, "FOR SHARE").await?;
    order::invoiceable(order_record.status()?)
        .map_err(|refusal| crate::error::order_refused(refusal, &draft.order_id.to_string()))?;
    if order_record.currency_code != draft.amount.currency().code() {
        return Err(Violation::new(
            "amount.currency_code",
            format!("must be {}, the order's currency", order_record.currency_code),
        )
        .into());
    }
    let now = now();
    let sql = format!(
        "INSERT INTO invoices (id, order_id, company_id, number, currency_code, amount_minor, paid_minor, \
           issue_date, due_date, status, create_time, update_time, version) \
         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, \
           CASE WHEN $8 < current_date THEN 'OVERDUE' ELSE 'OPEN' END, $9, $9, 1) \
         ON CONFLICT (number) DO NOTHING RETURNING {}",
        columns()
    );
    let inserted: Option<InvoiceRecord> = sqlx::query_as(&sql)
        .bind(InvoiceId::generate().uuid())
        .bind(draft.order_id.uuid())
        .bind(order_record.company_id)
        .bind(&draft.number)
        .bind(draft.amount.currency().code())
        .bind(draft.amount.minor_units())
        .bind(draft.issue_date)
        .bind(draft.due_date)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(record) = inserted else {
        // Recorded concurrently under the same number (committed by now).
        let existing = by_number(&mut tx, &draft.number).await?;
        return match existing {
            Some(existing) => replay(&existing, &draft),
            None => Err(Error::Internal(anyhow::anyhow!("invoice {} vanished", draft.number))),
        };
    };
    let invoice = invoice_to_proto(&record)?;
    changelog::append(
        &mut tx,
        &[Change::of(resource::INVOICE, &invoice, &invoice.id, ChangeKind::Created, write.actor, Vec::new())],
    )
    .await?;
    tx.commit().await?;
    Ok(invoice)
}

/// Sortable invoice fields.
pub const ORDERS: &[SortKey] = &[
    SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
    SortKey { field: "due_date", column: "to_char(due_date, 'YYYY-MM-DD')", kind: SortKind::Text },
    SortKey { field: "issue_date", column: "to_char(issue_date, 'YYYY-MM-DD')", kind: SortKind::Text },
];

/// How ListInvoices reads its request.
pub const LIST: ListShape<'static> = ListShape {
    filters: FILTERS,
    orders: ORDERS,
    default_order: "due_date",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: false,
};

/// One page of invoices.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<Invoice>, String), Error> {
    let field = query.order.key.field;
    let mut records: Vec<InvoiceRecord> = listing::fetch(pool, query.sql(&columns(), "invoices")?).await?;
    let next_page_token = query.next_page(&mut records, |record| Cursor {
        value: match field {
            "due_date" => record.due_date.format("%Y-%m-%d").to_string(),
            "issue_date" => record.issue_date.format("%Y-%m-%d").to_string(),
            _ => time_value(record.create_time),
        },
        id: record.id,
    });
    let invoices = records.iter().map(invoice_to_proto).collect::<Result<_, _>>()?;
    Ok((invoices, next_page_token))
}

/// Marks every OPEN or PARTIALLY_PAID invoice past its due date OVERDUE in
/// one statement, with a change-log row each; returns how many.
pub async fn mark_overdue<'c>(db: impl sqlx::Acquire<'c, Database = sqlx::Postgres>) -> Result<u64, Error> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "UPDATE invoices SET status = 'OVERDUE', update_time = $1, version = version + 1 \
         WHERE status IN ('OPEN', 'PARTIALLY_PAID') AND due_date < current_date RETURNING {}",
        columns()
    );
    let marked: Vec<InvoiceRecord> = sqlx::query_as(&sql).bind(now()).fetch_all(&mut *tx).await?;
    let mut changes = Vec::with_capacity(marked.len());
    for record in &marked {
        let invoice = invoice_to_proto(record)?;
        let paths = vec!["status".to_owned(), "update_time".to_owned()];
        changes.push(Change::of(
            resource::INVOICE,
            &invoice,
            &invoice.id,
            ChangeKind::Updated,
            OVERDUE_ACTOR,
            paths,
        ));
    }
    changelog::append(&mut tx, &changes).await?;
    tx.commit().await?;
    Ok(marked.len() as u64)
}

#[derive(sqlx::FromRow)]
struct CurrencyTotals {
    currency_code: String,
    outstanding: i64,
    overdue: i64,
    unpaid_count: i64,
    overdue_count: i64,
    oldest_id: Option<uuid::Uuid>,
    oldest_due_date: Option<NaiveDate>,
    oldest_days: Option<i32>,
}

/// A company's standing: outstanding and overdue amounts per currency,
/// counts, the oldest overdue invoice, and whether an invoice is overdue by
/// more than `credit_hold_days` (credit hold). Takes a pool, a connection
/// or a transaction (e.g. a deal write filling `account_warning`).
pub async fn standing<'c>(
    db: impl sqlx::Acquire<'c, Database = Postgres>,
    company_id: CompanyId,
    credit_hold_days: u32,
) -> Result<AccountStanding, Error> {
    let mut conn = db.acquire().await?;
    // One round trip: the totals per currency, each row carrying the oldest
    // overdue invoice (there is none without an unpaid invoice).
    let totals: Vec<CurrencyTotals> = sqlx::query_as(&format!(
        "WITH unpaid AS MATERIALIZED (SELECT id, currency_code, amount_minor, paid_minor, due_date, \
             {STATUS} AS effective FROM invoices WHERE company_id = $1 AND status <> 'PAID'), \
           oldest AS (SELECT id, due_date, current_date - due_date AS days FROM unpaid \
             WHERE effective = 'OVERDUE' ORDER BY due_date, id LIMIT 1), \
           totals AS (SELECT currency_code, sum(amount_minor - paid_minor)::bigint AS outstanding, \
             coalesce(sum(amount_minor - paid_minor) FILTER (WHERE effective = 'OVERDUE'), 0)::bigint AS overdue, \
             count(*) AS unpaid_count, count(*) FILTER (WHERE effective = 'OVERDUE') AS overdue_count \
             FROM unpaid GROUP BY currency_code) \
         SELECT t.*, o.id AS oldest_id, o.due_date AS oldest_due_date, o.days AS oldest_days \
         FROM totals t LEFT JOIN oldest o ON true ORDER BY t.currency_code"
    ))
    .bind(company_id.uuid())
    .fetch_all(&mut *conn)
    .await?;
    let oldest: Option<(uuid::Uuid, NaiveDate, i32)> = totals.first().and_then(|t| match t {
        CurrencyTotals {
            oldest_id: Some(id), oldest_due_date: Some(due), oldest_days: Some(days), ..
        } => Some((*id, *due, *days)),
        _ => None,
    });
    let count = |n: i64| i32::try_from(n).unwrap_or(i32::MAX);
    let money = |code: &str, minor_units| rapport_proto::common::v1::Money {
        currency_code: code.to_owned(),
        minor_units,
    };
    let days_overdue = oldest.map(|(_, _, days)| days).unwrap_or(0);
    Ok(AccountStanding {
        company_id: company_id.to_string(),
        outstanding: totals.iter().map(|t| money(&t.currency_code, t.outstanding)).collect(),
        overdue: totals
            .iter()
            .filter(|t| t.overdue_count > 0)
            .map(|t| money(&t.currency_code, t.overdue))
            .collect(),
        unpaid_invoice_count: count(totals.iter().map(|t| t.unpaid_count).sum()),
        overdue_invoice_count: count(totals.iter().map(|t| t.overdue_count).sum()),
        oldest_overdue_invoice_id: oldest.map(|(id, _, _)| id.to_string()).unwrap_or_default(),
        oldest_overdue_due_date: oldest.map(|(_, due, _)| invoice::date_to_proto(due)),
        days_overdue,
        credit_hold: i64::from(days_overdue) > i64::from(credit_hold_days),
    })
}

/// The currency of an invoice record, for arithmetic.
pub(crate) fn currency_of(record: &InvoiceRecord) -> Result<rapport_kit::money::Currency, Error> {
    convert::orders::currency(&record.currency_code)
}

/// Filterable invoice fields (dates compare as "YYYY-MM-DD" text; status
/// as of today).
pub const FILTERS: &[rapport_kit::filter::Field] = {
    use rapport_kit::filter::{Field, FieldKind};
    &[
        Field { name: "order_id", column: "order_id", kind: FieldKind::Uuid },
        Field { name: "company_id", column: "company_id", kind: FieldKind::Uuid },
        Field { name: "number", column: "number", kind: FieldKind::Text },
        Field {
            name: "status",
            column: STATUS,
            kind: FieldKind::Enum { prefix: "INVOICE_STATUS_", values: invoice::INVOICE_STATUS_NAMES },
        },
        Field { name: "currency_code", column: "currency_code", kind: FieldKind::Text },
        Field { name: "due_date", column: "to_char(due_date, 'YYYY-MM-DD')", kind: FieldKind::Text },
        Field { name: "issue_date", column: "to_char(issue_date, 'YYYY-MM-DD')", kind: FieldKind::Text },
        Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
        Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
    ]
};
