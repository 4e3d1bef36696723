//! A deal as the client writes it: which fields a create or an update
//! sets, each parsed once, every violation reported at once; its defaults;
//! and the rules the stored deal imposes on a write.

use chrono::NaiveDate;
use rapport_kit::fields;
use rapport_kit::money::{Currency, Money};
use rapport_proto::contacts::v1::LeadSource;
use rapport_proto::pipeline::v1::{BuyingRole, Deal, ForecastCategory};

use super::Violation;
use super::ids::{CompanyId, ContactId, PipelineId, StageId};
use super::line_items::{self, LineItemInput};
use super::pipeline::StageKind;

/// The most team members of a deal.
pub const MAX_TEAM: usize = 20;
/// The most contacts in a buying committee.
pub const MAX_CONTACTS: usize = 50;

/// A field a create or an update may set (the update mask paths).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealField {
    /// `title`
    Title,
    /// `pipeline_id`
    PipelineId,
    /// `stage_id`
    StageId,
    /// `currency_code`
    CurrencyCode,
    /// `amount`
    Amount,
    /// `line_items`
    LineItems,
    /// `expected_close_date`
    ExpectedCloseDate,
    /// `probability`
    Probability,
    /// `forecast_category`
    ForecastCategory,
    /// `owner_id`
    OwnerId,
    /// `team_id`
    TeamId,
    /// `team_member_ids`
    TeamMemberIds,
    /// `company_id`
    CompanyId,
    /// `contacts`
    Contacts,
    /// `lead_source`
    LeadSource,
    /// `source_campaign_id`
    SourceCampaignId,
    /// `next_step`
    NextStep,
}

impl DealField {
    /// Every field, with its mask path.
    pub const ALL: [(DealField, &'static str); 17] = [
        (DealField::Title, "title"),
        (DealField::PipelineId, "pipeline_id"),
        (DealField::StageId, "stage_id"),
        (DealField::CurrencyCode, "currency_code"),
        (DealField::Amount, "amount"),
        (DealField::LineItems, "line_items"),
        (DealField::ExpectedCloseDate, "expected_close_date"),
        (DealField::Probability, "probability"),
        (DealField::ForecastCategory, "forecast_category"),
        (DealField::OwnerId, "owner_id"),
        (DealField::TeamId, "team_id"),
        (DealField::TeamMemberIds, "team_member_ids"),
        (DealField::CompanyId, "company_id"),
        (DealField::Contacts, "contacts"),
        (DealField::LeadSource, "lead_source"),
        (DealField::SourceCampaignId, "source_campaign_id"),
        (DealField::NextStep, "next_step"),
    ];

    /// The mask path.
    pub fn path(self) -> &'static str {
        DealField::ALL.iter().find(|(field, _)| *field == self).map_or("", |(_, path)| path)
    }

    /// Parses an update mask: known paths, at least one, and the pairs the
    /// contract ties together (stage_id only with pipeline_id;
    /// currency_code only with amount or line_items).
    pub fn parse_mask(paths: &[String]) -> Result<Vec<DealField>, Vec<Violation>> {
        fields::cap_mask(paths).map_err(|violation| vec![violation])?;
        let mut violations = Vec::new();
        let mut fields = Vec::new();
        if paths.is_empty() {
            violations.push(Violation::new("update_mask", "name at least one field to update"));
        }
        for path in paths {
            match DealField::ALL.iter().find(|(_, name)| name == path) {
                Some((field, _)) if !fields.contains(field) => fields.push(*field),
                Some(_) => {}
                None => violations.push(Violation::new(
                    "update_mask",
                    format!("{path:?} is not an updatable field (status and stage change through MoveDealStage, WinDeal, LoseDeal and ReopenDeal)"),
                )),
            }
        }
        let has = |field| fields.contains(&field);
        if has(DealField::StageId) != has(DealField::PipelineId) {
            violations.push(Violation::new("update_mask", "pipeline_id and stage_id are updated together"));
        }
        if has(DealField::CurrencyCode) && !has(DealField::Amount) && !has(DealField::LineItems) {
            violations.push(Violation::new(
                "update_mask",
                "currency_code is updated only with amount or line_items",
            ));
        }
        if violations.is_empty() { Ok(fields) } else { Err(violations) }
    }
}

