//! Setup of the change feed consumer tests: in one fresh database, a
//! producer schema ([`super::SCHEMA`], with its change log served by a
//! `Feed`) and a consumer schema ([`CONSUMER_SCHEMA`], with kit's tables and
//! an `effects` table), and [`Recorder`], a handler writing each event it
//! applies into `effects` and able to fail or hang on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rapport_kit::changelog::{self, Change, Feed};
use rapport_kit::consumer::{self, Backoff, ConsumerConfig, ConsumerHandle, Handler, Source};
use rapport_kit::db::{self, DbConfig};
use rapport_kit::metrics::Metrics;
use rapport_kit::shutdown::{self, Shutdown, Trigger};
use rapport_proto::common::v1::ChangeEvent;
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;

use super::{Database, SCHEMA, change, database, within};

/// The consumer's schema.
pub const CONSUMER_SCHEMA: &str = "kit_consumer";
/// The name the consumer gives the producer's feed.
pub const FEED: &str = "money";
/// The producer's heartbeat.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// A producer and a consumer schema in a fresh database.
pub struct Setup {
    /// Pinned to the producer's schema.
    pub producer: PgPool,
    /// Pinned to the consumer's schema.
    pub consumer: PgPool,
    /// The producer's feed.
    pub feed: Feed,
    // Last, so the pools go first.
    _database: Database,
}

/// A fresh producer and consumer.
pub async fn setup() -> Setup {
    let database = database().await;
    let config = DbConfig {
        url: database.url().to_owned(),
        schema: CONSUMER_SCHEMA.into(),
        max_connections: 20,
        acquire_timeout: Duration::from_secs(10),
        ..DbConfig::default()
    };
    let consumer = db::pool(&config).unwrap();
    db::migrate(&consumer, CONSUMER_SCHEMA, &Migrator::DEFAULT).await.unwrap();
    sqlx::query(
        "CREATE TABLE effects (sequence bigint NOT NULL, event_id uuid NOT NULL, resource_id text NOT NULL)",
    )
    .execute(&consumer)
    .await
    .unwrap();
    sqlx::query("CREATE TABLE resyncs (resync_time timestamptz NOT NULL DEFAULT now())")
        .execute(&consumer)
        .await
        .unwrap();
    let producer = database.pool.clone();
    let feed = Feed::start(producer.clone(), SCHEMA, HEARTBEAT, Shutdown::never());
    Setup { producer, consumer, feed, _database: database }
}

impl Setup {
    /// Appends each change in a transaction of its own and announces them;
    /// returns their sequences.
    pub async fn append_changes(&self, changes: &[Change]) -> Vec<i64> {
        let mut sequences = Vec::new();
        for change in changes {
            let mut tx = self.producer.begin().await.unwrap();
            let events = changelog::append(&mut tx, std::slice::from_ref(change)).await.unwrap();
            tx.commit().await.unwrap();
            sequences.extend(changelog::sequences(&self.producer, &events).await.unwrap());
        }
        self.feed.announce();
        assert_eq!(sequences.len(), changes.len());
        sequences
    }

    /// Appends a created change per id (see [`Setup::append_changes`]).
    pub async fn append(&self, ids: &[&str]) -> Vec<i64> {
        let changes: Vec<Change> = ids.iter().map(|id| change(id)).collect();
        self.append_changes(&changes).await
    }

    /// The sequences of the committed effects, in order, duplicates kept.
    pub async fn effects(&self) -> Vec<i64> {
        sqlx::query_scalar("SELECT sequence FROM effects ORDER BY sequence")
            .fetch_all(&self.consumer)
            .await
            .unwrap()
    }

    /// How many resyncs were committed.
    pub async fn resyncs(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM resyncs").fetch_one(&self.consumer).await.unwrap()
    }

    /// The consumer's stored cursor.
    pub async fn stored(&self) -> i64 {
        consumer::stored_cursor(&self.consumer, FEED).await.unwrap().unwrap_or_default()
    }

    /// Starts a consumer of the feed with `recorder` and test timings.
    pub fn start(&self, recorder: &Recorder, metrics: &Metrics) -> Running {
        self.start_with(config(), self.feed.clone(), recorder, metrics)
    }

    /// Starts a consumer with `config` and `source`.
    pub fn start_with(
        &self,
        config: ConsumerConfig,
        source: impl Source,
        recorder: &Recorder,
        metrics: &Metrics,
    ) -> Running {
        let (trigger, shutdown) = shutdown::channel();
        let handle =
            consumer::spawn(self.consumer.clone(), config, source, recorder.clone(), metrics, shutdown);
        Running { handle, trigger }
    }
}

