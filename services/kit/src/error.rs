//! Errors to `tonic::Status`, in one place.
//!
//! Every service's error is [`Error<E>`]: the kinds every service has
//! (invalid input, not found, a [`Problem`] with its own code and details,
//! internal) plus the service's own variants `E` ([`OwnError`]), each
//! described as a [`Problem`]. The conversions every store and handler uses
//! with `?` (sqlx, `Problem`, idempotency, violations, `anyhow`) are here,
//! once. [`status`] turns any of them into a `tonic::Status`: problems keep
//! their details; internal errors are logged once with their cause chain
//! and reach the client as a generic message. This module and [`crate::problem`]
//! are the only places that name a gRPC code for a service's errors: services
//! use the named [`Problem`] constructors.

use std::time::Duration;

pub use tonic::Code;

use crate::fields::Violation;
pub use crate::problem::{constraint_violated, database_cause, database_problem, sqlstate};

pub use crate::problem::{DOMAIN, Problem};

/// A service's own error kinds, each described as a [`Problem`].
pub trait OwnError: std::fmt::Debug + std::fmt::Display + Send + Sync + 'static {
    /// The client-facing problem.
    fn problem(self) -> Problem;
}

/// The own error kinds of a service that has none.
#[derive(Debug, thiserror::Error)]
pub enum NoOwnErrors {}

impl OwnError for NoOwnErrors {
    fn problem(self) -> Problem {
        match self {}
    }
}

