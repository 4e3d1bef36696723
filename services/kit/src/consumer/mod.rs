//! Change-feed consumers: a service applies another service's change feed
//! (its `WatchChanges`) to its own schema, each event's effect exactly once.
//!
//! [`spawn`] runs one consumer of one feed until shutdown:
//! - **Lease.** Only one replica consumes a feed at a time: the one holding
//!   a session advisory lock ([`LEASE_LOCK_CLASS`], the hash of
//!   `<schema>:<feed>`) on a connection of its own. The others try again
//!   every `lease_retry`. The leader checks its lease connection every
//!   `lease_check` and stops consuming as soon as it is gone.
//! - **The cursor moves with the effect.** Events already received (up to
//!   `batch`) are applied in one transaction that also records their ids
//!   (`feed_applied_events`) and moves the cursor (`feed_cursors`), then
//!   commits. When the handler fails, its event is rolled back, the events
//!   before it in the batch are committed, and the consumer backs off and
//!   reopens the feed from the stored cursor: an event is never skipped.
//! - **Idempotent.** An event at or below the stored cursor, or whose id
//!   was already applied (kept [`APPLIED_EVENTS_RETENTION`]), is skipped.
//!   The cursor row is locked by each transaction, so even two leaders
//!   overlapping for a moment (a lease lost unnoticed) cannot apply an
//!   event twice or move the cursor back.
//! - **Heartbeats** move the cursor to their `latest_sequence` (everything
//!   before them on the stream was applied), so events filtered out by
//!   `resource_types` are not scanned again after a restart.
//! - **Expired cursor.** When the producer answers `CHANGE_CURSOR_EXPIRED`,
//!   [`Handler::resync`] rebuilds the effect from the producer's current
//!   state and the cursor moves to the error's `resume_after`, in one
//!   transaction; the events after it are then applied as usual. So `apply`
//!   must accept an event older than the state a resync read ("contact X
//!   deleted" when X is already gone does nothing).
//! - **Errors** (the source, the handler, the database) are logged, counted
//!   and retried after a capped exponential back-off. Shutdown stops at
//!   once, even mid-batch: an unfinished transaction rolls back.
//! - **Dead letters.** An event that can never apply would otherwise stop
//!   the feed for good. One whose id is not a UUID, or whose handler
//!   returned a [`Poison`] error, is set aside at once. With
//!   `dead_letter_after` set (it is not by default), one that failed that
//!   many times in a row with an error that is not a database error (those
//!   are taken as transient: PostgreSQL may come back) is set aside then;
//!   leave it unset unless the handler's errors say which are transient
//!   (a database error a handler maps to its own type no longer shows as
//!   one), since a retried event is delayed, a set-aside one is lost. Setting aside stores the event and the error
//!   in `feed_dead_letters`, remembers the id as applied and moves the
//!   cursor past it, in one transaction; it is logged at ERROR and counted
//!   in `rapport_feed_consumer_dead_letters_total`.
//!
//! Metrics, per `feed`: `rapport_feed_consumer_applied_total`,
//! `rapport_feed_consumer_duplicates_total` (events skipped as already
//! applied), `rapport_feed_consumer_resyncs_total`,
//! `rapport_feed_consumer_errors_total{kind}` (`source`, `database`,
//! `apply`, `invalid_event`, `resync`, `protocol`),
//! `rapport_feed_consumer_leader` (replicas of this process holding the
//! lease) and `rapport_feed_consumer_cursor` (the stored cursor).
//!
//! A service consuming Contacts' feed adapts its generated client:
//! ```text
//! let source = move |after_sequence, resource_types| {
//!     let mut client = client.clone();
//!     async move {
//!         let request = WatchChangesRequest { after_sequence, resource_types };
//!         let responses = client.watch_changes(request).await?.into_inner();
//!         Ok(consumer::feed_stream(responses, |response| match response.event? {
//!             Event::Change(change) => Some(FeedItem::Change(change)),
//!             Event::Heartbeat(heartbeat) => Some(FeedItem::Heartbeat(heartbeat)),
//!         }))
//!     }
//! };
//! let config = ConsumerConfig::new("contacts").resource_types(&[CONTACT, COMPANY]);
//! let consumer = consumer::spawn(pool, config, source, Deletions, &metrics, shutdown);
//! ```

