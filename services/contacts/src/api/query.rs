//! What each resource's List accepts (see `rapport_kit::listing`): its
//! filterable and sortable fields, default order and page sizes.

use rapport_kit::filter::{Field, FieldKind};
use rapport_kit::listing::ListShape;
use rapport_kit::paging::{SortKey, SortKind};

use crate::domain::activity::KIND_NAMES;
use crate::domain::contact::{SOURCE_NAMES, STAGE_NAMES};
use crate::domain::scoring::GRADE_NAMES;

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
    Field { name: "lead_score", column: "lead_score", kind: FieldKind::Integer },
    Field { name: "country", column: "country", kind: FieldKind::Text },
    Field { name: "region", column: "region", kind: FieldKind::Text },
    Field {
        name: "lead_grade",
        column: "lead_grade",
        kind: FieldKind::Enum { prefix: "LEAD_GRADE_", values: GRADE_NAMES },
    },
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
    SortKey { field: "lead_score", column: "lead_score", kind: SortKind::Integer },
];

/// Filterable company fields.
pub const COMPANY_FILTERS: &[Field] = &[
    Field { name: "name", column: "name", kind: FieldKind::Text },
    Field { name: "domain", column: "domain", kind: FieldKind::Text },
    Field { name: "industry", column: "industry", kind: FieldKind::Text },
    Field { name: "employee_count", column: "employee_count", kind: FieldKind::Integer },
    Field { name: "owner_id", column: "owner_id", kind: FieldKind::Text },
    Field { name: "parent_company_id", column: "parent_company_id", kind: FieldKind::Uuid },
    Field { name: "country", column: "country", kind: FieldKind::Text },
    Field { name: "region", column: "region", kind: FieldKind::Text },
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

/// How ListContacts reads its request.
pub const CONTACT_LIST: ListShape<'static> = ListShape {
    filters: CONTACT_FILTERS,
    orders: CONTACT_ORDERS,
    default_order: "create_time",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: true,
};

/// How ListCompanies reads its request.
pub const COMPANY_LIST: ListShape<'static> = ListShape {
    filters: COMPANY_FILTERS,
    orders: COMPANY_ORDERS,
    default_order: "create_time",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: true,
};

/// Filterable activity fields.
pub const ACTIVITY_FILTERS: &[Field] = &[
    Field {
        name: "kind",
        column: "kind",
        kind: FieldKind::Enum { prefix: "ACTIVITY_KIND_", values: KIND_NAMES },
    },
    Field { name: "contact_id", column: "contact_id", kind: FieldKind::Uuid },
    Field { name: "participant_contact_ids", column: "participant_ids", kind: FieldKind::UuidArray },
    Field { name: "company_id", column: "company_id", kind: FieldKind::Uuid },
    Field { name: "deal_id", column: "deal_id", kind: FieldKind::Uuid },
    Field { name: "case_id", column: "case_id", kind: FieldKind::Uuid },
    Field { name: "owner_id", column: "owner_id", kind: FieldKind::Text },
    Field { name: "team_id", column: "team_id", kind: FieldKind::Text },
    Field { name: "actor_id", column: "actor_id", kind: FieldKind::Text },
    Field { name: "occur_time", column: "occur_time", kind: FieldKind::Timestamp },
    Field { name: "create_time", column: "create_time", kind: FieldKind::Timestamp },
    Field {
        name: "task_status",
        column: "task_status",
        kind: FieldKind::Enum { prefix: "TASK_STATUS_", values: &["OPEN", "COMPLETED"] },
    },
];

/// Sortable activity fields.
pub const ACTIVITY_ORDERS: &[SortKey] = &[
    SortKey { field: "occur_time", column: "occur_time", kind: SortKind::Timestamp },
    SortKey { field: "create_time", column: "create_time", kind: SortKind::Timestamp },
];

/// How ListActivities reads its request: newest first.
pub const ACTIVITY_LIST: ListShape<'static> = ListShape {
    filters: ACTIVITY_FILTERS,
    orders: ACTIVITY_ORDERS,
    default_order: "occur_time desc",
    default_page_size: 50,
    max_page_size: 500,
    soft_deleted: true,
};
