//! A stored contact.

use chrono::{DateTime, Utc};

use crate::domain::{ContactId, ContactState};

/// A stored contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    /// Id.
    pub id: ContactId,
    /// Fields.
    pub state: ContactState,
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
    /// Inside sales' answers (QualifyLead), as stored.
    pub qualification: Option<rapport_proto::contacts::v1::Qualification>,
    /// The lead score (output only; moves without a version).
    pub lead_score: i32,
    /// The lead grade (output only).
    pub lead_grade: rapport_proto::contacts::v1::LeadGrade,
}