mod lease;
mod run;
mod store;

use std::future::Future;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::{BoxStream, Stream};
use rapport_proto::common::v1::ChangeEvent;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;
use tracing::Instrument as _;

use crate::changelog::{Feed, FeedItem};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

pub use lease::LEASE_LOCK_CLASS;
pub(crate) use run::Families;

/// How long the ids of applied events are kept (a replay older than this
/// is still skipped by the cursor, unless the cursor was moved back).
pub const APPLIED_EVENTS_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// The items of one opened feed, in sequence order; an error ends it.
pub type FeedStream = BoxStream<'static, Result<FeedItem, Status>>;

/// Where events come from: opens the producer's feed after a sequence.
///
/// Implemented by closures `Fn(after_sequence, resource_types) -> impl
/// Future<Output = Result<FeedStream, Status>>` (wrap a generated client
/// with [`feed_stream`]) and by [`Feed`], a feed in this process.
#[tonic::async_trait]
pub trait Source: Send + Sync + 'static {
    /// The feed's items after `after_sequence`, only of `resource_types`
    /// (all when empty). An expired cursor is `FAILED_PRECONDITION`
    /// `CHANGE_CURSOR_EXPIRED`, here or as the stream's error.
    async fn open(&self, after_sequence: i64, resource_types: Vec<String>) -> Result<FeedStream, Status>;
}

#[tonic::async_trait]
impl<F, Opened> Source for F
where
    F: Fn(i64, Vec<String>) -> Opened + Send + Sync + 'static,
    Opened: Future<Output = Result<FeedStream, Status>> + Send,
{
    async fn open(&self, after_sequence: i64, resource_types: Vec<String>) -> Result<FeedStream, Status> {
        self(after_sequence, resource_types).await
    }
}

/// Another service's feed, followed through `peer` as this service itself
/// (its own credentials, see [`crate::peer::Identity`]): `watch` is the
/// generated client's `watch_changes`, e.g.
/// `PeerFeed::new(peer, |mut client: ContactServiceClient<Channel>, request| async move { client.watch_changes(request).await })`.
pub struct PeerFeed<C, W, Req, Resp> {
    peer: crate::peer::Peer<C>,
    watch: W,
    messages: std::marker::PhantomData<fn() -> (Req, Resp)>,
}

impl<C, W, Req, Resp> PeerFeed<C, W, Req, Resp> {
    /// The feed of `peer`, opened with `watch`.
    pub fn new(peer: crate::peer::Peer<C>, watch: W) -> PeerFeed<C, W, Req, Resp> {
        PeerFeed { peer, watch, messages: std::marker::PhantomData }
    }
}

#[tonic::async_trait]
impl<C, W, Req, Resp, Opened> Source for PeerFeed<C, W, Req, Resp>
where
    C: Clone + Send + Sync + 'static,
    W: Fn(C, tonic::Request<Req>) -> Opened + Send + Sync + 'static,
    Opened: Future<Output = Result<tonic::Response<tonic::Streaming<Resp>>, Status>> + Send,
    Req: rapport_proto::WatchRequest,
    Resp: rapport_proto::WatchResponse,
{
    async fn open(&self, after_sequence: i64, resource_types: Vec<String>) -> Result<FeedStream, Status> {
        let request = self
            .peer
            .stream_request(&crate::peer::OnBehalf::Service, Req::new(after_sequence, resource_types))?;
        let responses = (self.watch)(self.peer.client(), request).await?.into_inner();
        Ok(watch_stream(responses))
    }
}

#[tonic::async_trait]
impl Source for Feed {
    async fn open(&self, after_sequence: i64, resource_types: Vec<String>) -> Result<FeedStream, Status> {
        Ok(Box::pin(self.watch(after_sequence, resource_types)?))
    }
}

/// A service's `WatchChanges` responses as a [`FeedStream`]: `item` takes a
/// response's `event` to a [`FeedItem`]; responses it maps to `None` (an
/// event this build does not know) are skipped.
pub fn feed_stream<Response, Responses>(
    responses: Responses,
    item: fn(Response) -> Option<FeedItem>,
) -> FeedStream
where
    Response: 'static,
    Responses: Stream<Item = Result<Response, Status>> + Send + 'static,
{
    Box::pin(responses.filter_map(move |response| {
        std::future::ready(match response {
            Ok(response) => item(response).map(Ok),
            Err(status) => Some(Err(status)),
        })
    }))
}

