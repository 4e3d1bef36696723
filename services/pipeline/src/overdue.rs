//! The overdue worker: every `PIPELINE_OVERDUE_INTERVAL` (once across
//! replicas, on the kit's periodic worker), marks unpaid invoices past their
//! due date OVERDUE (with change-log rows) and wakes the change streams.
//! Reads show OVERDUE at once anyway; the worker makes the stored status
//! and the change feed follow.

use rapport_kit::changelog::Feed;
use sqlx::{PgConnection, Postgres};

use crate::error::Error;

/// The worker's name (its `worker_runs` row).
pub const NAME: &str = "overdue_invoices";

/// Marks every OPEN or PARTIALLY_PAID invoice whose due date has passed
/// OVERDUE, in one statement and one transaction; returns how many.
pub async fn mark_overdue<'c>(db: impl sqlx::Acquire<'c, Database = Postgres>) -> Result<u64, Error> {
    crate::store::invoices::mark_overdue(db).await
}

/// The periodic job: marks, then announces a sweep that changed something.
pub struct Overdue {
    /// Woken after a sweep that marked invoices.
    pub feed: Feed,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for Overdue {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        Ok(mark_overdue(tx).await?)
    }

    fn committed(&self, _changed: u64) {
        self.feed.announce();
    }
}
