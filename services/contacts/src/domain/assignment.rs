//! Assignment rules and team members: client input checked, and whether a
//! new record meets a rule's conditions. Pure.

use rapport_proto::contacts::v1::{AssignmentMethod, AssignmentRule, LeadSource, TeamMember};

use super::fields::{Violation, country, text};

/// The most entries of a rule's list conditions.
const MAX_LIST: usize = 50;

/// What the rules see of a new contact or company.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Target {
    /// Country code.
    pub country: String,
    /// Region.
    pub region: String,
    /// Industry (a contact's: its company's).
    pub industry: String,
    /// Size (a contact's: its company's); `None` when unknown.
    pub employees: Option<i32>,
    /// Lead source (contacts only).
    pub lead_source: Option<LeadSource>,
}

/// Whether `target` meets every condition `rule` gives.
pub fn matches(rule: &AssignmentRule, target: &Target) -> bool {
    let any_of = |list: &[String], value: &str| {
        list.is_empty() || list.iter().any(|item| item.eq_ignore_ascii_case(value))
    };
    let industry_ok = rule.industries.is_empty()
        || rule
            .industries
            .iter()
            .any(|industry| target.industry.to_lowercase().contains(&industry.to_lowercase()));
    let size_ok = match target.employees {
        Some(employees) => {
            employees >= rule.min_employees && (rule.max_employees == 0 || employees <= rule.max_employees)
        }
        None => rule.min_employees == 0 && rule.max_employees == 0,
    };
    let source_ok = rule.lead_sources.is_empty()
        || target.lead_source.is_some_and(|source| rule.lead_sources.contains(&(source as i32)));
    any_of(&rule.countries, &target.country)
        && any_of(&rule.regions, &target.region)
        && industry_ok
        && size_ok
        && source_ok
}

/// Checks a rule; the returned rule holds only its validated fields.
pub fn parse_rule(input: &AssignmentRule) -> Result<AssignmentRule, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut keep = |result: Result<String, Violation>| {
        result.unwrap_or_else(|violation| {
            violations.push(violation);
            String::new()
        })
    };
    let name = keep(text("rule.name", &input.name, true, 200));
    let team_id = keep(text("rule.team_id", &input.team_id, true, 200));
    let mut countries = Vec::new();
    let mut regions = Vec::new();
    let mut industries = Vec::new();
    for (field, list) in [
        ("rule.countries", &input.countries),
        ("rule.regions", &input.regions),
        ("rule.industries", &input.industries),
    ] {
        if let Err(violation) = rapport_kit::fields::cap(field, list, MAX_LIST) {
            violations.push(violation);
            continue;
        }
        for (index, raw) in list.iter().enumerate() {
            let path = format!("{field}[{index}]");
            let parsed = match field {
                "rule.countries" => country(&path, raw).and_then(|code| {
                    if code.is_empty() { Err(Violation::new(&path, "must not be empty")) } else { Ok(code) }
                }),
                _ => text(&path, raw, true, 100),
            };
            match (parsed, field) {
                (Ok(value), "rule.countries") => countries.push(value),
                (Ok(value), "rule.regions") => regions.push(value),
                (Ok(value), _) => industries.push(value),
                (Err(violation), _) => violations.push(violation),
            }
        }
    }
    if let Err(violation) = rapport_kit::fields::cap("rule.lead_sources", &input.lead_sources, 20) {
        violations.push(violation);
    } else if input
        .lead_sources
        .iter()
        .any(|source| matches!(LeadSource::try_from(*source), Err(_) | Ok(LeadSource::Unspecified)))
    {
        violations.push(Violation::new("rule.lead_sources", "must be lead sources other than UNSPECIFIED"));
    }
    if input.min_employees < 0
        || input.max_employees < 0
        || (input.max_employees != 0 && input.max_employees < input.min_employees)
    {
        violations.push(Violation::new(
            "rule.max_employees",
            "sizes are 0 or more, and the maximum (0: none) is not below the minimum",
        ));
    }
    if matches!(AssignmentMethod::try_from(input.method), Err(_) | Ok(AssignmentMethod::Unspecified)) {
        violations.push(Violation::new("rule.method", "must be ROUND_ROBIN or LEAST_LOADED"));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(AssignmentRule {
        name,
        position: input.position,
        countries,
        regions,
        industries,
        min_employees: input.min_employees,
        max_employees: input.max_employees,
        lead_sources: input.lead_sources.clone(),
        team_id,
        method: input.method,
        enabled: input.enabled,
        ..AssignmentRule::default()
    })
}

/// Checks a team member.
pub fn parse_member(input: &TeamMember) -> Result<TeamMember, Vec<Violation>> {
    let mut violations = Vec::new();
    let mut keep = |result: Result<String, Violation>| {
        result.unwrap_or_else(|violation| {
            violations.push(violation);
            String::new()
        })
    };
    let team_id = keep(text("member.team_id", &input.team_id, true, 200));
    let user_id = keep(text("member.user_id", &input.user_id, true, 128));
    let display_name = keep(text("member.display_name", &input.display_name, true, 200));
    if input.capacity < 0 {
        violations.push(Violation::new("member.capacity", "must not be negative"));
    }
    if !violations.is_empty() {
        return Err(violations);
    }
    Ok(TeamMember {
        team_id,
        user_id,
        display_name,
        active: input.active,
        capacity: input.capacity,
        update_time: None,
    })
}

/// A method's stored name.
pub fn method_name(method: AssignmentMethod) -> &'static str {
    method.as_str_name().trim_start_matches("ASSIGNMENT_METHOD_")
}

/// A stored method back to the enum.
pub fn method_from_name(name: &str) -> Result<AssignmentMethod, sqlx::Error> {
    rapport_kit::db::stored_enum("method", "ASSIGNMENT_METHOD_", name, AssignmentMethod::from_str_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> AssignmentRule {
        AssignmentRule {
            name: "DACH mid-market".into(),
            countries: vec!["de".into(), "AT".into()],
            min_employees: 50,
            max_employees: 1000,
            team_id: "dach".into(),
            method: AssignmentMethod::RoundRobin.into(),
            enabled: true,
            ..AssignmentRule::default()
        }
    }

    #[test]
    fn every_given_condition_must_hold() {
        let rule = parse_rule(&rule()).unwrap();
        assert_eq!(rule.countries, ["DE", "AT"]);
        let target = Target { country: "DE".into(), employees: Some(200), ..Target::default() };
        assert!(matches(&rule, &target));
        assert!(!matches(&rule, &Target { country: "FR".into(), ..target.clone() }));
        assert!(!matches(&rule, &Target { employees: None, ..target.clone() }), "size unknown");
        let sourced = AssignmentRule { lead_sources: vec![LeadSource::Web as i32], ..rule };
        assert!(!matches(&sourced, &target));
        assert!(matches(&sourced, &Target { lead_source: Some(LeadSource::Web), ..target }));
    }

    #[test]
    fn bad_rules_and_members_are_refused_field_by_field() {
        let bad = AssignmentRule {
            name: String::new(),
            countries: vec!["Germany".into()],
            max_employees: 10,
            min_employees: 20,
            ..AssignmentRule::default()
        };
        let fields: Vec<String> = parse_rule(&bad).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            ["rule.name", "rule.team_id", "rule.countries[0]", "rule.max_employees", "rule.method"]
        );
        let member =
            TeamMember { team_id: "t".into(), user_id: String::new(), capacity: -1, ..TeamMember::default() };
        let fields: Vec<String> = parse_member(&member).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(fields, ["member.user_id", "member.display_name", "member.capacity"]);
    }
}
