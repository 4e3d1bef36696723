//! Periodic jobs: the lead scorer (every `CONTACTS_SCORING_INTERVAL`), the
//! search vocabulary's pruner (every `CONTACTS_VOCABULARY_INTERVAL`), the
//! phone keys of duplicate detection (every `CONTACTS_PHONE_KEY_INTERVAL`) and
//! the task reminder sweep, once per
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

/// The scorer's name (its `worker_runs` row) and the actor of its moves.
pub const SCORER: &str = "contacts-lead-scorer";

/// The most contacts one scoring run handles (the rest wait for the next):
/// a run holds the contacts it scores, so it stays short.
const MAX_SCORED_PER_RUN: usize = 2_000;

/// The background lead scorer: out-of-date and ageing scores, in batches.
pub struct Scorer {
    /// Woken after a run that changed something.
    pub feed: Feed,
    /// The clock.
    pub config: Config,
    /// Contacts whose cached copies go once the run commits.
    pub caches: crate::cache::Caches,
    /// The contacts the running transaction changed.
    pub changed: crate::cache::AfterCommit,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for Scorer {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        let now = self.config.now.now();
        let changed = crate::store::scoring::sweep(tx, now, MAX_SCORED_PER_RUN, SCORER).await?;
        let count = u64::try_from(changed.len()).unwrap_or(u64::MAX);
        self.changed.add(changed);
        Ok(count)
    }

    fn committed(&self, _changed: u64) {
        self.changed.flush(&self.caches, &self.feed);
    }
}

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

/// The phone keys' job name (its `worker_runs` row).
pub const PHONE_KEYS: &str = "contacts-phone-keys";

/// Phones the job normalizes per run.
const PHONE_KEYS_PER_RUN: i64 = 5_000;

/// Computes the E.164 form of new and changed phone numbers (see
/// `store::duplicates::fill_phone_keys`).
pub struct PhoneKeys {
    /// The region of numbers without a country code.
    pub region: crate::domain::duplicates::PhoneRegion,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for PhoneKeys {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        Ok(crate::store::duplicates::fill_phone_keys(tx, self.region, PHONE_KEYS_PER_RUN).await?)
    }
}

/// The vocabulary pruner's name (its `worker_runs` row).
pub const VOCABULARY: &str = "contacts-search-vocabulary";

/// Vocabulary words the pruner checks per run.
const VOCABULARY_WINDOW: i64 = 2_000;

/// The search vocabulary's pruner (see `store::search::prune_vocabulary`):
/// each run checks the next window of words, starting over at the end.
#[derive(Default)]
pub struct Vocabulary {
    /// The last word the previous run checked (this replica's).
    after: std::sync::Mutex<String>,
}

#[tonic::async_trait]
impl rapport_kit::worker::Job for Vocabulary {
    async fn run(&self, tx: &mut PgConnection) -> anyhow::Result<u64> {
        let after = self.after.lock().map(|after| after.clone()).unwrap_or_default();
        let (pruned, last) = crate::store::search::prune_vocabulary(tx, &after, VOCABULARY_WINDOW).await?;
        if let Ok(mut position) = self.after.lock() {
            *position = last.unwrap_or_default();
        }
        Ok(pruned)
    }
}
