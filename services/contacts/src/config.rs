//! The Contacts service's configuration, read once from the environment:
//! the kit's common settings with the `CONTACTS` prefix (`CONTACTS_ADDR`,
//! `CONTACTS_METRICS_ADDR`, `CONTACTS_CACHE_*`, …; see
//! `rapport_kit::service::Settings`), and its own:
//!
//! - `CONTACTS_TASK_OVERDUE_AFTER` (default `1h`): how long after its due
//!   time an open task gets its OVERDUE reminder.
//! - `CONTACTS_REMINDER_INTERVAL` (default `5s`): how often the reminder
//!   sweep runs (once per interval across replicas).
//! - `CONTACTS_SCORING_INTERVAL` (default `2s`): how often the lead scorer
//!   recomputes out-of-date and ageing scores (once per interval across
//!   replicas, at most 2,000 contacts a run).
//! - `CONTACTS_VOCABULARY_INTERVAL` (default `1m`): how often the search
//!   vocabulary's pruner checks its next 2,000 words and drops those no
//!   record holds any more.
//! - `CONTACTS_PHONE_REGION` (default `US`): the region of phone numbers
//!   written without a country code, for duplicate detection (E.164).
//! - `CONTACTS_PHONE_KEY_INTERVAL` (default `2s`): how often the E.164 form
//!   of new and changed phone numbers is computed (5,000 a run).
//! - `CONTACTS_PIPELINE_ADDR` / `CONTACTS_SUPPORT_ADDR` (defaults
//!   `http://127.0.0.1:50052` / `:50053`; `serve all` uses its own) with
//!   `_API_KEY` and `_TIMEOUT`: the services whose change feeds it follows.

use std::time::Duration;

use rapport_kit::config::{ConfigError, Env};
use rapport_kit::peer::PeerSettings;
use rapport_kit::service::Settings;

use crate::domain::duplicates::PhoneRegion;

pub use rapport_kit::clock::Now;

/// The default address of the Contacts service.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// Everything the Contacts service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The common settings.
    pub service: Settings,
    /// How long after its due time an open task is overdue.
    pub task_overdue_after: Duration,
    /// How often the reminder sweep runs.
    pub reminder_interval: Duration,
    /// How often the lead scorer runs.
    pub scoring_interval: Duration,
    /// How often the search vocabulary is pruned.
    pub vocabulary_interval: Duration,
    /// The region of phone numbers without a country code.
    pub phone_region: PhoneRegion,
    /// How often phone numbers' E.164 keys are computed.
    pub phone_key_interval: Duration,
    /// The time source of task reminders and overdue flags.
    pub now: Now,
    /// Where Pipeline is (its change feed joins timelines and moves
    /// lifecycle stages): `CONTACTS_PIPELINE_ADDR`, `_API_KEY`, `_TIMEOUT`.
    pub pipeline: PeerSettings,
    /// Where Support is (its cases join timelines): `CONTACTS_SUPPORT_*`.
    pub support: PeerSettings,
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            service: Settings::from_env(env, &crate::SPEC)?,
            task_overdue_after: env.duration_or("CONTACTS_TASK_OVERDUE_AFTER", Duration::from_secs(3600))?,
            reminder_interval: env.duration_or("CONTACTS_REMINDER_INTERVAL", Duration::from_secs(5))?,
            scoring_interval: env.duration_or("CONTACTS_SCORING_INTERVAL", Duration::from_secs(2))?,
            vocabulary_interval: env.duration_or("CONTACTS_VOCABULARY_INTERVAL", Duration::from_secs(60))?,
            phone_region: env.or_default("CONTACTS_PHONE_REGION", PhoneRegion::default())?,
            phone_key_interval: env.duration_or("CONTACTS_PHONE_KEY_INTERVAL", Duration::from_secs(2))?,
            now: Now::system(),
            pipeline: PeerSettings::from_env(env, "contacts", "pipeline", "http://127.0.0.1:50052")?,
            support: PeerSettings::from_env(env, "contacts", "support", "http://127.0.0.1:50053")?,
        })
    }

    /// This configuration reading the time from `now`.
    pub fn with_now(mut self, now: Now) -> Config {
        self.now = now;
        self
    }

    /// The moment of a change made now, with the overdue delay.
    pub fn at(&self) -> crate::domain::activity::At {
        crate::domain::activity::At {
            now: self.now.now(),
            overdue_after: chrono::Duration::from_std(self.task_overdue_after)
                .unwrap_or(chrono::Duration::hours(1)),
        }
    }
}
