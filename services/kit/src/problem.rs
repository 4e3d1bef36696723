//! [`Problem`]: an error the client can act on — a gRPC code, a stable
//! reason, a message and google.rpc details. The lowest of the error
//! modules: `fields` and `idempotency` describe their refusals with it, and
//! `error` builds every service's error on them.

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

    /// `FAILED_PRECONDITION` with `reason`: the request is valid but the
    /// state of the system refuses it.
    pub fn failed_precondition(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::FailedPrecondition, reason, message)
    }

    /// `ALREADY_EXISTS` with `reason`.
    pub fn already_exists(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::AlreadyExists, reason, message)
    }

    /// `ABORTED` with `reason`: a concurrent change interfered; retry the call.
    pub fn aborted(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::Aborted, reason, message)
    }

    /// `UNAVAILABLE` with `reason` and a retry hint: retry shortly.
    pub fn unavailable(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::Unavailable, reason, message).retry_after(Duration::from_millis(200))
    }

    /// `INVALID_ARGUMENT` with `reason` (add fields with [`Problem::field`]).
    pub fn invalid_argument(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::InvalidArgument, reason, message)
    }

    /// `PERMISSION_DENIED` with `reason`.
    pub fn permission_denied(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::PermissionDenied, reason, message)
    }

    /// `DEADLINE_EXCEEDED` with `reason`.
    pub fn deadline_exceeded(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::DeadlineExceeded, reason, message)
    }

    /// `OUT_OF_RANGE` with `reason`: a value or a total the request asks
    /// for lies beyond what can be represented.
    pub fn out_of_range(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::OutOfRange, reason, message)
    }

    /// `RESOURCE_EXHAUSTED` with `reason`.
    pub fn resource_exhausted(reason: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem::new(Code::ResourceExhausted, reason, message)
    }

    /// True when the client may retry the same call later (`UNAVAILABLE`):
    /// a write ending so may still have committed.
    pub fn is_unavailable(&self) -> bool {
        self.0.code == Code::Unavailable
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
/// The problem of the first database error in `err`'s chain that is not a
/// bug ([`database_problem`]).
pub fn database_cause(err: &anyhow::Error) -> Option<Problem> {
    err.chain().find_map(|cause| cause.downcast_ref::<sqlx::Error>().and_then(database_problem))
}

/// The problem a database error means for the client, when it is not a
/// bug:
/// - the database unreachable, shutting down, restarting or out of
///   connections (SQLSTATE classes 08, 57P01-57P03, 53300), a connection
///   lost mid-statement, the pool exhausted, or a statement cancelled by
///   `statement_timeout` (57014) → `UNAVAILABLE` with a retry hint;
/// - a serialization failure, deadlock or `lock_timeout` (55P03) →
///   `ABORTED` (retry the call);
/// - text PostgreSQL cannot store (a NUL byte, 22021/22P05) →
///   `INVALID_ARGUMENT`; a number out of range (22003) → `OUT_OF_RANGE`.
///
/// `None` for everything else, which is internal.
pub fn database_problem(err: &sqlx::Error) -> Option<Problem> {
    let unavailable = || {
        Problem::new(Code::Unavailable, "DATABASE_UNAVAILABLE", "the database is unavailable; retry shortly")
            .retry_after(Duration::from_millis(500))
    };
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => Some(unavailable()),
        // A connection cut mid-message (the server crashed) surfaces as a
        // protocol error; logged, since a real protocol bug looks the same.
        sqlx::Error::Protocol(message) => {
            tracing::warn!(message, "database protocol error; treated as the database being unavailable");
            Some(unavailable())
        }
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or_default();
            match code {
                sqlstate::SERIALIZATION_FAILURE
                | sqlstate::DEADLOCK_DETECTED
                | sqlstate::LOCK_NOT_AVAILABLE => Some(
                    Problem::new(
                        Code::Aborted,
                        "CONCURRENT_UPDATE",
                        "a concurrent change interfered; retry the call",
                    )
                    .retry_after(Duration::from_millis(50)),
                ),
                sqlstate::QUERY_CANCELED => Some(
                    Problem::new(
                        Code::Unavailable,
                        "DATABASE_BUSY",
                        "the database took too long to answer; retry shortly",
                    )
                    .retry_after(Duration::from_millis(500)),
                ),
                "57P01" | "57P02" | "57P03" | "53300" => Some(unavailable()),
                code if code.starts_with("08") => Some(unavailable()),
                "22021" | "22P05" => Some(Problem::new(
                    Code::InvalidArgument,
                    "INVALID_TEXT",
                    "a text value contains a character that cannot be stored (e.g. a NUL byte)",
                )),
                "22003" => Some(Problem::new(
                    Code::OutOfRange,
                    "VALUE_OUT_OF_RANGE",
                    "a number in the request, or a total computed from it, is out of range",
                )),
                _ => None,
            }
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
    /// `lock_not_available` (`lock_timeout`, `NOWAIT`).
    pub const LOCK_NOT_AVAILABLE: &str = "55P03";
    /// `query_canceled` (`statement_timeout`, a cancel request).
    pub const QUERY_CANCELED: &str = "57014";
}

/// The violated constraint's name when `err` is a database error with
/// `code` (one of [`sqlstate`]).
pub fn constraint_violated<'e>(err: &'e sqlx::Error, code: &str) -> Option<&'e str> {
    match err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(code) => db.constraint(),
        _ => None,
    }
}
