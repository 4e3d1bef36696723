//! A company's fields, how client input is parsed into them, and how an
//! update applies.

use rapport_proto::contacts::v1::Company;

use super::fields::{self, CompanyId, Money, Violation};

/// The fields a client may set (create) or name in an update mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompanyField {
    /// `name`
    Name,
    /// `domain`
    Domain,
    /// `industry`
    Industry,
    /// `employee_count`
    EmployeeCount,
    /// `annual_revenue`
    AnnualRevenue,
    /// `owner_id`
    OwnerId,
    /// `team_id`
    TeamId,
    /// `parent_company_id`
    ParentCompanyId,
    /// `country`
    Country,
    /// `region`
    Region,
}

impl CompanyField {
    /// Every settable field.
    pub const ALL: [CompanyField; 10] = [
        CompanyField::Name,
        CompanyField::Domain,
        CompanyField::Industry,
        CompanyField::EmployeeCount,
        CompanyField::AnnualRevenue,
        CompanyField::OwnerId,
        CompanyField::TeamId,
        CompanyField::ParentCompanyId,
        CompanyField::Country,
        CompanyField::Region,
    ];

    /// The field's path in the contract.
    pub fn path(self) -> &'static str {
        match self {
            CompanyField::Name => "name",
            CompanyField::Domain => "domain",
            CompanyField::Industry => "industry",
            CompanyField::EmployeeCount => "employee_count",
            CompanyField::AnnualRevenue => "annual_revenue",
            CompanyField::OwnerId => "owner_id",
            CompanyField::TeamId => "team_id",
            CompanyField::ParentCompanyId => "parent_company_id",
            CompanyField::Country => "country",
            CompanyField::Region => "region",
        }
    }

    /// Parses an update mask; unknown or output-only paths are violations.
    pub fn parse_mask(paths: &[String]) -> Result<Vec<CompanyField>, Vec<Violation>> {
        if paths.is_empty() {
            return Err(vec![Violation::new("update_mask", "must name at least one field to update")]);
        }
        rapport_kit::fields::cap_mask(paths).map_err(|violation| vec![violation])?;
        let mut fields = Vec::new();
        let mut violations = Vec::new();
        for path in paths {
            match CompanyField::ALL.iter().find(|field| field.path() == path) {
                Some(field) if !fields.contains(field) => fields.push(*field),
                Some(_) => {}
                None => violations.push(Violation::new(
                    "update_mask",
                    format!("{path:?} is not an updatable company field"),
                )),
            }
        }
        if violations.is_empty() { Ok(fields) } else { Err(violations) }
    }
}

/// A company as stored (everything but ids and times).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompanyState {
    /// Display name.
    pub name: String,
    /// Unique domain among live companies.
    pub domain: Option<String>,
    /// Industry.
    pub industry: String,
    /// Employees.
    pub employee_count: i32,
    /// Annual revenue.
    pub annual_revenue: Option<Money>,
    /// Owning user.
    pub owner_id: String,
    /// Owning team (empty: none).
    pub team_id: String,
    /// Parent in a group.
    pub parent_company_id: Option<CompanyId>,
    /// ISO country code (empty: unknown).
    pub country: String,
    /// Region.
    pub region: String,
}

/// Validated client input for some fields of a company.
#[derive(Debug, Clone, PartialEq)]
pub struct CompanyDraft {
    fields: Vec<CompanyField>,
    values: CompanyState,
}

const PREFIX: &str = "company.";

