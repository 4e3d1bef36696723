//! ListCases: filter (AIP-160 via kit), order (the agent queue's
//! `next_due_time` among them) and keyset paging.

use rapport_kit::listing::{self, ListQuery};
use rapport_proto::support::v1::Case;
use sqlx::PgPool;

use super::{COLUMNS, with_clocks};
use crate::convert::{View, case_to_proto};
use crate::error::Error;
use crate::model::CaseRow;
use crate::store::{Ctx, sla};

/// One page of cases.
pub async fn list(
    pool: &PgPool,
    query: &ListQuery,
    ctx: Ctx<'_>,
    cache: &sla::SlaCache,
) -> Result<(Vec<Case>, String), Error> {
    let mut conn = pool.acquire().await?;
    let mut rows: Vec<CaseRow> = listing::fetch(&mut *conn, query.sql(COLUMNS, LISTED)?).await?;
    let next = query.next_page(&mut rows, |row| cursor(query, row));
    let records = with_clocks(&mut conn, rows).await?;
    let sla = cache.get(&mut conn).await?;
    let view = View { prefix: ctx.prefix, now: ctx.now, calendars: sla.as_ref() };
    let cases = records.iter().map(|record| case_to_proto(record, view)).collect::<Result<_, _>>()?;
    Ok((cases, next))
}

/// The queue position of a case without a running target: last.
const NO_DUE: &str = "9999-12-31T00:00:00.000000Z";

/// The cases as lists see them: the priority as a sortable rank, and the
/// due time of cases without one last.
pub const LISTED: &str = "(SELECT c.*, CASE c.priority WHEN 'LOW' THEN 1 WHEN 'NORMAL' THEN 2 WHEN 'HIGH' THEN 3 \
    ELSE 4 END AS priority_rank, COALESCE(c.next_due_time, '9999-12-31T00:00:00Z'::timestamptz) AS queue_due \
    FROM cases c) cases";

fn cursor(query: &ListQuery, row: &CaseRow) -> rapport_kit::paging::Cursor {
    let value = match query.order.key.field {
        "update_time" => listing::time_value(row.update_time),
        "next_due_time" => row.next_due_time.map_or_else(|| NO_DUE.to_owned(), listing::time_value),
        "priority" => match row.priority.as_str() {
            "LOW" => "1",
            "NORMAL" => "2",
            "HIGH" => "3",
            _ => "4",
        }
        .to_owned(),
        _ => listing::time_value(row.create_time),
    };
    rapport_kit::paging::Cursor { value, id: row.id }
}

const STATUSES: &[&str] = &["NEW", "OPEN", "PENDING_CUSTOMER", "ON_HOLD", "RESOLVED", "CLOSED"];
const PRIORITIES: &[&str] = &["LOW", "NORMAL", "HIGH", "URGENT"];
const CHANNELS: &[&str] = &["EMAIL", "PHONE", "CHAT", "WEB", "SOCIAL"];

/// Filterable case fields (cases.proto, ListCasesRequest.filter).
pub const FILTERS: &[rapport_kit::filter::Field] = {
    use rapport_kit::filter::{Field, FieldKind};
    &[
        Field { name: "number", column: "number", kind: FieldKind::Integer },
        Field { name: "subject", column: "subject", kind: FieldKind::Text },
        Field {
            name: "status",
            column: "status",
            kind: FieldKind::Enum { prefix: "CASE_STATUS_", values: STATUSES },
        },
        Field {
            name: "priority",
            column: "priority",
            kind: FieldKind::Enum { prefix: "CASE_PRIORITY_", values: PRIORITIES },
        },
        Field {
            name: "channel",
            column: "channel",
            kind: FieldKind::Enum { prefix: "CASE_CHANNEL_", values: CHANNELS },
        },
        Field { name: "category", column: "category", kind: FieldKind::Text },
        Field { name: "product", column: "product", kind: FieldKind::Text },
        Field { name: "assignee_id", column: "assignee_id", kind: FieldKind::Text },
        Field { name: "team_id", column: "team_id", kind: FieldKind::Text },
        Field { name: "tags", column: "tags", kind: FieldKind::TextArray },
        Field { name: "requester_contact_id", column: "requester_contact_id", kind: FieldKind::Uuid },
        Field { name: "company_id", column: "company_id", kind: FieldKind::Uuid },
        Field { name: "deal_id", column: "deal_id", kind: FieldKind::Uuid },
        Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
        Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
        Field { name: "next_due_time", column: "next_due_time", kind: FieldKind::Timestamp },
        Field { name: "resolve_time", column: "resolve_time", kind: FieldKind::Timestamp },
    ]
};

/// Sortable case fields.
pub const ORDERS: &[rapport_kit::paging::SortKey] = {
    use rapport_kit::paging::{SortKey, SortKind};
    &[
        SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
        SortKey { field: "update_time", column: "update_time", kind: SortKind::Timestamp },
        SortKey { field: "next_due_time", column: "queue_due", kind: SortKind::Timestamp },
        SortKey { field: "priority", column: "priority_rank", kind: SortKind::Integer },
    ]
};

/// How ListCases reads its request.
pub const LIST: rapport_kit::listing::ListShape<'static> = rapport_kit::listing::ListShape {
    filters: FILTERS,
    orders: ORDERS,
    default_order: "create_time",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: true,
};
