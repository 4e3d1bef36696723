//! All SQL of the Pipeline service. SQLSTATEs become domain errors here,
//! and every write appends its change-log row in the same transaction.

pub mod lost_reasons;
pub mod pipelines;
pub mod products;
pub mod stages;

use crate::error::Error;

pub use rapport_kit::idempotency::Write;

pub use rapport_kit::db::etag;
pub(crate) use rapport_kit::db::{check_etag, now, violates};

/// FAILED_PRECONDITION `<NOUN>_DELETED` for a change to a soft-deleted
/// resource of `resource_type`.
pub(crate) fn deleted(resource_type: &str, id: &str) -> Error {
    rapport_kit::error::Problem::deleted(resource_type, id).into()
}

pub mod deals;
pub mod invoices;
pub mod orders;
pub mod orders_create;
pub mod payments;

/// Forecasts: exchange rates, quotas and the sums of forecasts and summaries.
pub mod forecasts;
pub mod quotas;
pub mod rates;
