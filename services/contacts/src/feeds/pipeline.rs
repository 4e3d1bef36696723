//! What Pipeline's change events do here: deals opened, moved, won and
//! lost, orders invoiced and invoices paid join the timelines of the deal,
//! its company and its contacts; a contact's first open deal makes it an
//! OPPORTUNITY and its first won deal a CUSTOMER; a deleted deal is marked
//! on the activities linking it; stage names and which deal an order came
//! from are kept for the entries' words.

use anyhow::Context as _;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::{LifecycleCause, LifecycleStage, TimelineEntryKind};
use rapport_proto::pipeline::v1::{Deal, DealStatus, Invoice, InvoiceStatus, Order, Pipeline, Stage};
use uuid::Uuid;

use super::{Effect, Fact, Happened, Link};

/// Pipeline's resource types this service follows.
pub const DEAL: &str = "rapport.pipeline.v1.Deal";
/// Orders.
pub const ORDER: &str = "rapport.pipeline.v1.Order";
/// Invoices.
pub const INVOICE: &str = "rapport.pipeline.v1.Invoice";
/// Pipelines (their stages' names).
pub const PIPELINE: &str = "rapport.pipeline.v1.Pipeline";
/// Stages.
pub const STAGE: &str = "rapport.pipeline.v1.Stage";

/// Every type asked of the feed.
pub const TYPES: &[&str] = &[DEAL, ORDER, INVOICE, PIPELINE, STAGE];

fn id(raw: &str, what: &str) -> anyhow::Result<Uuid> {
    Uuid::parse_str(raw).with_context(|| format!("{what} id {raw:?}"))
}

fn optional_id(raw: &str) -> Option<Uuid> {
    Uuid::parse_str(raw).ok()
}

fn resource<M: prost::Message + Default>(event: &ChangeEvent) -> anyhow::Result<M> {
    let bytes = event.resource.as_ref().map(|any| any.value.as_slice()).unwrap_or_default();
    M::decode(bytes).with_context(|| format!("decoding {} {}", event.resource_type, event.resource_id))
}

/// What `event` does here.
pub fn effects(event: &ChangeEvent) -> anyhow::Result<Vec<Effect>> {
    let kind = ChangeKind::try_from(event.kind).unwrap_or_default();
    let changed = |path: &str| event.field_paths.iter().any(|field| field == path);
    Ok(match event.resource_type.as_str() {
        DEAL => deal(event, kind, &changed)?,
        ORDER if kind == ChangeKind::Created => {
            let order: Order = resource(event)?;
            vec![Effect::Order { order_id: id(&order.id, "order")?, deal_id: optional_id(&order.deal_id) }]
        }
        INVOICE => invoice(event, kind, &changed)?,
        PIPELINE => {
            let pipeline: Pipeline = resource(event)?;
            stage_names(&pipeline.stages)
        }
        STAGE => {
            let stage: Stage = resource(event)?;
            stage_names(std::slice::from_ref(&stage))
        }
        _ => Vec::new(),
    })
}

fn stage_names(stages: &[Stage]) -> Vec<Effect> {
    stages
        .iter()
        .filter_map(|stage| {
            Some(Effect::StageName { stage_id: optional_id(&stage.id)?, name: stage.name.clone() })
        })
        .collect()
}

