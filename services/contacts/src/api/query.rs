//! List requests to [`ListQuery`]: the filterable and sortable fields of
//! each resource, and page tokens bound to their query.

use rapport_kit::error::Problem;
use rapport_kit::filter::{self, Field, FieldKind};
use rapport_kit::paging::{self, Order, SortKey, SortKind};

use crate::domain::contact::{SOURCE_NAMES, STAGE_NAMES};
use crate::error::Error;
use crate::store::ListQuery;

/// Filterable contact fields.
pub const CONTACT_FILTERS: &[Field] = &[
    Field { name: "given_name", column: "given_name", kind: FieldKind::Text },
    Field { name: "family_name", column: "family_name", kind: FieldKind::Text },
    Field { name: "email", column: "email", kind: FieldKind::Text },
    Field { name: "phone", column: "phone", kind: FieldKind::Text },
    Field { name: "job_title", column: "job_title", kind: FieldKind::Text },
    Field { name: "company_id", column: "company_id", kind: FieldKind::Uuid },
    Field { name: "owner_id", column: "owner_id", kind: FieldKind::Text },
    Field {
        name: "lifecycle_stage",
        column: "lifecycle_stage",
        kind: FieldKind::Enum { prefix: "LIFECYCLE_STAGE_", values: STAGE_NAMES },
    },
    Field {
        name: "lead_source",
        column: "lead_source",
        kind: FieldKind::Enum { prefix: "LEAD_SOURCE_", values: SOURCE_NAMES },
    },
    Field { name: "source_campaign_id", column: "source_campaign_id", kind: FieldKind::Text },
    Field { name: "tags", column: "tags", kind: FieldKind::TextArray },
    Field { name: "email_opt_in", column: "email_opt_in", kind: FieldKind::Bool },
    Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
    Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
];

/// Sortable contact fields.
pub const CONTACT_ORDERS: &[SortKey] = &[
    SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
    SortKey { field: "update_time", column: "update_time", kind: SortKind::Timestamp },
    SortKey { field: "given_name", column: "given_name", kind: SortKind::Text },
    SortKey { field: "family_name", column: "family_name", kind: SortKind::Text },
    SortKey { field: "email", column: "email", kind: SortKind::Text },
];

/// Filterable company fields.
pub const COMPANY_FILTERS: &[Field] = &[
    Field { name: "name", column: "name", kind: FieldKind::Text },
    Field { name: "domain", column: "domain", kind: FieldKind::Text },
    Field { name: "industry", column: "industry", kind: FieldKind::Text },
    Field { name: "employee_count", column: "employee_count", kind: FieldKind::Integer },
    Field { name: "owner_id", column: "owner_id", kind: FieldKind::Text },
    Field { name: "parent_company_id", column: "parent_company_id", kind: FieldKind::Uuid },
    Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
    Field { name: "update_time", column: "update_time", kind: FieldKind::Timestamp },
];

/// Sortable company fields.
pub const COMPANY_ORDERS: &[SortKey] = &[
    SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
    SortKey { field: "update_time", column: "update_time", kind: SortKind::Timestamp },
    SortKey { field: "name", column: "name", kind: SortKind::Text },
    SortKey { field: "domain", column: "coalesce(domain, '')", kind: SortKind::Text },
    SortKey { field: "employee_count", column: "employee_count", kind: SortKind::Integer },
];

/// The raw List request fields.
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

/// Parses a List request against a resource's allow-lists; returns the
/// query and the fingerprint its page tokens carry.
pub fn parse(
    request: &ListRequest<'_>,
    filters: &[Field],
    orders: &[SortKey],
) -> Result<(ListQuery, String), Error> {
    let filter = filter::parse(request.filter, filters, 1).map_err(|err| {
        Problem::invalid_field("INVALID_FILTER", "filter", err.to_string())
            .meta("position", err.position.to_string())
    })?;
    let order = Order::parse(request.order_by, orders, "create_time")?;
    let fingerprint = paging::fingerprint(&[
        request.filter.trim(),
        &order.canonical(),
        if request.show_deleted { "deleted" } else { "live" },
    ]);
    let cursor = paging::decode_token(request.page_token, &fingerprint)?;
    let page_size = paging::page_size(request.page_size, 50, 500)?;
    Ok((ListQuery { filter, order, cursor, show_deleted: request.show_deleted, page_size }, fingerprint))
}
