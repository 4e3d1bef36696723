//! Applies the effects of other services' events (decoded by the feeds) in
//! the consumer's transaction: timeline entries (one per record, unique
//! per event), deal-caused lifecycle moves, activity link marks and
//! re-points, stage names and order → deal links. Returns the contacts
//! whose record changed (their cached copies must go).

use rapport_proto::common::v1::ChangeEvent;
use rapport_proto::contacts::v1::{TimelineEntryKind, TimelineSource};
use sqlx::PgConnection;
use uuid::Uuid;

use super::timeline::{self, Entry, Subject};
use crate::domain::activity::At;
use crate::domain::effects::{Effect, Fact, Happened};

/// The actor of changes the feeds cause here.
pub const ACTOR: &str = "contacts-feeds";

/// Applies one effect of `event` (from `source`).
pub async fn apply(
    tx: &mut PgConnection,
    source: TimelineSource,
    event: &ChangeEvent,
    effect: Effect,
    at: At,
) -> Result<Vec<Uuid>, sqlx::Error> {
    match effect {
        Effect::Timeline(happened) => {
            let entries = entries(tx, source, event, &happened).await?;
            timeline::insert(tx, &entries).await?;
            if happened.kind == TimelineEntryKind::CaseOpened {
                // Engagement rules count cases opened: rescore the requester.
                sqlx::query("INSERT INTO score_queue SELECT unnest($1::uuid[]) ON CONFLICT DO NOTHING")
                    .bind(&happened.contact_ids)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(Vec::new())
        }
        Effect::Lifecycle { contacts, to, cause, cause_id } => {
            let ids: Vec<crate::domain::ContactId> = contacts.into_iter().map(Into::into).collect();
            super::lifecycle::advance(tx, &ids, to, cause, &cause_id, ACTOR, occur_time(event)).await
        }
        Effect::LinkDeleted { link, id, deleted } => {
            super::activities::mark_link(tx, link.field(), id, deleted, ACTOR, at).await?;
            Ok(Vec::new())
        }
        Effect::CaseMerged { merged, survivor } => {
            super::activities::repoint_case(tx, merged, survivor, ACTOR, at).await?;
            Ok(Vec::new())
        }
        Effect::StageName { stage_id, name } => {
            sqlx::query(
                "INSERT INTO projected_stages (stage_id, name) VALUES ($1, $2) \
                 ON CONFLICT (stage_id) DO UPDATE SET name = excluded.name",
            )
            .bind(stage_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            Ok(Vec::new())
        }
        Effect::DealContacts { deal_id, contact_ids } => {
            sqlx::query(
                "INSERT INTO projected_deals (deal_id, contact_ids) VALUES ($1, $2) \
                 ON CONFLICT (deal_id) DO UPDATE SET contact_ids = excluded.contact_ids",
            )
            .bind(deal_id)
            .bind(contact_ids)
            .execute(&mut *tx)
            .await?;
            Ok(Vec::new())
        }
        Effect::Order { order_id, deal_id } => {
            sqlx::query(
                "INSERT INTO projected_orders (order_id, deal_id) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING",
            )
            .bind(order_id)
            .bind(deal_id)
            .execute(&mut *tx)
            .await?;
            Ok(Vec::new())
        }
    }
}

/// The entries `happened` makes: one per record it shows on.
async fn entries(
    tx: &mut PgConnection,
    source: TimelineSource,
    event: &ChangeEvent,
    happened: &Happened,
) -> Result<Vec<Entry>, sqlx::Error> {
    let mut contact_ids = happened.contact_ids.clone();
    let (title, detail, deal_id) = match &happened.fact {
        Fact::Deal { title, stage_id } => {
            let stage = match stage_id {
                Some(id) => stage_name(tx, *id).await?,
                None => None,
            };
            let (title, detail) = match happened.kind {
                TimelineEntryKind::DealOpened => (format!("Deal opened: {title}"), stage.unwrap_or_default()),
                TimelineEntryKind::DealWon => (format!("Deal won: {title}"), String::new()),
                TimelineEntryKind::DealLost => (format!("Deal lost: {title}"), String::new()),
                _ => (title.clone(), format!("moved to {}", stage.as_deref().unwrap_or("another stage"))),
            };
            (title, detail, happened.deal_id)
        }
        Fact::Invoice { number, order_id } => {
            let deal_id = match order_id {
                Some(order_id) => order_deal(tx, *order_id).await?,
                None => None,
            };
            if let Some(deal_id) = deal_id {
                contact_ids.extend(deal_contacts(tx, deal_id).await?);
            }
            let title = match happened.kind {
                TimelineEntryKind::InvoicePaid => format!("Invoice {number} paid"),
                _ => format!("Invoice {number} issued"),
            };
            (title, String::new(), deal_id)
        }
        Fact::Case { number, subject } => {
            let verb = if happened.kind == TimelineEntryKind::CaseResolved { "resolved" } else { "opened" };
            (format!("{number} {verb}: {subject}"), String::new(), happened.deal_id)
        }
    };
    contact_ids.sort_unstable();
    contact_ids.dedup();
    let mut subjects: Vec<Subject> = contact_ids.into_iter().map(Subject::Contact).collect();
    subjects.extend(happened.company_id.map(Subject::Company));
    subjects.extend(deal_id.map(Subject::Deal));
    subjects.extend(happened.case_id.map(Subject::Case));
    subjects.dedup();
    let occur_time = occur_time(event);
    let event_id = Uuid::parse_str(&event.event_id).ok();
    Ok(subjects
        .into_iter()
        .map(|subject| Entry {
            subject,
            occur_time,
            source,
            kind: happened.kind,
            title: title.clone(),
            detail: detail.clone(),
            actor_id: event.actor.clone(),
            resource_type: event.resource_type.clone(),
            resource_id: event.resource_id.clone(),
            activity_id: None,
            event_id,
        })
        .collect())
}

/// When `event` happened (its commit time in its service).
fn occur_time(event: &ChangeEvent) -> chrono::DateTime<chrono::Utc> {
    event
        .change_time
        .as_ref()
        .and_then(|time| {
            chrono::DateTime::from_timestamp(time.seconds, u32::try_from(time.nanos).unwrap_or(0))
        })
        .unwrap_or_else(rapport_kit::db::now)
}

async fn stage_name(tx: &mut PgConnection, stage_id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT name FROM projected_stages WHERE stage_id = $1")
        .bind(stage_id)
        .fetch_optional(&mut *tx)
        .await
}

async fn deal_contacts(tx: &mut PgConnection, deal_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let contacts: Option<Vec<Uuid>> =
        sqlx::query_scalar("SELECT contact_ids FROM projected_deals WHERE deal_id = $1")
            .bind(deal_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(contacts.unwrap_or_default())
}

async fn order_deal(tx: &mut PgConnection, order_id: Uuid) -> Result<Option<Uuid>, sqlx::Error> {
    let deal: Option<Option<Uuid>> =
        sqlx::query_scalar("SELECT deal_id FROM projected_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(deal.flatten())
}
