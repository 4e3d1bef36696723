//! Stored exchange rates and quotas, assembled forecasts and pipeline
//! summaries to their protobuf form.

use std::collections::HashMap;

use rapport_kit::changelog::timestamp;
use rapport_kit::money::{Currency, Money};
use rapport_proto::common::v1::Money as ProtoMoney;
use rapport_proto::pipeline::v1::{
    CategoryTotal, ExchangeRate, Forecast, ForecastCategory, ForecastFigures, ForecastGroup, PipelineSummary,
    Quota, StageSummary,
};

use crate::domain::forecast::{Assembled, Figures};
use crate::domain::invoice::date_to_proto;
use crate::error::Error;
use crate::model::forecasts::QuotaRecord;
use crate::model::forecasts::{RateRecord, Summary};

/// The stored currency of a record (checked when written).
pub(crate) fn currency(code: &str) -> Result<Currency, Error> {
    crate::convert::orders::currency(code)
}

/// The wire form of an exchange rate.
pub fn rate_to_proto(record: &RateRecord) -> ExchangeRate {
    ExchangeRate {
        from_currency_code: record.from_currency.clone(),
        to_currency_code: record.to_currency.clone(),
        rate: record.rate.clone(),
        effective_date: Some(date_to_proto(record.effective_date)),
        actor: record.actor.clone(),
        update_time: Some(timestamp(record.update_time)),
    }
}

/// The wire form of a quota.
pub fn quota_to_proto(record: &QuotaRecord) -> Quota {
    Quota {
        owner_id: record.owner_id.clone(),
        year: record.year,
        month: record.month,
        amount: Some(ProtoMoney {
            currency_code: record.currency_code.clone(),
            minor_units: record.amount_minor,
        }),
        update_time: Some(timestamp(record.update_time)),
    }
}

/// `minor_units` of `currency` on the wire.
pub fn money(currency: Currency, minor_units: i64) -> ProtoMoney {
    Money::new(currency, minor_units).to_proto()
}

/// The wire form of one group's (or the total's) figures.
pub fn figures(figures: &Figures, currency: Currency) -> Result<ForecastFigures, Error> {
    let categories = figures
        .categories
        .iter()
        .map(|category| {
            let name = rapport_kit::db::stored_enum(
                "forecast_category",
                "FORECAST_CATEGORY_",
                category.name,
                ForecastCategory::from_str_name,
            )?;
            Ok(CategoryTotal {
                category: name.into(),
                count: category.count,
                amount: Some(money(currency, category.amount)),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(ForecastFigures {
        count: figures.count,
        amount: Some(money(currency, figures.amount)),
        weighted_amount: Some(money(currency, figures.weighted)),
        categories,
        won_amount: Some(money(currency, figures.won)),
        quota: figures.quota.map(|quota| money(currency, quota)),
        attainment_basis_points: figures.quota.and_then(|quota| {
            rapport_kit::money::basis_points(Money::new(currency, figures.won), Money::new(currency, quota))
        }),
    })
}

/// The wire form of a forecast; groups are labelled by `labels` (stage and
/// pipeline names), else by their key.
pub fn forecast_to_proto(
    forecast: &Assembled,
    labels: &HashMap<String, String>,
    currency: Currency,
) -> Result<Forecast, Error> {
    let groups = forecast
        .groups
        .iter()
        .map(|(key, group)| {
            Ok(ForecastGroup {
                label: labels.get(key).cloned().unwrap_or_else(|| key.clone()),
                key: key.clone(),
                figures: Some(figures(group, currency)?),
            })
        })
        .collect::<Result<_, Error>>()?;
    Ok(Forecast {
        currency_code: currency.code().to_owned(),
        groups,
        total: Some(figures(&forecast.total, currency)?),
    })
}

/// The wire form of a pipeline summary.
pub fn summary_to_proto(summary: &Summary, currency: Currency) -> PipelineSummary {
    PipelineSummary {
        pipeline_id: summary.pipeline_id.to_string(),
        currency_code: currency.code().to_owned(),
        stages: summary
            .stages
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
    }
}