impl CompanyDraft {
    /// Parses the `fields` of `input`, reporting every invalid one.
    pub fn parse(input: &Company, fields: &[CompanyField]) -> Result<CompanyDraft, Vec<Violation>> {
        let mut values = CompanyState::default();
        let mut violations = Vec::new();
        for field in fields {
            let path = format!("{PREFIX}{}", field.path());
            let outcome = match field {
                CompanyField::Name => fields::text(&path, &input.name, true, 200).map(|v| values.name = v),
                CompanyField::Domain => fields::domain(&path, &input.domain).map(|v| values.domain = v),
                CompanyField::Industry => {
                    fields::text(&path, &input.industry, false, 100).map(|v| values.industry = v)
                }
                CompanyField::EmployeeCount => {
                    if input.employee_count < 0 {
                        Err(Violation::new(&path, "must not be negative"))
                    } else {
                        values.employee_count = input.employee_count;
                        Ok(())
                    }
                }
                CompanyField::AnnualRevenue => match &input.annual_revenue {
                    None => Ok(()),
                    Some(money) => Money::parse(&path, &money.currency_code, money.minor_units)
                        .map(|v| values.annual_revenue = Some(v)),
                },
                CompanyField::OwnerId => {
                    fields::text(&path, &input.owner_id, false, 128).map(|v| values.owner_id = v)
                }
                CompanyField::TeamId => {
                    fields::text(&path, &input.team_id, false, 200).map(|v| values.team_id = v)
                }
                CompanyField::ParentCompanyId => fields::optional_company(&path, &input.parent_company_id)
                    .map(|v| values.parent_company_id = v),
                CompanyField::Country => fields::country(&path, &input.country).map(|v| values.country = v),
                CompanyField::Region => {
                    fields::text(&path, &input.region, false, 100).map(|v| values.region = v)
                }
            };
            if let Err(violation) = outcome {
                violations.push(violation);
            }
        }
        if violations.is_empty() {
            Ok(CompanyDraft { fields: fields.to_vec(), values })
        } else {
            Err(violations)
        }
    }

    /// The parent this draft sets, if it sets one.
    pub fn parent_company_id(&self) -> Option<Option<CompanyId>> {
        self.fields.contains(&CompanyField::ParentCompanyId).then_some(self.values.parent_company_id)
    }

    /// A new company from a draft parsed with [`CompanyField::ALL`].
    pub fn into_new(self) -> CompanyState {
        self.values
    }
}

impl CompanyState {
    /// Applies the draft's fields; returns the paths that actually changed.
    pub fn apply(&mut self, draft: &CompanyDraft) -> Vec<String> {
        let values = &draft.values;
        let mut changed = Vec::new();
        for field in &draft.fields {
            let differs = match field {
                CompanyField::Name => replace(&mut self.name, &values.name),
                CompanyField::Domain => replace(&mut self.domain, &values.domain),
                CompanyField::Industry => replace(&mut self.industry, &values.industry),
                CompanyField::EmployeeCount => replace(&mut self.employee_count, &values.employee_count),
                CompanyField::AnnualRevenue => replace(&mut self.annual_revenue, &values.annual_revenue),
                CompanyField::OwnerId => replace(&mut self.owner_id, &values.owner_id),
                CompanyField::TeamId => replace(&mut self.team_id, &values.team_id),
                CompanyField::ParentCompanyId => {
                    replace(&mut self.parent_company_id, &values.parent_company_id)
                }
                CompanyField::Country => replace(&mut self.country, &values.country),
                CompanyField::Region => replace(&mut self.region, &values.region),
            };
            if differs {
                changed.push(field.path().to_owned());
            }
        }
        changed
    }
}

fn replace<T: PartialEq + Clone>(slot: &mut T, value: &T) -> bool {
    if slot == value {
        return false;
    }
    *slot = value.clone();
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_proto::common::v1::Money as ProtoMoney;

    #[test]
    fn companies_parse_and_report_every_violation() {
        let input = Company {
            name: " Acme ".into(),
            domain: "ACME.example".into(),
            annual_revenue: Some(ProtoMoney { currency_code: "EUR".into(), minor_units: 100_000 }),
            ..Company::default()
        };
        let state = CompanyDraft::parse(&input, &CompanyField::ALL).unwrap().into_new();
        assert_eq!(state.name, "Acme");
        assert_eq!(state.domain.as_deref(), Some("acme.example"));

        let bad = Company {
            name: "".into(),
            domain: "no spaces.com".into(),
            employee_count: -1,
            annual_revenue: Some(ProtoMoney { currency_code: "euro".into(), minor_units: 1 }),
            parent_company_id: "zzz".into(),
            ..Company::default()
        };
        let violations = CompanyDraft::parse(&bad, &CompanyField::ALL).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "company.name",
                "company.domain",
                "company.employee_count",
                "company.annual_revenue.currency_code",
                "company.parent_company_id"
            ]
        );
    }

    #[test]
    fn updates_report_real_changes() {
        let mut state = CompanyState { name: "Acme".into(), ..CompanyState::default() };
        let draft = CompanyDraft::parse(
            &Company { name: "Acme".into(), industry: "Tools".into(), ..Company::default() },
            &[CompanyField::Name, CompanyField::Industry],
        )
        .unwrap();
        assert_eq!(state.apply(&draft), vec!["industry"]);
        assert!(CompanyField::parse_mask(&["id".into()]).is_err());
    }
}
