//! Inside sales' qualification answers (need, budget, authority,
//! timeline), parsed from client input. Stored and returned as the
//! contract's `Qualification` message, which holds no more than these
//! validated values.

use chrono::{DateTime, NaiveDate, Utc};
use rapport_proto::common::v1::{Date, Money as ProtoMoney};
use rapport_proto::contacts::v1::{DecisionHorizon, Qualification};

use super::fields::{ContactId, Money, Violation, text};

const PREFIX: &str = "qualification.";

/// Validated answers, stamped with who qualified the lead and when;
/// `decision_maker_contact_id` still has to be checked against the live
/// contacts (returned beside).
pub fn parse(
    input: &Qualification,
    qualified_by: &str,
    now: DateTime<Utc>,
) -> Result<(Qualification, Option<ContactId>), Vec<Violation>> {
    let mut violations = Vec::new();
    let mut keep = |result: Result<String, Violation>| match result {
        Ok(value) => value,
        Err(violation) => {
            violations.push(violation);
            String::new()
        }
    };
    let need = keep(rapport_kit::fields::long_text(&format!("{PREFIX}need"), &input.need, true, 2000));
    let decision_maker = keep(text(&format!("{PREFIX}decision_maker"), &input.decision_maker, false, 200));
    let notes = keep(rapport_kit::fields::long_text(&format!("{PREFIX}notes"), &input.notes, false, 5000));
    let budget = match &input.budget {
        Some(money) => match budget(money) {
            Ok(money) => Some(money),
            Err(violation) => {
                violations.push(violation);
                None
            }
        },
        None => None,
    };
    let decision_maker_id = match input.decision_maker_contact_id.trim() {
        "" => None,
        raw => match ContactId::parse(&format!("{PREFIX}decision_maker_contact_id"), raw) {
            Ok(id) => Some(id),
            Err(violation) => {
                violations.push(violation);
                None
            }
        },
    };
    if input.is_decision_maker && decision_maker_id.is_some() {
        violations.push(Violation::new(
            format!("{PREFIX}decision_maker_contact_id"),
            "must be empty when the contact is the decision maker",
        ));
    }
    if let Some(date) = &input.decision_date
        && let Err(violation) = decision_date(date)
    {
        violations.push(violation);
    }
    if DecisionHorizon::try_from(input.decision_horizon).is_err() {
        violations.push(Violation::new(
            format!("{PREFIX}decision_horizon"),
            format!("{} is not a decision horizon", input.decision_horizon),
        ));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    let answers = Qualification {
        need,
        budget,
        is_decision_maker: input.is_decision_maker,
        decision_maker_contact_id: decision_maker_id.map(|id| id.to_string()).unwrap_or_default(),
        decision_maker,
        decision_date: input.decision_date,
        decision_horizon: input.decision_horizon,
        notes,
        qualified_by: qualified_by.to_owned(),
        qualify_time: Some(rapport_kit::changelog::timestamp(now)),
        disqualify_reason: String::new(),
    };
    Ok((answers, decision_maker_id))
}

fn budget(money: &ProtoMoney) -> Result<ProtoMoney, Violation> {
    let field = format!("{PREFIX}budget");
    let parsed = Money::parse(&field, &money.currency_code, money.minor_units)?;
    if parsed.minor_units < 0 {
        return Err(Violation::new(format!("{field}.minor_units"), "must not be negative"));
    }
    Ok(ProtoMoney { currency_code: parsed.currency_code, minor_units: parsed.minor_units })
}

fn decision_date(date: &Date) -> Result<NaiveDate, Violation> {
    let month = u32::try_from(date.month).ok();
    let day = u32::try_from(date.day).ok();
    month
        .zip(day)
        .filter(|_| (1..=9999).contains(&date.year))
        .and_then(|(month, day)| NaiveDate::from_ymd_opt(date.year, month, day))
        .ok_or_else(|| {
            Violation::new(format!("{PREFIX}decision_date"), "must be a valid date (years 1-9999)")
        })
}

/// A reason (SetLifecycleStage, ReopenLead, DisqualifyLead): 1-500
/// characters.
pub fn reason(field: &str, raw: &str) -> Result<String, Violation> {
    text(field, raw, true, 500)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Qualification {
        Qualification {
            need: " Replace spreadsheets ".into(),
            budget: Some(ProtoMoney { currency_code: "EUR".into(), minor_units: 5_000_000 }),
            decision_maker: "CFO".into(),
            decision_horizon: DecisionHorizon::ThisQuarter as i32,
            ..Qualification::default()
        }
    }

    #[test]
    fn answers_are_normalized_and_stamped() {
        let now = Utc::now();
        let (parsed, maker) = parse(&answers(), "rep-1", now).unwrap();
        assert_eq!(parsed.need, "Replace spreadsheets");
        assert_eq!(parsed.budget.unwrap().currency_code, "EUR");
        assert_eq!(parsed.qualified_by, "rep-1");
        assert!(parsed.qualify_time.is_some() && maker.is_none());
    }

    #[test]
    fn every_bad_answer_is_reported() {
        let input = Qualification {
            need: String::new(),
            budget: Some(ProtoMoney { currency_code: "EUR".into(), minor_units: -1 }),
            is_decision_maker: true,
            decision_maker_contact_id: "not-a-uuid".into(),
            decision_date: Some(Date { year: 2027, month: 2, day: 30 }),
            decision_horizon: 99,
            notes: "nul\0".into(),
            ..Qualification::default()
        };
        let violations = parse(&input, "rep-1", Utc::now()).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        for expected in [
            "qualification.need",
            "qualification.budget.minor_units",
            "qualification.decision_maker_contact_id",
            "qualification.decision_date",
            "qualification.decision_horizon",
            "qualification.notes",
        ] {
            assert!(fields.contains(&expected), "{expected} missing from {fields:?}");
        }
    }
}
