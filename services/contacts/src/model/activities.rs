//! Stored activities, timeline entries and lifecycle transitions.

use chrono::{DateTime, Utc};
use rapport_proto::contacts::v1::{LifecycleCause, LifecycleStage, TimelineEntryKind, TimelineSource};

use crate::domain::activity::{ActivityId, ActivityState};

/// A stored activity.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityRecord {
    /// Id.
    pub id: ActivityId,
    /// Who logged it.
    pub actor_id: String,
    /// Fields.
    pub state: ActivityState,
    /// Logged.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Soft-deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Version for etags.
    pub version: i64,
}

/// A stored timeline entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// When.
    pub occur_time: DateTime<Utc>,
    /// Which service.
    pub source: TimelineSource,
    /// What.
    pub kind: TimelineEntryKind,
    /// Summary.
    pub title: String,
    /// Detail.
    pub detail: String,
    /// Who.
    pub actor_id: String,
    /// The record's type in its service.
    pub resource_type: String,
    /// The record's id.
    pub resource_id: String,
    /// The activity, for ACTIVITY entries.
    pub activity: Option<ActivityRecord>,
    /// The actor's display name, when a team lists them.
    pub actor_display_name: String,
}

/// A stored lifecycle move.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// Before.
    pub from_stage: LifecycleStage,
    /// After.
    pub to_stage: LifecycleStage,
    /// When.
    pub change_time: DateTime<Utc>,
    /// Who.
    pub actor_id: String,
    /// Why.
    pub cause: LifecycleCause,
    /// The reason given.
    pub reason: String,
    /// The deal or rule behind it.
    pub cause_id: String,
}