/// The parsed values of the fields a write sets. Fields not being set
/// hold their defaults and are ignored.
#[derive(Debug, Clone, PartialEq)]
pub struct DealInput {
    /// The fields set.
    pub fields: Vec<DealField>,
    /// 1-200 characters.
    pub title: String,
    /// The pipeline, if given.
    pub pipeline_id: Option<PipelineId>,
    /// The stage, if given.
    pub stage_id: Option<StageId>,
    /// The currency, if given.
    pub currency: Option<Currency>,
    /// The amount, if given (never negative).
    pub amount: Option<Money>,
    /// The lines.
    pub line_items: Vec<LineItemInput>,
    /// Expected close.
    pub expected_close_date: Option<NaiveDate>,
    /// Probability override.
    pub probability: Option<i16>,
    /// Stored forecast category name; `None` when unspecified.
    pub forecast_category: Option<&'static str>,
    /// Owner; empty when not given.
    pub owner_id: String,
    /// Team; empty when not given.
    pub team_id: String,
    /// Team.
    pub team_member_ids: Vec<String>,
    /// Company.
    pub company_id: Option<CompanyId>,
    /// Buying committee: contact and stored role name.
    pub contacts: Vec<(ContactId, &'static str)>,
    /// Stored lead source name; `None` when unspecified.
    pub lead_source: Option<&'static str>,
    /// Campaign.
    pub source_campaign_id: String,
    /// Next step.
    pub next_step: String,
}

impl DealInput {
    /// True when `field` is set by this write.
    pub fn sets(&self, field: DealField) -> bool {
        self.fields.contains(&field)
    }

