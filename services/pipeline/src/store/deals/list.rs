//! ListDeals: filter (AIP-160 via kit), order and keyset paging.

use rapport_kit::filter::{Field, FieldKind};
use rapport_kit::listing::{self, ListQuery, ListShape, time_value};
use rapport_kit::paging::{Cursor, SortKey, SortKind};
use rapport_proto::pipeline::v1::Deal;
use sqlx::PgPool;

use super::{COLUMNS, DEALS_WITH_STAGE, DealRow, with_lines};
use crate::convert::deals::deal_to_proto;
use crate::error::Error;

const STATUSES: &[&str] = &["OPEN", "WON", "LOST"];
const CATEGORIES: &[&str] = &["PIPELINE", "BEST_CASE", "COMMIT", "CLOSED", "OMITTED"];
const SOURCES: &[&str] = &[
    "UNSPECIFIED",
    "WEB",
    "REFERRAL",
    "TRADE_SHOW",
    "EVENT",
    "ADVERTISING",
    "EMAIL_CAMPAIGN",
    "COLD_OUTREACH",
    "SOCIAL",
    "CONTENT",
    "PURCHASED_LIST",
    "PARTNER",
    "OTHER",
    "SUPPORT_EMAIL",
];
const CLOSE_TIME: &str = "coalesce(close_time, 'epoch'::timestamptz)";
// Undated deals sort after every dated one ("soonest first" lists them last).
const CLOSE_DATE: &str = "coalesce(expected_close_date::text, '9999-12-31~')";

/// Filterable deal fields (deals.proto, ListDealsRequest.filter).
pub const FILTERS: &[Field] = &[
    Field { name: "title", column: "title", kind: FieldKind::Text },
    Field { name: "pipeline_id", column: "pipeline_id", kind: FieldKind::Uuid },
    Field { name: "stage_id", column: "stage_id", kind: FieldKind::Uuid },
    Field {
        name: "status",
        column: "status",
        kind: FieldKind::Enum { prefix: "DEAL_STATUS_", values: STATUSES },
    },
    Field {
        name: "forecast_category",
        column: "forecast_category",
        kind: FieldKind::Enum { prefix: "FORECAST_CATEGORY_", values: CATEGORIES },
    },
    Field { name: "owner_id", column: "owner_id", kind: FieldKind::Text },
    Field { name: "team_member_ids", column: "team_member_ids", kind: FieldKind::TextArray },
    Field { name: "company_id", column: "company_id", kind: FieldKind::Uuid },
    // uuid[] compared as text: `contact_ids:"<id>"`.
    Field { name: "contact_ids", column: "contact_ids", kind: FieldKind::UuidArray },
    Field {
        name: "lead_source",
        column: "lead_source",
        kind: FieldKind::Enum { prefix: "LEAD_SOURCE_", values: SOURCES },
    },
    Field { name: "source_campaign_id", column: "source_campaign_id", kind: FieldKind::Text },
    Field { name: "currency_code", column: "currency_code", kind: FieldKind::Text },
    Field { name: "amount_minor_units", column: "amount_minor", kind: FieldKind::Integer },
    Field {
        name: "probability",
        column: "coalesce(probability_override, stage_probability)",
        kind: FieldKind::Integer,
    },
    Field { name: "expected_close_date", column: CLOSE_DATE, kind: FieldKind::Text },
    Field { name: "close_time", column: "close_time", kind: FieldKind::Timestamp },
    Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
    Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
];

/// Sortable deal fields.
pub const ORDERS: &[SortKey] = &[
    SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
    SortKey { field: "update_time", column: "update_time", kind: SortKind::Timestamp },
    SortKey { field: "expected_close_date", column: CLOSE_DATE, kind: SortKind::Text },
    SortKey { field: "amount_minor_units", column: "amount_minor", kind: SortKind::Integer },
    SortKey { field: "title", column: "title", kind: SortKind::Text },
    SortKey { field: "close_time", column: CLOSE_TIME, kind: SortKind::Timestamp },
];

/// How ListDeals reads its request.
pub const LIST: ListShape<'static> = ListShape {
    filters: FILTERS,
    orders: ORDERS,
    default_order: "create_time",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: true,
};

fn sort_value(deal: &DealRow, field: &str) -> String {
    match field {
        "update_time" => time_value(deal.update_time),
        "expected_close_date" => deal.expected_close_date.map(|date| date.to_string()).unwrap_or_default(),
        "amount_minor_units" => deal.amount_minor.to_string(),
        "title" => deal.title.clone(),
        "close_time" => time_value(deal.close_time.unwrap_or(chrono::DateTime::UNIX_EPOCH)),
        _ => time_value(deal.create_time),
    }
}

/// One page of deals and the next page's token.
pub async fn list(pool: &PgPool, query: &ListQuery) -> Result<(Vec<Deal>, String), Error> {
    let mut conn = pool.acquire().await?;
    let mut rows: Vec<DealRow> = listing::fetch(&mut *conn, query.sql(COLUMNS, DEALS_WITH_STAGE)?).await?;
    let field = query.order.key.field;
    let next_page_token =
        query.next_page(&mut rows, |last| Cursor { value: sort_value(last, field), id: last.id });
    let records = with_lines(&mut conn, rows).await?;
    Ok((records.iter().map(deal_to_proto).collect::<Result<_, _>>()?, next_page_token))
}
