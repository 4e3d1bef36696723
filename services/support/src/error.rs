//! The Support service's errors: the kit's common kinds, and the problems
//! of Support's own refusals (the functions below).

use rapport_kit::error::Problem;
use rapport_proto::support::v1::CaseStatus;

use crate::domain::case::status_name;

/// Resource type names (fully-qualified message names) used in
/// `ResourceInfo` and the change log.
pub mod resource {
    /// A case.
    pub const CASE: &str = "rapport.support.v1.Case";
    /// A comment on a case.
    pub const COMMENT: &str = "rapport.support.v1.Comment";
    /// An answered satisfaction survey.
    pub const SATISFACTION: &str = "rapport.support.v1.Satisfaction";
    /// An SLA warning or breach.
    pub const SLA_ALERT: &str = "rapport.support.v1.SlaAlert";
}

/// Everything that can go wrong in the Support service.
pub type Error = rapport_kit::error::Error;

/// FAILED_PRECONDITION, reason `INVALID_STATUS_TRANSITION`.
pub fn invalid_transition(case_id: &str, from: CaseStatus, to: CaseStatus) -> Error {
    let (from, to) = (status_name(from), status_name(to));
    Error::Problem(
        Problem::failed_precondition(
            "INVALID_STATUS_TRANSITION",
            format!("a {from} case cannot become {to}"),
        )
        .precondition("INVALID_STATUS_TRANSITION", case_id, &format!("{from} → {to} is not a transition"))
        .meta("from", from)
        .meta("to", to),
    )
}

/// FAILED_PRECONDITION, reason `CASE_CLOSED`: a closed case changes no more.
pub fn case_closed(case_id: &str) -> Error {
    Error::precondition("CASE_CLOSED", format!("case {case_id} is closed"), "CASE_OPEN", case_id)
}

/// FAILED_PRECONDITION, reason `CASE_MERGED`.
pub fn case_merged(case_id: &str) -> Error {
    Error::precondition(
        "CASE_MERGED",
        format!("case {case_id} was merged into another"),
        "CASE_NOT_MERGED",
        case_id,
    )
}

/// PERMISSION_DENIED, reason `INTERNAL_NOTES_HIDDEN`: integrations act for
/// requesters and never read internal notes.
pub fn internal_notes_hidden() -> Error {
    Error::Problem(Problem::permission_denied(
        "INTERNAL_NOTES_HIDDEN",
        "internal notes are not readable by integration callers, who act for requesters",
    ))
}

/// PERMISSION_DENIED, reason `REQUESTER_COMMENT_DENIED`.
pub fn requester_comment_denied() -> Error {
    Error::Problem(Problem::permission_denied(
        "REQUESTER_COMMENT_DENIED",
        "only integration and admin callers relay a requester's comment",
    ))
}
