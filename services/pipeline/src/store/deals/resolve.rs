//! What a deal write looks up: its (OPEN) stage through the pipelines
//! store, product names and prices, and the amount; and applying an update
//! to a stored deal.

use rapport_kit::money::{Currency, Money};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{DealRecord, LineRow};
use crate::domain::Violation;
use crate::domain::deal::{DealField, DealInput};
use crate::domain::ids::{PipelineId, StageId};
use crate::domain::line_items::{self, LineItemInput};
use crate::domain::pipeline::StageKind;
use crate::error::Error;
use crate::store::pipelines::{self, StageRef};

fn problem(reason: &str, message: String, subject: &str) -> Error {
    Error::precondition(reason, message, reason, subject)
}

/// Where a new deal, or one moved to another pipeline, goes
/// ([`pipelines::stage_for_deal`]); it must be an OPEN stage. A stage of
/// another pipeline is a violation of `deal.stage_id`.
pub(crate) async fn open_stage(
    tx: &mut PgConnection,
    pipeline_id: Option<PipelineId>,
    stage_id: Option<StageId>,
) -> Result<StageRef, Error> {
    let stage = pipelines::stage_for_deal(tx, pipeline_id, stage_id).await.map_err(|err| match err {
        Error::Invalid(mut violations) => {
            for violation in violations.iter_mut().filter(|violation| violation.field == "stage_id") {
                violation.field = "deal.stage_id".to_owned();
            }
            Error::Invalid(violations)
        }
        err => err,
    })?;
    if stage.kind != StageKind::Open {
        return Err(problem(
            "STAGE_NOT_OPEN",
            format!(
                "stage {} is a {} stage; win or lose deals with WinDeal, LoseDeal or MoveDealStage",
                stage.stage_id,
                stage.kind.name()
            ),
            &stage.stage_id.to_string(),
        ));
    }
    Ok(stage)
}

/// Lines with product defaults applied and amounts computed, all in
/// `currency`. Kept lines must be lines of the deal (`existing`).
pub(crate) async fn lines(
    tx: &mut PgConnection,
    deal_id: Uuid,
    currency: Currency,
    inputs: &[LineItemInput],
    existing: &[LineRow],
) -> Result<Vec<LineRow>, Error> {
    let mut violations = Vec::new();
    let mut lines = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let path = |name: &str| format!("deal.line_items[{index}].{name}");
        let id = match input.id {
            Some(id) if existing.iter().any(|line| line.id == id.uuid()) => id.uuid(),
            Some(id) => {
                violations.push(Violation::new(
                    path("id"),
                    format!("{id} is not a line of this deal; send new lines without an id"),
                ));
                continue;
            }
            None => Uuid::now_v7(),
        };
        let mut description = input.description.clone();
        let mut unit_price = input.unit_price;
        if let Some(product_id) = input.product_id {
            let product: Option<(String, Option<i64>)> = sqlx::query_as(
                "SELECT p.name, pp.minor_units FROM products p \
                 LEFT JOIN product_prices pp ON pp.product_id = p.id AND pp.currency_code = $2 \
                 WHERE p.id = $1 AND p.active AND p.delete_time IS NULL",
            )
            .bind(product_id.uuid())
            .bind(currency.code())
            .fetch_optional(&mut *tx)
            .await?;
            let Some((name, price)) = product else {
                return Err(problem(
                    "PRODUCT_NOT_FOUND",
                    format!("product {product_id} does not exist or is not active"),
                    &product_id.to_string(),
                ));
            };
            if description.is_empty() {
                description = name;
            }
            if unit_price.is_none() {
                let price = price.ok_or_else(|| {
                    problem(
                        "PRODUCT_PRICE_MISSING",
                        format!(
                            "product {product_id} has no price in {currency}; give the line a unit_price"
                        ),
                        &product_id.to_string(),
                    )
                })?;
                unit_price = Some(Money::new(currency, price));
            }
        }
        let Some(unit_price) = unit_price else { continue };
        if unit_price.currency() != currency {
            violations.push(Violation::new(
                path("unit_price.currency_code"),
                format!("must be the deal's currency {currency}, not {}", unit_price.currency()),
            ));
            continue;
        }
        match line_items::amount(currency, unit_price.minor_units(), input.quantity, input.discount) {
            Ok(amount) => lines.push(LineRow {
                id,
                deal_id,
                product_id: input.product_id.map(|id| id.uuid()),
                description,
                quantity: input.quantity.to_string(),
                unit_price_minor: unit_price.minor_units(),
                discount_percent: input.discount.to_string(),
                amount_minor: amount.minor_units(),
            }),
            Err(err) => violations.push(Violation::new(path("amount"), err.to_string())),
        }
    }
    if violations.is_empty() { Ok(lines) } else { Err(Error::Invalid(violations)) }
}

