//! All SQL of the Support service. SQLSTATEs become domain errors here,
//! and every write appends its change-log row in the same transaction.
//!
//! - [`articles`]: the knowledge base: articles, revisions, search, suggestions, votes.
//! - [`assignment`]: teams, agents, and who gets a new case of a queue.
//! - [`cases`]: the case record, its reads and writes.
//! - [`comments`]: replies and notes, and what they do to a case.
//! - [`references`]: Contacts' deletions applied to cases (the contacts feed's effects).
//! - [`search`]: SearchCases over subjects, descriptions and public replies.
//! - [`sla`]: policies, calendars and the clock rows, as the engine reads them.
//! - [`emails`]: email in, threaded onto its case, applied once per Message-ID.
//! - [`outbox`]: mail to requesters, written with what it tells of, sent by the mail worker.
//! - [`surveys`]: satisfaction surveys issued on resolution and answered once.
//! - [`sweep`]: SLA warnings and breaches, escalation, alerts.
//! - [`policies`]: calendar and policy writes, and the re-projection of open cases.

pub mod articles;
pub mod assignment;
pub mod cases;
pub mod comments;
pub mod emails;
pub mod outbox;
pub mod policies;
pub mod references;
pub mod search;
pub mod sla;
pub mod surveys;
pub mod sweep;

pub use rapport_kit::idempotency::Write;

/// What every write needs besides its input: the time it happens at, how
/// case numbers read, and how mail to requesters goes.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The case number prefix (`CASE-`).
    pub prefix: &'a str,
    /// Now, from the service's time source.
    pub now: chrono::DateTime<chrono::Utc>,
    /// Mail settings; `None`: no mail is written.
    pub mail: Option<&'a crate::config::MailSettings>,
    /// How long a satisfaction survey can be answered.
    pub survey_ttl: chrono::Duration,
}

impl Ctx<'_> {
    /// A fresh Message-ID for mail out (without angle brackets).
    pub fn message_id(&self) -> String {
        let domain = self.mail.map_or_else(|| "localhost".to_owned(), crate::config::MailSettings::domain);
        format!("{}@{domain}", uuid::Uuid::now_v7())
    }
}
