//! The Contacts service's errors, each mapped to a gRPC status with
//! google.rpc details in one place ([`ServiceError`]).

use rapport_kit::error::{Problem, ServiceError};
use tonic::Code;

use crate::domain::Violation;

/// Resource type names used in `ResourceInfo`.
pub const CONTACT: &str = "rapport.contacts.v1.Contact";
/// Resource type name of companies.
pub const COMPANY: &str = "rapport.contacts.v1.Company";

/// Everything that can go wrong in the Contacts service.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Client input failed validation.
    #[error("invalid input")]
    Invalid(Vec<Violation>),
    /// No contact with this id.
    #[error("contact {0} not found")]
    ContactNotFound(String),
    /// No company with this id.
    #[error("company {0} not found")]
    CompanyNotFound(String),
    /// A referenced company does not exist or is deleted.
    #[error("company {company_id} referenced by {field} does not exist")]
    CompanyMissing {
        /// The request field holding the reference.
        field: &'static str,
        /// The missing id.
        company_id: String,
    },
    /// A company cannot be its own parent (directly or through a cycle).
    #[error("company hierarchy cycle")]
    CompanyCycle(String),
    /// Another live contact has this email.
    #[error("email taken")]
    EmailTaken {
        /// The email.
        email: String,
        /// The contact that has it.
        existing_id: String,
    },
    /// Another live company has this domain.
    #[error("domain taken")]
    DomainTaken {
        /// The domain.
        domain: String,
        /// The company that has it.
        existing_id: String,
    },
    /// A kit-level client problem (filter, paging, idempotency).
    #[error("{0:?}")]
    Problem(Problem),
    /// Anything else: logged, answered with a generic message.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// True when the write this error ended may still have committed (the
    /// database failed mid-way), so caches must be dropped all the same.
    pub fn may_have_written(&self) -> bool {
        match self {
            Error::Internal(_) => true,
            Error::Problem(problem) => problem.code() == Code::Unavailable,
            _ => false,
        }
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

/// The status of a cached read whose database load failed (shared by the
/// callers that waited on the same load).
pub fn load_failed(err: &sqlx::Error, what: &str) -> tonic::Status {
    match rapport_kit::error::database_problem(err) {
        Some(problem) => problem.into_status(),
        None => rapport_kit::error::internal_status(&anyhow::anyhow!("loading {what}: {err}")),
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
            Error::ContactNotFound(id) => Problem::not_found("CONTACT_NOT_FOUND", CONTACT, &id),
            Error::CompanyNotFound(id) => Problem::not_found("COMPANY_NOT_FOUND", COMPANY, &id),
            Error::CompanyMissing { field, company_id } => Problem::new(
                Code::FailedPrecondition,
                "COMPANY_NOT_FOUND",
                format!("{field}: company {company_id} does not exist or is deleted"),
            )
            .precondition("COMPANY_EXISTS", &company_id, "the referenced company must exist and be live")
            .resource(COMPANY, &company_id, "referenced company")
            .meta("field", field)
            .meta("company_id", company_id),
            Error::CompanyCycle(id) => Problem::new(
                Code::FailedPrecondition,
                "COMPANY_HIERARCHY_CYCLE",
                "company.parent_company_id would make the company its own ancestor",
            )
            .precondition("COMPANY_HIERARCHY", &id, "a company cannot be its own ancestor"),
            Error::EmailTaken { email, existing_id } => Problem::new(
                Code::AlreadyExists,
                "CONTACT_EMAIL_TAKEN",
                format!("contact {existing_id} already has email {email}"),
            )
            .resource(CONTACT, &existing_id, "the live contact that already has this email")
            .field("contact.email", "is already used by another live contact")
            .meta("existing_contact_id", existing_id),
            Error::DomainTaken { domain, existing_id } => Problem::new(
                Code::AlreadyExists,
                "COMPANY_DOMAIN_TAKEN",
                format!("company {existing_id} already has domain {domain}"),
            )
            .resource(COMPANY, &existing_id, "the live company that already has this domain")
            .field("company.domain", "is already used by another live company")
            .meta("existing_company_id", existing_id),
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
