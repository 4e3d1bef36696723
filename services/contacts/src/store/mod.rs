//! All SQL of the Contacts service. SQLSTATEs become domain errors here
//! (a unique violation on `contacts_email_live` is `EmailTaken`, …), and
//! every write appends its change-log row in the same transaction.

pub mod activities;
pub mod assignment;
pub mod companies;
pub mod consent;
pub mod contacts;
pub mod duplicates;
pub mod lifecycle;
pub mod projection;
pub mod reminders;
pub mod scoring;
pub mod search;
pub mod timeline;

use sqlx::PgConnection;

use crate::domain::CompanyId;
use crate::error::{ContactsError, Error};

pub use rapport_kit::idempotency::Write;

pub use rapport_kit::db::etag;
pub(crate) use rapport_kit::db::{check_etag, now, violates};

/// The time a keyset page token of a time-ordered page holds (`None` on
/// the first page).
pub(crate) fn cursor_time(
    after: Option<&rapport_kit::paging::Cursor>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, sqlx::Error> {
    after
        .map(|cursor| {
            chrono::DateTime::parse_from_rfc3339(&cursor.value)
                .map(|time| time.with_timezone(&chrono::Utc))
                .map_err(|err| sqlx::Error::Decode(Box::new(err)))
        })
        .transpose()
}

/// `FAILED_PRECONDITION` for a change to a soft-deleted resource, e.g.
/// reason `CONTACT_DELETED` for `rapport.contacts.v1.Contact`.
pub(crate) fn deleted(resource_type: &str, id: &str) -> Error {
    Error::Problem(rapport_kit::error::Problem::deleted(resource_type, id))
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
    name.ok_or_else(|| {
        Error::Own(ContactsError::CompanyMissing { field, company_id: company_id.to_string() })
    })
}
