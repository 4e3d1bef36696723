//! `ForecastService`: see `proto/rapport/pipeline/v1/forecasts.proto`.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rapport_kit::auth;
use rapport_kit::money::{Currency, Money};
use rapport_proto::pipeline::v1::forecast_service_server::ForecastService;
use rapport_proto::pipeline::v1::*;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use super::Api;
use crate::convert::forecasts::{currency, figures, money};
use crate::domain::forecast::{
    self, ExchangeRate as RateInput, ForecastQuery, Grouping, QuotaDraft, RateBook,
};
use crate::domain::ids::PipelineId;
use crate::error::{Error, resource};
use crate::store::forecasts::{self as sums, CategorySum};
use crate::store::{Write, quotas, rates};

type Result<T> = std::result::Result<Response<T>, Status>;

/// The error of a `YYYY-MM-DD CUR` "missing" marker from the store.
fn missing_rate(marker: &str, to: Currency) -> Error {
    let (day, from) = marker.split_once(' ').unwrap_or((marker, ""));
    match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        Ok(day) => crate::error::exchange_rate_missing(from, to.code(), day),
        Err(err) => Error::Internal(anyhow::anyhow!("missing-rate marker {marker:?}: {err}")),
    }
}

/// The first missing-rate marker among `markers`, as an error.
fn check_missing<'a>(
    markers: impl Iterator<Item = Option<&'a String>>,
    to: Currency,
) -> std::result::Result<(), Error> {
    match markers.flatten().min() {
        Some(marker) => Err(missing_rate(marker, to)),
        None => Ok(()),
    }
}

/// Per owner, the quotas of the query's months converted at the rate in
/// force on each month's first day.
async fn quota_sums(
    db: &mut PgConnection,
    query: &ForecastQuery,
    book: &RateBook,
) -> std::result::Result<BTreeMap<String, i64>, Error> {
    let mut owners = BTreeMap::new();
    for record in quotas::of_months(db, &query.months(), &query.owner_ids).await? {
        // An impossible stored month is an internal error, never a default.
        let first = u32::try_from(record.month)
            .ok()
            .and_then(|month| NaiveDate::from_ymd_opt(record.year, month, 1))
            .ok_or_else(|| Error::undecodable("quota month", (record.year, record.month)))?;
        let from = currency(&record.currency_code)?;
        let conversion = book
            .in_force(from, query.currency, first)
            .ok_or_else(|| crate::error::exchange_rate_missing(from.code(), query.currency.code(), first))?;
        let converted = conversion
            .apply(Money::new(from, record.amount_minor), query.currency)
            .map_err(|err| Error::Internal(anyhow::Error::new(err)))?;
        let total: &mut i64 = owners.entry(record.owner_id).or_default();
        *total = total
            .checked_add(converted.minor_units())
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("quota sum overflows")))?;
    }
    Ok(owners)
}

impl Api {
    async fn forecast(&self, query: ForecastQuery) -> std::result::Result<Forecast, Error> {
        let mut tx = self.state.pool.begin().await?;
        sums::read_only(&mut tx).await?;
        let book = rates::book(&mut tx, query.currency.code(), query.end).await?;
        let rows = sums::sums(&mut tx, &query, &book).await?;
        check_missing(rows.iter().map(|row| row.missing.as_ref()), query.currency)?;
        let quotas = quota_sums(&mut tx, &query, &book).await?;
        let mut groups: BTreeMap<String, Vec<&CategorySum>> = BTreeMap::new();
        let mut total = Vec::new();
        for row in &rows {
            match &row.key {
                // Months come per day: "YYYY-MM-DD" → "YYYY-MM".
                Some(key) if query.grouping == Grouping::Month => {
                    groups.entry(key.chars().take(7).collect()).or_default().push(row);
                }
                Some(key) => groups.entry(key.clone()).or_default().push(row),
                None => total.push(row),
            }
        }
        if query.grouping != Grouping::Team {
            total = rows.iter().collect();
        }
        if query.grouping.has_quotas() {
            for owner in quotas.keys() {
                groups.entry(owner.clone()).or_default();
            }
        }
        let labels: HashMap<String, String> = match query.grouping {
            Grouping::Stage | Grouping::Pipeline => {
                let ids: Vec<uuid::Uuid> = groups.keys().filter_map(|key| key.parse().ok()).collect();
                let table = if query.grouping == Grouping::Stage { "stages" } else { "pipelines" };
                sums::names(&mut tx, table, &ids).await?.into_iter().collect()
            }
            _ => HashMap::new(),
        };
        tx.commit().await?;
        let total_quota = (!quotas.is_empty()).then(|| quotas.values().sum::<i64>());
        let mut forecast_groups = Vec::with_capacity(groups.len());
        for (key, sums) in &groups {
            let quota = if query.grouping.has_quotas() { quotas.get(key).copied() } else { None };
            forecast_groups.push(ForecastGroup {
                label: labels.get(key).cloned().unwrap_or_else(|| key.clone()),
                key: key.clone(),
                figures: Some(figures(sums, query.currency, quota)?),
            });
        }
        Ok(Forecast {
            currency_code: query.currency.code().to_owned(),
            groups: forecast_groups,
            total: Some(figures(&total, query.currency, total_quota)?),
        })
    }