    /// Parses the `fields` of `deal` (paths `deal.…`). Reports every
    /// violation.
    pub fn parse(deal: &Deal, fields: &[DealField]) -> Result<DealInput, Vec<Violation>> {
        let mut v = Vec::new();
        let has = |field| fields.contains(&field);
        let mut input = DealInput {
            fields: fields.to_vec(),
            title: String::new(),
            pipeline_id: None,
            stage_id: None,
            currency: None,
            amount: None,
            line_items: Vec::new(),
            expected_close_date: None,
            probability: None,
            forecast_category: None,
            owner_id: String::new(),
            team_id: String::new(),
            team_member_ids: Vec::new(),
            company_id: None,
            contacts: Vec::new(),
            lead_source: None,
            source_campaign_id: String::new(),
            next_step: String::new(),
        };
        if has(DealField::Title) {
            input.title =
                take(&mut v, fields::text("deal.title", &deal.title, true, 200)).unwrap_or_default();
        }
        if has(DealField::PipelineId) && !deal.pipeline_id.is_empty() {
            input.pipeline_id = take(&mut v, PipelineId::parse("deal.pipeline_id", &deal.pipeline_id));
        }
        if has(DealField::StageId) && !deal.stage_id.is_empty() {
            input.stage_id = take(&mut v, StageId::parse("deal.stage_id", &deal.stage_id));
        }
        if has(DealField::CurrencyCode) {
            input.currency = take(&mut v, Currency::parse("deal.currency_code", &deal.currency_code));
        }
        if has(DealField::Amount)
            && let Some(amount) = &deal.amount
            && let Some(money) = take(&mut v, Money::from_proto("deal.amount", amount))
        {
            if money.minor_units() < 0 {
                v.push(Violation::new("deal.amount.minor_units", "must not be negative"));
            } else if input.currency.is_some_and(|currency| currency != money.currency()) {
                v.push(Violation::new("deal.amount.currency_code", "must be the deal's currency_code"));
            } else {
                input.amount = Some(money);
            }
        }
        if has(DealField::LineItems) {
            match line_items::parse_lines("deal.line_items", &deal.line_items, input.currency) {
                Ok(lines) => input.line_items = lines,
                Err(found) => v.extend(found),
            }
            if has(DealField::Amount) && deal.amount.is_some() && !deal.line_items.is_empty() {
                v.push(Violation::new(
                    "deal.amount",
                    "is the sum of the line items; do not set it with line items",
                ));
            }
        }
        if has(DealField::ExpectedCloseDate)
            && let Some(date) = &deal.expected_close_date
        {
            input.expected_close_date = u32::try_from(date.month)
                .ok()
                .zip(u32::try_from(date.day).ok())
                .and_then(|(month, day)| NaiveDate::from_ymd_opt(date.year, month, day));
            if input.expected_close_date.is_none() {
                v.push(Violation::new("deal.expected_close_date", "is not a valid calendar date"));
            }
        }
        if has(DealField::Probability)
            && let Some(probability) = deal.probability
        {
            match i16::try_from(probability) {
                Ok(value) if (0..=100).contains(&value) => input.probability = Some(value),
                _ => v.push(Violation::new("deal.probability", "must be 0 to 100")),
            }
        }
        if has(DealField::ForecastCategory) {
            match ForecastCategory::try_from(deal.forecast_category) {
                Ok(ForecastCategory::Unspecified) => {}
                Ok(ForecastCategory::Closed) => v.push(Violation::new(
                    "deal.forecast_category",
                    "CLOSED is set by winning the deal; choose PIPELINE, BEST_CASE, COMMIT or OMITTED",
                )),
                Ok(category) => input.forecast_category = Some(forecast_name(category)),
                Err(_) => v.push(Violation::new("deal.forecast_category", "is not a known category")),
            }
        }
        if has(DealField::OwnerId) {
            input.owner_id =
                take(&mut v, fields::text("deal.owner_id", &deal.owner_id, false, 200)).unwrap_or_default();
        }
        if has(DealField::TeamId) {
            input.team_id =
                take(&mut v, fields::text("deal.team_id", &deal.team_id, false, 200)).unwrap_or_default();
        }
        if has(DealField::TeamMemberIds) {
            fields::cap("deal.team_member_ids", &deal.team_member_ids, MAX_TEAM).map_err(|c| vec![c])?;
            for (index, member) in deal.team_member_ids.iter().enumerate() {
                let field = format!("deal.team_member_ids[{index}]");
                if let Some(member) = take(&mut v, fields::text(&field, member, true, 200))
                    && !input.team_member_ids.contains(&member)
                {
                    input.team_member_ids.push(member);
                }
            }
        }
        if has(DealField::CompanyId) && !deal.company_id.is_empty() {
            input.company_id = take(&mut v, CompanyId::parse("deal.company_id", &deal.company_id));
        }
        if has(DealField::Contacts) {
            fields::cap("deal.contacts", &deal.contacts, MAX_CONTACTS).map_err(|c| vec![c])?;
            for (index, contact) in deal.contacts.iter().enumerate() {
                let id = take(
                    &mut v,
                    ContactId::parse(&format!("deal.contacts[{index}].contact_id"), &contact.contact_id),
                );
                let role = match BuyingRole::try_from(contact.role) {
                    Ok(BuyingRole::Unspecified) | Err(_) => {
                        v.push(Violation::new(format!("deal.contacts[{index}].role"), "is required"));
                        None
                    }
                    Ok(role) => Some(role_name(role)),
                };
                if let (Some(id), Some(role)) = (id, role) {
                    if input.contacts.iter().any(|(seen, _)| *seen == id) {
                        v.push(Violation::new(
                            format!("deal.contacts[{index}].contact_id"),
                            "appears more than once",
                        ));
                    } else {
                        input.contacts.push((id, role));
                    }
                }
            }
        }
        if has(DealField::LeadSource) {
            match LeadSource::try_from(deal.lead_source) {
                Ok(LeadSource::Unspecified) => {}
                Ok(source) => input.lead_source = Some(lead_source_name(source)),
                Err(_) => v.push(Violation::new("deal.lead_source", "is not a known lead source")),
            }
        }
        if has(DealField::SourceCampaignId) {
            input.source_campaign_id =
                take(&mut v, fields::text("deal.source_campaign_id", &deal.source_campaign_id, false, 200))
                    .unwrap_or_default();
        }
        if has(DealField::NextStep) {
            input.next_step =
                take(&mut v, fields::text("deal.next_step", &deal.next_step, false, 500)).unwrap_or_default();
        }
        if v.is_empty() { Ok(input) } else { Err(v) }
    }
}

fn take<T>(violations: &mut Vec<Violation>, result: Result<T, Violation>) -> Option<T> {
    result.map_err(|violation| violations.push(violation)).ok()
}

/// The stored name of a forecast category (`COMMIT`).
pub fn forecast_name(category: ForecastCategory) -> &'static str {
    strip(category.as_str_name(), "FORECAST_CATEGORY_")
}

/// The stored name of a buying role (`CHAMPION`).
pub fn role_name(role: BuyingRole) -> &'static str {
    strip(role.as_str_name(), "BUYING_ROLE_")
}

