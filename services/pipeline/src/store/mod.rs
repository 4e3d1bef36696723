//! All SQL of the Pipeline service. SQLSTATEs become domain errors here,
//! and every write appends its change-log row in the same transaction.

pub mod lost_reasons;
pub mod pipelines;
pub mod products;
pub mod stages;

use chrono::{DateTime, Utc};

use crate::error::Error;

/// Who makes a change, and the idempotency key of a create.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The principal's subject.
    pub actor: &'a str,
    /// `request_id` and the encoded request, for creates.
    pub request: Option<(&'a str, &'a [u8])>,
}

/// The opaque etag of a stored version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// Fails with `EtagMismatch` unless `expected` is empty or current.
pub(crate) fn check_etag(
    resource_type: &'static str,
    id: &str,
    expected: &str,
    version: i64,
) -> Result<(), Error> {
    let current = etag(version);
    if expected.is_empty() || expected == current {
        Ok(())
    } else {
        Err(Error::EtagMismatch { resource_type, id: id.to_owned(), current })
    }
}

/// True when `err` is a unique violation of `constraint`.
pub(crate) fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    rapport_kit::error::constraint_violated(err, rapport_kit::error::sqlstate::UNIQUE_VIOLATION)
        == Some(constraint)
}

/// The current time, truncated to PostgreSQL's microsecond precision so
/// what is returned equals what is stored.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// FAILED_PRECONDITION `<NOUN>_DELETED` for a change to a soft-deleted
/// resource of `resource_type`.
pub(crate) fn deleted(resource_type: &str, id: &str) -> Error {
    let noun = resource_type.rsplit('.').next().unwrap_or(resource_type).to_uppercase();
    Error::precondition(
        &format!("{noun}_DELETED"),
        format!("{} {id} is deleted; undelete it first", noun.to_lowercase()),
        &format!("{noun}_LIVE"),
        id,
    )
}

pub mod deals;
pub mod invoices;
pub mod orders;
pub mod orders_create;
pub mod payments;
