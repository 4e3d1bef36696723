//! The gRPC adapter: extract, call the domain and store, convert back.
//! One file per gRPC service (each is one resource family), each holding
//! that service's trait implementation on [`Api`].

mod deals;
mod forecasts;
mod orders;
mod pipelines;
mod products;

use std::sync::Arc;

use rapport_kit::auth::{Principal, ReadScope};
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

    /// The deals `principal` may read (all unless deals are team-visible).
    pub fn deal_scope(&self, principal: &Principal) -> ReadScope {
        crate::policy::DEALS_OWNERSHIP.read_scope(principal, self.config.team_visible.deals)
    }

    /// The quotas `principal` may read (all unless quotas are team-visible).
    pub fn quota_scope(&self, principal: &Principal) -> ReadScope {
        crate::policy::QUOTAS_OWNERSHIP.read_scope(principal, self.config.team_visible.quotas)
    }
}

/// A deal's owner, team and members, as the read and write rules see them.
pub fn deal_owned(deal: &rapport_proto::pipeline::v1::Deal) -> rapport_kit::auth::Owned<'_> {
    rapport_kit::auth::Owned {
        owner_id: &deal.owner_id,
        team_id: &deal.team_id,
        members: &deal.team_member_ids,
    }
}

/// The implementation of every Pipeline gRPC service, over the shared
/// [`State`].
#[derive(Clone)]
pub struct Api {
    pub state: Arc<State>,
}