    async fn pipeline_summary(
        &self,
        request: &GetPipelineSummaryRequest,
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
        let mut tx = self.state.pool.begin().await?;
        sums::read_only(&mut tx).await?;
        let not_found = || {
            let id = pipeline_id.map(|id| id.to_string()).unwrap_or_else(|| "default".to_owned());
            Error::not_found("PIPELINE_NOT_FOUND", resource::PIPELINE, id)
        };
        let id =
            sums::live_pipeline(&mut tx, pipeline_id.map(|id| id.uuid())).await?.ok_or_else(not_found)?;
        let now = crate::store::now();
        let book = rates::book(&mut tx, currency.code(), now.date_naive()).await?;
        let stages = sums::stage_sums(&mut tx, id, currency, &book, now).await?;
        tx.commit().await?;
        check_missing(stages.iter().map(|stage| stage.missing.as_ref()), currency)?;
        Ok(PipelineSummary {
            pipeline_id: id.to_string(),
            currency_code: currency.code().to_owned(),
            stages: stages
                .iter()
                .map(|stage| StageSummary {
                    stage_id: stage.stage_id.to_string(),
                    stage_name: stage.name.clone(),
                    count: stage.count,
                    amount: Some(money(currency, stage.amount)),
                    weighted_amount: Some(money(currency, stage.weighted)),
                    average_age: Some(prost_types::Duration {
                        seconds: stage.average_age_micros.div_euclid(1_000_000),
                        nanos: (stage.average_age_micros.rem_euclid(1_000_000) * 1000) as i32,
                    }),
                })
                .collect(),
        })
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
        Ok(Response::new(self.forecast(query).await?))
    }

    async fn get_pipeline_summary(
        &self,
        request: Request<GetPipelineSummaryRequest>,
    ) -> Result<PipelineSummary> {
        Ok(Response::new(self.pipeline_summary(request.get_ref()).await?))
    }

    async fn set_exchange_rate(&self, request: Request<SetExchangeRateRequest>) -> Result<ExchangeRate> {
        let actor = auth::principal(&request)?.subject.clone();
        let input = request.get_ref().exchange_rate.clone().unwrap_or_default();
        let rate = RateInput::parse(
            &input.from_currency_code,
            &input.to_currency_code,
            &input.rate,
            input.effective_date.as_ref(),
        )
        .map_err(Error::from)?;
        let result = rates::set(&self.state.pool, rate, Write { actor: &actor, request: None }).await;
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
        let actor = auth::principal(&request)?.subject.clone();
        let input = request.get_ref().quota.clone().unwrap_or_default();
        let draft = QuotaDraft::parse(&input.owner_id, input.year, input.month, input.amount.as_ref())
            .map_err(Error::from)?;
        let result = quotas::set(&self.state.pool, draft, Write { actor: &actor, request: None }).await;
        self.state.written(&result);
        Ok(Response::new(result?))
    }

    async fn list_quotas(&self, request: Request<ListQuotasRequest>) -> Result<ListQuotasResponse> {
        let input = request.get_ref();
        let (year, month) = forecast::quota_period(input.year, input.month).map_err(Error::from)?;
        let owner = (!input.owner_id.is_empty()).then_some(input.owner_id.as_str());
        Ok(Response::new(ListQuotasResponse {
            quotas: quotas::list(&self.state.pool, year, month, owner).await?,
        }))
    }
}
