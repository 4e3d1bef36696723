//! `ForecastService`: see `proto/rapport/pipeline/v1/forecasts.proto`.

use rapport_proto::pipeline::v1::forecast_service_server::ForecastService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;

type Result<T> = std::result::Result<Response<T>, Status>;

#[tonic::async_trait]
impl ForecastService for Api {
    async fn get_forecast(&self, _request: Request<GetForecastRequest>) -> Result<Forecast> {
        Err(super::not_yet("GetForecast"))
    }

    async fn get_pipeline_summary(
        &self,
        _request: Request<GetPipelineSummaryRequest>,
    ) -> Result<PipelineSummary> {
        Err(super::not_yet("GetPipelineSummary"))
    }

    async fn set_exchange_rate(&self, _request: Request<SetExchangeRateRequest>) -> Result<ExchangeRate> {
        Err(super::not_yet("SetExchangeRate"))
    }

    async fn list_exchange_rates(
        &self,
        _request: Request<ListExchangeRatesRequest>,
    ) -> Result<ListExchangeRatesResponse> {
        Err(super::not_yet("ListExchangeRates"))
    }

    async fn set_quota(&self, _request: Request<SetQuotaRequest>) -> Result<Quota> {
        Err(super::not_yet("SetQuota"))
    }

    async fn list_quotas(&self, _request: Request<ListQuotasRequest>) -> Result<ListQuotasResponse> {
        Err(super::not_yet("ListQuotas"))
    }
}
