//! The gRPC adapter: extract, call the domain and store, convert back.

mod assignment;
mod cases;
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
}

impl State {
    /// After a write: wake the change streams unless it was refused before
    /// it could commit.
    pub fn written<T>(&self, result: &std::result::Result<T, Error>) {
        self.feed.written(result);
    }

    /// The context of a write or read happening now.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx { prefix: &self.config.case_number_prefix, now: self.config.now.now() }
    }
}

/// The implementation of every Support gRPC service, over the shared
/// [`State`].
#[derive(Clone)]
pub struct Api {
    pub state: Arc<State>,
}