/// Everything that can go wrong in a service: the kinds every service has,
/// and the service's own (`E`).
#[derive(Debug, thiserror::Error)]
pub enum Error<E: OwnError = NoOwnErrors> {
    /// Client input failed validation: every violation, by field path.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<Violation>),
    /// No resource with this id.
    #[error("{resource_type} {id} not found")]
    NotFound {
        /// The stable reason, e.g. `DEAL_NOT_FOUND`.
        reason: &'static str,
        /// The resource type (a fully-qualified message name).
        resource_type: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A client problem with its own code, reason and details (filter,
    /// paging, idempotency, preconditions, the database unavailable).
    #[error("{0:?}")]
    Problem(Problem),
    /// One of the service's own kinds.
    #[error("{0}")]
    Own(E),
    /// Anything else (a bug, or a stored value that cannot be decoded):
    /// logged with its cause chain, answered with a generic message.
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl<E: OwnError> Error<E> {
    /// NOT_FOUND of `resource_type` (reason e.g. `DEAL_NOT_FOUND`).
    pub fn not_found(reason: &'static str, resource_type: &'static str, id: impl ToString) -> Error<E> {
        Error::NotFound { reason, resource_type, id: id.to_string() }
    }

    /// FAILED_PRECONDITION with `reason`, a message, and a
    /// PreconditionFailure of `kind` about `subject`.
    pub fn precondition(reason: &str, message: impl Into<String>, kind: &str, subject: &str) -> Error<E> {
        let message = message.into();
        Error::Problem(
            Problem::failed_precondition(reason, message.clone()).precondition(kind, subject, &message),
        )
    }

    /// An internal error for a stored value this build cannot decode (an
    /// unknown enum text, an impossible date): never a silent default.
    pub fn undecodable(what: &str, value: impl std::fmt::Debug) -> Error<E> {
        Error::Internal(anyhow::anyhow!("stored {what} {value:?} cannot be decoded"))
    }

    /// True when the write this error ended may still have committed (the
    /// database failed mid-way), so caches and watchers must be told all
    /// the same.
    pub fn may_have_written(&self) -> bool {
        match self {
            Error::Internal(_) => true,
            Error::Problem(problem) => problem.is_unavailable(),
            _ => false,
        }
    }

    /// The stable reason of a client error, when it is known without
    /// describing the service's own kinds.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::NotFound { reason, .. } => Some(reason),
            Error::Problem(problem) => Some(problem.reason()),
            _ => None,
        }
    }
}

impl<E: OwnError> From<E> for Error<E> {
    fn from(own: E) -> Error<E> {
        Error::Own(own)
    }
}

impl<E: OwnError> From<sqlx::Error> for Error<E> {
    fn from(err: sqlx::Error) -> Error<E> {
        match database_problem(&err) {
            Some(problem) => Error::Problem(problem),
            None => Error::Internal(anyhow::Error::new(err)),
        }
    }
}

impl<E: OwnError> From<anyhow::Error> for Error<E> {
    fn from(err: anyhow::Error) -> Error<E> {
        Error::Internal(err)
    }
}

impl<E: OwnError> From<Problem> for Error<E> {
    fn from(problem: Problem) -> Error<E> {
        Error::Problem(problem)
    }
}

impl<E: OwnError> From<crate::idempotency::Error> for Error<E> {
    fn from(err: crate::idempotency::Error) -> Error<E> {
        match err.problem() {
            Ok(problem) => Error::Problem(problem),
            Err(internal) => Error::Internal(internal),
        }
    }
}

impl<E: OwnError> From<Vec<Violation>> for Error<E> {
    fn from(violations: Vec<Violation>) -> Error<E> {
        Error::Invalid(violations)
    }
}

impl<E: OwnError> From<Violation> for Error<E> {
    fn from(violation: Violation) -> Error<E> {
        Error::Invalid(vec![violation])
    }
}

impl<E: OwnError> ServiceError for Error<E> {
    fn problem(self) -> Result<Problem, anyhow::Error> {
        Ok(match self {
            Error::Invalid(violations) => crate::fields::invalid(violations),
            Error::NotFound { reason, resource_type, id } => Problem::not_found(reason, resource_type, &id),
            Error::Problem(problem) => problem,
            Error::Own(own) => own.problem(),
            // A database outage wrapped on its way up (an idempotency key,
            // a change-log append) is still an outage, not a bug.
            Error::Internal(err) => return database_cause(&err).ok_or(err),
        })
    }
}

impl<E: OwnError> From<Error<E>> for tonic::Status {
    fn from(err: Error<E>) -> tonic::Status {
        status(err)
    }
}

/// Implemented by each service's error enum: every variant is either a
/// [`Problem`] for the client or an internal error.
pub trait ServiceError {
    /// The client-facing problem, or the internal error to log.
    fn problem(self) -> Result<Problem, anyhow::Error>;
}

/// Turns a service error into a status. Internal errors are logged here,
/// once, with their cause chain, and answered with a generic message —
/// unless a database outage is among the causes, which is `UNAVAILABLE`.
pub fn status<E: ServiceError>(err: E) -> tonic::Status {
    match err.problem() {
        Ok(problem) => problem.into_status(),
        Err(internal) => match database_cause(&internal) {
            Some(problem) => problem.into_status(),
            None => internal_status(&internal),
        },
    }
}

/// Logs an internal error with its cause chain and returns the generic
/// `INTERNAL` status the client sees.
pub fn internal_status(err: &anyhow::Error) -> tonic::Status {
    tracing::error!(error = format!("{err:#}"), "internal error");
    Problem::new(Code::Internal, "INTERNAL", "internal error; it has been logged").into_status()
}

/// `UNAVAILABLE` with a retry hint: the caller may retry the same request.
pub fn unavailable(reason: &str, message: &str) -> tonic::Status {
    Problem::new(Code::Unavailable, reason, message).retry_after(Duration::from_millis(200)).into_status()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::StatusExt as _;

    enum TestError {
        Missing(String),
        Broken(anyhow::Error),
    }

    impl ServiceError for TestError {
        fn problem(self) -> Result<Problem, anyhow::Error> {
            match self {
                TestError::Missing(id) => Ok(Problem::not_found("THING_NOT_FOUND", "thing", &id)),
                TestError::Broken(err) => Err(err),
            }
        }
    }

    #[test]
    fn problems_carry_google_rpc_details() {
        let status = status(TestError::Missing("42".into()));
        assert_eq!(status.code(), Code::NotFound);
        let details = status.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, "THING_NOT_FOUND");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(details.resource_info().unwrap().resource_name, "42");
    }

    #[test]
    fn field_violations_and_preconditions_accumulate() {
        let status = Problem::invalid_field("INVALID_CONTACT", "email", "is not an address")
            .field("given_name", "must not be empty")
            .precondition("COMPANY", "c1", "company c1 does not exist")
            .meta("hint", "x")
            .into_status();
        let details = status.get_error_details();
        let violations = &details.bad_request().unwrap().field_violations;
        assert_eq!(violations.len(), 2);
        assert_eq!(violations[1].field, "given_name");
        assert_eq!(details.precondition_failure().unwrap().violations[0].subject, "c1");
        assert_eq!(details.error_info().unwrap().metadata["hint"], "x");
    }

    #[test]
    fn database_outages_are_unavailable_not_internal() {
        let problem = database_problem(&sqlx::Error::PoolTimedOut).unwrap();
        assert_eq!(problem.code(), Code::Unavailable);
        assert!(problem.into_status().get_error_details().retry_info().is_some());
        assert!(database_problem(&sqlx::Error::RowNotFound).is_none());
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = anyhow::anyhow!("password=hunter2").context("connecting");
        let status = status(TestError::Broken(err));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
        assert_eq!(status.get_error_details().error_info().unwrap().reason, "INTERNAL");
    }
}
