//! An activity's fields (a call, meeting, email, note or task), how client
//! input is parsed into them, and how an update applies. The task part and
//! its reminders are in [`task`].

pub mod task;

use chrono::{DateTime, Utc};
use rapport_proto::contacts::v1::{Activity, ActivityKind, CallOutcome, Direction};
use uuid::Uuid;

use super::fields::{CompanyId, ContactId, Violation, text};
pub use task::{At, ReminderKind, TaskState};

rapport_kit::typed_id!(ActivityId, "activity");

/// The most participants an activity names.
pub const MAX_PARTICIPANTS: usize = 50;
/// The longest body, in characters.
pub const MAX_BODY: usize = 20_000;
/// The longest call or meeting: a day.
pub const MAX_DURATION_SECONDS: i64 = 86_400;

/// The fields a client may set (log) or name in an update mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityField {
    /// `subject`
    Subject,
    /// `body`
    Body,
    /// `direction`
    Direction,
    /// `occur_time`
    OccurTime,
    /// `duration`
    Duration,
    /// `call_outcome`
    CallOutcome,
    /// `owner_id`
    OwnerId,
    /// `team_id`
    TeamId,
    /// `participant_contact_ids`
    Participants,
    /// `contact_id`
    ContactId,
    /// `company_id`
    CompanyId,
    /// `deal_id`
    DealId,
    /// `case_id`
    CaseId,
    /// `task.priority`
    TaskPriority,
    /// `task.remind_time`
    TaskRemindTime,
    /// `task.recurrence`
    TaskRecurrence,
}

impl ActivityField {
    /// Every settable field.
    pub const ALL: [ActivityField; 16] = [
        ActivityField::Subject,
        ActivityField::Body,
        ActivityField::Direction,
        ActivityField::OccurTime,
        ActivityField::Duration,
        ActivityField::CallOutcome,
        ActivityField::OwnerId,
        ActivityField::TeamId,
        ActivityField::Participants,
        ActivityField::ContactId,
        ActivityField::CompanyId,
        ActivityField::DealId,
        ActivityField::CaseId,
        ActivityField::TaskPriority,
        ActivityField::TaskRemindTime,
        ActivityField::TaskRecurrence,
    ];

    /// The field's path in the contract.
    pub fn path(self) -> &'static str {
        match self {
            ActivityField::Subject => "subject",
            ActivityField::Body => "body",
            ActivityField::Direction => "direction",
            ActivityField::OccurTime => "occur_time",
            ActivityField::Duration => "duration",
            ActivityField::CallOutcome => "call_outcome",
            ActivityField::OwnerId => "owner_id",
            ActivityField::TeamId => "team_id",
            ActivityField::Participants => "participant_contact_ids",
            ActivityField::ContactId => "contact_id",
            ActivityField::CompanyId => "company_id",
            ActivityField::DealId => "deal_id",
            ActivityField::CaseId => "case_id",
            ActivityField::TaskPriority => "task.priority",
            ActivityField::TaskRemindTime => "task.remind_time",
            ActivityField::TaskRecurrence => "task.recurrence",
        }
    }

    /// Parses an update mask; unknown or output-only paths are violations
    /// of `update_mask`.
    pub fn parse_mask(paths: &[String]) -> Result<Vec<ActivityField>, Vec<Violation>> {
        if paths.is_empty() {
            return Err(vec![Violation::new("update_mask", "must name at least one field to update")]);
        }
        rapport_kit::fields::cap_mask(paths).map_err(|violation| vec![violation])?;
        let mut fields = Vec::new();
        let mut violations = Vec::new();
        for path in paths {
            match ActivityField::ALL.iter().find(|field| field.path() == path) {
                Some(field) if !fields.contains(field) => fields.push(*field),
                Some(_) => {}
                None => violations.push(Violation::new(
                    "update_mask",
                    format!("{path:?} is not an updatable activity field"),
                )),
            }
        }
        if violations.is_empty() { Ok(fields) } else { Err(violations) }
    }

    /// Whether the field names another record (checked or kept current).
    pub fn is_link(self) -> bool {
        matches!(
            self,
            ActivityField::Participants
                | ActivityField::ContactId
                | ActivityField::CompanyId
                | ActivityField::DealId
                | ActivityField::CaseId
        )
    }
}

/// The records an activity hangs from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Links {
    /// Other contacts who took part.
    pub participants: Vec<ContactId>,
    /// The contact it is about.
    pub contact_id: Option<ContactId>,
    /// The company it is about.
    pub company_id: Option<CompanyId>,
    /// Pipeline's deal.
    pub deal_id: Option<Uuid>,
    /// Support's case.
    pub case_id: Option<Uuid>,
}

