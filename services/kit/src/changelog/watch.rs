//! `WatchChanges`: replay the log after a cursor, then follow it live.
//!
//! One [`Feed`] per service holds a single LISTEN connection and wakes
//! every open stream when a transaction that appended commits; each stream
//! then reads what is new from the table (the source of truth), so a lost
//! notification only delays delivery until the next heartbeat tick.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rapport_proto::common::v1::Heartbeat;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status};

use super::Row;
use crate::error::{Problem, internal_status};
use crate::shutdown::Shutdown;

/// Events read per query while replaying.
const BATCH: i64 = 500;

/// The `ErrorInfo.reason` of the `FAILED_PRECONDITION` answering a cursor
/// older than the retention window.
pub const CURSOR_EXPIRED: &str = "CHANGE_CURSOR_EXPIRED";

/// One message of a change stream (the same in every package's
/// `WatchChanges`).
pub use rapport_proto::FeedEvent as FeedItem;

/// Which read RPC shows each resource type a feed carries: a
/// `WatchChanges` stream carries only the types its caller may read
/// through them (by the service's role tables).
#[derive(Debug, Clone, Copy)]
pub struct FeedReads<'a> {
    /// (resource type, gRPC service, read method), e.g.
    /// `("rapport.pipeline.v1.Quota", "rapport.pipeline.v1.ForecastService", "ListQuotas")`.
    pub reads: &'a [(&'a str, &'a str, &'a str)],
    /// The service's role tables.
    pub policies: &'a [crate::auth::Policy],
}

impl<'a> FeedReads<'a> {
    /// The resource types `principal` may read.
    pub fn readable_by(&self, principal: &crate::auth::Principal) -> Vec<&'a str> {
        self.reads
            .iter()
            .filter(|(_, service, method)| {
                self.policies
                    .iter()
                    .find(|policy| policy.service() == *service)
                    .and_then(|policy| policy.allowed(method))
                    .is_some_and(|roles| principal.has_any(roles))
            })
            .map(|(resource_type, _, _)| *resource_type)
            .collect()
    }
}

/// At most [`MAX_RESOURCE_TYPES`], each 1-200 characters of text.
fn check_resource_types(resource_types: &[String]) -> Result<(), Status> {
    crate::fields::cap("resource_types", resource_types, MAX_RESOURCE_TYPES)
        .and_then(|()| {
            resource_types.iter().enumerate().try_for_each(|(index, name)| {
                crate::fields::text(&format!("resource_types[{index}]"), name, true, 200).map(drop)
            })
        })
        .map_err(|violation| crate::fields::invalid(vec![violation]).into_status())
}

/// Which changes of a stream its caller may see ([`Feed::serve_visible`]):
/// a future, so a change can be checked against the records it hangs from.
pub type Visible = Arc<
    dyn Fn(&rapport_proto::common::v1::ChangeEvent) -> futures::future::BoxFuture<'static, bool>
        + Send
        + Sync,
>;

/// The stream a `WatchChanges` handler returns, for any package's response.
pub type WatchStream<R> = std::pin::Pin<Box<dyn futures::Stream<Item = Result<R, Status>> + Send>>;

/// True unless the write ending with `result` was refused before it could
/// commit.
fn may_have_written<T, E: crate::error::OwnError>(result: &Result<T, crate::error::Error<E>>) -> bool {
    result.as_ref().err().is_none_or(crate::error::Error::may_have_written)
}

/// The change feed of one service schema.
#[derive(Clone)]
pub struct Feed {
    pool: PgPool,
    wakeups: watch::Receiver<u64>,
    local: watch::Sender<u64>,
    announcements: Arc<Notify>,
    heartbeat: Duration,
    shutdown: Shutdown,
}

impl Feed {
    /// Starts following `schema`'s notifications until `shutdown`. Streams
    /// send a heartbeat after `heartbeat` without events.
    pub fn start(pool: PgPool, schema: &str, heartbeat: Duration, shutdown: Shutdown) -> Feed {
        let (sender, wakeups) = watch::channel(0u64);
        let channel = format!("rapport_changes_{schema}");
        let announcements = Arc::new(Notify::new());
        // Our own NOTIFYs come back to our LISTEN; their payload says so.
        let origin = uuid::Uuid::now_v7().to_string();
        tokio::spawn(listen(pool.clone(), channel.clone(), origin.clone(), sender.clone(), shutdown.clone()));
        tokio::spawn(announce(pool.clone(), channel, origin, announcements.clone(), shutdown.clone()));
        Feed { pool, wakeups, local: sender, announcements, heartbeat, shutdown }
    }

