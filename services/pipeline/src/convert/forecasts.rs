//! Stored exchange rates and quotas to their protobuf form, and forecast
//! figures assembled from the store's sums.

use rapport_kit::changelog::timestamp;
use rapport_kit::money::{Currency, Money};
use rapport_proto::common::v1::Money as ProtoMoney;
use rapport_proto::pipeline::v1::{ExchangeRate, Quota};

use crate::domain::invoice::date_to_proto;
use crate::error::Error;
use crate::model::forecasts::QuotaRecord;
use crate::model::forecasts::RateRecord;

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

/// Adds minor units; an overflow is an internal error (sums of `i64` amounts).
fn add(left: i64, right: i64) -> Result<i64, Error> {
    left.checked_add(right).ok_or_else(|| Error::Internal(anyhow::anyhow!("forecast sum overflows")))
}

/// The figures of one group (or of all deals) from its per-category sums:
/// OMITTED is a category total only; `quota` in `currency`.
pub fn figures(
    sums: &[&crate::model::forecasts::CategorySum],
    currency: Currency,
    quota: Option<i64>,
) -> Result<rapport_proto::pipeline::v1::ForecastFigures, Error> {
    use crate::domain::forecast::{CATEGORIES, CLOSED, OMITTED};
    use rapport_proto::pipeline::v1::{CategoryTotal, ForecastCategory, ForecastFigures};
    let (mut count, mut amount, mut weighted, mut won) = (0_i64, 0_i64, 0_i64, 0_i64);
    let mut categories = Vec::with_capacity(CATEGORIES.len());
    for name in CATEGORIES {
        let (mut category_count, mut category_amount) = (0_i64, 0_i64);
        for sum in sums.iter().filter(|sum| sum.category == name) {
            category_count = add(category_count, sum.count)?;
            category_amount = add(category_amount, sum.amount)?;
            if name != OMITTED {
                weighted = add(weighted, sum.weighted)?;
            }
        }
        if name != OMITTED {
            count = add(count, category_count)?;
            amount = add(amount, category_amount)?;
        }
        if name == CLOSED {
            won = category_amount;
        }
        let category = rapport_kit::db::stored_enum(
            "forecast_category",
            "FORECAST_CATEGORY_",
            name,
            ForecastCategory::from_str_name,
        )?;
        categories.push(CategoryTotal {
            category: category.into(),
            count: category_count,
            amount: Some(money(currency, category_amount)),
        });
    }
    Ok(ForecastFigures {
        count,
        amount: Some(money(currency, amount)),
        weighted_amount: Some(money(currency, weighted)),
        categories,
        won_amount: Some(money(currency, won)),
        quota: quota.map(|quota| money(currency, quota)),
        attainment_basis_points: quota.and_then(|quota| {
            rapport_kit::money::basis_points(Money::new(currency, won), Money::new(currency, quota))
        }),
    })
}
