//! What a task adds to an activity: priority, status, recurrence, and its
//! reminders — which are due when, and which went out.
//!
//! A task has up to three reminders, each published once: REMINDER at its
//! `remind_time` (when that is before the due time), DUE at its due time,
//! and OVERDUE a while after it (the service's `overdue_after`). Only open
//! tasks get reminders. A reminder whose moment had already passed when
//! the task was created or rescheduled is skipped (its author knows), and
//! rescheduling (a new due or remind time) arms the reminders still ahead
//! again.

use chrono::{DateTime, Duration, Utc};
use rapport_proto::contacts::v1::{Recurrence, TaskPriority, TaskStatus};

use super::{ActivityField, Violation};

pub use rapport_proto::contacts::v1::ReminderKind;

/// A task's state.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskState {
    /// Never UNSPECIFIED.
    pub priority: TaskPriority,
    /// OPEN or COMPLETED.
    pub status: TaskStatus,
    /// When completed.
    pub complete_time: Option<DateTime<Utc>>,
    /// Who completed it.
    pub completed_by: String,
    /// The earlier reminder.
    pub remind_time: Option<DateTime<Utc>>,
    /// What completing it creates.
    pub recurrence: Recurrence,
    /// The reminders sent or skipped.
    pub reminders_sent: Vec<ReminderKind>,
}

/// Task input.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TaskDraft {
    priority: TaskPriority,
    remind_time: Option<DateTime<Utc>>,
    recurrence: Recurrence,
}

impl TaskDraft {
    pub(super) fn read_priority(
        &mut self,
        path: &str,
        task: Option<&rapport_proto::contacts::v1::Task>,
    ) -> Result<(), Violation> {
        let raw = task.map_or(0, |task| task.priority);
        self.priority = TaskPriority::try_from(raw)
            .map_err(|_| Violation::new(path, format!("{raw} is not a priority")))?;
        Ok(())
    }

    pub(super) fn read_remind_time(
        &mut self,
        path: &str,
        task: Option<&rapport_proto::contacts::v1::Task>,
    ) -> Result<(), Violation> {
        self.remind_time = task
            .and_then(|task| task.remind_time.as_ref())
            .map(|time| rapport_kit::fields::time(path, time))
            .transpose()?;
        Ok(())
    }

    pub(super) fn read_recurrence(
        &mut self,
        path: &str,
        task: Option<&rapport_proto::contacts::v1::Task>,
    ) -> Result<(), Violation> {
        let raw = task.map_or(0, |task| task.recurrence);
        self.recurrence = Recurrence::try_from(raw)
            .map_err(|_| Violation::new(path, format!("{raw} is not a recurrence")))?;
        Ok(())
    }

    /// A new open task due at `due`, created at `at.now`.
    pub(super) fn into_new(self, due: DateTime<Utc>, at: At) -> TaskState {
        let mut task = TaskState {
            priority: normal(self.priority),
            status: TaskStatus::Open,
            complete_time: None,
            completed_by: String::new(),
            remind_time: self.remind_time,
            recurrence: self.recurrence,
            reminders_sent: Vec::new(),
        };
        task.rescheduled(due, at);
        task
    }
}

/// The moment a change is made, and how long after its due time an open
/// task is overdue (the service's setting): what reminders are measured
/// against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    /// Now.
    pub now: DateTime<Utc>,
    /// `CONTACTS_TASK_OVERDUE_AFTER`.
    pub overdue_after: Duration,
}

fn normal(priority: TaskPriority) -> TaskPriority {
    if priority == TaskPriority::Unspecified { TaskPriority::Normal } else { priority }
}

/// The reminder kinds, in firing order.
const KINDS: [ReminderKind; 3] = [ReminderKind::Reminder, ReminderKind::Due, ReminderKind::Overdue];

impl TaskState {
    pub(super) fn apply(&mut self, field: ActivityField, draft: &TaskDraft) -> bool {
        match field {
            ActivityField::TaskPriority => super::replace(&mut self.priority, &normal(draft.priority)),
            ActivityField::TaskRemindTime => super::replace(&mut self.remind_time, &draft.remind_time),
            ActivityField::TaskRecurrence => super::replace(&mut self.recurrence, &draft.recurrence),
            _ => false,
        }
    }

    /// When each reminder of a task due at `due` fires (REMINDER only when
    /// its time is before the due time).
    fn fire_time(
        &self,
        kind: ReminderKind,
        due: DateTime<Utc>,
        overdue_after: Duration,
    ) -> Option<DateTime<Utc>> {
        match kind {
            ReminderKind::Reminder => self.remind_time.filter(|time| *time < due),
            ReminderKind::Due => Some(due),
            ReminderKind::Overdue => due.checked_add_signed(overdue_after),
            ReminderKind::Unspecified => None,
        }
    }

    /// Re-arms the reminders after a new due or remind time: those ahead of
    /// `at.now` will fire (again), those already past are skipped.
    pub(super) fn rescheduled(&mut self, due: DateTime<Utc>, at: At) {
        self.reminders_sent = KINDS
            .into_iter()
            .filter(|kind| self.fire_time(*kind, due, at.overdue_after).is_none_or(|time| time <= at.now))
            .collect();
    }