fn deal(
    event: &ChangeEvent,
    kind: ChangeKind,
    changed: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Vec<Effect>> {
    let deal_id = id(&event.resource_id, "deal")?;
    match kind {
        ChangeKind::Deleted => {
            return Ok(vec![Effect::LinkDeleted { link: Link::Deal, id: deal_id, deleted: true }]);
        }
        ChangeKind::Undeleted => {
            return Ok(vec![Effect::LinkDeleted { link: Link::Deal, id: deal_id, deleted: false }]);
        }
        _ => {}
    }
    let deal: Deal = resource(event)?;
    let status = DealStatus::try_from(deal.status).unwrap_or_default();
    let contacts: Vec<Uuid> =
        deal.contacts.iter().filter_map(|contact| optional_id(&contact.contact_id)).collect();
    let happened = match kind {
        ChangeKind::Created => Some(TimelineEntryKind::DealOpened),
        ChangeKind::Updated if changed("status") && status == DealStatus::Won => {
            Some(TimelineEntryKind::DealWon)
        }
        ChangeKind::Updated if changed("status") && status == DealStatus::Lost => {
            Some(TimelineEntryKind::DealLost)
        }
        ChangeKind::Updated if changed("stage_id") => Some(TimelineEntryKind::DealStageChanged),
        _ => None,
    };
    let mut effects = vec![Effect::DealContacts { deal_id, contact_ids: contacts.clone() }];
    if let Some(kind) = happened {
        effects.push(Effect::Timeline(Happened {
            kind,
            fact: Fact::Deal { title: deal.title.clone(), stage_id: optional_id(&deal.stage_id) },
            deal_id: Some(deal_id),
            company_id: optional_id(&deal.company_id),
            contact_ids: contacts.clone(),
            case_id: None,
        }));
    }
    // Contacts on an open deal are opportunities (also when added to one
    // later); on a won deal, customers. Only forward moves apply.
    let stage = match status {
        DealStatus::Open if kind == ChangeKind::Created || changed("contacts") => {
            Some((LifecycleStage::Opportunity, LifecycleCause::DealOpened))
        }
        DealStatus::Won if changed("status") || changed("contacts") => {
            Some((LifecycleStage::Customer, LifecycleCause::DealWon))
        }
        _ => None,
    };
    if let Some((to, cause)) = stage
        && !contacts.is_empty()
    {
        effects.push(Effect::Lifecycle { contacts, to, cause, cause_id: deal_id.to_string() });
    }
    Ok(effects)
}

fn invoice(
    event: &ChangeEvent,
    kind: ChangeKind,
    changed: &dyn Fn(&str) -> bool,
) -> anyhow::Result<Vec<Effect>> {
    let invoice: Invoice = resource(event)?;
    let status = InvoiceStatus::try_from(invoice.status).unwrap_or_default();
    let happened = match kind {
        ChangeKind::Created => TimelineEntryKind::OrderInvoiced,
        ChangeKind::Updated if changed("status") && status == InvoiceStatus::Paid => {
            TimelineEntryKind::InvoicePaid
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![Effect::Timeline(Happened {
        kind: happened,
        fact: Fact::Invoice { number: invoice.number.clone(), order_id: optional_id(&invoice.order_id) },
        deal_id: None,
        company_id: optional_id(&invoice.company_id),
        contact_ids: Vec::new(),
        case_id: None,
    })])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use prost::Message as _;
    use rapport_proto::pipeline::v1::DealContact;

    fn event(kind: ChangeKind, deal: &Deal, paths: &[&str]) -> ChangeEvent {
        ChangeEvent {
            resource_type: DEAL.into(),
            resource_id: deal.id.clone(),
            kind: kind as i32,
            field_paths: paths.iter().map(|path| (*path).to_owned()).collect(),
            resource: Some(prost_types::Any { type_url: String::new(), value: deal.encode_to_vec() }),
            ..ChangeEvent::default()
        }
    }

    fn deal(status: DealStatus) -> Deal {
        Deal {
            id: Uuid::now_v7().to_string(),
            title: "Acme renewal".into(),
            status: status as i32,
            contacts: vec![DealContact { contact_id: Uuid::now_v7().to_string(), role: 1 }],
            ..Deal::default()
        }
    }

    fn kinds(effects: &[Effect]) -> Vec<String> {
        effects
            .iter()
            .map(|effect| match effect {
                Effect::Timeline(happened) => format!("{:?}", happened.kind),
                Effect::Lifecycle { to, .. } => format!("to {to:?}"),
                other => format!("{other:?}"),
            })
            .filter(|kind| !kind.starts_with("DealContacts"))
            .collect()
    }

    #[test]
    fn deals_opened_moved_won_and_lost_join_timelines_and_move_contacts_forward() {
        let open = deal(DealStatus::Open);
        assert_eq!(
            kinds(&effects(&event(ChangeKind::Created, &open, &[])).unwrap()),
            ["DealOpened", "to Opportunity"]
        );
        assert_eq!(
            kinds(&effects(&event(ChangeKind::Updated, &open, &["stage_id"])).unwrap()),
            ["DealStageChanged"]
        );
        assert!(kinds(&effects(&event(ChangeKind::Updated, &open, &["title"])).unwrap()).is_empty());
        let won = deal(DealStatus::Won);
        assert_eq!(
            kinds(&effects(&event(ChangeKind::Updated, &won, &["stage_id", "status"])).unwrap()),
            ["DealWon", "to Customer"]
        );
        let lost = deal(DealStatus::Lost);
        assert_eq!(
            kinds(&effects(&event(ChangeKind::Updated, &lost, &["stage_id", "status"])).unwrap()),
            ["DealLost"]
        );
        let deleted = effects(&event(ChangeKind::Deleted, &open, &[])).unwrap();
        assert!(matches!(deleted[..], [Effect::LinkDeleted { link: Link::Deal, deleted: true, .. }]));
    }

    #[test]
    fn an_undecodable_deal_is_an_error() {
        let mut broken = event(ChangeKind::Created, &deal(DealStatus::Open), &[]);
        broken.resource = Some(prost_types::Any { type_url: String::new(), value: vec![0xff, 0xff] });
        assert!(effects(&broken).is_err());
    }
}