impl Links {
    /// Every contact it shows on: its contact and its participants, once
    /// each.
    pub fn contacts(&self) -> Vec<ContactId> {
        let mut contacts: Vec<ContactId> = self.contact_id.into_iter().collect();
        for participant in &self.participants {
            if !contacts.contains(participant) {
                contacts.push(*participant);
            }
        }
        contacts
    }
}

/// An activity as stored (everything but ids, the actor and times).
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityState {
    /// What it records (never UNSPECIFIED).
    pub kind: ActivityKind,
    /// One line.
    pub subject: String,
    /// Markdown.
    pub body: String,
    /// Calls and emails only.
    pub direction: Direction,
    /// When it happened; a task's due time.
    pub occur_time: DateTime<Utc>,
    /// Seconds, calls and meetings only.
    pub duration_seconds: i32,
    /// Calls only.
    pub call_outcome: CallOutcome,
    /// Owner (a task's assignee).
    pub owner_id: String,
    /// Team (empty: none).
    pub team_id: String,
    /// What it hangs from.
    pub links: Links,
    /// Link fields whose records were deleted in their service.
    pub deleted_links: Vec<String>,
    /// Tasks only.
    pub task: Option<TaskState>,
}

/// Validated client input for some fields of an activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityDraft {
    fields: Vec<ActivityField>,
    kind: ActivityKind,
    subject: String,
    body: String,
    direction: Direction,
    occur_time: Option<DateTime<Utc>>,
    duration_seconds: i32,
    call_outcome: CallOutcome,
    owner_id: String,
    team_id: String,
    links: Links,
    task: task::TaskDraft,
}

const PREFIX: &str = "activity.";

impl ActivityDraft {
    /// Parses `fields` of `input`, reporting every invalid one (paths
    /// prefixed `activity.`). `kind` is read too (a log needs it).
    pub fn parse(input: &Activity, fields: &[ActivityField]) -> Result<ActivityDraft, Vec<Violation>> {
        let mut violations = Vec::new();
        let kind = match ActivityKind::try_from(input.kind) {
            Ok(kind) => kind,
            Err(_) => {
                violations
                    .push(Violation::new("activity.kind", format!("{} is not an activity kind", input.kind)));
                ActivityKind::Unspecified
            }
        };
        let mut draft = ActivityDraft {
            fields: fields.to_vec(),
            kind,
            subject: String::new(),
            body: String::new(),
            direction: Direction::Unspecified,
            occur_time: None,
            duration_seconds: 0,
            call_outcome: CallOutcome::Unspecified,
            owner_id: String::new(),
            team_id: String::new(),
            links: Links::default(),
            task: task::TaskDraft::default(),
        };
        for field in fields {
            if let Err(violation) = draft.read(*field, input) {
                violations.push(violation);
            }
        }
        if violations.is_empty() { Ok(draft) } else { Err(violations) }
    }

    fn read(&mut self, field: ActivityField, input: &Activity) -> Result<(), Violation> {
        let path = format!("{PREFIX}{}", field.path());
        let task = input.task.as_ref();
        match field {
            ActivityField::Subject => self.subject = text(&path, &input.subject, true, 200)?,
            ActivityField::Body => {
                self.body = rapport_kit::fields::long_text(&path, &input.body, false, MAX_BODY)?;
            }
            ActivityField::Direction => {
                self.direction = Direction::try_from(input.direction)
                    .map_err(|_| Violation::new(&path, format!("{} is not a direction", input.direction)))?;
            }
            ActivityField::OccurTime => {
                self.occur_time = input
                    .occur_time
                    .as_ref()
                    .map(|time| rapport_kit::fields::time(&path, time))
                    .transpose()?;
            }
            ActivityField::Duration => {
                let seconds = match &input.duration {
                    Some(duration) => {
                        rapport_kit::fields::duration_seconds(&path, duration, MAX_DURATION_SECONDS)?
                    }
                    None => 0,
                };
                self.duration_seconds = i32::try_from(seconds).unwrap_or_default();
            }
            ActivityField::CallOutcome => {
                self.call_outcome = CallOutcome::try_from(input.call_outcome).map_err(|_| {
                    Violation::new(&path, format!("{} is not a call outcome", input.call_outcome))
                })?;
            }
            ActivityField::OwnerId => self.owner_id = text(&path, &input.owner_id, false, 128)?,
            ActivityField::TeamId => self.team_id = text(&path, &input.team_id, false, 200)?,
            ActivityField::Participants => {
                rapport_kit::fields::cap(&path, &input.participant_contact_ids, MAX_PARTICIPANTS)?;
                let mut participants = Vec::new();
                for (index, raw) in input.participant_contact_ids.iter().enumerate() {
                    let id = ContactId::parse(&format!("{path}[{index}]"), raw)?;
                    if !participants.contains(&id) {
                        participants.push(id);
                    }
                }
                self.links.participants = participants;
            }
            ActivityField::ContactId => {
                self.links.contact_id = optional(&path, &input.contact_id, ContactId::parse)?
            }
            ActivityField::CompanyId => {
                self.links.company_id = optional(&path, &input.company_id, CompanyId::parse)?
            }
            ActivityField::DealId => self.links.deal_id = optional(&path, &input.deal_id, reference)?,
            ActivityField::CaseId => self.links.case_id = optional(&path, &input.case_id, reference)?,
            ActivityField::TaskPriority => self.task.read_priority(&path, task)?,
            ActivityField::TaskRemindTime => self.task.read_remind_time(&path, task)?,
            ActivityField::TaskRecurrence => self.task.read_recurrence(&path, task)?,
        }
        Ok(())
    }

