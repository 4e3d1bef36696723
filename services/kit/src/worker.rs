//! Periodic jobs that are safe with several replicas: the change-log
//! pruner, Pipeline's overdue-invoice marker, and the sweepers other
//! services add.
//!
//! Each replica ticks every [`Periodic::every`]; at a tick it locks the
//! job's row of `worker_runs` (`FOR UPDATE SKIP LOCKED`) and runs the job
//! only when the row was not locked by another replica and the job's last
//! run is at least an interval old, all in one transaction that also moves
//! the last run time. So a job runs once per interval across replicas, never
//! twice at once, and a replica that dies mid-run rolls its run back for the
//! next tick to redo. [`Job::committed`] runs after the commit (e.g. to wake
//! change-feed watchers).

use std::sync::Arc;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::shutdown::Shutdown;

/// The shortest interval a spawned job ticks at (a zero one would spin).
const MIN_EVERY: Duration = Duration::from_secs(1);

/// A periodic job's work, run in the transaction that holds its turn.
#[tonic::async_trait]
pub trait Job: Send + Sync + 'static {
    /// Does one run's work in `tx`; returns how many things it changed.
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64>;

    /// Called after a run that changed something has committed.
    fn committed(&self, _changed: u64) {}
}

/// When a job runs.
#[derive(Debug, Clone, Copy)]
pub struct Periodic {
    /// The job's name (its `worker_runs` row, its logs), unique per schema.
    pub name: &'static str,
    /// At most one run per this interval, across replicas.
    pub every: Duration,
}

/// What a tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// This replica ran the job; it changed this many things.
    Ran(u64),
    /// Another replica is running it, or it ran less than an interval ago.
    Skipped,
}

/// One tick of `job`: runs it if it is this replica's turn (see the module).
pub async fn tick(pool: &PgPool, periodic: Periodic, job: &dyn Job) -> anyhow::Result<Tick> {
    // The job's row exists before any transaction locks it (on its own, so
    // a replica never waits on another's uncommitted first insert).
    sqlx::query(
        "INSERT INTO worker_runs (name, last_run_time) VALUES ($1, '-infinity') ON CONFLICT (name) DO NOTHING",
    )
    .bind(periodic.name)
    .execute(pool)
    .await?;
    let mut tx = pool.begin().await?;
    // A tenth of the interval of slack, so that replicas ticking at slightly
    // different moments do not push the job a whole interval back.
    let due_after = periodic.every.as_secs_f64() * 0.9;
    let due: Option<String> = sqlx::query_scalar(
        "SELECT name FROM worker_runs WHERE name = $1 \
         AND last_run_time <= now() - make_interval(secs => $2) FOR UPDATE SKIP LOCKED",
    )
    .bind(periodic.name)
    .bind(due_after)
    .fetch_optional(&mut *tx)
    .await?;
    if due.is_none() {
        tx.rollback().await?;
        return Ok(Tick::Skipped);
    }
    let changed = job.run(&mut tx).await?;
    sqlx::query("UPDATE worker_runs SET last_run_time = now() WHERE name = $1")
        .bind(periodic.name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if changed > 0 {
        job.committed(changed);
    }
    Ok(Tick::Ran(changed))
}

/// Ticks `job` every `periodic.every` (at least a second; the first at
/// once) until `shutdown`. A failed run is logged and retried at the next
/// tick.
pub fn spawn(pool: PgPool, periodic: Periodic, job: impl Job, mut shutdown: Shutdown) -> JoinHandle<()> {
    let job: Arc<dyn Job> = Arc::new(job);
    let span = tracing::info_span!("worker", name = periodic.name);
    tokio::spawn(
        async move {
            let mut ticker = tokio::time::interval(periodic.every.max(MIN_EVERY));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = shutdown.wait() => return,
                }
                match tick(&pool, periodic, job.as_ref()).await {
                    Ok(Tick::Ran(0) | Tick::Skipped) => {}
                    Ok(Tick::Ran(changed)) => tracing::info!(changed, "periodic job changed records"),
                    Err(err) => tracing::warn!(error = format!("{err:#}"), "periodic job failed"),
                }
            }
        }
        .instrument(span),
    )
}
