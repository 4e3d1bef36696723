//! Following Contacts' change feed (kit's [`consumer`], feed `contacts`):
//! a company or contact deleted in Contacts is dropped from live deals.
//!
//! - Company DELETED: live deals with that `company_id` lose it (NULL).
//!   Orders and invoices keep theirs (accounting history).
//! - Contact DELETED: live deals naming it lose it and its role.
//! - Each changed deal gets its version bumped and an UPDATED Deal change
//!   (`field_paths` `company_id` or `contacts`, actor `contacts-feed`), in
//!   the consumer's transaction, so the effect and the cursor commit
//!   together and an event is applied once.
//! - UNDELETED and everything else does nothing: a restored company or
//!   contact is not put back on deals (the deals were changed visibly;
//!   users re-add it).
//! - Activity (a call, meeting, email or note that happened, or a
//!   completed task, linking a deal): the deal's `last_activity_time`
//!   moves forward to it, so ListStaleDeals counts what the team did with
//!   the customer, not only edits of the deal row. It is an output-only
//!   time: no new version and no Deal change (the Activity event is the
//!   record of it).
//! - Merges and erasures: Contacts does not emit them yet. When it does,
//!   each is one more arm of [`effect`] (a merge would replace the loser by
//!   the winner; an erasure is handled like a delete).
//! - Resync (the stored cursor is older than Contacts' retention): every
//!   company and contact live deals name is checked against Contacts
//!   (GetCompany each, BatchGetContacts in chunks of 500), and those
//!   missing or deleted are dropped as above. The Contacts calls happen
//!   inside the consumer's transaction (holding the cursor row, not the
//!   deals, until the removals).
//! - Watchers of Pipeline's own feed are woken by [`Handler::committed`],
//!   after the consumer's commit.
//!
//! The consumer acts as the service itself through the kit's peer client:
//! `PIPELINE_CONTACTS_API_KEY`, or else tokens it mints with the HS256
//! secret (subject `pipeline`, role `integration`, valid one hour, a new one
//! at half-life). With neither (JWKS verification and no API key),
//! [`spawn`] logs an error and does not start it.

use anyhow::Context as _;
use rapport_kit::auth::Role;
use rapport_kit::changelog::Feed;
use rapport_kit::consumer::{self, ConsumerConfig, ConsumerHandle, Handler};
use rapport_kit::metrics::Metrics;
use rapport_kit::peer::{Identity, OnBehalf};
use rapport_kit::shutdown::Shutdown;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use sqlx::{PgConnection, PgPool};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::config::Config;
use crate::contacts::Contacts;
use crate::store::deals::references;

/// The feed's name (its cursor, lease and metrics).
pub const FEED: &str = "contacts";
/// The resource type of Contacts' contacts.
pub const CONTACT: &str = "rapport.contacts.v1.Contact";
/// The resource type of Contacts' companies.
pub const COMPANY: &str = "rapport.contacts.v1.Company";
/// The resource type of Contacts' activities.
pub const ACTIVITY: &str = "rapport.contacts.v1.Activity";
/// The actor of the deal changes the feed makes.
pub const ACTOR: &str = "contacts-feed";
/// The subject of the tokens the service mints for itself.
pub const SUBJECT: &str = "pipeline";

/// Contacts asked for at once in a resync (BatchGetContacts takes 1000).
const CHUNK: usize = 500;

/// How the service authenticates as itself with Contacts (see
/// `rapport_kit::peer::Identity`): its API key, else tokens it mints.
pub fn identity(config: &Config) -> anyhow::Result<Option<Identity>> {
    Identity::of(&config.contacts, &config.service.auth, SUBJECT, &[Role::Integration])
}

/// What an event does to deals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Live deals lose this company.
    DropCompany(Uuid),
    /// Live deals lose this contact.
    DropContact(Uuid),
    /// Contacts undeleted this company or contact: deals may name it again
    /// (its tombstone goes; the deals that lost it do not get it back).
    Restore(Uuid),
    /// Someone touched the customer on this deal at this time.
    Touched(Uuid, chrono::DateTime<chrono::Utc>),
    /// Nothing.
    Nothing,
}

/// What `event` does to deals (merges and erasures: one arm each, later).
pub fn effect(event: &ChangeEvent) -> anyhow::Result<Effect> {
    let kind = ChangeKind::try_from(event.kind).unwrap_or_default();
    let id = || {
        Uuid::parse_str(&event.resource_id)
            .with_context(|| format!("{} id {:?}", event.resource_type, event.resource_id))
    };
    Ok(match (event.resource_type.as_str(), kind) {
        (COMPANY, ChangeKind::Deleted) => Effect::DropCompany(id()?),
        (CONTACT, ChangeKind::Deleted) => Effect::DropContact(id()?),
        (COMPANY | CONTACT, ChangeKind::Undeleted) => Effect::Restore(id()?),
        (ACTIVITY, ChangeKind::Created | ChangeKind::Updated | ChangeKind::Undeleted) => touched(event)?,
        _ => Effect::Nothing,
    })
}

/// The deal an activity event touches, and when: a call, meeting, email
/// or note when it happened (not one planned for later), a task when it
/// was completed.
fn touched(event: &ChangeEvent) -> anyhow::Result<Effect> {
    use prost::Message as _;
    use rapport_proto::contacts::v1::Activity;
    let bytes = event.resource.as_ref().map(|any| any.value.as_slice()).unwrap_or_default();
    let activity =
        Activity::decode(bytes).with_context(|| format!("decoding activity {}", event.resource_id))?;
    let (Ok(deal_id), None) = (Uuid::parse_str(&activity.deal_id), &activity.delete_time) else {
        return Ok(Effect::Nothing);
    };
    let time = |stamp: &prost_types::Timestamp| {
        chrono::DateTime::from_timestamp(stamp.seconds, u32::try_from(stamp.nanos).unwrap_or(0))
    };
    let change_time = event.change_time.as_ref().and_then(time);
    let when = match &activity.task {
        Some(task) => task.complete_time.as_ref().and_then(time),
        None => {
            activity.occur_time.as_ref().and_then(time).filter(|at| change_time.is_none_or(|now| *at <= now))
        }
    };
    Ok(when.map_or(Effect::Nothing, |when| Effect::Touched(deal_id, when)))
}