/// The stored name of a lead source (`WEB`).
pub fn lead_source_name(source: LeadSource) -> &'static str {
    strip(source.as_str_name(), "LEAD_SOURCE_")
}

fn strip(name: &'static str, prefix: &str) -> &'static str {
    name.strip_prefix(prefix).unwrap_or(name)
}

/// The forecast category of a deal that does not set one.
pub const DEFAULT_FORECAST_CATEGORY: &str = "PIPELINE";
/// The lead source of a deal that does not set one.
pub const DEFAULT_LEAD_SOURCE: &str = "UNSPECIFIED";

impl DealInput {
    /// The stored forecast category this input gives the deal.
    pub fn forecast_category_or_default(&self) -> &'static str {
        self.forecast_category.unwrap_or(DEFAULT_FORECAST_CATEGORY)
    }

    /// The stored lead source this input gives the deal.
    pub fn lead_source_or_default(&self) -> &'static str {
        self.lead_source.unwrap_or(DEFAULT_LEAD_SOURCE)
    }
}

/// A deal write the deal's state refuses.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The deal is closed and the write changes what its forecast figures
    /// and its order were made from: reopen it first.
    Closed,
    /// A deal is created in, or moved to another pipeline into, an OPEN
    /// stage only; this one is of the given kind.
    StageNotOpen(StageKind),
    /// A field violation that depends on the stored deal.
    Invalid(Violation),
}

/// Where a new deal, or one moved to another pipeline, may go.
pub fn entry_stage(kind: StageKind) -> Result<(), Refusal> {
    if kind == StageKind::Open { Ok(()) } else { Err(Refusal::StageNotOpen(kind)) }
}

/// What the rules of an update need to know about the stored deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Still being worked (not won or lost).
    pub open: bool,
    /// Its currency.
    pub currency: Currency,
    /// It has line items.
    pub has_lines: bool,
    /// Its amount, minor units.
    pub amount_minor: i64,
}

/// Checks an update against the stored deal: a closed deal keeps what its
/// forecast figures and its order were made from, and a currency change
/// must bring the amount (or lines) in the new currency. Returns the
/// deal's currency after the update.
pub fn check_update(stored: Stored, input: &DealInput) -> Result<Currency, Refusal> {
    const FROZEN: [DealField; 6] = [
        DealField::PipelineId,
        DealField::ForecastCategory,
        DealField::CurrencyCode,
        DealField::Amount,
        DealField::LineItems,
        DealField::CompanyId,
    ];
    if !stored.open && FROZEN.iter().any(|field| input.sets(*field)) {
        return Err(Refusal::Closed);
    }
    let Some(currency) = input.currency.filter(|currency| *currency != stored.currency) else {
        return Ok(stored.currency);
    };
    if !input.sets(DealField::LineItems) && stored.has_lines {
        return Err(Refusal::Invalid(Violation::new(
            "deal.line_items",
            "the deal has line items in its old currency: send them again with the new currency_code",
        )));
    }
    let relabels_amount =
        !input.sets(DealField::Amount) && (!input.sets(DealField::LineItems) || input.line_items.is_empty());
    if relabels_amount && stored.amount_minor != 0 {
        return Err(Refusal::Invalid(Violation::new(
            "deal.amount",
            "is required when currency_code changes and no line items give the new amount",
        )));
    }
    Ok(currency)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_ties_stage_to_pipeline_and_currency_to_amounts() {
        let paths = |list: &[&str]| list.iter().map(|path| path.to_string()).collect::<Vec<_>>();
        assert!(DealField::parse_mask(&paths(&["stage_id"])).is_err());
        assert!(DealField::parse_mask(&paths(&["currency_code"])).is_err());
        assert!(DealField::parse_mask(&paths(&["status"])).is_err());
        assert!(DealField::parse_mask(&paths(&["currency_code", "amount", "title"])).is_ok());
    }

    #[test]
    fn create_reports_every_violation() {
        let deal = Deal { probability: Some(101), ..Deal::default() };
        let fields: Vec<_> = DealField::ALL.iter().map(|(field, _)| *field).collect();
        let violations = DealInput::parse(&deal, &fields).err().unwrap_or_default();
        let paths: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(paths, ["deal.title", "deal.currency_code", "deal.probability"]);
    }
}