/// The amount (minor units) and whether it is derived from the lines.
pub(crate) fn amount(
    currency: Currency,
    given: Option<Money>,
    lines: &[LineRow],
) -> Result<(i64, bool), Error> {
    if lines.is_empty() {
        return match given {
            Some(money) if money.currency() != currency => Err(Error::from(Violation::new(
                "deal.amount.currency_code",
                format!("must be the deal's currency {currency}"),
            ))),
            Some(money) => Ok((money.minor_units(), false)),
            None => Ok((0, false)),
        };
    }
    if given.is_some() {
        return Err(Error::from(Violation::new(
            "deal.amount",
            "is the sum of the line items; do not set it with line items",
        )));
    }
    let total = Money::sum(currency, lines.iter().map(|line| Money::new(currency, line.amount_minor)))
        .map_err(|err| Error::from(Violation::new("deal.line_items", err.to_string())))?;
    Ok((total.minor_units(), true))
}

/// Applies the fields an update sets to `record`.
pub(crate) async fn apply(
    tx: &mut PgConnection,
    record: &mut DealRecord,
    input: &DealInput,
) -> Result<(), Error> {
    let deal = &mut record.deal;
    let open = deal.status == "OPEN";
    let deal_id = deal.id;
    let closed = || {
        Error::precondition(
            "DEAL_CLOSED",
            format!("deal {deal_id} is closed; reopen it first"),
            "DEAL_OPEN",
            &deal_id.to_string(),
        )
    };
    // A closed deal keeps what its forecast figures and its order were made
    // from: reopen it to change them.
    let frozen = [
        DealField::PipelineId,
        DealField::ForecastCategory,
        DealField::CurrencyCode,
        DealField::Amount,
        DealField::LineItems,
        DealField::CompanyId,
    ];
    if !open && frozen.iter().any(|field| input.sets(*field)) {
        return Err(closed());
    }
    if input.sets(DealField::PipelineId) {
        let stage = open_stage(tx, input.pipeline_id, input.stage_id).await?;
        deal.pipeline_id = stage.pipeline_id.uuid();
        deal.stage_id = stage.stage_id.uuid();
        deal.stage_probability = stage.probability as i16;
    }
    if input.sets(DealField::ForecastCategory) {
        deal.forecast_category = input.forecast_category.unwrap_or("PIPELINE").to_owned();
    }
    if input.sets(DealField::Title) {
        deal.title = input.title.clone();
    }
    let mut currency = Currency::parse("deal.currency_code", &deal.currency_code)?;
    if let Some(new_currency) = input.currency {
        if new_currency != currency && !input.sets(DealField::LineItems) && !record.lines.is_empty() {
            return Err(Error::from(Violation::new(
                "deal.line_items",
                "the deal has line items in its old currency: send them again with the new currency_code",
            )));
        }
        let relabels_amount = new_currency != currency
            && !input.sets(DealField::Amount)
            && (!input.sets(DealField::LineItems) || input.line_items.is_empty());
        if relabels_amount && deal.amount_minor != 0 {
            return Err(Error::from(Violation::new(
                "deal.amount",
                "is required when currency_code changes and no line items give the new amount",
            )));
        }
        currency = new_currency;
        deal.currency_code = currency.code().to_owned();
    }
    if input.sets(DealField::LineItems) {
        record.lines = lines(tx, deal.id, currency, &input.line_items, &record.lines).await?;
    }
    if input.sets(DealField::Amount) || input.sets(DealField::LineItems) {
        let given = if input.sets(DealField::Amount) {
            Some(input.amount.unwrap_or(Money::zero(currency)))
        } else {
            None
        };
        if record.lines.is_empty() && given.is_none() {
            deal.amount_derived = false;
        } else {
            (deal.amount_minor, deal.amount_derived) = amount(currency, given, &record.lines)?;
        }
    }
    if input.sets(DealField::ExpectedCloseDate) {
        deal.expected_close_date = input.expected_close_date;
    }
    if input.sets(DealField::Probability) {
        deal.probability_override = input.probability;
    }
    if input.sets(DealField::OwnerId) {
        deal.owner_id = input.owner_id.clone();
    }
    if input.sets(DealField::TeamMemberIds) {
        deal.team_member_ids = input.team_member_ids.clone();
    }
    if input.sets(DealField::CompanyId) {
        deal.company_id = input.company_id.map(|id| id.uuid());
    }
    if input.sets(DealField::Contacts) {
        deal.contact_ids = input.contacts.iter().map(|(id, _)| id.uuid()).collect();
        deal.contact_roles = input.contacts.iter().map(|(_, role)| (*role).to_owned()).collect();
    }
    if input.sets(DealField::LeadSource) {
        deal.lead_source = input.lead_source.unwrap_or("UNSPECIFIED").to_owned();
    }
    if input.sets(DealField::SourceCampaignId) {
        deal.source_campaign_id = input.source_campaign_id.clone();
    }
    if input.sets(DealField::NextStep) {
        deal.next_step = input.next_step.clone();
    }
    Ok(())
}