/// A package's `WatchChanges` responses as a [`FeedStream`] (empty
/// responses, of an event this build does not know, are skipped).
pub fn watch_stream<Response, Responses>(responses: Responses) -> FeedStream
where
    Response: rapport_proto::WatchResponse,
    Responses: Stream<Item = Result<Response, Status>> + Send + 'static,
{
    feed_stream(responses, Response::into_event)
}

/// The error of an event its handler can never apply (malformed, or
/// naming something that cannot exist): the consumer sets the event aside
/// at once instead of retrying it (see the module's dead letters). Return
/// it with [`poison`].
#[derive(Debug, thiserror::Error)]
#[error("poison event: {0:#}")]
pub struct Poison(pub anyhow::Error);

/// `error` as a [`Poison`] handler error.
pub fn poison(error: impl Into<anyhow::Error>) -> anyhow::Error {
    anyhow::Error::new(Poison(error.into()))
}

/// What consuming a feed does to this service's schema.
#[tonic::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Applies `event` in the consumer's transaction `tx`, which also
    /// records the event as applied and moves the cursor. Called in
    /// sequence order, once per event id, except that an error (or a
    /// shutdown) rolls the call back and the event comes again later. An
    /// error wrapped by [`poison`] sets the event aside for good instead.
    async fn apply(&self, tx: &mut PgConnection, event: &ChangeEvent) -> anyhow::Result<()>;

    /// Rebuilds the effect of the whole feed from the producer's current
    /// state (e.g. by listing its resources) in `tx`, which then moves the
    /// cursor to where the producer says to resume. Called when the stored
    /// cursor is older than the producer's retention.
    async fn resync(&self, tx: &mut PgConnection) -> anyhow::Result<()>;

    /// Called after a transaction in which `apply` changed something (at
    /// least one event applied) or `resync` ran has committed, e.g. to wake
    /// this service's own watchers (`Feed::announce`) once the handler's
    /// change-log rows are visible. Does nothing by default.
    fn committed(&self) {}
}

/// How a consumer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// The feed's name in this schema, e.g. `contacts`: it keys the cursor,
    /// the applied events, the lease and the metrics.
    pub feed: String,
    /// Only events of these resource types (empty: all), asked of the source.
    pub resource_types: Vec<String>,
    /// The most events applied in one transaction (of those already received).
    pub batch: usize,
    /// Delays before reopening the feed after a failure.
    pub backoff: Backoff,
    /// How often a replica without the lease tries to take it.
    pub lease_retry: Duration,
    /// How often the leader checks that its lease connection is alive.
    pub lease_check: Duration,
    /// Failures in a row of one event (other than database errors) after
    /// which it is set aside as a dead letter; `None` (the default): never
    /// (poison events still are).
    pub dead_letter_after: Option<u32>,
}

impl ConsumerConfig {
    /// Consumes every resource type of `feed` in batches of up to 100,
    /// backing off from 100 ms to 10 s, checking the lease every 5 s,
    /// retrying a failing event until it applies (unless it is poison).
    pub fn new(feed: impl Into<String>) -> ConsumerConfig {
        ConsumerConfig {
            feed: feed.into(),
            resource_types: Vec::new(),
            batch: 100,
            backoff: Backoff::default(),
            lease_retry: Duration::from_secs(5),
            lease_check: Duration::from_secs(5),
            dead_letter_after: None,
        }
    }

    /// Only events of `resource_types` (fully-qualified message names).
    pub fn resource_types(mut self, resource_types: &[&str]) -> ConsumerConfig {
        self.resource_types = resource_types.iter().map(|name| (*name).to_owned()).collect();
        self
    }
}

/// Capped exponential back-off: `initial`, doubled after each failure in a
/// row, at most `max`; back to `initial` once events flow again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after a first failure.
    pub initial: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(10) }
    }
}

impl Backoff {
    /// The delay after `failures` failures in a row (at least one).
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.initial.saturating_mul(1 << doublings).min(self.max)
    }
}

