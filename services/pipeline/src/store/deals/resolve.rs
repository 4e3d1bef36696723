//! What a deal write looks up — its stage through the pipelines store, the
//! products its lines name — handed to the domain's rules
//! (`domain::deal`, `domain::line_items`), and an update applied to a
//! stored deal.

use std::collections::HashMap;

use rapport_kit::money::{Currency, Money};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{DealRecord, LineRow};
use crate::domain::deal::{self, DealField, DealInput, Stored};
use crate::domain::ids::{LineItemId, PipelineId, ProductId, StageId};
use crate::domain::line_items::{self, LineItemInput, Product};
use crate::error::{Error, deal_refused, lines_refused};
use crate::store::pipelines::{self, StageRef};

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
    deal::entry_stage(stage.kind).map_err(|refusal| deal_refused(refusal, &stage.stage_id.to_string()))?;
    Ok(stage)
}

/// The active products `inputs` name, with their prices in `currency`.
async fn products(
    tx: &mut PgConnection,
    currency: Currency,
    inputs: &[LineItemInput],
) -> Result<HashMap<ProductId, Product>, Error> {
    let ids: Vec<Uuid> = inputs.iter().filter_map(|input| input.product_id.map(ProductId::uuid)).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, String, Option<i64>)> = sqlx::query_as(
        "SELECT p.id, p.name, pp.minor_units FROM products p \
         LEFT JOIN product_prices pp ON pp.product_id = p.id AND pp.currency_code = $2 \
         WHERE p.id = ANY($1) AND p.active AND p.delete_time IS NULL",
    )
    .bind(&ids)
    .bind(currency.code())
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, name, price)| {
            (ProductId::from(id), Product { name, price: price.map(|price| Money::new(currency, price)) })
        })
        .collect())
}

/// Lines with product defaults applied and amounts computed, all in
/// `currency` ([`line_items::resolve`]). Kept lines must be lines of the
/// deal (`existing`).
pub(crate) async fn lines(
    tx: &mut PgConnection,
    deal_id: Uuid,
    currency: Currency,
    inputs: &[LineItemInput],
    existing: &[LineRow],
) -> Result<Vec<LineRow>, Error> {
    let products = products(tx, currency, inputs).await?;
    let existing: Vec<LineItemId> = existing.iter().map(|line| LineItemId::from(line.id)).collect();
    let resolved = line_items::resolve(currency, inputs, &existing, &products).map_err(lines_refused)?;
    Ok(resolved
        .into_iter()
        .map(|line| LineRow {
            id: line.id.uuid(),
            deal_id,
            product_id: line.product_id.map(ProductId::uuid),
            description: line.description,
            quantity: line.quantity.to_string(),
            unit_price_minor: line.unit_price.minor_units(),
            discount_percent: line.discount.to_string(),
            amount_minor: line.amount.minor_units(),
        })
        .collect())
}

/// The amount (minor units) and whether it is derived from the lines
/// ([`line_items::deal_amount`]).
pub(crate) fn amount(
    currency: Currency,
    given: Option<Money>,
    lines: &[LineRow],
) -> Result<(i64, bool), Error> {
    let amounts: Vec<Money> = lines.iter().map(|line| Money::new(currency, line.amount_minor)).collect();
    let (amount, derived) = line_items::deal_amount(currency, given, &amounts)?;
    Ok((amount.minor_units(), derived))
}

/// Applies the fields an update sets to `record`.
pub(crate) async fn apply(
    tx: &mut PgConnection,
    record: &mut DealRecord,
    input: &DealInput,
) -> Result<(), Error> {
    let deal = &mut record.deal;
    let stored = Stored {
        open: deal.status == "OPEN",
        currency: Currency::parse("deal.currency_code", &deal.currency_code)
            .map_err(|_| Error::undecodable("deal currency", &deal.currency_code))?,
        has_lines: !record.lines.is_empty(),
        amount_minor: deal.amount_minor,
    };
    let currency =
        deal::check_update(stored, input).map_err(|refusal| deal_refused(refusal, &deal.id.to_string()))?;
    if input.sets(DealField::PipelineId) {
        let stage = open_stage(tx, input.pipeline_id, input.stage_id).await?;
        deal.pipeline_id = stage.pipeline_id.uuid();
        deal.stage_id = stage.stage_id.uuid();
        deal.stage_probability = stage.probability as i16;
    }
    if input.sets(DealField::ForecastCategory) {
        deal.forecast_category = input.forecast_category_or_default().to_owned();
    }
    if input.sets(DealField::Title) {
        deal.title = input.title.clone();
    }
    deal.currency_code = currency.code().to_owned();
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
    if input.sets(DealField::TeamId) {
        deal.team_id = input.team_id.clone();
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
        deal.lead_source = input.lead_source_or_default().to_owned();
    }
    if input.sets(DealField::SourceCampaignId) {
        deal.source_campaign_id = input.source_campaign_id.clone();
    }
    if input.sets(DealField::NextStep) {
        deal.next_step = input.next_step.clone();
    }
    Ok(())
}
