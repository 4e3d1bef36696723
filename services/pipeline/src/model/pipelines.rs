//! Stored pipelines, their stages, and lost reasons.

use chrono::{DateTime, Utc};

use crate::domain::ids::{PipelineId, StageId};
use crate::domain::pipeline::StageKind;

/// A stored lost reason.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LostReasonRecord {
    /// Id.
    pub id: uuid::Uuid,
    /// Label.
    pub label: String,
    /// Retired.
    pub retired: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Version for etags.
    pub version: i64,
}

/// A stored stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRecord {
    /// Id.
    pub id: StageId,
    /// Display name.
    pub name: String,
    /// Default probability, 0-100.
    pub probability: i32,
    /// What reaching it means.
    pub kind: StageKind,
    /// Position in the pipeline, 0 first.
    pub position: i32,
    /// Retired.
    pub retired: bool,
    /// Rotting period in days (0: the pipeline's).
    pub rotting_days: i32,
}

/// A stored pipeline with its stages in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineRecord {
    /// Id.
    pub id: PipelineId,
    /// Display name.
    pub name: String,
    /// The default pipeline.
    pub is_default: bool,
    /// Rotting period in days.
    pub rotting_days: i32,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed (itself or a stage).
    pub update_time: DateTime<Utc>,
    /// Soft-deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Version for etags.
    pub version: i64,
    /// Stages by position, retired ones included.
    pub stages: Vec<StageRecord>,
}
