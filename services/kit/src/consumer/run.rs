//! The consumer's task: take the lease, then open the feed from the stored
//! cursor and apply what comes, batch by batch, until the lease is lost or
//! shutdown; reopen after failures, resync after an expired cursor.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::Status;

use super::lease::Lease;
use super::{ConsumerConfig, Handler, Source, store};
use crate::changelog::{FeedItem, resync_point};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

pub(super) struct Consumer<S, H> {
    pub(super) pool: PgPool,
    pub(super) config: ConsumerConfig,
    pub(super) source: S,
    pub(super) handler: H,
    pub(super) metrics: FeedMetrics,
    pub(super) cursor: watch::Sender<i64>,
    pub(super) leader: watch::Sender<bool>,
    pub(super) attempts: std::sync::Mutex<Attempts>,
}

/// Failures in a row of the event at `sequence`.
#[derive(Debug, Default)]
pub(super) struct Attempts {
    sequence: i64,
    failures: u32,
}

/// Why consuming stopped.
enum Stop {
    /// The lease connection is gone: another replica may be consuming.
    LeaseLost,
    /// Resynced: reopen from the new cursor at once.
    Reopen,
    /// Back off, then reopen from the stored cursor.
    Failed(Failure),
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("the source failed: {}: {}", .0.code(), .0.message())]
    Source(Status),
    #[error("the source ended the stream")]
    Ended,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// Event `index` of a batch could not be applied (the ones before it
    /// can be). `poison`: it never will be.
    #[error("event {sequence}: {error:#}")]
    Event { index: usize, sequence: i64, kind: &'static str, error: anyhow::Error, poison: bool },
    #[error("resync failed: {0:#}")]
    Resync(anyhow::Error),
    #[error("{0}")]
    Protocol(String),
}

impl Failure {
    /// The `kind` label of `rapport_feed_consumer_errors_total`.
    fn kind(&self) -> &'static str {
        match self {
            Failure::Source(_) | Failure::Ended => "source",
            Failure::Database(_) => "database",
            Failure::Event { kind, .. } => kind,
            Failure::Resync(_) => "resync",
            Failure::Protocol(_) => "protocol",
        }
    }
}

impl<S: Source, H: Handler> Consumer<S, H> {
    pub(super) async fn run(self, mut shutdown: Shutdown) {
        loop {
            let mut lease = tokio::select! {
                lease = Lease::acquire(&self.pool, &self.config.feed, self.config.lease_retry) => lease,
                () = shutdown.wait() => return,
            };
            tracing::info!("took the change feed lease; consuming");
            let leading = Leading::start(&self.metrics.leader, &self.leader);
            let lost = tokio::select! {
                () = self.lead(&mut lease) => true,
                () = shutdown.wait() => false,
            };
            drop(leading);
            if !lost {
                lease.release().await;
                tracing::info!("change feed consumer stopped");
                return;
            }
            tracing::warn!("lost the change feed lease; standing by");
        }
    }

