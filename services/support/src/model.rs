//! Stored records: what `store` returns and `convert` reads.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A row of `cases`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CaseRow {
    pub id: Uuid,
    pub number: i64,
    pub subject: String,
    pub description: String,
    pub requester_contact_id: Uuid,
    pub company_id: Option<Uuid>,
    pub status: String,
    pub priority: String,
    pub channel: String,
    pub category: String,
    pub product: String,
    pub assignee_id: String,
    pub team_id: String,
    pub tags: Vec<String>,
    pub deal_id: Option<Uuid>,
    pub sla_policy_id: Option<Uuid>,
    pub sla_policy_version: i64,
    pub next_due_time: Option<DateTime<Utc>>,
    pub first_response_time: Option<DateTime<Utc>>,
    pub resolve_time: Option<DateTime<Utc>>,
    pub close_time: Option<DateTime<Utc>>,
    pub merged_into: Option<Uuid>,
    pub follow_up_of: Option<Uuid>,
    pub requester_deleted: bool,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub delete_time: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A row of `case_sla_clocks`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClockRow {
    pub case_id: Uuid,
    pub metric: String,
    pub cycle: i32,
    pub current: bool,
    pub goal_seconds: i64,
    pub business_hours: bool,
    pub calendar_id: Uuid,
    pub pause_statuses: Vec<String>,
    pub elapsed_micros: i64,
    pub running_since: Option<DateTime<Utc>>,
    pub achieved_at: Option<DateTime<Utc>>,
    pub breached_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub segments: sqlx::types::Json<Vec<crate::domain::clock::Segment>>,
    pub warn_at: Option<DateTime<Utc>>,
    pub calendar_version: i64,
}

/// A case with its SLA clocks.
#[derive(Debug, Clone)]
pub struct CaseRecord {
    pub case: CaseRow,
    pub clocks: crate::domain::sla::CaseClocks,
}

/// A row of `case_comments`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    pub id: Uuid,
    pub case_id: Uuid,
    pub internal: bool,
    pub author_id: String,
    pub author_kind: String,
    pub body: String,
    pub attachments: sqlx::types::Json<Vec<crate::domain::comment::AttachmentRef>>,
    pub message_id: String,
    pub create_time: DateTime<Utc>,
}

/// A row of `sla_policies`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PolicyRow {
    pub id: Uuid,
    pub name: String,
    pub position: i32,
    pub conditions: sqlx::types::Json<crate::domain::sla::Conditions>,
    pub targets: sqlx::types::Json<std::collections::BTreeMap<String, Vec<crate::domain::sla::TargetSpec>>>,
    pub escalation: sqlx::types::Json<crate::domain::sla_input::Escalation>,
    pub calendar_id: Uuid,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub delete_time: Option<DateTime<Utc>>,
    pub version: i64,
}

/// A row of `sla_calendars`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CalendarRow {
    pub id: Uuid,
    pub name: String,
    pub time_zone: String,
    pub weekly_hours: sqlx::types::Json<Vec<Vec<(u32, u32)>>>,
    pub holidays: sqlx::types::Json<Vec<crate::domain::sla_input::HolidayEntry>>,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub version: i64,
}

/// A row of `support_agents` with its open cases.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub agent_id: String,
    pub available: bool,
    pub capacity: i32,
    pub calendar_id: Option<Uuid>,
    pub last_assign_time: Option<DateTime<Utc>>,
    pub open_cases: i64,
}

/// A team with its members.
#[derive(Debug, Clone)]
pub struct TeamRecord {
    pub team_id: String,
    pub mode: String,
    pub update_time: DateTime<Utc>,
    pub agents: Vec<AgentRow>,
}

/// A row of `kb_articles` (or, for revisions, of `kb_article_revisions`
/// shaped alike).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ArticleRow {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub status: String,
    pub author_id: String,
    pub revision: i32,
    pub helpful: i32,
    pub not_helpful: i32,
    pub create_time: DateTime<Utc>,
    pub update_time: DateTime<Utc>,
    pub publish_time: Option<DateTime<Utc>>,
    pub version: i64,
}