    /// Call after committing appended changes: wakes this process's
    /// streams at once and, with one NOTIFY per burst of commits, every other
    /// replica's.
    pub fn announce(&self) {
        self.local.send_modify(|count| *count += 1);
        self.announcements.notify_one();
    }

    /// After a write ending with `result`: wakes the change streams unless
    /// the write was refused before it could commit (validation, etag, not
    /// found), which costs nothing. A service with cached copies drops them
    /// first ([`written_after`](Feed::written_after)).
    pub fn written<T, E: crate::error::OwnError>(&self, result: &Result<T, crate::error::Error<E>>) {
        if may_have_written(result) {
            self.announce();
        }
    }

    /// [`Feed::written`], running `first` (e.g. dropping cached copies)
    /// before the streams are woken, so a watcher reading the record back
    /// never gets the old copy.
    pub async fn written_after<T, E, F>(&self, result: &Result<T, crate::error::Error<E>>, first: F)
    where
        E: crate::error::OwnError,
        F: Future<Output = ()>,
    {
        if may_have_written(result) {
            first.await;
            self.announce();
        }
    }

    /// The whole `WatchChanges` handler of any service: the request's
    /// cursor and resource types, answered with [`Feed::watch`] in the
    /// package's own response type, carrying only the resource types its
    /// caller may read ([`FeedReads`]): asking for one the caller may not
    /// read is `PERMISSION_DENIED`, asking for none means every readable
    /// one, and a type no read RPC is declared for is never sent (asking
    /// for it matches nothing).
    pub fn serve<Req, Resp>(
        &self,
        request: tonic::Request<Req>,
        reads: &FeedReads<'_>,
    ) -> Result<tonic::Response<WatchStream<Resp>>, Status>
    where
        Req: rapport_proto::WatchRequest,
        Resp: rapport_proto::WatchResponse,
    {
        self.serve_visible(request, reads, |_| None)
    }

