//! The Contacts service's errors: the kit's common kinds (invalid input,
//! not found, problems, internal) plus Contacts' own ([`ContactsError`]),
//! each described as a problem with google.rpc details.

use rapport_kit::error::{OwnError, Problem};

/// Resource type names used in `ResourceInfo`.
pub const CONTACT: &str = "rapport.contacts.v1.Contact";
/// Resource type name of companies.
pub const COMPANY: &str = "rapport.contacts.v1.Company";
/// Resource type name of activities (and tasks).
pub const ACTIVITY: &str = "rapport.contacts.v1.Activity";
/// Resource type name of assignment rules.
pub const ASSIGNMENT_RULE: &str = "rapport.contacts.v1.AssignmentRule";
/// Resource type name of scoring rules.
pub const SCORING_RULE: &str = "rapport.contacts.v1.ScoringRule";
/// Resource type name of a contact's consent (change feed only).
pub const CONTACT_CONSENT: &str = "rapport.contacts.v1.ContactConsent";
/// Resource type name of task reminders (change feed only).
pub const TASK_REMINDER: &str = "rapport.contacts.v1.TaskReminder";

/// Everything that can go wrong in the Contacts service.
pub type Error = rapport_kit::error::Error<ContactsError>;

/// NOT_FOUND `CONTACT_NOT_FOUND`.
pub fn contact_not_found(id: impl ToString) -> Error {
    Error::not_found("CONTACT_NOT_FOUND", CONTACT, id)
}

/// NOT_FOUND `COMPANY_NOT_FOUND`.
pub fn company_not_found(id: impl ToString) -> Error {
    Error::not_found("COMPANY_NOT_FOUND", COMPANY, id)
}

/// NOT_FOUND `ACTIVITY_NOT_FOUND`.
pub fn activity_not_found(id: impl ToString) -> Error {
    Error::not_found("ACTIVITY_NOT_FOUND", ACTIVITY, id)
}

/// What only Contacts refuses.
#[derive(Debug, thiserror::Error)]
pub enum ContactsError {
    /// A referenced company does not exist or is deleted.
    #[error("company {company_id} referenced by {field} does not exist")]
    CompanyMissing {
        /// The request field holding the reference.
        field: &'static str,
        /// The missing id.
        company_id: String,
    },
    /// A referenced contact does not exist or is deleted.
    #[error("contact {contact_id} referenced by {field} does not exist")]
    ContactMissing {
        /// The request field holding the reference.
        field: &'static str,
        /// The missing id.
        contact_id: String,
    },
    /// A lifecycle move that is not allowed (here, or for this caller).
    #[error("lifecycle stage {from} cannot move to {to}")]
    LifecycleTransition {
        /// The stage now.
        from: &'static str,
        /// The stage asked for.
        to: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// A task verb on an activity that is not a task.
    #[error("activity {0} is not a task")]
    NotATask(String),
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
}

impl OwnError for ContactsError {
    fn problem(self) -> Problem {
        match self {
            ContactsError::CompanyMissing { field, company_id } => Problem::failed_precondition(
                "COMPANY_NOT_FOUND",
                format!("{field}: company {company_id} does not exist or is deleted"),
            )
            .precondition("COMPANY_EXISTS", &company_id, "the referenced company must exist and be live")
            .resource(COMPANY, &company_id, "referenced company")
            .meta("field", field)
            .meta("company_id", company_id),
            ContactsError::ContactMissing { field, contact_id } => Problem::failed_precondition(
                "CONTACT_NOT_FOUND",
                format!("{field}: contact {contact_id} does not exist or is deleted"),
            )
            .precondition("CONTACT_EXISTS", &contact_id, "the referenced contact must exist and be live")
            .resource(CONTACT, &contact_id, "referenced contact")
            .meta("field", field)
            .meta("contact_id", contact_id),
            ContactsError::LifecycleTransition { from, to, hint } => Problem::failed_precondition(
                "LIFECYCLE_TRANSITION_NOT_ALLOWED",
                format!("a contact in lifecycle stage {from} cannot move to {to} this way; {hint}"),
            )
            .precondition("LIFECYCLE_TRANSITION", &format!("{from}->{to}"), hint)
            .meta("from_stage", from)
            .meta("to_stage", to),
            ContactsError::NotATask(id) => {
                Problem::failed_precondition("NOT_A_TASK", format!("activity {id} is not a task"))
                    .precondition("ACTIVITY_KIND", &id, "only tasks are completed and reopened")
                    .resource(ACTIVITY, &id, "the activity")
            }
            ContactsError::CompanyCycle(id) => Problem::failed_precondition(
                "COMPANY_HIERARCHY_CYCLE",
                "company.parent_company_id would make the company its own ancestor",
            )
            .precondition("COMPANY_HIERARCHY", &id, "a company cannot be its own ancestor"),
            ContactsError::EmailTaken { email, existing_id } => Problem::already_exists(
                "CONTACT_EMAIL_TAKEN",
                format!("contact {existing_id} already has email {email}"),
            )
            .resource(CONTACT, &existing_id, "the live contact that already has this email")
            .field("contact.email", "is already used by another live contact")
            .meta("existing_contact_id", existing_id),
            ContactsError::DomainTaken { domain, existing_id } => Problem::already_exists(
                "COMPANY_DOMAIN_TAKEN",
                format!("company {existing_id} already has domain {domain}"),
            )
            .resource(COMPANY, &existing_id, "the live company that already has this domain")
            .field("company.domain", "is already used by another live company")
            .meta("existing_company_id", existing_id),
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
