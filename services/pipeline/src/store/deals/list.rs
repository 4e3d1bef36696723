//! ListDeals: filter (AIP-160 via kit), order and keyset paging.

use rapport_kit::error::Problem;
use rapport_kit::filter::{self, Field, FieldKind, SqlFilter, SqlValue};
use rapport_kit::paging::{self, Cursor, Order, SortKey, SortKind};
use rapport_proto::pipeline::v1::Deal;
use sqlx::PgPool;

use super::{COLUMNS, DEALS_WITH_STAGE, DealRow, with_lines};
use crate::convert_deals::deal_to_proto;
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
];
const CLOSE_TIME: &str = "coalesce(close_time, 'epoch'::timestamptz)";
const CLOSE_DATE: &str = "coalesce(expected_close_date::text, '')";

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

/// The raw ListDeals request fields.
pub struct ListRequest<'a> {
    /// `filter`
    pub filter: &'a str,
    /// `order_by`
    pub order_by: &'a str,
    /// `page_size`
    pub page_size: i32,
    /// `page_token`
    pub page_token: &'a str,
    /// `show_deleted`
    pub show_deleted: bool,
}

fn time_value(time: chrono::DateTime<chrono::Utc>) -> String {
    time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

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
pub async fn list(pool: &PgPool, request: &ListRequest<'_>) -> Result<(Vec<Deal>, String), Error> {
    let filter: Option<SqlFilter> = filter::parse(request.filter, FILTERS, 1).map_err(|err| {
        Problem::invalid_field("INVALID_FILTER", "filter", err.to_string())
            .meta("position", err.position.to_string())
    })?;
    let order = Order::parse(request.order_by, ORDERS, "create_time")?;
    let fingerprint = paging::fingerprint(&[
        request.filter.trim(),
        &order.canonical(),
        if request.show_deleted { "deleted" } else { "live" },
    ]);
    let cursor = paging::decode_token(request.page_token, &fingerprint)?;
    let page_size = paging::page_size(request.page_size, 50, 500)?;
    let mut sql = format!("SELECT {COLUMNS} FROM {DEALS_WITH_STAGE} WHERE TRUE");
    let mut params: Vec<SqlValue> = Vec::new();
    if !request.show_deleted {
        sql.push_str(" AND delete_time IS NULL");
    }
    if let Some(filter) = &filter {
        sql.push_str(" AND ");
        sql.push_str(&filter.sql);
        params.extend(filter.params.iter().cloned());
    }
    if let Some(cursor) = &cursor {
        sql.push_str(" AND ");
        sql.push_str(&order.after_sql(params.len() + 1));
        params.push(cursor.value_param(order.key.kind)?);
        params.push(SqlValue::Uuid(cursor.id));
    }
    sql.push_str(&format!(" ORDER BY {} LIMIT {}", order.sql(), u64::from(page_size) + 1));
    let mut statement = sqlx::query_as::<_, DealRow>(&sql);
    for param in params {
        statement = filter::bind_as(statement, param);
    }
    let mut conn = pool.acquire().await?;
    let mut rows = statement.fetch_all(&mut *conn).await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next_page_token = match rows.last() {
        Some(last) if more => paging::encode_token(
            &fingerprint,
            Cursor { value: sort_value(last, order.key.field), id: last.id },
        ),
        _ => String::new(),
    };
    let records = with_lines(&mut conn, rows).await?;
    Ok((records.iter().map(deal_to_proto).collect(), next_page_token))
}