/// A running consumer: its progress and leadership, and its task.
#[derive(Debug)]
pub struct ConsumerHandle {
    cursor: watch::Receiver<i64>,
    leader: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl ConsumerHandle {
    /// The stored cursor as this replica last committed or read it (0 until
    /// it first takes the lease).
    pub fn cursor(&self) -> i64 {
        *self.cursor.borrow()
    }

    /// Waits until this replica has stored a cursor at or past `sequence`;
    /// false if the consumer stopped first.
    pub async fn reached(&self, sequence: i64) -> bool {
        let mut cursor = self.cursor.clone();
        cursor.wait_for(|cursor| *cursor >= sequence).await.is_ok()
    }

    /// True while this replica holds the lease.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Waits until this replica holds the lease; false if it stopped first.
    pub async fn leading(&self) -> bool {
        let mut leader = self.leader.clone();
        leader.wait_for(|leader| *leader).await.is_ok()
    }

    /// Waits for the consumer to end (after its shutdown fired) and let
    /// the lease go.
    pub async fn stopped(self) {
        if let Err(err) = self.task.await {
            tracing::error!(error = %err, "change feed consumer task failed");
        }
    }
}

/// Starts consuming `config.feed` from `source` into the schema of `pool`
/// with `handler`, until `shutdown`. See the module docs.
pub fn spawn<S: Source, H: Handler>(
    pool: PgPool,
    config: ConsumerConfig,
    source: S,
    handler: H,
    metrics: &Metrics,
    shutdown: Shutdown,
) -> ConsumerHandle {
    let (cursor_sender, cursor) = watch::channel(0);
    let (leader_sender, leader) = watch::channel(false);
    let span = tracing::info_span!("feed_consumer", feed = %config.feed);
    let consumer = run::Consumer {
        metrics: run::FeedMetrics::new(&metrics.families(Families::register), &config.feed),
        pool,
        config,
        source,
        handler,
        cursor: cursor_sender,
        leader: leader_sender,
        attempts: std::sync::Mutex::new(run::Attempts::default()),
    };
    let task = tokio::spawn(consumer.run(shutdown).instrument(span));
    ConsumerHandle { cursor, leader, task }
}

/// The stored cursor of `feed` in the schema of `pool`; `None` before its
/// consumer first ran.
pub async fn stored_cursor(pool: &PgPool, feed: &str) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT after_sequence FROM feed_cursors WHERE feed = $1")
        .bind(feed)
        .fetch_optional(pool)
        .await
}

/// The events of `feed` set aside as dead letters, oldest first: their
/// sequence, resource id and error.
pub async fn dead_letters(pool: &PgPool, feed: &str) -> Result<Vec<(i64, String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT sequence, resource_id, error FROM feed_dead_letters WHERE feed = $1 ORDER BY sequence",
    )
    .bind(feed)
    .fetch_all(pool)
    .await
}

/// Forgets applied events older than `retention`. Returns how many went.
pub async fn prune(db: impl sqlx::PgExecutor<'_>, retention: Duration) -> Result<u64, sqlx::Error> {
    let result =
        sqlx::query("DELETE FROM feed_applied_events WHERE apply_time < now() - make_interval(secs => $1)")
            .bind(retention.as_secs_f64())
            .execute(db)
            .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rapport_proto::common::v1::Heartbeat;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let backoff = Backoff { initial: Duration::from_millis(100), max: Duration::from_secs(1) };
        let delays: Vec<_> = (0..7).map(|failures| backoff.delay(failures).as_millis()).collect();
        assert_eq!(delays, [100, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(1));
    }

    #[tokio::test]
    async fn responses_become_feed_items_and_unknown_ones_are_skipped() {
        let heartbeat = Heartbeat { latest_sequence: 7, time: None };
        let responses = futures::stream::iter([
            Ok(Some(FeedItem::Heartbeat(heartbeat))),
            Ok(None),
            Err(Status::unavailable("gone")),
        ]);
        let items: Vec<_> = feed_stream(responses, |response| response).collect().await;
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().unwrap(), &FeedItem::Heartbeat(heartbeat));
        assert_eq!(items[1].as_ref().unwrap_err().code(), tonic::Code::Unavailable);
    }
}
