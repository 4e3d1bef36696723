//! Pipelines, their stages and lost reasons: how client input is parsed
//! into them and the rules a pipeline's stages keep.

use std::collections::HashSet;

use rapport_kit::fields::{self, Violation};
use rapport_proto::pipeline::v1 as proto;

/// What reaching a stage means for a deal (never unspecified).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// The deal is still being worked.
    Open,
    /// Reaching the stage wins the deal.
    Won,
    /// Reaching the stage loses the deal.
    Lost,
}

impl StageKind {
    /// Every kind, in the order a pipeline must have them.
    pub const ALL: [StageKind; 3] = [StageKind::Open, StageKind::Won, StageKind::Lost];

    /// The stored name (the proto name without its prefix).
    pub fn name(self) -> &'static str {
        match self {
            StageKind::Open => "OPEN",
            StageKind::Won => "WON",
            StageKind::Lost => "LOST",
        }
    }

    /// The kind a stored name means; `None` for a name this build does not
    /// know (never a default).
    pub fn from_name(name: &str) -> Option<StageKind> {
        match name {
            "OPEN" => Some(StageKind::Open),
            "WON" => Some(StageKind::Won),
            "LOST" => Some(StageKind::Lost),
            _ => None,
        }
    }

    /// The wire value.
    pub fn to_proto(self) -> proto::StageKind {
        match self {
            StageKind::Open => proto::StageKind::Open,
            StageKind::Won => proto::StageKind::Won,
            StageKind::Lost => proto::StageKind::Lost,
        }
    }

    /// Parses a wire value; unspecified and unknown values are violations.
    pub fn parse(field: &str, raw: i32) -> Result<StageKind, Violation> {
        match proto::StageKind::try_from(raw) {
            Ok(proto::StageKind::Open) => Ok(StageKind::Open),
            Ok(proto::StageKind::Won) => Ok(StageKind::Won),
            Ok(proto::StageKind::Lost) => Ok(StageKind::Lost),
            _ => {
                Err(Violation::new(field, "is required: STAGE_KIND_OPEN, STAGE_KIND_WON or STAGE_KIND_LOST"))
            }
        }
    }

    /// The default probability of a WON or LOST stage given none.
    fn default_probability(self) -> i32 {
        match self {
            StageKind::Won => 100,
            StageKind::Open | StageKind::Lost => 0,
        }
    }
}

/// A validated new stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageDraft {
    /// Display name, trimmed.
    pub name: String,
    /// Default win probability, 0-100.
    pub probability: i32,
    /// What reaching it means.
    pub kind: StageKind,
    /// Days before a deal in it is stale; 0 uses the pipeline's.
    pub rotting_days: i32,
}

/// A stage name: 1-100 characters.
pub fn stage_name(field: &str, raw: &str) -> Result<String, Violation> {
    fields::text(field, raw, true, 100)
}

/// A probability: 0-100.
pub fn probability(field: &str, raw: i32) -> Result<i32, Violation> {
    if (0..=100).contains(&raw) { Ok(raw) } else { Err(Violation::new(field, "must be between 0 and 100")) }
}

/// A rotting period in days: not negative.
pub fn rotting_days(field: &str, raw: i32) -> Result<i32, Violation> {
    if raw >= 0 { Ok(raw) } else { Err(Violation::new(field, "must not be negative")) }
}

impl StageDraft {
    /// Parses a new stage; `prefix` is its path (e.g. `pipeline.stages[2]`).
    /// Without a probability a WON stage gets 100 and a LOST stage 0; an
    /// OPEN stage needs one.
    pub fn parse(prefix: &str, input: &proto::Stage) -> Result<StageDraft, Vec<Violation>> {
        let mut violations = Vec::new();
        let name = stage_name(&format!("{prefix}.name"), &input.name).map_err(|v| violations.push(v)).ok();
        let kind =
            StageKind::parse(&format!("{prefix}.kind"), input.kind).map_err(|v| violations.push(v)).ok();
        let field = format!("{prefix}.probability");
        let probability = match (kind, input.probability) {
            (_, Some(raw)) => probability(&field, raw).map_err(|v| violations.push(v)).ok(),
            (Some(StageKind::Open), None) => {
                violations.push(Violation::new(field, "is required for an OPEN stage (0-100)"));
                None
            }
            (Some(kind), None) => Some(kind.default_probability()),
            (None, None) => None,
        };
        let rotting = rotting_days(&format!("{prefix}.rotting_days"), input.rotting_days)
            .map_err(|v| violations.push(v))
            .ok();
        match (name, kind, probability, rotting) {
            (Some(name), Some(kind), Some(probability), Some(rotting_days)) if violations.is_empty() => {
                Ok(StageDraft { name, probability, kind, rotting_days })
            }
            _ => Err(violations),
        }
    }
}

/// The rotting period of a pipeline created without one.
pub const DEFAULT_ROTTING_DAYS: i32 = 30;

