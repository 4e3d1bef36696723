//! Stored deals → protobuf (used by the API, the change log and
//! idempotent replays).

use chrono::Datelike;
use rapport_kit::changelog::timestamp;
use rapport_kit::db::stored_enum;
use rapport_proto::common::v1::{Date, Money};
use rapport_proto::contacts::v1::LeadSource;
use rapport_proto::pipeline::v1::{
    AccountStanding, AccountWarning, BuyingRole, Deal, DealContact, DealStatus, ForecastCategory, LineItem,
};

use crate::model::deals::{DealRecord, LineRow};
use rapport_kit::db::etag;

fn money(currency_code: &str, minor_units: i64) -> Option<Money> {
    Some(Money { currency_code: currency_code.to_owned(), minor_units })
}

fn line_to_proto(currency_code: &str, line: &LineRow) -> LineItem {
    LineItem {
        id: line.id.to_string(),
        product_id: line.product_id.map(|id| id.to_string()).unwrap_or_default(),
        description: line.description.clone(),
        quantity: canonical(&line.quantity),
        unit_price: money(currency_code, line.unit_price_minor),
        discount_percent: canonical(&line.discount_percent),
        amount: money(currency_code, line.amount_minor),
    }
}

/// `1.5000` → `1.5`, `2.0000` → `2`.
pub fn canonical(decimal: &str) -> String {
    if decimal.contains('.') {
        decimal.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        decimal.to_owned()
    }
}

/// The `DealStatus` of a stored status name; an unknown one is a decode
/// error.
pub fn status_of(name: &str) -> Result<DealStatus, sqlx::Error> {
    stored_enum("status", "DEAL_STATUS_", name, DealStatus::from_str_name)
}

/// A stored deal as the API returns it (without `account_warning`); a
/// stored enum this build cannot decode is an error, never a default.
pub fn deal_to_proto(record: &DealRecord) -> Result<Deal, sqlx::Error> {
    let deal = &record.deal;
    let code = deal.currency_code.as_str();
    let contacts = deal
        .contact_ids
        .iter()
        .zip(&deal.contact_roles)
        .map(|(id, role)| {
            let role = stored_enum("contact_roles", "BUYING_ROLE_", role, BuyingRole::from_str_name)?;
            Ok(DealContact { contact_id: id.to_string(), role: role.into() })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Deal {
        id: deal.id.to_string(),
        title: deal.title.clone(),
        pipeline_id: deal.pipeline_id.to_string(),
        stage_id: deal.stage_id.to_string(),
        currency_code: code.to_owned(),
        amount: money(code, deal.amount_minor),
        line_items: record.lines.iter().map(|line| line_to_proto(code, line)).collect(),
        expected_close_date: deal.expected_close_date.map(|date| Date {
            year: date.year(),
            month: i32::try_from(date.month()).unwrap_or_default(),
            day: i32::try_from(date.day()).unwrap_or_default(),
        }),
        probability: Some(i32::from(deal.probability_override.unwrap_or(deal.stage_probability))),
        probability_overridden: deal.probability_override.is_some(),
        forecast_category: stored_enum(
            "forecast_category",
            "FORECAST_CATEGORY_",
            &deal.forecast_category,
            ForecastCategory::from_str_name,
        )?
        .into(),
        owner_id: deal.owner_id.clone(),
        team_id: deal.team_id.clone(),
        team_member_ids: deal.team_member_ids.clone(),
        company_id: deal.company_id.map(|id| id.to_string()).unwrap_or_default(),
        contacts,
        lead_source: stored_enum(
            "lead_source",
            "LEAD_SOURCE_",
            &deal.lead_source,
            LeadSource::from_str_name,
        )?
        .into(),
        source_campaign_id: deal.source_campaign_id.clone(),
        next_step: deal.next_step.clone(),
        status: status_of(&deal.status)?.into(),
        lost_reason_id: deal.lost_reason_id.map(|id| id.to_string()).unwrap_or_default(),
        lost_reason_detail: deal.lost_reason_detail.clone(),
        close_time: deal.close_time.map(timestamp),
        stage_enter_time: Some(timestamp(deal.stage_enter_time)),
        last_activity_time: Some(timestamp(deal.last_activity_time)),
        order_id: deal.order_id.map(|id| id.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(deal.create_time)),
        update_time: Some(timestamp(deal.update_time)),
        delete_time: deal.delete_time.map(timestamp),
        etag: etag(deal.version),
        account_warning: None,
    })
}

/// The warning for a company with overdue invoices; `None` when nothing
/// is overdue. E.g. "Company 0190… has 2 overdue invoices (4200.00 EUR,
/// oldest due 2026-09-30)."
pub fn account_warning(standing: AccountStanding) -> Option<AccountWarning> {
    let count = standing.overdue_invoice_count;
    if count <= 0 {
        return None;
    }
    let amounts: Vec<String> = standing
        .overdue
        .iter()
        .map(|money| {
            match rapport_kit::money::Money::parse("overdue", &money.currency_code, money.minor_units) {
                Ok(parsed) => parsed.to_string(),
                Err(_) => format!("{} {}", money.minor_units, money.currency_code),
            }
        })
        .collect();
    let oldest = standing
        .oldest_overdue_due_date
        .as_ref()
        .map(|date| format!(", oldest due {:04}-{:02}-{:02}", date.year, date.month, date.day))
        .unwrap_or_default();
    let invoices = if count == 1 { "invoice" } else { "invoices" };
    let message = format!(
        "Company {} has {count} overdue {invoices} ({}{oldest}).",
        standing.company_id,
        amounts.join(" + ")
    );
    Some(AccountWarning { standing: Some(standing), message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_names_count_amounts_and_oldest_due_date() {
        let standing = AccountStanding {
            company_id: "c-1".into(),
            overdue: vec![
                Money { currency_code: "EUR".into(), minor_units: 420_000 },
                Money { currency_code: "JPY".into(), minor_units: 5_000 },
            ],
            overdue_invoice_count: 2,
            oldest_overdue_due_date: Some(Date { year: 2026, month: 9, day: 30 }),
            ..AccountStanding::default()
        };
        let warning = account_warning(standing).map(|warning| warning.message);
        assert_eq!(
            warning.as_deref(),
            Some("Company c-1 has 2 overdue invoices (4200.00 EUR + 5000 JPY, oldest due 2026-09-30).")
        );
        let one = AccountStanding {
            overdue: vec![Money { currency_code: "EUR".into(), minor_units: 5 }],
            overdue_invoice_count: 1,
            ..AccountStanding::default()
        };
        assert_eq!(
            account_warning(one).map(|warning| warning.message).as_deref(),
            Some("Company  has 1 overdue invoice (0.05 EUR).")
        );
        let none = AccountStanding { unpaid_invoice_count: 3, ..AccountStanding::default() };
        assert!(account_warning(none).is_none());
    }
}
