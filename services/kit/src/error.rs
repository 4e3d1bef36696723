//! Errors to `tonic::Status`, in one place.
//!
//! Each service has its own error enum and implements [`ServiceError`] for
//! it, describing every variant as a [`Problem`] (a gRPC code, a stable
//! reason and google.rpc details) or as an internal error. [`status`] turns
//! either into a `tonic::Status`: problems keep their details; internal
//! errors are logged once with their cause chain and reach the client as a
//! generic message.

use std::collections::HashMap;
use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Rapport error.
pub const DOMAIN: &str = "rapport";

/// An error the client can act on: a code, a stable reason, a message and
/// google.rpc details.
#[derive(Debug, Clone)]
pub struct Problem(Box<Parts>);

#[derive(Debug, Clone)]
struct Parts {
    code: Code,
    reason: String,
    message: String,
    metadata: HashMap<String, String>,
    details: ErrorDetails,
}

impl Problem {
    /// A problem with `code`, stable machine-readable `reason` (e.g.
    /// `CONTACT_NOT_FOUND`) and a human message.
    pub fn new(code: Code, reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem(Box::new(Parts {
            code,
            reason: reason.into(),
            message: message.into(),
            metadata: HashMap::new(),
            details: ErrorDetails::new(),
        }))
    }

    /// `INVALID_ARGUMENT` with one field violation; add more with
    /// [`Problem::field`].
    pub fn invalid_field(
        reason: impl Into<String>,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> Problem {
        let field = field.into();
        let description = description.into();
        Problem::new(Code::InvalidArgument, reason, format!("{field}: {description}"))
            .field(field, description)
    }

    /// `NOT_FOUND` for a resource, with `ResourceInfo`.
    pub fn not_found(reason: impl Into<String>, resource_type: &str, id: &str) -> Problem {
        Problem::new(Code::NotFound, reason, format!("{resource_type} {id} not found")).resource(
            resource_type,
            id,
            "",
        )
    }

    /// `FAILED_PRECONDITION` `<NOUN>_DELETED` for a change to a soft-deleted
    /// resource, e.g. reason `CONTACT_DELETED` for `rapport.contacts.v1.Contact`.
    pub fn deleted(resource_type: &str, id: &str) -> Problem {
        let noun = resource_type.rsplit('.').next().unwrap_or(resource_type);
        Problem::new(
            Code::FailedPrecondition,
            format!("{}_DELETED", noun.to_uppercase()),
            format!("{} {id} is deleted; undelete it first", noun.to_lowercase()),
        )
        .precondition(
            &format!("{}_LIVE", noun.to_uppercase()),
            id,
            &format!("the {} must not be deleted", noun.to_lowercase()),
        )
    }

    /// `ABORTED` `ETAG_MISMATCH`: the client's etag of `resource_type` `id`
    /// is stale; `current` is the etag it should read again.
    pub fn etag_mismatch(resource_type: &str, id: &str, current: &str) -> Problem {
        Problem::new(
            Code::Aborted,
            "ETAG_MISMATCH",
            format!("{id} was changed by someone else; read it again and retry"),
        )
        .resource(resource_type, id, "")
        .meta("current_etag", current)
    }

    /// Adds a `BadRequest` field violation.
    pub fn field(mut self, field: impl Into<String>, description: impl Into<String>) -> Problem {
        self.0.details.add_bad_request_violation(field, description);
        self
    }

    /// Sets `ResourceInfo`.
    pub fn resource(mut self, resource_type: &str, name: &str, description: &str) -> Problem {
        self.0.details.set_resource_info(resource_type, name, "", description);
        self
    }

    /// Adds a `PreconditionFailure` violation.
    pub fn precondition(mut self, kind: &str, subject: &str, description: &str) -> Problem {
        self.0.details.add_precondition_failure_violation(kind, subject, description);
        self
    }

    /// Adds a key to `ErrorInfo.metadata`.
    pub fn meta(mut self, key: &str, value: impl Into<String>) -> Problem {
        self.0.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `RetryInfo`.
    pub fn retry_after(mut self, delay: Duration) -> Problem {
        self.0.details.set_retry_info(Some(delay));
        self
    }

    /// The gRPC code.
    pub fn code(&self) -> Code {
        self.0.code
    }

    /// The stable reason.
    pub fn reason(&self) -> &str {
        &self.0.reason
    }

    /// The status sent to the client.
    pub fn into_status(self) -> tonic::Status {
        let mut parts = *self.0;
        parts.details.set_error_info(parts.reason, DOMAIN, parts.metadata);
        tonic::Status::with_error_details(parts.code, parts.message, parts.details)
    }
}

impl From<Problem> for tonic::Status {
    fn from(problem: Problem) -> tonic::Status {
        problem.into_status()
    }
}

/// Implemented by each service's error enum: every variant is either a
/// [`Problem`] for the client or an internal error.
pub trait ServiceError {
    /// The client-facing problem, or the internal error to log.
    fn problem(self) -> Result<Problem, anyhow::Error>;
}

/// Turns a service error into a status. Internal errors are logged here,
/// once, with their cause chain, and answered with a generic message.
pub fn status<E: ServiceError>(err: E) -> tonic::Status {
    match err.problem() {
        Ok(problem) => problem.into_status(),
        Err(internal) => internal_status(&internal),
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

/// The problem a database error means for the client, when it is not a
/// bug: the database unreachable or its pool exhausted → `UNAVAILABLE`
/// (retry later); a serialization failure or deadlock → `ABORTED` (retry
/// the call). `None` for everything else, which is internal.
pub fn database_problem(err: &sqlx::Error) -> Option<Problem> {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => Some(
            Problem::new(
                Code::Unavailable,
                "DATABASE_UNAVAILABLE",
                "the database is unavailable; retry shortly",
            )
            .retry_after(Duration::from_millis(500)),
        ),
        sqlx::Error::Database(db)
            if matches!(
                db.code().as_deref(),
                Some(sqlstate::SERIALIZATION_FAILURE | sqlstate::DEADLOCK_DETECTED)
            ) =>
        {
            Some(
                Problem::new(
                    Code::Aborted,
                    "CONCURRENT_UPDATE",
                    "a concurrent change interfered; retry the call",
                )
                .retry_after(Duration::from_millis(50)),
            )
        }
        _ => None,
    }
}

/// SQLSTATE classes the stores map to domain errors.
pub mod sqlstate {
    /// `unique_violation`.
    pub const UNIQUE_VIOLATION: &str = "23505";
    /// `foreign_key_violation`.
    pub const FOREIGN_KEY_VIOLATION: &str = "23503";
    /// `check_violation`.
    pub const CHECK_VIOLATION: &str = "23514";
    /// `serialization_failure`.
    pub const SERIALIZATION_FAILURE: &str = "40001";
    /// `deadlock_detected`.
    pub const DEADLOCK_DETECTED: &str = "40P01";
}

/// The violated constraint's name when `err` is a database error with
/// `code` (one of [`sqlstate`]).
pub fn constraint_violated<'e>(err: &'e sqlx::Error, code: &str) -> Option<&'e str> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(code) => db.constraint(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