/// A validated new pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineDraft {
    /// Display name, trimmed.
    pub name: String,
    /// Whether it becomes the default pipeline.
    pub is_default: bool,
    /// Days before an open deal is stale; 0 never.
    pub rotting_days: i32,
    /// The stages in order.
    pub stages: Vec<StageDraft>,
}

/// A pipeline name: 1-100 characters.
pub fn pipeline_name(field: &str, raw: &str) -> Result<String, Violation> {
    fields::text(field, raw, true, 100)
}

/// The most stages a pipeline has (retired ones included).
pub const MAX_STAGES: usize = 50;

impl PipelineDraft {
    /// Parses a CreatePipeline input, reporting every violation at once.
    /// `rotting_days` unset gets the default of 30.
    pub fn parse(input: &proto::Pipeline) -> Result<PipelineDraft, Vec<Violation>> {
        let mut violations = Vec::new();
        let name = pipeline_name("pipeline.name", &input.name).map_err(|v| violations.push(v)).ok();
        let raw_rotting = input.rotting_days.unwrap_or(DEFAULT_ROTTING_DAYS);
        let rotting = rotting_days("pipeline.rotting_days", raw_rotting).map_err(|v| violations.push(v)).ok();
        fields::cap("pipeline.stages", &input.stages, MAX_STAGES).map_err(|cap| vec![cap])?;
        let mut stages = Vec::new();
        for (index, stage) in input.stages.iter().enumerate() {
            match StageDraft::parse(&format!("pipeline.stages[{index}]"), stage) {
                Ok(stage) => stages.push(stage),
                Err(mut found) => violations.append(&mut found),
            }
        }
        if violations.is_empty() {
            violations.extend(stage_rules(&stages));
        }
        match (name, rotting) {
            (Some(name), Some(rotting_days)) if violations.is_empty() => {
                Ok(PipelineDraft { name, is_default: input.is_default, rotting_days, stages })
            }
            _ => Err(violations),
        }
    }
}

/// The rules a new pipeline's stages keep: one of each kind at least, and
/// unique names (case-insensitive).
fn stage_rules(stages: &[StageDraft]) -> Vec<Violation> {
    let mut violations = Vec::new();
    for kind in StageKind::ALL {
        if !stages.iter().any(|stage| stage.kind == kind) {
            violations
                .push(Violation::new("pipeline.stages", format!("needs at least one {} stage", kind.name())));
        }
    }
    let mut seen = HashSet::new();
    for (index, stage) in stages.iter().enumerate() {
        if !seen.insert(stage.name.to_lowercase()) {
            violations.push(Violation::new(
                format!("pipeline.stages[{index}].name"),
                format!("{:?} is used by another stage of the pipeline", stage.name),
            ));
        }
    }
    violations
}

/// Parses an update mask against the updatable `allowed` paths: each
/// unknown path is a violation of `update_mask`; an empty mask is refused.
pub fn parse_mask(paths: &[String], allowed: &[&'static str]) -> Result<Vec<&'static str>, Vec<Violation>> {
    if paths.is_empty() {
        return Err(vec![Violation::new("update_mask", "must name at least one field to update")]);
    }
    fields::cap_mask(paths).map_err(|violation| vec![violation])?;
    let mut fields = Vec::new();
    let mut violations = Vec::new();
    for path in paths {
        match allowed.iter().find(|allowed| **allowed == path.as_str()) {
            Some(field) if !fields.contains(field) => fields.push(*field),
            Some(_) => {}
            None => violations.push(Violation::new(
                "update_mask",
                format!("{path:?} is not updatable; updatable: {}", allowed.join(", ")),
            )),
        }
    }
    if violations.is_empty() { Ok(fields) } else { Err(violations) }
}

/// Updatable pipeline fields.
pub const PIPELINE_FIELDS: &[&str] = &["name", "is_default", "rotting_days"];
/// Updatable stage fields.
pub const STAGE_FIELDS: &[&str] = &["name", "probability", "rotting_days"];
/// Updatable lost reason fields.
pub const LOST_REASON_FIELDS: &[&str] = &["label", "retired"];

/// A validated UpdatePipeline: the new value of each masked field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelinePatch {
    /// New name.
    pub name: Option<String>,
    /// Make it the default (only `true` is accepted).
    pub make_default: bool,
    /// New rotting period.
    pub rotting_days: Option<i32>,
}

impl PipelinePatch {
    /// Parses the masked fields of `input`.
    pub fn parse(input: &proto::Pipeline, paths: &[String]) -> Result<PipelinePatch, Vec<Violation>> {
        let fields = parse_mask(paths, PIPELINE_FIELDS)?;
        let mut patch = PipelinePatch::default();
        let mut violations = Vec::new();
        for field in fields {
            match field {
                "name" => {
                    patch.name =
                        pipeline_name("pipeline.name", &input.name).map_err(|v| violations.push(v)).ok()
                }
                "is_default" if !input.is_default => violations.push(Violation::new(
                    "pipeline.is_default",
                    "cannot be set to false: make another pipeline the default instead",
                )),
                "is_default" => patch.make_default = true,
                _ => {
                    patch.rotting_days =
                        rotting_days("pipeline.rotting_days", input.rotting_days.unwrap_or(0))
                            .map_err(|v| violations.push(v))
                            .ok()
                }
            }
        }
        if violations.is_empty() { Ok(patch) } else { Err(violations) }
    }
}

/// A validated UpdateStage: the new value of each masked field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StagePatch {
    /// New name.
    pub name: Option<String>,
    /// New default probability.
    pub probability: Option<i32>,
    /// New rotting period.
    pub rotting_days: Option<i32>,
}

