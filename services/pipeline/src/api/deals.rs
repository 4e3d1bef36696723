//! `DealService`: see `proto/rapport/pipeline/v1/deals.proto`.

use rapport_proto::pipeline::v1::deal_service_server::DealService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl DealService for Api {
    async fn create_deal(&self, _request: Request<CreateDealRequest>) -> Result<Deal> {
        Err(super::not_yet("CreateDeal"))
    }

    async fn get_deal(&self, _request: Request<GetDealRequest>) -> Result<Deal> {
        Err(super::not_yet("GetDeal"))
    }

    async fn update_deal(&self, _request: Request<UpdateDealRequest>) -> Result<Deal> {
        Err(super::not_yet("UpdateDeal"))
    }

    async fn delete_deal(&self, _request: Request<DeleteDealRequest>) -> Result<Deal> {
        Err(super::not_yet("DeleteDeal"))
    }

    async fn undelete_deal(&self, _request: Request<UndeleteDealRequest>) -> Result<Deal> {
        Err(super::not_yet("UndeleteDeal"))
    }

    async fn list_deals(&self, _request: Request<ListDealsRequest>) -> Result<ListDealsResponse> {
        Err(super::not_yet("ListDeals"))
    }

    async fn search_deals(&self, _request: Request<SearchDealsRequest>) -> Result<SearchDealsResponse> {
        Err(super::not_yet("SearchDeals"))
    }

    async fn move_deal_stage(&self, _request: Request<MoveDealStageRequest>) -> Result<Deal> {
        Err(super::not_yet("MoveDealStage"))
    }

    async fn win_deal(&self, _request: Request<WinDealRequest>) -> Result<Deal> {
        Err(super::not_yet("WinDeal"))
    }

    async fn lose_deal(&self, _request: Request<LoseDealRequest>) -> Result<Deal> {
        Err(super::not_yet("LoseDeal"))
    }

    async fn reopen_deal(&self, _request: Request<ReopenDealRequest>) -> Result<Deal> {
        Err(super::not_yet("ReopenDeal"))
    }

    async fn get_deal_history(&self, _request: Request<GetDealHistoryRequest>) -> Result<DealHistory> {
        Err(super::not_yet("GetDealHistory"))
    }

    async fn list_stale_deals(
        &self,
        _request: Request<ListStaleDealsRequest>,
    ) -> Result<ListStaleDealsResponse> {
        Err(super::not_yet("ListStaleDeals"))
    }
}
