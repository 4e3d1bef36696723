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
}