/// The consumer configuration of the tests: short back-offs and lease checks.
pub fn config() -> ConsumerConfig {
    ConsumerConfig {
        backoff: Backoff { initial: Duration::from_millis(5), max: Duration::from_millis(50) },
        lease_retry: Duration::from_millis(20),
        lease_check: Duration::from_millis(20),
        ..ConsumerConfig::new(FEED)
    }
}

/// A running consumer and its own shutdown.
pub struct Running {
    pub handle: ConsumerHandle,
    pub trigger: Trigger,
}

impl Running {
    /// Waits until the consumer has stored a cursor at or past `sequence`.
    pub async fn reach(&self, sequence: i64) {
        assert!(within("the consumer's cursor", self.handle.reached(sequence)).await, "the consumer stopped");
    }

    /// Shuts the consumer down and waits until it has stopped.
    pub async fn stop(self) {
        self.trigger.fire();
        within("the consumer to stop", self.handle.stopped()).await;
    }
}

/// A handler recording events into `effects` (before failing or hanging,
/// so only a rollback can undo it) and resyncs into `resyncs`.
#[derive(Clone, Default)]
pub struct Recorder {
    shared: Arc<Shared>,
}

/// How a failing event fails.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// A plain error.
    #[default]
    Error,
    /// A [`consumer::poison`] error.
    Poison,
    /// A database error (a failed statement).
    Database,
}

#[derive(Default)]
struct Shared {
    /// Events of this resource id fail while `failing` is set.
    failing_id: String,
    failing: AtomicBool,
    /// How they fail.
    failure: Failure,
    failures: watch::Sender<usize>,
    /// Events of this resource id hang (until the consumer is dropped).
    hanging_id: String,
    hung: watch::Sender<bool>,
}

impl Recorder {
    /// Fails events of resource `id` until [`Recorder::stop_failing`].
    pub fn failing_on(id: &str) -> Recorder {
        Recorder::failing_with(id, Failure::Error)
    }

    /// Fails events of resource `id` with `failure` until
    /// [`Recorder::stop_failing`].
    pub fn failing_with(id: &str, failure: Failure) -> Recorder {
        let shared =
            Shared { failing_id: id.into(), failing: AtomicBool::new(true), failure, ..Shared::default() };
        Recorder { shared: Arc::new(shared) }
    }

    /// Hangs forever on events of resource `id`.
    pub fn hanging_on(id: &str) -> Recorder {
        Recorder { shared: Arc::new(Shared { hanging_id: id.into(), ..Shared::default() }) }
    }

    /// Lets the failing events apply.
    pub fn stop_failing(&self) {
        self.shared.failing.store(false, Ordering::SeqCst);
    }

    /// Waits until `count` applies have failed.
    pub async fn failed(&self, count: usize) {
        let mut failures = self.shared.failures.subscribe();
        within("apply failures", failures.wait_for(|failures| *failures >= count)).await.unwrap();
    }

    /// Waits until an apply hangs.
    pub async fn hung(&self) {
        let mut hung = self.shared.hung.subscribe();
        within("an apply to hang", hung.wait_for(|hung| *hung)).await.unwrap();
    }
}

#[tonic::async_trait]
impl Handler for Recorder {
    async fn apply(&self, tx: &mut PgConnection, event: &ChangeEvent) -> anyhow::Result<()> {
        let event_id = uuid::Uuid::parse_str(&event.event_id)?;
        sqlx::query("INSERT INTO effects (sequence, event_id, resource_id) VALUES ($1, $2, $3)")
            .bind(event.sequence)
            .bind(event_id)
            .bind(&event.resource_id)
            .execute(&mut *tx)
            .await?;
        let shared = &self.shared;
        if event.resource_id == shared.failing_id && shared.failing.load(Ordering::SeqCst) {
            shared.failures.send_modify(|failures| *failures += 1);
            match shared.failure {
                Failure::Error => anyhow::bail!("refusing {}", event.resource_id),
                Failure::Poison => {
                    return Err(consumer::poison(anyhow::anyhow!("{} can never apply", event.resource_id)));
                }
                Failure::Database => {
                    sqlx::query("SELECT 1 / 0").execute(&mut *tx).await?;
                }
            }
        }
        if event.resource_id == shared.hanging_id {
            shared.hung.send_replace(true);
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn resync(&self, tx: &mut PgConnection) -> anyhow::Result<()> {
        sqlx::query("INSERT INTO resyncs DEFAULT VALUES").execute(&mut *tx).await?;
        Ok(())
    }
}

/// The value of `name{feed="money"}` in `metrics`, 0 when absent.
pub fn metric(metrics: &Metrics, name: &str) -> f64 {
    rapport_kit::testing::sample(&metrics.encode(), &format!("{name}{{feed=\"{FEED}\"}}")).unwrap_or_default()
}
