//! The overdue worker: every `PIPELINE_OVERDUE_INTERVAL`, marks unpaid
//! invoices past their due date OVERDUE (with change-log rows) and wakes
//! the change streams. Reads show OVERDUE at once anyway; the worker makes
//! the stored status and the change feed follow.

use std::time::Duration;

use rapport_kit::changelog::Feed;
use rapport_kit::shutdown::Shutdown;
use sqlx::PgPool;

use crate::error::Error;

/// Marks every OPEN or PARTIALLY_PAID invoice whose due date has passed
/// OVERDUE, in one statement and one transaction; returns how many.
pub async fn mark_overdue(pool: &PgPool) -> Result<u64, Error> {
    crate::store::invoices::mark_overdue(pool).await
}

/// Runs [`mark_overdue`] every `every` (first at once) until `shutdown`,
/// announcing each sweep that changed something.
pub fn spawn(
    pool: PgPool,
    feed: Feed,
    every: Duration,
    mut shutdown: Shutdown,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                () = shutdown.wait() => return,
            }
            match mark_overdue(&pool).await {
                Ok(0) => {}
                Ok(count) => {
                    tracing::info!(count, "invoices marked overdue");
                    feed.announce();
                }
                Err(err) => tracing::warn!(error = %err, "overdue sweep failed"),
            }
        }
    })
}
