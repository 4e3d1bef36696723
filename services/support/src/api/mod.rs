//! The gRPC adapter: extract, call the domain and store, convert back.

mod assignment;
mod cases;
mod knowledge;
mod satisfaction;
mod sla;

use std::sync::Arc;

use rapport_kit::changelog::Feed;
use sqlx::PgPool;

use crate::config::Config;
use crate::error::Error;
use crate::store::Ctx;

/// What every handler needs.
pub struct State {
    /// The service's database pool.
    pub pool: PgPool,
    /// The change feed.
    pub feed: Feed,
    /// The service's settings (its time source among them).
    pub config: Config,
    /// The Contacts service, for reference checks.
    pub contacts: crate::contacts::Contacts,
    /// Limits survey answers (SubmitSatisfaction needs no login).
    pub survey_limiter: rapport_kit::ratelimit::RateLimiter,
    /// What this deployment's survey buckets are named with in the shared
    /// Redis (a digest of its database), so deployments sharing a Redis do
    /// not share limits.
    pub survey_namespace: String,
    /// The SLA policies and calendars reads convert with.
    pub sla: crate::store::sla::SlaCache,
}

impl State {
    /// After a write: wake the change streams unless it was refused before
    /// it could commit.
    pub fn written<T>(&self, result: &std::result::Result<T, Error>) {
        self.feed.written(result);
    }

    /// The context of a write or read happening now.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            prefix: &self.config.case_number_prefix,
            now: self.config.now.now(),
            mail: self.config.mail.as_ref(),
            survey_ttl: chrono::Duration::from_std(self.config.survey_ttl).unwrap_or(chrono::Duration::MAX),
        }
    }
}

/// The implementation of every Support gRPC service, over the shared
/// [`State`].
#[derive(Clone)]
pub struct Api {
    pub state: Arc<State>,
}
