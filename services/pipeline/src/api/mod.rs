//! The gRPC adapter: extract, call the domain and store, convert back.
//! One file per gRPC service (each is one resource family), each holding
//! that service's trait implementation on [`Api`].

mod deals;
mod forecasts;
mod orders;
mod pipelines;
mod products;

use std::sync::Arc;

use rapport_kit::changelog::Feed;
use sqlx::PgPool;

use crate::config::Config;
use crate::error::Error;

/// What every handler needs.
pub struct State {
    /// The service's database pool.
    pub pool: PgPool,
    /// The change feed.
    pub feed: Feed,
    /// The service's settings.
    pub config: Config,
    /// The Contacts service, for reference checks.
    pub contacts: crate::contacts::Contacts,
}

impl State {
    /// After a write: wake the change streams unless it was refused before
    /// it could commit (see `Feed::written`).
    pub fn written<T>(&self, result: &std::result::Result<T, Error>) {
        self.feed.written(result);
    }
}

/// The implementation of every Pipeline gRPC service, over the shared
/// [`State`].
#[derive(Clone)]
pub struct Api {
    pub state: Arc<State>,
}
