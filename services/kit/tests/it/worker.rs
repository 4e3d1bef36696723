//! Periodic jobs: once per interval across replicas, never twice at once,
//! a failed run rolled back and redone, `committed` after the commit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use rapport_kit::shutdown;
use rapport_kit::worker::{self, Job, Periodic, Tick};
use sqlx::PgConnection;

use crate::support::{self, PATIENCE};

/// Inserts a row per run (so a rolled-back run leaves none), can fail
/// after inserting, and counts `committed` calls.
#[derive(Clone, Default)]
struct Counting {
    fail: Arc<AtomicUsize>,
    committed: Arc<AtomicU64>,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

#[tonic::async_trait]
impl Job for Counting {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        sqlx::query("INSERT INTO worker_test_runs DEFAULT VALUES").execute(&mut *tx).await?;
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await?;
        }
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            anyhow::bail!("the job failed on purpose");
        }
        Ok(1)
    }

    fn committed(&self, changed: u64) {
        self.committed.fetch_add(changed, Ordering::SeqCst);
    }
}

async fn runs(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM worker_test_runs").fetch_one(pool).await.unwrap()
}

async fn database() -> support::Database {
    let database = support::database().await;
    sqlx::query("CREATE TABLE worker_test_runs (id bigserial PRIMARY KEY)")
        .execute(&database.pool)
        .await
        .unwrap();
    database
}

const HOURLY: Periodic = Periodic { name: "hourly", every: Duration::from_secs(3600) };

#[tokio::test]
async fn a_job_runs_once_per_interval_and_calls_committed() {
    let database = database().await;
    let job = Counting::default();
    assert_eq!(worker::tick(&database.pool, HOURLY, &job).await.unwrap(), Tick::Ran(1));
    // Not due again for an hour, on this replica or any other.
    assert_eq!(worker::tick(&database.pool, HOURLY, &job).await.unwrap(), Tick::Skipped);
    let other = support::pool_on(database.url());
    assert_eq!(worker::tick(&other, HOURLY, &job).await.unwrap(), Tick::Skipped);
    assert_eq!(runs(&database.pool).await, 1);
    assert_eq!(job.committed.load(Ordering::SeqCst), 1);
    // Another job has its own turn.
    let daily = Periodic { name: "daily", every: Duration::from_secs(86_400) };
    assert_eq!(worker::tick(&other, daily, &job).await.unwrap(), Tick::Ran(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_skips_while_another_runs_the_job() {
    let database = database().await;
    // Always due, so only the other run can make a replica skip.
    let always = Periodic { name: "always", every: Duration::ZERO };
    assert_eq!(worker::tick(&database.pool, always, &Counting::default()).await.unwrap(), Tick::Ran(1));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let job = Counting { gate: Some(gate.clone()), ..Counting::default() };
    let first = tokio::spawn({
        let (pool, job) = (database.pool.clone(), job.clone());
        async move { worker::tick(&pool, always, &job).await.unwrap() }
    });
    // Wait until the first run holds the job's row and waits at the gate.
    let holding = || async {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state = 'idle in transaction' AND query LIKE 'INSERT INTO worker_test_runs%'",
        )
        .fetch_one(&database.pool)
        .await
        .unwrap();
        open > 0
    };
    support::eventually("the first run to start", holding).await;
    let other = support::pool_on(database.url());
    let unblocked = Counting::default();
    assert_eq!(worker::tick(&other, always, &unblocked).await.unwrap(), Tick::Skipped);
    gate.add_permits(1);
    assert_eq!(first.await.unwrap(), Tick::Ran(1));
    assert_eq!(runs(&database.pool).await, 2);
    // Once it is done, the other replica runs it.
    assert_eq!(worker::tick(&other, always, &unblocked).await.unwrap(), Tick::Ran(1));
}

#[tokio::test]
async fn a_failed_run_is_rolled_back_and_redone_at_the_next_tick() {
    let database = database().await;
    let job = Counting { fail: Arc::new(AtomicUsize::new(1)), ..Counting::default() };
    assert!(worker::tick(&database.pool, HOURLY, &job).await.is_err());
    assert_eq!(runs(&database.pool).await, 0, "the failed run's work is rolled back");
    assert_eq!(job.committed.load(Ordering::SeqCst), 0);
    assert_eq!(worker::tick(&database.pool, HOURLY, &job).await.unwrap(), Tick::Ran(1));
    assert_eq!(runs(&database.pool).await, 1);
}

#[tokio::test]
async fn spawned_jobs_run_at_once_and_stop_at_shutdown() {
    let database = database().await;
    let job = Counting::default();
    let (trigger, stop) = shutdown::channel();
    let task = worker::spawn(database.pool.clone(), HOURLY, job.clone(), stop);
    let committed = job.committed.clone();
    support::eventually("the first tick", || async { committed.load(Ordering::SeqCst) > 0 }).await;
    trigger.fire();
    tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    assert_eq!(runs(&database.pool).await, 1);
}