impl StagePatch {
    /// Parses the masked fields of `input`.
    pub fn parse(input: &proto::Stage, paths: &[String]) -> Result<StagePatch, Vec<Violation>> {
        let fields = parse_mask(paths, STAGE_FIELDS)?;
        let mut patch = StagePatch::default();
        let mut violations = Vec::new();
        for field in fields {
            match field {
                "name" => {
                    patch.name = stage_name("stage.name", &input.name).map_err(|v| violations.push(v)).ok()
                }
                "probability" => {
                    patch.probability = match input.probability {
                        Some(raw) => probability("stage.probability", raw),
                        None => {
                            Err(Violation::new("stage.probability", "is required when named in the mask"))
                        }
                    }
                    .map_err(|v| violations.push(v))
                    .ok()
                }
                _ => {
                    patch.rotting_days = rotting_days("stage.rotting_days", input.rotting_days)
                        .map_err(|v| violations.push(v))
                        .ok()
                }
            }
        }
        if violations.is_empty() { Ok(patch) } else { Err(violations) }
    }
}

/// A lost reason label: 1-200 characters.
pub fn lost_reason_label(field: &str, raw: &str) -> Result<String, Violation> {
    fields::text(field, raw, true, 200)
}

/// The default pipeline's stages: (name, kind, probability).
pub const DEFAULT_STAGES: [(&str, StageKind, i32); 6] = [
    ("Qualification", StageKind::Open, 10),
    ("Needs analysis", StageKind::Open, 25),
    ("Proposal", StageKind::Open, 50),
    ("Negotiation", StageKind::Open, 75),
    ("Closed won", StageKind::Won, 100),
    ("Closed lost", StageKind::Lost, 0),
];

/// The default lost reasons.
pub const DEFAULT_LOST_REASONS: [&str; 6] =
    ["Price", "Competitor", "No budget", "No decision", "Timing", "Other"];

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(name: &str, kind: proto::StageKind, probability: i32) -> proto::Stage {
        proto::Stage {
            name: name.into(),
            kind: kind.into(),
            probability: Some(probability),
            ..Default::default()
        }
    }

    #[test]
    fn closing_stages_default_their_probability_and_open_ones_need_one() {
        let unset = |kind: proto::StageKind| proto::Stage { probability: None, ..stage("S", kind, 0) };
        assert_eq!(StageDraft::parse("s", &unset(proto::StageKind::Won)).unwrap().probability, 100);
        assert_eq!(StageDraft::parse("s", &unset(proto::StageKind::Lost)).unwrap().probability, 0);
        // Set explicitly, even 0 is kept (proto3 `optional` tells unset from 0).
        assert_eq!(StageDraft::parse("s", &stage("Won", proto::StageKind::Won, 0)).unwrap().probability, 0);
        let refused = StageDraft::parse("s", &unset(proto::StageKind::Open)).unwrap_err();
        assert_eq!(refused.iter().map(|v| v.field.as_str()).collect::<Vec<_>>(), ["s.probability"]);
    }

    #[test]
    fn pipeline_reports_every_violation() {
        let input = proto::Pipeline {
            name: " ".into(),
            rotting_days: Some(-1),
            stages: vec![
                stage("A", proto::StageKind::Open, 101),
                stage("", proto::StageKind::Unspecified, 0),
            ],
            ..Default::default()
        };
        let fields: Vec<String> =
            PipelineDraft::parse(&input).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "pipeline.name",
                "pipeline.rotting_days",
                "pipeline.stages[0].probability",
                "pipeline.stages[1].name",
                "pipeline.stages[1].kind"
            ]
        );
    }

    #[test]
    fn pipeline_needs_each_kind_and_unique_names() {
        let input = proto::Pipeline {
            name: "P".into(),
            stages: vec![stage("A", proto::StageKind::Open, 5), stage("a", proto::StageKind::Won, 0)],
            ..Default::default()
        };
        let fields: Vec<String> =
            PipelineDraft::parse(&input).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["pipeline.stages", "pipeline.stages[1].name"]);
    }

    #[test]
    fn default_cannot_be_cleared() {
        let err = PipelinePatch::parse(&proto::Pipeline::default(), &["is_default".into()]).unwrap_err();
        assert_eq!(err[0].field, "pipeline.is_default");
    }
}