    /// The kind read from the input.
    pub fn kind(&self) -> ActivityKind {
        self.kind
    }

    /// Whether the draft sets task fields (an update of another kind of
    /// activity may not).
    pub fn names_task_fields(&self) -> bool {
        self.fields.iter().any(|field| {
            matches!(
                field,
                ActivityField::TaskPriority | ActivityField::TaskRemindTime | ActivityField::TaskRecurrence
            )
        })
    }

    /// The owner and team asked for (empty: the defaults).
    pub fn owner_and_team(&self) -> (&str, &str) {
        (&self.owner_id, &self.team_id)
    }

    /// A new activity of `owner_id` in `team_id`, logged at `at.now`; every
    /// rule across fields checked (a task needs a due time; direction only
    /// on calls and emails; …).
    pub fn into_new(
        self,
        owner_id: String,
        team_id: String,
        at: At,
    ) -> Result<ActivityState, Vec<Violation>> {
        if self.kind == ActivityKind::Unspecified {
            return Err(vec![Violation::new("activity.kind", "is required")]);
        }
        let is_task = self.kind == ActivityKind::Task;
        if !is_task && self.task != task::TaskDraft::default() {
            return Err(vec![Violation::new(
                "activity.task",
                "only tasks have a priority, reminder or recurrence",
            )]);
        }
        let occur_time = match (self.occur_time, is_task) {
            (Some(time), _) => time,
            (None, false) => at.now,
            (None, true) => {
                return Err(vec![Violation::new("activity.occur_time", "a task needs its due time")]);
            }
        };
        let task = is_task.then(|| self.task.into_new(occur_time, at));
        let state = ActivityState {
            kind: self.kind,
            subject: self.subject,
            body: self.body,
            direction: self.direction,
            occur_time,
            duration_seconds: self.duration_seconds,
            call_outcome: self.call_outcome,
            owner_id,
            team_id,
            links: self.links,
            deleted_links: Vec::new(),
            task,
        };
        let violations = state.check();
        if violations.is_empty() { Ok(state) } else { Err(violations) }
    }
}

fn optional<T>(
    path: &str,
    raw: &str,
    parse: fn(&str, &str) -> Result<T, Violation>,
) -> Result<Option<T>, Violation> {
    if raw.trim().is_empty() { Ok(None) } else { parse(path, raw.trim()).map(Some) }
}

/// Another service's id: a UUID.
fn reference(path: &str, raw: &str) -> Result<Uuid, Violation> {
    Uuid::parse_str(raw).map_err(|_| Violation::new(path, format!("{raw:?} is not a valid id")))
}

impl ActivityState {
    /// Applies `draft`'s fields at `at.now`; returns the paths that
    /// changed. Check [`ActivityState::check`] afterwards.
    pub fn apply(&mut self, draft: &ActivityDraft, at: At) -> Vec<String> {
        let mut changed = Vec::new();
        for field in &draft.fields {
            let differs = match field {
                ActivityField::Subject => replace(&mut self.subject, &draft.subject),
                ActivityField::Body => replace(&mut self.body, &draft.body),
                ActivityField::Direction => replace(&mut self.direction, &draft.direction),
                ActivityField::OccurTime => match draft.occur_time {
                    Some(time) => replace(&mut self.occur_time, &time),
                    None => false,
                },
                ActivityField::Duration => replace(&mut self.duration_seconds, &draft.duration_seconds),
                ActivityField::CallOutcome => replace(&mut self.call_outcome, &draft.call_outcome),
                ActivityField::OwnerId => replace(&mut self.owner_id, &draft.owner_id),
                ActivityField::TeamId => replace(&mut self.team_id, &draft.team_id),
                ActivityField::Participants => {
                    replace(&mut self.links.participants, &draft.links.participants)
                }
                ActivityField::ContactId => replace(&mut self.links.contact_id, &draft.links.contact_id),
                ActivityField::CompanyId => replace(&mut self.links.company_id, &draft.links.company_id),
                ActivityField::DealId => {
                    self.relink("deal_id", draft.links.deal_id, |links| &mut links.deal_id)
                }
                ActivityField::CaseId => {
                    self.relink("case_id", draft.links.case_id, |links| &mut links.case_id)
                }
                ActivityField::TaskPriority
                | ActivityField::TaskRemindTime
                | ActivityField::TaskRecurrence => match &mut self.task {
                    Some(task) => task.apply(*field, &draft.task),
                    None => false,
                },
            };
            if differs {
                changed.push(field.path().to_owned());
            }
        }
        let rescheduled = changed.iter().any(|path| path == "occur_time" || path == "task.remind_time");
        if let Some(task) = &mut self.task
            && rescheduled
        {
            task.rescheduled(self.occur_time, at);
        }
        changed
    }

