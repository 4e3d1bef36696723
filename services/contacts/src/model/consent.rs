//! Consent as stored: history events, the current state per channel and
//! purpose, and a contact's do-not-contact flag.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One row of `consent_events`: a consent change or a do-not-contact change.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConsentEventRecord {
    pub id: Uuid,
    pub contact_id: Uuid,
    /// `CONSENT` or `DO_NOT_CONTACT`.
    pub kind: String,
    pub channel: String,
    pub purpose: String,
    /// Opt-in, or the do-not-contact flag's new value.
    pub granted: bool,
    pub source: String,
    /// The evidence, or the do-not-contact reason.
    pub evidence: String,
    pub occur_time: DateTime<Utc>,
    pub record_time: DateTime<Utc>,
    pub actor: String,
}

/// The current consent of one channel and purpose.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ConsentRecord {
    pub channel: String,
    pub purpose: String,
    pub granted: bool,
    pub source: String,
    pub occur_time: DateTime<Utc>,
    pub event_id: Uuid,
}

/// A contact's consent as it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactConsentRecord {
    pub contact_id: Uuid,
    pub consents: Vec<ConsentRecord>,
    pub do_not_contact: bool,
    pub do_not_contact_reason: String,
    pub do_not_contact_time: Option<DateTime<Utc>>,
}
