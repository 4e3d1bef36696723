//! A stored company.

use chrono::{DateTime, Utc};

use crate::domain::{CompanyId, CompanyState};

/// A stored company.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyRecord {
    /// Id.
    pub id: CompanyId,
    /// Fields.
    pub state: CompanyState,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Soft-deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Version for etags.
    pub version: i64,
    /// The latest activity on it (output only; moves without a version).
    pub last_activity_time: Option<DateTime<Utc>>,
}