/// The consumer's handler.
pub struct ContactsFeed {
    contacts: Contacts,
    feed: Feed,
}

impl ContactsFeed {
    /// Applies `effect` in `tx`; returns the deals changed.
    async fn drop(tx: &mut PgConnection, effect: Effect) -> anyhow::Result<usize> {
        Ok(match effect {
            Effect::DropCompany(id) => references::drop_company(tx, id, ACTOR).await?,
            Effect::DropContact(id) => references::drop_contact(tx, id, ACTOR).await?,
            Effect::Restore(id) => {
                references::restore(tx, id).await?;
                0
            }
            Effect::Touched(deal_id, time) => {
                references::touch(tx, deal_id, time).await?;
                0
            }
            Effect::Nothing => 0,
        })
    }
}

#[tonic::async_trait]
impl Handler for ContactsFeed {
    async fn apply(&self, tx: &mut PgConnection, event: &ChangeEvent) -> anyhow::Result<()> {
        // A malformed id never parses: set the event aside rather than stall.
        let effect = effect(event).map_err(rapport_kit::consumer::poison)?;
        let changed = ContactsFeed::drop(tx, effect).await?;
        if changed > 0 {
            tracing::info!(
                ?effect,
                deals = changed,
                sequence = event.sequence,
                "dropped a deleted reference"
            );
        }
        Ok(())
    }

    async fn resync(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        tracing::warn!("the contacts feed cursor expired: re-checking every company and contact deals name");
        let on = OnBehalf::Service;
        let (companies, contacts) = references::referenced(tx).await?;
        let mut effects = Vec::new();
        for id in companies {
            if !self.contacts.company_live(&on, id.into()).await? {
                effects.push(Effect::DropCompany(id));
            }
        }
        for chunk in contacts.chunks(CHUNK) {
            let chunk: Vec<_> = chunk.iter().map(|id| (*id).into()).collect();
            let gone = self.contacts.contacts_gone(&on, &chunk).await?;
            effects.extend(gone.into_iter().map(Effect::DropContact));
        }
        let mut changed = 0;
        for effect in &effects {
            changed += ContactsFeed::drop(tx, *effect).await?;
        }
        tracing::warn!(
            gone = effects.len(),
            deals = changed,
            "contacts feed resync dropped deleted references"
        );
        Ok(())
    }

    fn committed(&self) {
        self.feed.announce();
    }
}

/// Starts following Contacts' feed until `shutdown`; `None` (after logging
/// an error) when the service has no credentials of its own for it.
pub fn spawn(
    pool: PgPool,
    contacts: Contacts,
    feed: Feed,
    metrics: &Metrics,
    shutdown: Shutdown,
) -> Option<ConsumerHandle> {
    if !contacts.peer().has_identity() {
        tracing::error!(
            "not following the Contacts change feed: tokens are verified with the identity provider's keys \
             (AUTH_JWKS_FILE, AUTH_JWKS_URL or AUTH_OIDC_DISCOVERY) and PIPELINE_CONTACTS_API_KEY is not set, \
             so this service has no credentials of its own; deals will keep references to \
             deleted companies and contacts"
        );
        return None;
    }
    let source = consumer::PeerFeed::new(
        contacts.peer().clone(),
        |mut client: ContactServiceClient<Channel>, request| async move { client.watch_changes(request).await },
    );
    let config = ConsumerConfig::new(FEED).resource_types(&[CONTACT, COMPANY, ACTIVITY]);
    let handler = ContactsFeed { contacts, feed };
    Some(consumer::spawn(pool, config, source, handler, metrics, shutdown))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(resource_type: &str, kind: ChangeKind, id: &str) -> ChangeEvent {
        ChangeEvent {
            resource_type: resource_type.to_owned(),
            kind: kind as i32,
            resource_id: id.to_owned(),
            ..ChangeEvent::default()
        }
    }

    #[test]
    fn deletes_drop_references_undeletes_restore_and_nothing_else_does() {
        let id = Uuid::now_v7();
        let text = id.to_string();
        assert_eq!(effect(&event(COMPANY, ChangeKind::Deleted, &text)).unwrap(), Effect::DropCompany(id));
        assert_eq!(effect(&event(CONTACT, ChangeKind::Deleted, &text)).unwrap(), Effect::DropContact(id));
        assert_eq!(effect(&event(COMPANY, ChangeKind::Undeleted, &text)).unwrap(), Effect::Restore(id));
        assert_eq!(effect(&event(CONTACT, ChangeKind::Undeleted, &text)).unwrap(), Effect::Restore(id));
        for kind in [ChangeKind::Updated, ChangeKind::Created] {
            assert_eq!(effect(&event(CONTACT, kind, &text)).unwrap(), Effect::Nothing);
            assert_eq!(effect(&event(COMPANY, kind, &text)).unwrap(), Effect::Nothing);
        }
        assert_eq!(
            effect(&event("rapport.contacts.v1.Note", ChangeKind::Deleted, &text)).unwrap(),
            Effect::Nothing
        );
        assert!(effect(&event(CONTACT, ChangeKind::Deleted, "not-a-uuid")).is_err());
    }
}