    /// The reminders due by `now` and not yet sent, in firing order, each
    /// with its fire time.
    pub fn due_reminders(&self, due: DateTime<Utc>, at: At) -> Vec<(ReminderKind, DateTime<Utc>)> {
        if self.status != TaskStatus::Open {
            return Vec::new();
        }
        KINDS
            .into_iter()
            .filter(|kind| !self.reminders_sent.contains(kind))
            .filter_map(|kind| Some((kind, self.fire_time(kind, due, at.overdue_after)?)))
            .filter(|(_, time)| *time <= at.now)
            .collect()
    }

    /// When the next unsent reminder fires; `None` when none is left or
    /// the task is not open (the sweep's index).
    pub fn next_reminder_time(&self, due: DateTime<Utc>, overdue_after: Duration) -> Option<DateTime<Utc>> {
        if self.status != TaskStatus::Open {
            return None;
        }
        KINDS
            .into_iter()
            .filter(|kind| !self.reminders_sent.contains(kind))
            .filter_map(|kind| self.fire_time(kind, due, overdue_after))
            .min()
    }

    /// Marks the task done by `actor` at `now`; false when it already was.
    pub fn complete(&mut self, actor: &str, now: DateTime<Utc>) -> bool {
        if self.status == TaskStatus::Completed {
            return false;
        }
        self.status = TaskStatus::Completed;
        self.complete_time = Some(now);
        self.completed_by = actor.to_owned();
        true
    }

    /// Reopens a completed task (reminders already sent stay sent); false
    /// when it was open.
    pub fn reopen(&mut self) -> bool {
        if self.status == TaskStatus::Open {
            return false;
        }
        self.status = TaskStatus::Open;
        self.complete_time = None;
        self.completed_by.clear();
        true
    }

    /// The next occurrence of a recurring task due at `due`: its due time
    /// and its state (the reminder offset kept), created at `at.now`.
    pub fn next_occurrence(&self, due: DateTime<Utc>, at: At) -> Option<(DateTime<Utc>, TaskState)> {
        let step = match self.recurrence {
            Recurrence::Daily => Duration::days(1),
            Recurrence::Weekly => Duration::weeks(1),
            Recurrence::Unspecified => return None,
        };
        // The next due time still ahead of now (a task completed late does
        // not spawn occurrences already past).
        let mut next = due.checked_add_signed(step)?;
        while next <= at.now {
            next = next.checked_add_signed(step)?;
        }
        let draft = TaskDraft {
            priority: self.priority,
            remind_time: self.remind_time.and_then(|remind| next.checked_sub_signed(due - remind)),
            recurrence: self.recurrence,
        };
        Some((next, draft.into_new(next, at)))
    }

    /// Whether an open task is past its due time at `now`.
    pub fn is_overdue(&self, due: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        self.status == TaskStatus::Open && due < now
    }
}

/// A priority's stored name (`HIGH`).
pub fn priority_name(priority: TaskPriority) -> &'static str {
    priority.as_str_name().trim_start_matches("TASK_PRIORITY_")
}

/// A stored priority back to the enum.
pub fn priority_from_name(name: &str) -> Result<TaskPriority, sqlx::Error> {
    rapport_kit::db::stored_enum("task_priority", "TASK_PRIORITY_", name, TaskPriority::from_str_name)
}

/// A status's stored name (`OPEN`).
pub fn status_name(status: TaskStatus) -> &'static str {
    status.as_str_name().trim_start_matches("TASK_STATUS_")
}

/// A stored status back to the enum.
pub fn status_from_name(name: &str) -> Result<TaskStatus, sqlx::Error> {
    rapport_kit::db::stored_enum("task_status", "TASK_STATUS_", name, TaskStatus::from_str_name)
}

/// A recurrence's stored name (empty for none).
pub fn recurrence_name(recurrence: Recurrence) -> &'static str {
    match recurrence {
        Recurrence::Unspecified => "",
        other => other.as_str_name().trim_start_matches("RECURRENCE_"),
    }
}

/// A stored recurrence back to the enum.
pub fn recurrence_from_name(name: &str) -> Result<Recurrence, sqlx::Error> {
    if name.is_empty() {
        return Ok(Recurrence::Unspecified);
    }
    rapport_kit::db::stored_enum("recurrence", "RECURRENCE_", name, Recurrence::from_str_name)
}

/// A reminder kind's stored name (`DUE`).
pub fn reminder_name(kind: ReminderKind) -> &'static str {
    kind.as_str_name().trim_start_matches("REMINDER_KIND_")
}

/// A stored reminder kind back to the enum.
pub fn reminder_from_name(name: &str) -> Result<ReminderKind, sqlx::Error> {
    rapport_kit::db::stored_enum("reminders_sent", "REMINDER_KIND_", name, ReminderKind::from_str_name)
}
