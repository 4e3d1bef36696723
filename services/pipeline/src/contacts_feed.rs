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
//! The consumer acts as the service itself: `PIPELINE_CONTACTS_API_KEY`,
//! or else a token it mints with the HS256 secret (subject `pipeline`, role
//! `integration`, valid one hour, minted at each open of the feed and each
//! resync). With neither (JWKS verification and no API key), [`spawn`]
//! logs an error and does not start it.

use std::time::Duration;

use anyhow::Context as _;
use rapport_kit::auth::{KeySource, Role, mint_hs256};
use rapport_kit::changelog::Feed;
use rapport_kit::consumer::{self, ConsumerConfig, ConsumerHandle, Handler};
use rapport_kit::metrics::Metrics;
use rapport_kit::shutdown::Shutdown;
use rapport_proto::common::v1::{ChangeEvent, ChangeKind};
use rapport_proto::contacts::v1::WatchChangesRequest;
use sqlx::{PgConnection, PgPool};
use tonic::metadata::AsciiMetadataValue;
use uuid::Uuid;

use crate::config::Config;
use crate::contacts::{Contacts, Credentials};
use crate::store::deals::references;

/// The feed's name (its cursor, lease and metrics).
pub const FEED: &str = "contacts";
/// The resource type of Contacts' contacts.
pub const CONTACT: &str = "rapport.contacts.v1.Contact";
/// The resource type of Contacts' companies.
pub const COMPANY: &str = "rapport.contacts.v1.Company";
/// The actor of the deal changes the feed makes.
pub const ACTOR: &str = "contacts-feed";
/// The subject of the tokens the service mints for itself.
pub const SUBJECT: &str = "pipeline";

/// How long a minted token is valid (one is minted per open and resync).
const TOKEN_TTL: Duration = Duration::from_secs(3600);
/// Contacts asked for at once in a resync (BatchGetContacts takes 1000).
const CHUNK: usize = 500;

/// How the service authenticates as itself with Contacts.
#[derive(Clone)]
pub enum ServiceAuth {
    /// `x-api-key` (`PIPELINE_CONTACTS_API_KEY`).
    ApiKey(AsciiMetadataValue),
    /// A token minted with the HS256 secret, per use.
    Minted {
        /// The HS256 secret.
        secret: Vec<u8>,
        /// `iss`.
        issuer: String,
        /// `aud`.
        audience: String,
    },
}

impl ServiceAuth {
    /// The service's credentials from `config`; `None` when it has none
    /// (JWKS verification without an API key).
    pub fn of(config: &Config) -> anyhow::Result<Option<ServiceAuth>> {
        if let Some(key) = &config.contacts_api_key {
            let value = AsciiMetadataValue::try_from(key.0.as_str())
                .map_err(|_| anyhow::anyhow!("PIPELINE_CONTACTS_API_KEY is not a valid header value"))?;
            return Ok(Some(ServiceAuth::ApiKey(value)));
        }
        Ok(match &config.service.auth.keys {
            KeySource::Secret(secret) => Some(ServiceAuth::Minted {
                secret: secret.clone(),
                issuer: config.service.auth.issuer.clone(),
                audience: config.service.auth.audience.clone(),
            }),
            KeySource::JwksFile(_) => None,
        })
    }

    /// Credentials for the next calls.
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        match self {
            ServiceAuth::ApiKey(key) => Ok(Credentials::service(None, Some(key.clone()))),
            ServiceAuth::Minted { secret, issuer, audience } => {
                let token = mint_hs256(secret, issuer, audience, SUBJECT, &[Role::Integration], TOKEN_TTL)
                    .context("minting the service token")?;
                let value = AsciiMetadataValue::try_from(format!("Bearer {token}"))
                    .context("the minted token is not a header value")?;
                Ok(Credentials::service(Some(value), None))
            }
        }
    }
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
        _ => Effect::Nothing,
    })
}

/// The consumer's handler.
pub struct ContactsFeed {
    contacts: Contacts,
    auth: ServiceAuth,
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
        let credentials = self.auth.credentials()?;
        let (companies, contacts) = references::referenced(tx).await?;
        let mut effects = Vec::new();
        for id in companies {
            if !self.contacts.company_live(&credentials, id.into()).await? {
                effects.push(Effect::DropCompany(id));
            }
        }
        for chunk in contacts.chunks(CHUNK) {
            let chunk: Vec<_> = chunk.iter().map(|id| (*id).into()).collect();
            let gone = self.contacts.contacts_gone(&credentials, &chunk).await?;
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
/// an error) when the service has no credentials for it.
pub fn spawn(
    pool: PgPool,
    config: &Config,
    contacts: Contacts,
    feed: Feed,
    metrics: &Metrics,
    shutdown: Shutdown,
) -> anyhow::Result<Option<ConsumerHandle>> {
    let Some(auth) = ServiceAuth::of(config)? else {
        tracing::error!(
            "not following the Contacts change feed: AUTH_JWKS_FILE is set and PIPELINE_CONTACTS_API_KEY \
             is not, so this service has no credentials of its own; deals will keep references to \
             deleted companies and contacts"
        );
        return Ok(None);
    };
    let source = {
        let auth = auth.clone();
        let client = contacts.client();
        move |after_sequence, resource_types| {
            let mut client = client.clone();
            let credentials = auth.credentials();
            async move {
                let credentials = credentials.map_err(|err| tonic::Status::internal(format!("{err:#}")))?;
                let request = credentials.request(WatchChangesRequest { after_sequence, resource_types });
                let responses = client.watch_changes(request).await?.into_inner();
                Ok(consumer::watch_stream(responses))
            }
        }
    };
    let config = ConsumerConfig::new(FEED).resource_types(&[CONTACT, COMPANY]);
    let handler = ContactsFeed { contacts, auth, feed };
    Ok(Some(consumer::spawn(pool, config, source, handler, metrics, shutdown)))
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

    fn auth(pairs: &[(&str, &str)]) -> Option<ServiceAuth> {
        let env = rapport_kit::config::Env::from_pairs(pairs.iter().copied());
        ServiceAuth::of(&Config::from_env(&env).unwrap()).unwrap()
    }

    #[test]
    fn the_service_uses_its_api_key_else_mints_with_the_secret_else_nothing() {
        let key = [("PIPELINE_CONTACTS_API_KEY", "rk_test"), ("AUTH_JWKS_FILE", "/jwks.json")];
        assert!(matches!(auth(&key), Some(ServiceAuth::ApiKey(value)) if value == "rk_test"));
        let credentials = auth(&[("AUTH_JWT_SECRET", "s3cret")]).unwrap().credentials().unwrap();
        let request = credentials.request(());
        assert!(request.metadata().get("authorization").unwrap().to_str().unwrap().starts_with("Bearer "));
        assert!(auth(&[("AUTH_JWKS_FILE", "/jwks.json")]).is_none());
        let env = rapport_kit::config::Env::from_pairs([("PIPELINE_CONTACTS_API_KEY", "bad\nkey")]);
        assert!(ServiceAuth::of(&Config::from_env(&env).unwrap()).is_err());
    }
}
