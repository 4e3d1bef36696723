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
    /// After a write that may have committed: wake the change streams.
    /// Refused writes (validation, etag, not found) cost nothing.
    pub fn written<T>(&self, result: &std::result::Result<T, Error>) {
        if result.as_ref().err().is_none_or(Error::may_have_written) {
            self.feed.announce();
        }
    }
}

/// The implementation of every Pipeline gRPC service.
#[derive(Clone)]
pub struct Api {
    state: Arc<State>,
}

impl Api {
    /// An API over `state`.
    pub fn new(state: State) -> Api {
        Api { state: Arc::new(state) }
    }
}
