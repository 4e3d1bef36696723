//! Pipelines, stages and lost reasons on the wire.

use rapport_kit::changelog::timestamp;
use rapport_proto::pipeline::v1::{LostReason, Pipeline, Stage};

use crate::model::pipelines::LostReasonRecord;
use crate::model::pipelines::{PipelineRecord, StageRecord};
use rapport_kit::db::etag;

/// The wire form of a pipeline with its stages.
pub fn pipeline_to_proto(record: &PipelineRecord) -> Pipeline {
    Pipeline {
        id: record.id.to_string(),
        name: record.name.clone(),
        stages: record.stages.iter().map(stage_to_proto).collect(),
        is_default: record.is_default,
        rotting_days: Some(record.rotting_days),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
        delete_time: record.delete_time.map(timestamp),
        etag: etag(record.version),
    }
}

fn stage_to_proto(record: &StageRecord) -> Stage {
    Stage {
        id: record.id.to_string(),
        name: record.name.clone(),
        probability: Some(record.probability),
        kind: record.kind.to_proto().into(),
        position: record.position,
        retired: record.retired,
        rotting_days: record.rotting_days,
    }
}

/// The wire form of a lost reason.
pub fn lost_reason_to_proto(record: &LostReasonRecord) -> LostReason {
    LostReason {
        id: record.id.to_string(),
        label: record.label.clone(),
        retired: record.retired,
        create_time: Some(timestamp(record.create_time)),
        etag: etag(record.version),
    }
}
