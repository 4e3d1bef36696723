//! What Support's change events do here: cases opened and resolved join
//! the timelines of the case, its requester, its company and its deal; a
//! deleted case is marked on the activities linking it, and a case merged
//! into another has its activities re-pointed to the survivor.

use anyhow::Context as _;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::TimelineEntryKind;
use rapport_proto::support::v1::{Case, CaseStatus};
use uuid::Uuid;

use super::{Effect, Fact, Happened, Link};

/// Support's cases.
pub const CASE: &str = "rapport.support.v1.Case";

/// Every type asked of the feed.
pub const TYPES: &[&str] = &[CASE];

/// What `event` does here.
pub fn effects(event: &ChangeEvent) -> anyhow::Result<Vec<Effect>> {
    if event.resource_type != CASE {
        return Ok(Vec::new());
    }
    let case_id =
        Uuid::parse_str(&event.resource_id).with_context(|| format!("case id {:?}", event.resource_id))?;
    let kind = ChangeKind::try_from(event.kind).unwrap_or_default();
    match kind {
        ChangeKind::Deleted => {
            return Ok(vec![Effect::LinkDeleted { link: Link::Case, id: case_id, deleted: true }]);
        }
        ChangeKind::Undeleted => {
            return Ok(vec![Effect::LinkDeleted { link: Link::Case, id: case_id, deleted: false }]);
        }
        _ => {}
    }
    let bytes = event.resource.as_ref().map(|any| any.value.as_slice()).unwrap_or_default();
    let case = <Case as prost::Message>::decode(bytes).with_context(|| format!("decoding case {case_id}"))?;
    let status = CaseStatus::try_from(case.status).unwrap_or_default();
    let changed = |path: &str| event.field_paths.iter().any(|field| field == path);
    let happened = match kind {
        ChangeKind::Created => Some(TimelineEntryKind::CaseOpened),
        ChangeKind::Updated if changed("status") && status == CaseStatus::Resolved => {
            Some(TimelineEntryKind::CaseResolved)
        }
        _ => None,
    };
    let mut effects = Vec::new();
    if let Some(kind) = happened {
        effects.push(Effect::Timeline(Happened {
            kind,
            fact: Fact::Case { number: case.number.clone(), subject: case.subject.clone() },
            deal_id: Uuid::parse_str(&case.deal_id).ok(),
            company_id: Uuid::parse_str(&case.company_id).ok(),
            contact_ids: Uuid::parse_str(&case.requester_contact_id).ok().into_iter().collect(),
            case_id: Some(case_id),
        }));
    }
    if changed("merged_into_case_id")
        && let Ok(survivor) = Uuid::parse_str(&case.merged_into_case_id)
    {
        effects.push(Effect::CaseMerged { merged: case_id, survivor });
    }
    Ok(effects)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message as _;

    fn event(kind: ChangeKind, case: &Case, paths: &[&str]) -> ChangeEvent {
        ChangeEvent {
            resource_type: CASE.into(),
            resource_id: case.id.clone(),
            kind: kind as i32,
            field_paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            resource: Some(prost_types::Any { type_url: String::new(), value: case.encode_to_vec() }),
            ..ChangeEvent::default()
        }
    }

    #[test]
    fn cases_opened_resolved_and_merged() {
        let mut case = Case {
            id: Uuid::now_v7().to_string(),
            number: "CASE-1001".into(),
            requester_contact_id: Uuid::now_v7().to_string(),
            status: CaseStatus::New as i32,
            ..Case::default()
        };
        let opened = effects(&event(ChangeKind::Created, &case, &[])).unwrap();
        assert!(
            matches!(&opened[..], [Effect::Timeline(h)] if h.kind == TimelineEntryKind::CaseOpened && h.contact_ids.len() == 1)
        );
        case.status = CaseStatus::Resolved as i32;
        let resolved = effects(&event(ChangeKind::Updated, &case, &["status"])).unwrap();
        assert!(matches!(&resolved[..], [Effect::Timeline(h)] if h.kind == TimelineEntryKind::CaseResolved));
        assert!(effects(&event(ChangeKind::Updated, &case, &["priority"])).unwrap().is_empty());
        let survivor = Uuid::now_v7();
        case.status = CaseStatus::Closed as i32;
        case.merged_into_case_id = survivor.to_string();
        let merged = effects(&event(ChangeKind::Updated, &case, &["status", "merged_into_case_id"])).unwrap();
        assert!(matches!(&merged[..], [Effect::CaseMerged { survivor: s, .. }] if *s == survivor));
    }
}
