//! All SQL of the Support service. SQLSTATEs become domain errors here,
//! and every write appends its change-log row in the same transaction.
//!
//! - [`assignment`]: teams, agents, and who gets a new case of a queue.
//! - [`cases`]: the case record, its reads and writes.
//! - [`comments`]: replies and notes, and what they do to a case.
//! - [`sla`]: policies, calendars and the clock rows, as the engine reads them.
//! - [`sweep`]: SLA warnings and breaches, escalation, alerts.
//! - [`policies`]: calendar and policy writes, and the re-projection of open cases.

pub mod assignment;
pub mod cases;
pub mod comments;
pub mod policies;
pub mod sla;
pub mod sweep;

pub use rapport_kit::idempotency::Write;

/// What every write needs besides its input: the time it happens at and
/// how case numbers read.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The case number prefix (`CASE-`).
    pub prefix: &'a str,
    /// Now, from the service's time source.
    pub now: chrono::DateTime<chrono::Utc>,
}
