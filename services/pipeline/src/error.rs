//! The Pipeline service's errors, each mapped to a gRPC status with
//! google.rpc details in one place ([`ServiceError`]).

use rapport_kit::error::{Problem, ServiceError};
use tonic::Code;

use crate::domain::Violation;

/// Resource type names (fully-qualified message names) used in
/// `ResourceInfo` and the change log.
pub mod resource {
    /// A pipeline (with its stages).
    pub const PIPELINE: &str = "rapport.pipeline.v1.Pipeline";
    /// A stage of a pipeline.
    pub const STAGE: &str = "rapport.pipeline.v1.Stage";
    /// A lost reason.
    pub const LOST_REASON: &str = "rapport.pipeline.v1.LostReason";
    /// A product.
    pub const PRODUCT: &str = "rapport.pipeline.v1.Product";
    /// A deal.
    pub const DEAL: &str = "rapport.pipeline.v1.Deal";
    /// An order.
    pub const ORDER: &str = "rapport.pipeline.v1.Order";
    /// An invoice.
    pub const INVOICE: &str = "rapport.pipeline.v1.Invoice";
    /// A payment.
    pub const PAYMENT: &str = "rapport.pipeline.v1.Payment";
    /// An exchange rate.
    pub const EXCHANGE_RATE: &str = "rapport.pipeline.v1.ExchangeRate";
    /// A quota.
    pub const QUOTA: &str = "rapport.pipeline.v1.Quota";
}

/// Everything that can go wrong in the Pipeline service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Client input failed validation.
    #[error("invalid input")]
    Invalid(Vec<Violation>),
    /// No resource with this id.
    #[error("{resource_type} {id} not found")]
    NotFound {
        /// The stable reason, e.g. `DEAL_NOT_FOUND`.
        reason: &'static str,
        /// The resource type (see [`resource`]).
        resource_type: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A client problem with its own code, reason and details (filter,
    /// paging, idempotency, preconditions).
    #[error("{0:?}")]
    Problem(Problem),
    /// Anything else: logged, answered with a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// True when the write this error ended may still have committed (the
    /// database failed mid-way), so watchers must be woken all the same.
    pub fn may_have_written(&self) -> bool {
        match self {
            Error::Internal(_) => true,
            Error::Problem(problem) => problem.code() == Code::Unavailable,
            _ => false,
        }
    }

    /// The stable reason of a client error, if it has one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::NotFound { reason, .. } => Some(reason),
            Error::Problem(problem) => Some(problem.reason()),
            _ => None,
        }
    }

    /// NOT_FOUND of `resource_type` (reason e.g. `DEAL_NOT_FOUND`).
    pub fn not_found(reason: &'static str, resource_type: &'static str, id: impl ToString) -> Error {
        Error::NotFound { reason, resource_type, id: id.to_string() }
    }

    /// FAILED_PRECONDITION with `reason`, a message, and a
    /// PreconditionFailure of `kind` about `subject`.
    pub fn precondition(reason: &str, message: impl Into<String>, kind: &str, subject: &str) -> Error {
        let message = message.into();
        Error::Problem(
            Problem::new(Code::FailedPrecondition, reason, message.clone())
                .precondition(kind, subject, &message),
        )
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Error {
        match rapport_kit::error::database_problem(&err) {
            Some(problem) => Error::Problem(problem),
            None => Error::Internal(anyhow::Error::new(err)),
        }
    }
}

impl From<Problem> for Error {
    fn from(problem: Problem) -> Error {
        Error::Problem(problem)
    }
}

impl From<rapport_kit::idempotency::Error> for Error {
    fn from(err: rapport_kit::idempotency::Error) -> Error {
        match err.problem() {
            Ok(problem) => Error::Problem(problem),
            Err(internal) => Error::Internal(internal),
        }
    }
}

impl From<Vec<Violation>> for Error {
    fn from(violations: Vec<Violation>) -> Error {
        Error::Invalid(violations)
    }
}

impl From<Violation> for Error {
    fn from(violation: Violation) -> Error {
        Error::Invalid(vec![violation])
    }
}

impl ServiceError for Error {
    fn problem(self) -> Result<Problem, anyhow::Error> {
        Ok(match self {
            Error::Invalid(violations) => rapport_kit::fields::invalid(violations),
            Error::NotFound { reason, resource_type, id } => Problem::not_found(reason, resource_type, &id),
            Error::Problem(problem) => problem,
            Error::Internal(err) => return Err(err),
        })
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> tonic::Status {
        rapport_kit::error::status(err)
    }
}

/// The errors of orders, invoices and payments.
impl Error {
    /// ALREADY_EXISTS, reason `EXTERNAL_REF_CONFLICT`: the ERP reference
    /// `field` = `value` was used before with different content.
    pub fn external_ref_conflict(resource_type: &str, field: &str, value: &str, existing_id: &str) -> Error {
        Error::Problem(
            Problem::new(
                Code::AlreadyExists,
                "EXTERNAL_REF_CONFLICT",
                format!("{field} {value:?} was already used with different content"),
            )
            .resource(resource_type, existing_id, "recorded before under this reference")
            .meta(field, value.to_owned()),
        )
    }

    /// The FAILED_PRECONDITION of an order transition refused by the domain.
    pub fn order_refused(refusal: crate::domain::order::Refusal, order_id: &str) -> Error {
        use crate::domain::order::Refusal;
        let (reason, message) = match refusal {
            Refusal::AlreadyAcknowledged => (
                "ORDER_ALREADY_ACKNOWLEDGED",
                "the order was already acknowledged under another external_ref",
            ),
            Refusal::NotAcknowledged => ("ORDER_NOT_ACKNOWLEDGED", "the order must be acknowledged first"),
            Refusal::Cancelled => ("ORDER_CANCELLED", "the order is cancelled"),
            Refusal::Fulfilled => ("ORDER_FULFILLED", "a fulfilled order cannot be cancelled"),
            Refusal::HasInvoices => ("ORDER_HAS_INVOICES", "an order with invoices cannot be cancelled"),
        };
        Error::precondition(reason, message, reason, order_id)
    }

    /// FAILED_PRECONDITION, reason `PAYMENT_EXCEEDS_OUTSTANDING`.
    pub fn payment_exceeds_outstanding(invoice_id: &str, outstanding: &str) -> Error {
        let message = format!("the payment is more than the {outstanding} outstanding on the invoice");
        Error::precondition("PAYMENT_EXCEEDS_OUTSTANDING", message, "PAYMENT_EXCEEDS_OUTSTANDING", invoice_id)
    }
}

/// The errors of forecasts.
impl Error {
    /// FAILED_PRECONDITION, reason `EXCHANGE_RATE_MISSING`: no rate from
    /// `from` to `to` (nor the opposite) is in force on `day`.
    pub fn exchange_rate_missing(from: &str, to: &str, day: chrono::NaiveDate) -> Error {
        let pair = format!("{from}/{to}");
        let day = day.format("%Y-%m-%d").to_string();
        let message = format!("no exchange rate from {from} to {to} (or back) is in force on {day}; set one");
        Error::Problem(
            Problem::new(Code::FailedPrecondition, "EXCHANGE_RATE_MISSING", message.clone())
                .precondition("EXCHANGE_RATE_MISSING", &pair, &message)
                .meta("currency_pair", pair.clone())
                .meta("date", day),
        )
    }
}
