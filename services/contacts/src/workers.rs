//! Periodic jobs: the task reminder sweep, once per
//! `CONTACTS_REMINDER_INTERVAL` across replicas (the kit's periodic
//! worker: one replica at a time, and a sweep cut short rolls back whole,
//! so each reminder is published exactly once).

use rapport_kit::changelog::Feed;
use sqlx::PgConnection;

use crate::config::Config;

/// The sweep's name (its `worker_runs` row) and the actor of its events.
pub const REMINDERS: &str = "contacts-task-reminders";

/// The most tasks one sweep handles (the rest wait for the next).
const MAX_TASKS_PER_SWEEP: usize = 200_000;

/// The reminder sweep.
pub struct Reminders {
    /// Woken after a sweep that published something.
    pub feed: Feed,
    /// The clock and the overdue delay.
    pub config: Config,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for Reminders {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        Ok(crate::store::reminders::sweep(tx, self.config.at(), REMINDERS, MAX_TASKS_PER_SWEEP).await?)
    }

    fn committed(&self, _changed: u64) {
        self.feed.announce();
    }
}