    /// [`Feed::serve`], carrying of the readable types only the records
    /// `visible(principal)` keeps (when it returns a predicate): the
    /// records of kinds declared team-visible that the caller may read
    /// through the read RPCs. Records left out count as not sent: the
    /// heartbeats go on, and their sequence moves a follower's cursor past
    /// them.
    pub fn serve_visible<Req, Resp>(
        &self,
        request: tonic::Request<Req>,
        reads: &FeedReads<'_>,
        visible: impl FnOnce(&crate::auth::Principal) -> Option<Visible>,
    ) -> Result<tonic::Response<WatchStream<Resp>>, Status>
    where
        Req: rapport_proto::WatchRequest,
        Resp: rapport_proto::WatchResponse,
    {
        use futures::StreamExt as _;
        let principal = crate::auth::principal(&request)?;
        let visible = visible(principal);
        let readable = reads.readable_by(principal);
        let (after_sequence, requested) = request.into_inner().into_parts();
        check_resource_types(&requested)?;
        let declared = |name: &str| reads.reads.iter().any(|(resource_type, _, _)| *resource_type == name);
        // A type no read RPC is declared for is never carried: asking for it
        // is not an error (a newer service may carry it), it matches nothing.
        if let Some(name) = requested.iter().find(|name| declared(name) && !readable.contains(&name.as_str()))
        {
            return Err(Problem::permission_denied(
                "RESOURCE_TYPE_NOT_READABLE",
                format!("your roles may not read {name}"),
            )
            .meta("resource_type", name.clone())
            .into_status());
        }
        if readable.is_empty() {
            return Err(Problem::permission_denied(
                "RESOURCE_TYPE_NOT_READABLE",
                "your roles may read none of the resource types this feed carries",
            )
            .into_status());
        }
        let resource_types: Vec<String> = if requested.is_empty() {
            readable.iter().map(|name| (*name).to_owned()).collect()
        } else {
            // Only readable (hence declared) types; one that matches nothing
            // keeps the filter from meaning "all" when none is left.
            let mut kept: Vec<String> =
                requested.into_iter().filter(|name| readable.contains(&name.as_str())).collect();
            if kept.is_empty() {
                kept.push(NO_TYPE.to_owned());
            }
            kept
        };
        let stream = self.watch_visible(after_sequence, resource_types, visible)?.map(|item| {
            item.map(|item| match item {
                FeedItem::Change(change) => Resp::change(change),
                FeedItem::Heartbeat(heartbeat) => Resp::heartbeat(heartbeat),
            })
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }

    /// A stream of every change after `after_sequence` (optionally only of
    /// `resource_types`, at most [`MAX_RESOURCE_TYPES`]), replayed and then followed live. Ends when the
    /// client goes away. A cursor older than the retention window yields
    /// `FAILED_PRECONDITION` with reason `CHANGE_CURSOR_EXPIRED`.
    pub fn watch(
        &self,
        after_sequence: i64,
        resource_types: Vec<String>,
    ) -> Result<ReceiverStream<Result<FeedItem, Status>>, Status> {
        self.watch_visible(after_sequence, resource_types, None)
    }

    /// [`Feed::watch`], carrying only the changes `visible` keeps (all
    /// without it).
    pub fn watch_visible(
        &self,
        after_sequence: i64,
        resource_types: Vec<String>,
        visible: Option<Visible>,
    ) -> Result<ReceiverStream<Result<FeedItem, Status>>, Status> {
        if after_sequence < 0 {
            return Err(Problem::invalid_field(
                "INVALID_CURSOR",
                "after_sequence",
                "must be zero or a sequence from an earlier event",
            )
            .into_status());
        }
        check_resource_types(&resource_types)?;
        let (sender, receiver) = mpsc::channel(64);
        let stream = Stream {
            pool: self.pool.clone(),
            wakeups: self.wakeups.clone(),
            heartbeat: self.heartbeat,
            shutdown: self.shutdown.clone(),
            cursor: after_sequence,
            resource_types,
            visible,
            sender,
        };
        tokio::spawn(stream.run());
        Ok(ReceiverStream::new(receiver))
    }
}

/// Sends one NOTIFY per burst of announcements (coalesced: announcements
/// that arrive while one is being sent share the next).
async fn announce(
    pool: PgPool,
    channel: String,
    origin: String,
    announcements: Arc<Notify>,
    mut shutdown: Shutdown,
) {
    loop {
        tokio::select! {
            () = announcements.notified() => {}
            () = shutdown.wait() => return,
        }
        let sent = sqlx::query("SELECT pg_notify($1, $2)").bind(&channel).bind(&origin).execute(&pool).await;
        if let Err(err) = sent
            && !shutdown.is_triggered()
        {
            tracing::warn!(channel, error = %err, "cannot announce changes; other replicas see them at their next heartbeat");
        }
    }
}

async fn listen(
    pool: PgPool,
    channel: String,
    origin: String,
    wakeups: watch::Sender<u64>,
    mut shutdown: Shutdown,
) {
    let mut delay = Duration::from_millis(100);
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(&channel).await {
                Ok(()) => {
                    delay = Duration::from_millis(100);
                    // Anything committed while we were not listening.
                    wakeups.send_modify(|count| *count += 1);
                    loop {
                        tokio::select! {
                            received = listener.try_recv() => match received {
                                // `announce` already woke this process's streams.
                                Ok(Some(notification)) if notification.payload() == origin => {}
                                Ok(Some(_)) => wakeups.send_modify(|count| *count += 1),
                                Ok(None) => {
                                    tracing::warn!(channel, "change notifications lost; reconnecting");
                                    wakeups.send_modify(|count| *count += 1);
                                }
                                Err(err) => {
                                    if shutdown.is_triggered() {
                                        return;
                                    }
                                    tracing::warn!(channel, error = %err, "change listener failed");
                                    break;
                                }
                            },
                            () = shutdown.wait() => return,
                        }
                    }
                }
                Err(err) => tracing::warn!(channel, error = %err, "LISTEN failed"),
            },
            Err(err) => tracing::debug!(channel, error = %err, "change listener cannot connect"),
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.wait() => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

/// A resource type no change carries: the filter of a stream asking only
/// for types no read RPC declares.
const NO_TYPE: &str = "rapport.none";

/// The most resource types one `WatchChanges` may name.
pub const MAX_RESOURCE_TYPES: usize = 32;

struct Stream {
    pool: PgPool,
    wakeups: watch::Receiver<u64>,
    heartbeat: Duration,
    shutdown: Shutdown,
    cursor: i64,
    resource_types: Vec<String>,
    visible: Option<Visible>,
    sender: mpsc::Sender<Result<FeedItem, Status>>,
}

impl Stream {
    async fn run(mut self) {
        if let Err(status) = self.pump().await {
            let _ = self.sender.send(Err(status)).await;
        }
    }

    async fn pump(&mut self) -> Result<(), Status> {
        // A heartbeat is due after `heartbeat` without anything sent, however
        // often wakeups for other resource types arrive.
        let mut heartbeat_due = tokio::time::Instant::now() + self.heartbeat;
        loop {
            // Mark wakeups seen before reading, so a commit landing during
            // the read wakes us again.
            self.wakeups.borrow_and_update();
            let read = self.read_batch().await?;
            if read.sent_closed {
                return Ok(());
            }
            if read.sent > 0 {
                heartbeat_due = tokio::time::Instant::now() + self.heartbeat;
            }
            if read.full {
                continue;
            }
            tokio::select! {
                changed = self.wakeups.changed() => {
                    if changed.is_err() {
                        return Err(Status::unavailable("the service is shutting down"));
                    }
                }
                () = tokio::time::sleep_until(heartbeat_due) => {
                    heartbeat_due = tokio::time::Instant::now() + self.heartbeat;
                    let heartbeat = Heartbeat {
                        latest_sequence: self.cursor,
                        time: Some(super::timestamp(chrono::Utc::now())),
                    };
                    if self.sender.send(Ok(FeedItem::Heartbeat(heartbeat))).await.is_err() {
                        return Ok(());
                    }
                }
                () = self.sender.closed() => return Ok(()),
                () = self.shutdown.wait() => {
                    return Err(Status::unavailable("the service is shutting down"));
                }
            }
        }
    }

    /// Sends the next batch after the cursor. Every row advances the cursor,
    /// also those filtered out by type, so heartbeats report real progress.
    async fn read_batch(&mut self) -> Result<Batch, Status> {
        let rows: Vec<Row> =
            sqlx::query_as("SELECT * FROM change_log WHERE sequence > $1 ORDER BY sequence LIMIT $2")
                .bind(self.cursor)
                .bind(BATCH)
                .fetch_all(&self.pool)
                .await
                .map_err(database_status)?;
        // Checked after the read: a prune that committed before the read
        // moved the horizon, and this sees it.
        let pruned_through: i64 = sqlx::query_scalar("SELECT pruned_through FROM change_log_horizon")
            .fetch_one(&self.pool)
            .await
            .map_err(database_status)?;
        if self.cursor < pruned_through {
            return Err(expired(self.cursor, pruned_through));
        }
        let full = rows.len() as i64 == BATCH;
        let mut sent = 0;
        for row in rows {
            self.cursor = row.sequence;
            if !self.resource_types.is_empty() && !self.resource_types.contains(&row.resource_type) {
                continue;
            }
            let event = row.into_event();
            if let Some(visible) = &self.visible
                && !visible(&event).await
            {
                continue;
            }
            if self.sender.send(Ok(FeedItem::Change(event))).await.is_err() {
                return Ok(Batch { full, sent, sent_closed: true });
            }
            sent += 1;
        }
        Ok(Batch { full, sent, sent_closed: false })
    }
}

struct Batch {
    full: bool,
    sent: usize,
    sent_closed: bool,
}

fn database_status(err: sqlx::Error) -> Status {
    match crate::error::database_problem(&err) {
        Some(problem) => problem.into_status(),
        None => internal_status(&anyhow::Error::new(err).context("reading the change log")),
    }
}

fn expired(cursor: i64, pruned_through: i64) -> Status {
    Problem::new(
        Code::FailedPrecondition,
        CURSOR_EXPIRED,
        format!(
            "events after sequence {cursor} are no longer retained (pruned through {pruned_through}); \
             resync: list the resources, then watch from the sequence in this error's metadata"
        ),
    )
    .precondition("CHANGE_CURSOR", &cursor.to_string(), "older than the change log's retention window")
    .meta("pruned_through", pruned_through.to_string())
    .meta("resume_after", pruned_through.to_string())
    .into_status()
}

/// When `status` says the cursor expired ([`CURSOR_EXPIRED`]), the sequence
/// to watch after once the consumer has resynced (the error's
/// `resume_after` metadata); `None` for any other status.
pub fn resync_point(status: &Status) -> Option<i64> {
    use tonic_types::StatusExt as _;
    if status.code() != Code::FailedPrecondition {
        return None;
    }
    let info = status.get_details_error_info()?;
    if info.reason != CURSOR_EXPIRED || info.domain != crate::error::DOMAIN {
        return None;
    }
    info.metadata.get("resume_after")?.parse().ok()
}
