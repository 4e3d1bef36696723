//! All SQL of the Contacts service. SQLSTATEs become domain errors here
//! (a unique violation on `contacts_email_live` is `EmailTaken`, …), and
//! every write appends its change-log row in the same transaction.

pub mod companies;
pub mod contacts;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::domain::CompanyId;
use crate::error::Error;

/// Who makes a change, and the idempotency key of a create.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The principal's subject.
    pub actor: &'a str,
    /// `request_id` and the encoded request, for creates.
    pub request: Option<(&'a str, &'a [u8])>,
}

/// `FAILED_PRECONDITION` for a change to a soft-deleted resource, e.g.
/// reason `CONTACT_DELETED` for `rapport.contacts.v1.Contact`.
pub(crate) fn deleted(resource_type: &str, id: &str) -> Error {
    let noun = resource_type.rsplit('.').next().unwrap_or(resource_type);
    Error::Problem(
        rapport_kit::error::Problem::new(
            tonic::Code::FailedPrecondition,
            format!("{}_DELETED", noun.to_uppercase()),
            format!("{} {id} is deleted; undelete it first", noun.to_lowercase()),
        )
        .precondition(
            &format!("{}_LIVE", noun.to_uppercase()),
            id,
            &format!("the {} must not be deleted", noun.to_lowercase()),
        ),
    )
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

/// Locks a live company against concurrent deletion until commit and
/// returns its name; `FAILED_PRECONDITION` naming `field` when it is
/// missing or deleted.
pub(crate) async fn lock_live_company(
    tx: &mut PgConnection,
    company_id: CompanyId,
    field: &'static str,
) -> Result<String, Error> {
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM companies WHERE id = $1 AND delete_time IS NULL FOR SHARE")
            .bind(company_id.uuid())
            .fetch_optional(&mut *tx)
            .await?;
    name.ok_or_else(|| Error::CompanyMissing { field, company_id: company_id.to_string() })
}

/// The current time, truncated to PostgreSQL's microsecond precision so
/// what is returned equals what is stored.
pub(crate) fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