    /// Consumes while the lease is held.
    async fn lead(&self, lease: &mut Lease) {
        let mut failures = 0;
        loop {
            if !lease.is_held().await {
                return;
            }
            match self.consume(lease, &mut failures).await {
                Stop::LeaseLost => return,
                Stop::Reopen => {}
                Stop::Failed(failure) => {
                    failures += 1;
                    let delay = self.config.backoff.delay(failures);
                    let kind = failure.kind();
                    self.metrics
                        .errors
                        .get_or_create(&ErrorLabels { feed: self.config.feed.clone(), kind })
                        .inc();
                    tracing::warn!(
                        kind,
                        error = %failure,
                        retry_in = ?delay,
                        "change feed consumer failed; reopening from the stored cursor"
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Opens the feed from the stored cursor and applies it until it fails.
    /// `failures` (in a row) is reset once events flow.
    async fn consume(&self, lease: &mut Lease, failures: &mut u32) -> Stop {
        let opened_at = match store::load(&self.pool, &self.config.feed).await {
            Ok(cursor) => cursor,
            Err(err) => return Stop::Failed(err.into()),
        };
        self.publish(opened_at);
        let stream = match self.source.open(opened_at, self.config.resource_types.clone()).await {
            Ok(stream) => stream,
            Err(status) => return self.stream_failed(status, opened_at).await,
        };
        let mut batches = stream.ready_chunks(self.config.batch.max(1));
        // (A zero period would panic.)
        let check = self.config.lease_check.max(Duration::from_millis(1));
        let mut lease_check = tokio::time::interval_at(Instant::now() + check, check);
        lease_check.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                batch = batches.next() => {
                    let Some(batch) = batch else { return Stop::Failed(Failure::Ended) };
                    let mut items = Vec::with_capacity(batch.len());
                    let mut error = None;
                    for item in batch {
                        match item {
                            Ok(item) => items.push(item),
                            // A stream ends at its error.
                            Err(status) => {
                                error = Some(status);
                                break;
                            }
                        }
                    }
                    if let Err(failure) = self.apply(&items).await {
                        return Stop::Failed(failure);
                    }
                    if !items.is_empty() {
                        *failures = 0;
                    }
                    if let Some(status) = error {
                        return self.stream_failed(status, opened_at).await;
                    }
                }
                _ = lease_check.tick() => {
                    if !lease.is_held().await {
                        return Stop::LeaseLost;
                    }
                }
            }
        }
    }

    /// Applies `items`. When event `index` fails, the batch is rolled
    /// back, and the events before it are applied again on their own; then
    /// the failed event is set aside if it is a dead letter (and the rest
    /// applied), else the failure returned.
    async fn apply(&self, mut items: &[FeedItem]) -> Result<(), Failure> {
        loop {
            let failure = match self.apply_batch(items).await {
                Err(failure @ Failure::Event { .. }) => failure,
                applied => return applied,
            };
            let Failure::Event { index, .. } = failure else { return Err(failure) };
            if index > 0 {
                self.apply_batch(&items[..index]).await?;
            }
            if !self.dead_letter(&items[index], &failure).await? {
                return Err(failure);
            }
            items = &items[index + 1..];
        }
    }

    /// Sets the event `item` that failed with `failure` aside when it is
    /// poison, or has now failed `dead_letter_after` times in a row with
    /// an error other than a database one: stores it, remembers its id as
    /// applied and moves the cursor past it, in one transaction. False
    /// when it is to be retried.
    async fn dead_letter(&self, item: &FeedItem, failure: &Failure) -> Result<bool, Failure> {
        let (FeedItem::Change(event), Failure::Event { sequence, error, poison, .. }) = (item, failure)
        else {
            return Ok(false);
        };
        let failures = {
            let mut attempts = self.attempts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if attempts.sequence != *sequence {
                *attempts = Attempts { sequence: *sequence, failures: 0 };
            }
            attempts.failures += 1;
            attempts.failures
        };
        let transient = error.chain().any(|cause| cause.is::<sqlx::Error>());
        let exhausted = !transient && self.config.dead_letter_after.is_some_and(|after| failures >= after);
        if !(*poison || exhausted) {
            return Ok(false);
        }
        let feed = &self.config.feed;
        let mut tx = self.pool.begin().await?;
        let stored = store::lock(&mut tx, feed).await?;
        if stored >= *sequence {
            // Another leader got past it meanwhile.
            self.publish(stored);
            return Ok(true);
        }
        store::dead_letter(&mut tx, feed, event, &format!("{error:#}"), failures).await?;
        if let Ok(event_id) = uuid::Uuid::parse_str(&event.event_id) {
            store::mark_applied(&mut tx, feed, &[event_id]).await?;
        }
        store::advance(&mut tx, feed, *sequence).await?;
        tx.commit().await?;
        self.metrics.dead_letters.inc();
        self.publish(*sequence);
        tracing::error!(
            sequence,
            event_id = %event.event_id,
            resource_type = %event.resource_type,
            resource_id = %event.resource_id,
            failures,
            error = format!("{error:#}"),
            "set a change feed event aside as a dead letter (feed_dead_letters); the feed goes on"
        );
        Ok(true)
    }

    /// Applies `items` in one transaction with the cursor.
    async fn apply_batch(&self, items: &[FeedItem]) -> Result<(), Failure> {
        let known = *self.cursor.borrow();
        let stale =
            |item: &FeedItem| matches!(item, FeedItem::Heartbeat(beat) if beat.latest_sequence <= known);
        if items.iter().all(stale) {
            return Ok(());
        }
        let feed = &self.config.feed;
        let mut tx = self.pool.begin().await?;
        let stored = store::lock(&mut tx, feed).await?;
        // The events past the stored cursor, in order, with the new cursor.
        let mut cursor = stored;
        let mut events = Vec::new();
        let mut event_ids = Vec::new();
        for (index, item) in items.iter().enumerate() {
            match item {
                FeedItem::Heartbeat(heartbeat) => cursor = cursor.max(heartbeat.latest_sequence),
                FeedItem::Change(event) if event.sequence > cursor => {
                    let event_id = uuid::Uuid::parse_str(&event.event_id).map_err(|err| Failure::Event {
                        index,
                        sequence: event.sequence,
                        kind: "invalid_event",
                        error: anyhow::Error::new(err).context(format!("event id {:?}", event.event_id)),
                        poison: true,
                    })?;
                    cursor = event.sequence;
                    events.push((index, event_id, event));
                    event_ids.push(event_id);
                }
                FeedItem::Change(_) => {}
            }
        }
        // Those not applied before (each id once, even if sent twice).
        let mut fresh = if event_ids.is_empty() {
            Default::default()
        } else {
            store::mark_applied(&mut tx, feed, &event_ids).await?
        };
        let mut applied = 0;
        for (index, event_id, event) in &events {
            if !fresh.remove(event_id) {
                continue;
            }
            let outcome = AssertUnwindSafe(self.handler.apply(&mut tx, event)).catch_unwind().await;
            let error = match outcome {
                Ok(Ok(())) => {
                    applied += 1;
                    continue;
                }
                Ok(Err(error)) => error,
                Err(_) => anyhow::anyhow!("the handler panicked"),
            };
            let poison = error.chain().any(|cause| cause.is::<super::Poison>());
            return Err(Failure::Event {
                index: *index,
                sequence: event.sequence,
                kind: "apply",
                error,
                poison,
            });
        }
        if cursor > stored {
            store::advance(&mut tx, feed, cursor).await?;
        }
        tx.commit().await?;
        if applied > 0 {
            self.handler.committed();
        }
        let changes = items.iter().filter(|item| matches!(item, FeedItem::Change(_))).count();
        self.metrics.applied.inc_by(applied);
        self.metrics.duplicates.inc_by((changes as u64).saturating_sub(applied));
        self.publish(cursor);
        Ok(())
    }

    /// A failed `open` or stream: resync when the cursor expired.
    async fn stream_failed(&self, status: Status, opened_at: i64) -> Stop {
        match resync_point(&status) {
            Some(resume_after) => self.resync(resume_after, opened_at).await,
            None => Stop::Failed(Failure::Source(status)),
        }
    }

    /// Rebuilds the effect and moves the cursor to `resume_after`, in one
    /// transaction.
    async fn resync(&self, resume_after: i64, opened_at: i64) -> Stop {
        let feed = &self.config.feed;
        let resynced: Result<Option<i64>, Failure> = async {
            let mut tx = self.pool.begin().await?;
            let stored = store::lock(&mut tx, feed).await?;
            if stored >= resume_after {
                return Ok(None);
            }
            let resynced = AssertUnwindSafe(self.handler.resync(&mut tx)).catch_unwind().await;
            match resynced {
                Ok(Ok(())) => {}
                Ok(Err(error)) => return Err(Failure::Resync(error)),
                Err(_) => return Err(Failure::Resync(anyhow::anyhow!("the handler panicked"))),
            }
            store::advance(&mut tx, feed, resume_after).await?;
            tx.commit().await?;
            Ok(Some(stored))
        }
        .await;
        match resynced {
            Ok(Some(stored)) => {
                self.handler.committed();
                self.metrics.resyncs.inc();
                self.publish(resume_after);
                tracing::info!(from = stored, resume_after, "resynced after an expired change feed cursor");
                Stop::Reopen
            }
            // Another leader resynced meanwhile: go on from its cursor.
            Ok(None) if opened_at < resume_after => Stop::Reopen,
            Ok(None) => Stop::Failed(Failure::Protocol(format!(
                "the producer says cursor {opened_at} expired but resumes after {resume_after}, not past it"
            ))),
            Err(failure) => Stop::Failed(failure),
        }
    }

    fn publish(&self, cursor: i64) {
        self.cursor.send_replace(cursor);
        self.metrics.cursor.set(cursor);
    }
}

/// Marks this replica as the leader until dropped.
struct Leading<'a> {
    gauge: &'a Gauge,
    leader: &'a watch::Sender<bool>,
}

impl<'a> Leading<'a> {
    fn start(gauge: &'a Gauge, leader: &'a watch::Sender<bool>) -> Leading<'a> {
        gauge.inc();
        leader.send_replace(true);
        Leading { gauge, leader }
    }
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.gauge.dec();
        self.leader.send_replace(false);
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeedLabels {
    feed: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    feed: String,
    kind: &'static str,
}

/// The consumer metric families, registered once per [`Metrics`].
#[derive(Clone, Default)]
pub(crate) struct Families {
    applied: Family<FeedLabels, Counter>,
    duplicates: Family<FeedLabels, Counter>,
    resyncs: Family<FeedLabels, Counter>,
    dead_letters: Family<FeedLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    leader: Family<FeedLabels, Gauge>,
    cursor: Family<FeedLabels, Gauge>,
}

impl Families {
    pub(crate) fn register(metrics: &Metrics) -> Families {
        let families = Families::default();
        let prefix = "rapport_feed_consumer";
        metrics.register(
            &format!("{prefix}_applied"),
            "Change feed events applied",
            families.applied.clone(),
        );
        metrics.register(
            &format!("{prefix}_duplicates"),
            "Change feed events skipped as already applied",
            families.duplicates.clone(),
        );
        metrics.register(
            &format!("{prefix}_resyncs"),
            "Resyncs after an expired change feed cursor",
            families.resyncs.clone(),
        );
        metrics.register(
            &format!("{prefix}_dead_letters"),
            "Change feed events set aside as dead letters (feed_dead_letters)",
            families.dead_letters.clone(),
        );
        metrics.register(
            &format!("{prefix}_errors"),
            "Change feed consumer failures, each followed by a back-off",
            families.errors.clone(),
        );
        metrics.register(
            &format!("{prefix}_leader"),
            "Consumers in this process holding the feed's lease",
            families.leader.clone(),
        );
        metrics.register(&format!("{prefix}_cursor"), "The feed's stored cursor", families.cursor.clone());
        families
    }
}

/// One feed's handles.
pub(super) struct FeedMetrics {
    applied: Counter,
    duplicates: Counter,
    resyncs: Counter,
    dead_letters: Counter,
    errors: Family<ErrorLabels, Counter>,
    leader: Gauge,
    cursor: Gauge,
}

impl FeedMetrics {
    pub(super) fn new(families: &Families, feed: &str) -> FeedMetrics {
        let labels = FeedLabels { feed: feed.to_owned() };
        FeedMetrics {
            applied: families.applied.get_or_create_owned(&labels),
            duplicates: families.duplicates.get_or_create_owned(&labels),
            resyncs: families.resyncs.get_or_create_owned(&labels),
            dead_letters: families.dead_letters.get_or_create_owned(&labels),
            errors: families.errors.clone(),
            leader: families.leader.get_or_create_owned(&labels),
            cursor: families.cursor.get_or_create_owned(&labels),
        }
    }
}
