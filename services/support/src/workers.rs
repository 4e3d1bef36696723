//! Periodic jobs: the SLA sweeper, once per `SUPPORT_SWEEP_INTERVAL`
//! across replicas (the kit's periodic worker), announcing what it found.

use rapport_kit::changelog::Feed;
use rapport_kit::idempotency::Write;
use sqlx::PgConnection;

use crate::config::Now;
use crate::store::{Ctx, sweep};

/// The sweeper's name (its `worker_runs` row) and the actor of its changes.
pub const SWEEPER: &str = "support-sla-sweeper";

/// The SLA sweeper.
pub struct Sweeper {
    /// Woken after a sweep that announced something.
    pub feed: Feed,
    /// The time source.
    pub now: Now,
    /// The case number prefix.
    pub prefix: String,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for Sweeper {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        let ctx = Ctx { prefix: &self.prefix, now: self.now.now() };
        Ok(sweep::sweep(tx, Write::service(SWEEPER), ctx).await?)
    }

    fn committed(&self, _changed: u64) {
        self.feed.announce();
    }
}
