//! `ForecastService`: see `proto/rapport/pipeline/v1/forecasts.proto`.

use rapport_kit::auth;
use rapport_kit::money::Currency;
use rapport_proto::pipeline::v1::forecast_service_server::ForecastService;
use rapport_proto::pipeline::v1::*;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert::forecasts::{forecast_to_proto, summary_to_proto};
use crate::domain::forecast::{self, ExchangeRate as RateInput, ForecastQuery, Grouping, QuotaDraft};
use crate::domain::ids::PipelineId;
use crate::error::{Error, forecast_failed};
use crate::store::forecasts as sums;
use crate::store::{Write, quotas, rates};

type Result<T> = std::result::Result<Response<T>, Status>;

impl Api {
    async fn forecast(
        &self,
        query: ForecastQuery,
        principal: &auth::Principal,
    ) -> std::result::Result<Forecast, Error> {
        let (deals, quotas) = (self.state.deal_scope(principal), self.state.quota_scope(principal));
        let data =
            sums::forecast(&self.state.pool, &query, sums::Scopes { deals: &deals, quotas: &quotas }).await?;
        let assembled =
            forecast::assemble(query.grouping, &data.sums, &data.quotas).map_err(forecast_failed)?;
        forecast_to_proto(&assembled, &data.labels, query.currency)
    }

    async fn pipeline_summary(
        &self,
        request: &GetPipelineSummaryRequest,
        principal: &auth::Principal,
    ) -> std::result::Result<PipelineSummary, Error> {
        let pipeline_id = match request.pipeline_id.as_str() {
            "" => Ok(None),
            raw => PipelineId::parse("pipeline_id", raw).map(Some),
        };
        let currency = forecast::reporting_currency(
            "currency_code",
            &request.currency_code,
            &self.state.config.reporting_currency,
        );
        let (pipeline_id, currency) = match (pipeline_id, currency) {
            (Ok(pipeline_id), Ok(currency)) => (pipeline_id, currency),
            (pipeline_id, currency) => {
                return Err(Error::from(
                    [pipeline_id.err(), currency.err()].into_iter().flatten().collect::<Vec<_>>(),
                ));
            }
        };
        let scope = self.state.deal_scope(principal);
        let summary = sums::summary(&self.state.pool, pipeline_id, currency, &scope).await?;
        Ok(summary_to_proto(&summary, currency))
    }
}

fn grouping(raw: i32) -> Option<Grouping> {
    match ForecastGrouping::try_from(raw).ok()? {
        ForecastGrouping::Owner => Some(Grouping::Owner),
        ForecastGrouping::Team => Some(Grouping::Team),
        ForecastGrouping::Month => Some(Grouping::Month),
        ForecastGrouping::Stage => Some(Grouping::Stage),
        ForecastGrouping::Pipeline => Some(Grouping::Pipeline),
        ForecastGrouping::Unspecified => None,
    }
}

#[tonic::async_trait]
impl ForecastService for Api {
    async fn get_forecast(&self, request: Request<GetForecastRequest>) -> Result<Forecast> {
        let input = request.get_ref();
        let query = ForecastQuery::parse(
            (input.start_date.as_ref(), input.end_date.as_ref()),
            grouping(input.group_by),
            &input.pipeline_id,
            &input.owner_ids,
            (&input.currency_code, &self.state.config.reporting_currency),
        )
        .map_err(Error::from)?;
        Ok(Response::new(self.forecast(query, auth::principal(&request)?).await?))
    }

    async fn get_pipeline_summary(
        &self,
        request: Request<GetPipelineSummaryRequest>,
    ) -> Result<PipelineSummary> {
        Ok(Response::new(self.pipeline_summary(request.get_ref(), auth::principal(&request)?).await?))
    }

    async fn set_exchange_rate(&self, request: Request<SetExchangeRateRequest>) -> Result<ExchangeRate> {
        let actor = auth::principal(&request)?.clone();
        let input = request.get_ref().exchange_rate.clone().unwrap_or_default();
        let rate = RateInput::parse(
            &input.from_currency_code,
            &input.to_currency_code,
            &input.rate,
            input.effective_date.as_ref(),
        )
        .map_err(Error::from)?;
        let result = rates::set(&self.state.pool, rate, Write::by(&actor)).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn list_exchange_rates(
        &self,
        request: Request<ListExchangeRatesRequest>,
    ) -> Result<ListExchangeRatesResponse> {
        let input = request.get_ref();
        let filter = |field: &str, code: &str| match code {
            "" => Ok(None),
            code => Currency::parse(field, code).map(|currency| Some(currency.code())),
        };
        let (from, to) = match (
            filter("from_currency_code", &input.from_currency_code),
            filter("to_currency_code", &input.to_currency_code),
        ) {
            (Ok(from), Ok(to)) => (from, to),
            (from, to) => {
                return Err(
                    Error::from([from.err(), to.err()].into_iter().flatten().collect::<Vec<_>>()).into()
                );
            }
        };
        let exchange_rates = rates::list(&self.state.pool, from, to).await?;
        Ok(Response::new(ListExchangeRatesResponse { exchange_rates }))
    }

    async fn set_quota(&self, request: Request<SetQuotaRequest>) -> Result<Quota> {
        let actor = auth::principal(&request)?.clone();
        let input = request.get_ref().quota.clone().unwrap_or_default();
        let draft = QuotaDraft::parse(&input.owner_id, input.year, input.month, input.amount.as_ref())
            .map_err(Error::from)?;
        let result = quotas::set(&self.state.pool, draft, Write::by(&actor)).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn list_quotas(&self, request: Request<ListQuotasRequest>) -> Result<ListQuotasResponse> {
        let input = request.get_ref();
        let (year, month) = forecast::quota_period(input.year, input.month).map_err(Error::from)?;
        let owner = (!input.owner_id.is_empty()).then_some(input.owner_id.as_str());
        let scope = self.state.quota_scope(auth::principal(&request)?);
        Ok(Response::new(ListQuotasResponse {
            quotas: quotas::list(&self.state.pool, year, month, owner, &scope).await?,
        }))
    }
}
