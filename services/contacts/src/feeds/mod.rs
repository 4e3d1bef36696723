//! Following Pipeline's and Support's change feeds (kit's consumer, feeds
//! `pipeline` and `support`) into this service's records: the timeline
//! projection, lifecycle moves caused by deals, and the deal and case
//! links of activities. Each event's effect commits with the cursor (so it
//! applies once); timeline entries are also unique per event and record,
//! so a replay adds nothing, and entries from both feeds interleave by
//! when they happened, whatever order the feeds deliver them in.
//!
//! Resync (a cursor older than the producer's retention): the events in
//! the gap are gone; the timeline keeps what it had and goes on from the
//! producer's resume point (logged). Contacts moved by those deals keep
//! their stage; the next deal event moves them.
//!
//! `CONTACTS_PIPELINE_ADDR=off` / `CONTACTS_SUPPORT_ADDR=off` (the chart
//! sets it when that service is not deployed) follows nothing there.
//!
//! The consumers act as the service itself (`CONTACTS_PIPELINE_API_KEY` /
//! `CONTACTS_SUPPORT_API_KEY`, or tokens minted with the HS256 secret:
//! subject `contacts`, role `integration`); without credentials of their
//! own they are not started (an error is logged).

pub mod pipeline;
pub mod support;

pub use crate::domain::effects::{Effect, Fact, Happened, Link};

use rapport_kit::auth::Role;
use rapport_kit::changelog::Feed;
use rapport_kit::consumer::{self, ConsumerConfig, ConsumerHandle, Handler, PeerFeed};
use rapport_kit::metrics::Metrics;
use rapport_kit::peer::{Identity, Peer};
use rapport_kit::shutdown::Shutdown;
use rapport_proto::common::v1::ChangeEvent;
use rapport_proto::contacts::v1::TimelineSource;
use rapport_proto::pipeline::v1::pipeline_service_client::PipelineServiceClient;
use rapport_proto::support::v1::case_service_client::CaseServiceClient;
use sqlx::{PgConnection, PgPool};
use tonic::transport::Channel;

use crate::cache::Caches;
use crate::config::Config;

/// The subject of the tokens the service mints for itself.
pub const SUBJECT: &str = "contacts";

/// A feed's handler.
struct Follow {
    source: TimelineSource,
    effects: fn(&ChangeEvent) -> anyhow::Result<Vec<Effect>>,
    feed: Feed,
    caches: Caches,
    config: Config,
    /// Contacts changed by the transaction being applied (their cached
    /// copies are dropped once it commits).
    changed: crate::cache::AfterCommit,
}

#[tonic::async_trait]
impl Handler for Follow {
    async fn apply(&self, tx: &mut PgConnection, event: &ChangeEvent) -> anyhow::Result<()> {
        let effects = (self.effects)(event).map_err(consumer::poison)?;
        let at = self.config.at();
        for effect in effects {
            let changed = crate::store::projection::apply(tx, self.source, event, effect, at).await?;
            self.changed.add(changed);
        }
        Ok(())
    }

    async fn resync(&self, _tx: &mut PgConnection) -> anyhow::Result<()> {
        tracing::warn!(
            source = ?self.source,
            "a followed feed's cursor expired: its events in the gap are missing from timelines"
        );
        Ok(())
    }

    fn committed(&self) {
        self.changed.flush(&self.caches, &self.feed);
    }
}

/// What the consumers need.
pub struct Following<'a> {
    /// The service's pool.
    pub pool: PgPool,
    /// Its feed (woken after changes).
    pub feed: Feed,
    /// Its caches (contacts moved by deals).
    pub caches: Caches,
    /// Its settings.
    pub config: &'a Config,
    /// Its metrics.
    pub metrics: &'a Metrics,
    /// Stops the consumers.
    pub shutdown: Shutdown,
}

/// Starts following Pipeline's and Support's feeds; a feed without
/// credentials of its own is not followed (an error is logged).
pub fn spawn(following: Following<'_>) -> anyhow::Result<Vec<ConsumerHandle>> {
    let Following { pool, feed, caches, config, metrics, shutdown } = following;
    let handler = |source, effects| Follow {
        source,
        effects,
        feed: feed.clone(),
        caches: caches.clone(),
        config: config.clone(),
        changed: crate::cache::AfterCommit::default(),
    };
    let mut handles = Vec::new();
    let auth = &config.service.auth;
    match Identity::of(&config.pipeline, auth, SUBJECT, &[Role::Integration])? {
        _ if is_off(&config.pipeline) => {
            tracing::info!("not following Pipeline (CONTACTS_PIPELINE_ADDR=off)")
        }
        Some(identity) => {
            let service = rapport_proto::pipeline::v1::pipeline_service_server::SERVICE_NAME;
            let peer =
                Peer::new("pipeline", service, &config.pipeline, Some(identity), PipelineServiceClient::new)?;
            let source =
                PeerFeed::new(peer, |mut client: PipelineServiceClient<Channel>, request| async move {
                    client.watch_changes(request).await
                });
            let settings = ConsumerConfig::new("pipeline").resource_types(pipeline::TYPES);
            let handler = handler(TimelineSource::Pipeline, pipeline::effects);
            handles.push(consumer::spawn(pool.clone(), settings, source, handler, metrics, shutdown.clone()));
        }
        None => not_followed("Pipeline", "CONTACTS_PIPELINE_API_KEY"),
    }
    match Identity::of(&config.support, auth, SUBJECT, &[Role::Integration])? {
        _ if is_off(&config.support) => tracing::info!("not following Support (CONTACTS_SUPPORT_ADDR=off)"),
        Some(identity) => {
            let service = rapport_proto::support::v1::case_service_server::SERVICE_NAME;
            let peer =
                Peer::new("support", service, &config.support, Some(identity), CaseServiceClient::new)?;
            let source = PeerFeed::new(peer, |mut client: CaseServiceClient<Channel>, request| async move {
                client.watch_changes(request).await
            });
            let settings = ConsumerConfig::new("support").resource_types(support::TYPES);
            let handler = handler(TimelineSource::Support, support::effects);
            handles.push(consumer::spawn(pool, settings, source, handler, metrics, shutdown));
        }
        None => not_followed("Support", "CONTACTS_SUPPORT_API_KEY"),
    }
    Ok(handles)
}

/// A followed service set to `off` (not deployed).
fn is_off(settings: &rapport_kit::peer::PeerSettings) -> bool {
    settings.later.is_none() && settings.addr.eq_ignore_ascii_case("off")
}

fn not_followed(service: &str, variable: &str) {
    tracing::error!(
        "not following the {service} change feed: tokens are verified with the identity provider's keys and \
         {variable} is not set, so this service has no credentials of its own; timelines will miss {service}'s \
         events and deals will not move lifecycle stages"
    );
}