    /// A link to another service's record set anew: it is no longer
    /// marked deleted.
    fn relink(
        &mut self,
        path: &str,
        value: Option<Uuid>,
        slot: impl FnOnce(&mut Links) -> &mut Option<Uuid>,
    ) -> bool {
        let differs = replace(slot(&mut self.links), &value);
        if differs {
            self.deleted_links.retain(|link| link != path);
        }
        differs
    }

    /// The rules across fields (reported on `activity.<field>`).
    pub fn check(&self) -> Vec<Violation> {
        let mut violations = Vec::new();
        let kind = self.kind;
        let is = |kinds: &[ActivityKind]| kinds.contains(&kind);
        if self.direction != Direction::Unspecified && !is(&[ActivityKind::Call, ActivityKind::Email]) {
            violations.push(Violation::new("activity.direction", "only calls and emails have a direction"));
        }
        if self.call_outcome != CallOutcome::Unspecified && kind != ActivityKind::Call {
            violations.push(Violation::new("activity.call_outcome", "only calls have an outcome"));
        }
        if self.duration_seconds != 0 && !is(&[ActivityKind::Call, ActivityKind::Meeting]) {
            violations.push(Violation::new("activity.duration", "only calls and meetings have a duration"));
        }
        if let Some(task) = &self.task
            && let Some(remind_time) = task.remind_time
            && remind_time > self.occur_time
        {
            violations.push(Violation::new("activity.task.remind_time", "must not be after the due time"));
        }
        violations
    }

    /// Whether this activity counts as a touch of the customer for
    /// `last_activity_time`, and when: calls, meetings, emails and notes
    /// when they happened (not in the future), tasks when completed.
    pub fn touch_time(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.task {
            Some(task) => task.complete_time,
            None => (self.occur_time <= now).then_some(self.occur_time),
        }
    }
}

fn replace<T: PartialEq + Clone>(slot: &mut T, value: &T) -> bool {
    if slot == value {
        return false;
    }
    *slot = value.clone();
    true
}

/// A kind's stored name (`CALL`).
pub fn kind_name(kind: ActivityKind) -> &'static str {
    kind.as_str_name().trim_start_matches("ACTIVITY_KIND_")
}

/// A stored kind name back to the enum.
pub fn kind_from_name(name: &str) -> Result<ActivityKind, sqlx::Error> {
    rapport_kit::db::stored_enum("kind", "ACTIVITY_KIND_", name, ActivityKind::from_str_name)
}

/// Every stored kind, for filters.
pub const KIND_NAMES: &[&str] = &["CALL", "MEETING", "EMAIL", "NOTE", "TASK"];

/// A direction's stored name (empty for none).
pub fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Unspecified => "",
        other => other.as_str_name().trim_start_matches("DIRECTION_"),
    }
}

/// A stored direction back to the enum.
pub fn direction_from_name(name: &str) -> Result<Direction, sqlx::Error> {
    if name.is_empty() {
        return Ok(Direction::Unspecified);
    }
    rapport_kit::db::stored_enum("direction", "DIRECTION_", name, Direction::from_str_name)
}

/// An outcome's stored name (empty for none).
pub fn outcome_name(outcome: CallOutcome) -> &'static str {
    match outcome {
        CallOutcome::Unspecified => "",
        other => other.as_str_name().trim_start_matches("CALL_OUTCOME_"),
    }
}

/// A stored outcome back to the enum.
pub fn outcome_from_name(name: &str) -> Result<CallOutcome, sqlx::Error> {
    if name.is_empty() {
        return Ok(CallOutcome::Unspecified);
    }
    rapport_kit::db::stored_enum("call_outcome", "CALL_OUTCOME_", name, CallOutcome::from_str_name)
}

#[cfg(test)]
mod tests;
