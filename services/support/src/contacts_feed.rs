//! Following Contacts' change feed (kit's consumer, feed `contacts`): a
//! contact deleted in Contacts is marked on the cases they asked
//! (`requester_deleted`, cleared if restored); a deleted company is
//! removed from its live cases. Each changed case gets an UPDATED change
//! (actor `contacts-feed`) in the consumer's transaction, so the effect
//! and the cursor commit together. Merges: Contacts does not emit them
//! yet; when it does, a merge re-points the loser's cases to the winner
//! (one more arm of [`effect`]). A resync (the cursor expired) checks every
//! requester and company cases name against Contacts.
//!
//! The consumer acts as the service itself (`SUPPORT_CONTACTS_API_KEY`,
//! or tokens it mints with the HS256 secret: subject `support`, role
//! `integration`); without credentials of its own it is not started (an
//! error is logged).

use anyhow::Context as _;
use rapport_kit::changelog::Feed;
use rapport_kit::consumer::{self, ConsumerConfig, ConsumerHandle, Handler, PeerFeed};
use rapport_kit::metrics::Metrics;
use rapport_kit::peer::OnBehalf;
use rapport_kit::shutdown::Shutdown;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use sqlx::{PgConnection, PgPool};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::config::Config;
use crate::contacts::Contacts;
use crate::store::{Ctx, references};

/// The feed's name (its cursor, lease and metrics).
pub const FEED: &str = "contacts";
/// The resource type of Contacts' contacts.
pub const CONTACT: &str = "rapport.contacts.v1.Contact";
/// The resource type of Contacts' companies.
pub const COMPANY: &str = "rapport.contacts.v1.Company";
/// The actor of the case changes the feed makes.
pub const ACTOR: &str = "contacts-feed";
/// The subject of the tokens the service mints for itself.
pub const SUBJECT: &str = "support";

/// What an event does to cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Cases of this requester are marked.
    RequesterDeleted(Uuid),
    /// Cases of this requester are unmarked.
    RequesterRestored(Uuid),
    /// Live cases lose this company.
    DropCompany(Uuid),
    /// Nothing.
    Nothing,
}

/// What `event` does to cases.
pub fn effect(event: &ChangeEvent) -> anyhow::Result<Effect> {
    let kind = ChangeKind::try_from(event.kind).unwrap_or_default();
    let id = || {
        Uuid::parse_str(&event.resource_id)
            .with_context(|| format!("{} id {:?}", event.resource_type, event.resource_id))
    };
    Ok(match (event.resource_type.as_str(), kind) {
        (CONTACT, ChangeKind::Deleted) => Effect::RequesterDeleted(id()?),
        (CONTACT, ChangeKind::Undeleted) => Effect::RequesterRestored(id()?),
        (COMPANY, ChangeKind::Deleted) => Effect::DropCompany(id()?),
        _ => Effect::Nothing,
    })
}

/// The consumer's handler.
struct ContactsFeed {
    contacts: Contacts,
    feed: Feed,
    config: Config,
}

impl ContactsFeed {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            prefix: &self.config.case_number_prefix,
            now: self.config.now.now(),
            mail: None,
            survey_ttl: chrono::Duration::zero(),
        }
    }

    async fn apply_effect(&self, tx: &mut PgConnection, effect: Effect) -> anyhow::Result<usize> {
        let ctx = self.ctx();
        Ok(match effect {
            Effect::RequesterDeleted(id) => references::mark_requester(tx, id, true, ACTOR, ctx).await?,
            Effect::RequesterRestored(id) => references::mark_requester(tx, id, false, ACTOR, ctx).await?,
            Effect::DropCompany(id) => references::drop_company(tx, id, ACTOR, ctx).await?,
            Effect::Nothing => 0,
        })
    }
}

#[tonic::async_trait]
impl Handler for ContactsFeed {
    async fn apply(&self, tx: &mut PgConnection, event: &ChangeEvent) -> anyhow::Result<()> {
        let effect = effect(event).map_err(consumer::poison)?;
        let changed = self.apply_effect(tx, effect).await?;
        if changed > 0 {
            tracing::info!(
                ?effect,
                cases = changed,
                sequence = event.sequence,
                "applied a Contacts deletion to cases"
            );
        }
        Ok(())
    }

    async fn resync(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        tracing::warn!(
            "the contacts feed cursor expired: re-checking every requester and company cases name"
        );
        let on = OnBehalf::Service;
        let (requesters, companies) = references::referenced(tx).await?;
        let mut effects = Vec::new();
        for id in requesters {
            if !self.contacts.contact_live(&on, id.into()).await? {
                effects.push(Effect::RequesterDeleted(id));
            }
        }
        for id in companies {
            if !self.contacts.company_live(&on, id.into()).await? {
                effects.push(Effect::DropCompany(id));
            }
        }
        for effect in effects {
            self.apply_effect(tx, effect).await?;
        }
        Ok(())
    }

    fn committed(&self) {
        self.feed.announce();
    }
}

/// Starts following Contacts' feed until `shutdown`; `None` (after logging
/// an error) when the service has no credentials of its own.
pub fn spawn(
    pool: PgPool,
    contacts: Contacts,
    feed: Feed,
    config: Config,
    metrics: &Metrics,
    shutdown: Shutdown,
) -> Option<ConsumerHandle> {
    if !contacts.peer().has_identity() {
        tracing::error!(
            "not following the Contacts change feed: tokens are verified with the identity provider's keys and \
             SUPPORT_CONTACTS_API_KEY is not set, so this service has no credentials of its own; cases will not \
             learn of deleted requesters and companies"
        );
        return None;
    }
    let source = PeerFeed::new(
        contacts.peer().clone(),
        |mut client: ContactServiceClient<Channel>, request| async move { client.watch_changes(request).await },
    );
    let consumer_config = ConsumerConfig::new(FEED).resource_types(&[CONTACT, COMPANY]);
    let handler = ContactsFeed { contacts, feed, config };
    Some(consumer::spawn(pool, consumer_config, source, handler, metrics, shutdown))
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
    fn deletions_mark_or_drop_restores_unmark_and_nothing_else_does() {
        let id = Uuid::now_v7();
        let text = id.to_string();
        assert_eq!(
            effect(&event(CONTACT, ChangeKind::Deleted, &text)).unwrap(),
            Effect::RequesterDeleted(id)
        );
        assert_eq!(
            effect(&event(CONTACT, ChangeKind::Undeleted, &text)).unwrap(),
            Effect::RequesterRestored(id)
        );
        assert_eq!(effect(&event(COMPANY, ChangeKind::Deleted, &text)).unwrap(), Effect::DropCompany(id));
        assert_eq!(effect(&event(COMPANY, ChangeKind::Undeleted, &text)).unwrap(), Effect::Nothing);
        assert_eq!(effect(&event(CONTACT, ChangeKind::Updated, &text)).unwrap(), Effect::Nothing);
        assert!(effect(&event(CONTACT, ChangeKind::Deleted, "x")).is_err());
    }
}
