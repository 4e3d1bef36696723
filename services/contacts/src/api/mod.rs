//! The gRPC adapter: extract, call the domain and store, convert back.
//! One file per resource; this file only routes trait methods to them.

mod companies;
mod contacts;
mod query;

use std::sync::Arc;

use rapport_kit::changelog::{Feed, FeedReads, WatchStream};
use rapport_proto::contacts::v1::contact_service_server::ContactService;
use rapport_proto::contacts::v1::*;
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::cache::Caches;
use crate::error::Error;
use rapport_kit::cache::TwoTier;

/// What every handler needs.
pub struct State {
    /// The service's database pool.
    pub pool: PgPool,
    /// Hot-record caches.
    pub caches: Caches,
    /// The change feed.
    pub feed: Feed,
}

impl State {
    /// After a write of `id` that may have committed: drop its cached
    /// copies everywhere and wake the change streams. Refused writes
    /// (validation, etag, not found) cost nothing.
    async fn written<V, T>(&self, cache: &TwoTier<V>, id: &str, result: &std::result::Result<T, Error>)
    where
        V: prost::Message + Default + Send + Sync + 'static,
    {
        self.feed.written_after(result, cache.invalidate(id)).await;
    }
}

/// The ContactService implementation, over the shared [`State`].
#[derive(Clone)]
pub struct Api {
    pub state: Arc<State>,
}

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl ContactService for Api {
    async fn create_contact(&self, request: Request<CreateContactRequest>) -> Result<Contact> {
        contacts::create(&self.state, request).await
    }

    async fn get_contact(&self, request: Request<GetContactRequest>) -> Result<Contact> {
        contacts::get(&self.state, request).await
    }

    async fn batch_get_contacts(
        &self,
        request: Request<BatchGetContactsRequest>,
    ) -> Result<BatchGetContactsResponse> {
        contacts::batch_get(&self.state, request).await
    }

    async fn update_contact(&self, request: Request<UpdateContactRequest>) -> Result<Contact> {
        contacts::update(&self.state, request).await
    }

    async fn delete_contact(&self, request: Request<DeleteContactRequest>) -> Result<Contact> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        contacts::set_deleted(&self.state, &request, &id, &etag, true).await
    }

    async fn undelete_contact(&self, request: Request<UndeleteContactRequest>) -> Result<Contact> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        contacts::set_deleted(&self.state, &request, &id, &etag, false).await
    }

    async fn list_contacts(&self, request: Request<ListContactsRequest>) -> Result<ListContactsResponse> {
        contacts::list(&self.state, request).await
    }

    async fn search_contacts(
        &self,
        request: Request<SearchContactsRequest>,
    ) -> Result<SearchContactsResponse> {
        contacts::search(&self.state, request).await
    }

    async fn create_company(&self, request: Request<CreateCompanyRequest>) -> Result<Company> {
        companies::create(&self.state, request).await
    }

    async fn get_company(&self, request: Request<GetCompanyRequest>) -> Result<Company> {
        companies::get(&self.state, request).await
    }

    async fn update_company(&self, request: Request<UpdateCompanyRequest>) -> Result<Company> {
        companies::update(&self.state, request).await
    }

    async fn delete_company(&self, request: Request<DeleteCompanyRequest>) -> Result<Company> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        companies::set_deleted(&self.state, &request, &id, &etag, true).await
    }

    async fn undelete_company(&self, request: Request<UndeleteCompanyRequest>) -> Result<Company> {
        let (id, etag) = (request.get_ref().id.clone(), request.get_ref().etag.clone());
        companies::set_deleted(&self.state, &request, &id, &etag, false).await
    }

    async fn list_companies(&self, request: Request<ListCompaniesRequest>) -> Result<ListCompaniesResponse> {
        companies::list(&self.state, request).await
    }

    type WatchChangesStream = WatchStream<WatchChangesResponse>;

    async fn watch_changes(&self, request: Request<WatchChangesRequest>) -> Result<Self::WatchChangesStream> {
        let policies = [crate::policy::policy()];
        let reads = FeedReads { reads: crate::policy::FEED_READS, policies: &policies };
        self.state.feed.serve(request, &reads)
    }
}
