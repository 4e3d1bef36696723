//! A contact's fields, how client input is parsed into them, and how an
//! update applies.

use chrono::{DateTime, Utc};
use rapport_proto::contacts::v1::{Contact, LeadSource, LifecycleStage};

use super::fields::{self, CompanyId, Email, Violation};

/// The fields a client may set (create) or name in an update mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactField {
    /// `given_name`
    GivenName,
    /// `family_name`
    FamilyName,
    /// `email`
    Email,
    /// `phone`
    Phone,
    /// `job_title`
    JobTitle,
    /// `company_id`
    CompanyId,
    /// `owner_id`
    OwnerId,
    /// `team_id`
    TeamId,
    /// `lifecycle_stage`
    LifecycleStage,
    /// `lead_source`
    LeadSource,
    /// `lead_source_detail`
    LeadSourceDetail,
    /// `source_campaign_id`
    SourceCampaignId,
    /// `tags`
    Tags,
    /// `email_opt_in`
    EmailOptIn,
    /// `country`
    Country,
    /// `region`
    Region,
}

impl ContactField {
    /// Every settable field.
    pub const ALL: [ContactField; 16] = [
        ContactField::GivenName,
        ContactField::FamilyName,
        ContactField::Email,
        ContactField::Phone,
        ContactField::JobTitle,
        ContactField::CompanyId,
        ContactField::OwnerId,
        ContactField::TeamId,
        ContactField::LifecycleStage,
        ContactField::LeadSource,
        ContactField::LeadSourceDetail,
        ContactField::SourceCampaignId,
        ContactField::Tags,
        ContactField::EmailOptIn,
        ContactField::Country,
        ContactField::Region,
    ];

    /// The field's path in the contract.
    pub fn path(self) -> &'static str {
        match self {
            ContactField::GivenName => "given_name",
            ContactField::FamilyName => "family_name",
            ContactField::Email => "email",
            ContactField::Phone => "phone",
            ContactField::JobTitle => "job_title",
            ContactField::CompanyId => "company_id",
            ContactField::OwnerId => "owner_id",
            ContactField::TeamId => "team_id",
            ContactField::LifecycleStage => "lifecycle_stage",
            ContactField::LeadSource => "lead_source",
            ContactField::LeadSourceDetail => "lead_source_detail",
            ContactField::SourceCampaignId => "source_campaign_id",
            ContactField::Tags => "tags",
            ContactField::EmailOptIn => "email_opt_in",
            ContactField::Country => "country",
            ContactField::Region => "region",
        }
    }

    /// Parses an update mask; unknown or output-only paths are violations
    /// of `update_mask`.
    pub fn parse_mask(paths: &[String]) -> Result<Vec<ContactField>, Vec<Violation>> {
        if paths.is_empty() {
            return Err(vec![Violation::new("update_mask", "must name at least one field to update")]);
        }
        rapport_kit::fields::cap_mask(paths).map_err(|violation| vec![violation])?;
        let mut fields = Vec::new();
        let mut violations = Vec::new();
        for path in paths {
            match ContactField::ALL.iter().find(|field| field.path() == path) {
                Some(field) if !fields.contains(field) => fields.push(*field),
                Some(_) => {}
                None => violations.push(Violation::new(
                    "update_mask",
                    format!("{path:?} is not an updatable contact field"),
                )),
            }
        }
        if violations.is_empty() { Ok(fields) } else { Err(violations) }
    }
}

/// A contact as stored (everything but ids and times).
#[derive(Debug, Clone, PartialEq)]
pub struct ContactState {
    /// First name.
    pub given_name: String,
    /// Last name.
    pub family_name: String,
    /// Primary email.
    pub email: Email,
    /// Phone.
    pub phone: String,
    /// Job title.
    pub job_title: String,
    /// Employer.
    pub company_id: Option<CompanyId>,
    /// Owning user.
    pub owner_id: String,
    /// Owning team (empty: none).
    pub team_id: String,
    /// Journey stage (never UNSPECIFIED).
    pub lifecycle_stage: LifecycleStage,
    /// Where the lead came from.
    pub lead_source: LeadSource,
    /// Source detail.
    pub lead_source_detail: String,
    /// Generating campaign.
    pub source_campaign_id: String,
    /// Labels.
    pub tags: Vec<String>,
    /// Marketing consent.
    pub email_opt_in: bool,
    /// When consent last changed.
    pub email_opt_in_time: Option<DateTime<Utc>>,
    /// ISO country code (empty: unknown).
    pub country: String,
    /// Region.
    pub region: String,
}

/// Validated client input for some fields of a contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactDraft {
    fields: Vec<ContactField>,
    values: Values,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Values {
    given_name: String,
    family_name: String,
    email: Option<Email>,
    phone: String,
    job_title: String,
    company_id: Option<CompanyId>,
    owner_id: String,
    team_id: String,
    lifecycle_stage: Option<LifecycleStage>,
    lead_source: LeadSource,
    lead_source_detail: String,
    source_campaign_id: String,
    tags: Vec<String>,
    email_opt_in: bool,
    country: String,
    region: String,
}

const PREFIX: &str = "contact.";

impl ContactDraft {
    /// Parses the `fields` of `input`, reporting every invalid one.
    pub fn parse(input: &Contact, fields: &[ContactField]) -> Result<ContactDraft, Vec<Violation>> {
        let mut values = Values::default();
        let mut violations = Vec::new();
        for field in fields {
            let path = format!("{PREFIX}{}", field.path());
            let outcome = match field {
                ContactField::GivenName => {
                    fields::text(&path, &input.given_name, true, 200).map(|v| values.given_name = v)
                }
                ContactField::FamilyName => {
                    fields::text(&path, &input.family_name, false, 200).map(|v| values.family_name = v)
                }
                ContactField::Email => Email::parse(&path, &input.email).map(|v| values.email = Some(v)),
                ContactField::Phone => fields::phone(&path, &input.phone).map(|v| values.phone = v),
                ContactField::JobTitle => {
                    fields::text(&path, &input.job_title, false, 200).map(|v| values.job_title = v)
                }
                ContactField::CompanyId => {
                    fields::optional_company(&path, &input.company_id).map(|v| values.company_id = v)
                }
                ContactField::OwnerId => {
                    fields::text(&path, &input.owner_id, false, 128).map(|v| values.owner_id = v)
                }
                ContactField::TeamId => {
                    fields::text(&path, &input.team_id, false, 200).map(|v| values.team_id = v)
                }
                ContactField::LifecycleStage => {
                    lifecycle_stage(&path, input.lifecycle_stage).map(|v| values.lifecycle_stage = v)
                }
                ContactField::LeadSource => {
                    lead_source(&path, input.lead_source).map(|v| values.lead_source = v)
                }
                ContactField::LeadSourceDetail => fields::text(&path, &input.lead_source_detail, false, 500)
                    .map(|v| values.lead_source_detail = v),
                ContactField::SourceCampaignId => fields::text(&path, &input.source_campaign_id, false, 128)
                    .map(|v| values.source_campaign_id = v),
                ContactField::Tags => fields::tags(&path, &input.tags).map(|v| values.tags = v),
                ContactField::EmailOptIn => {
                    values.email_opt_in = input.email_opt_in;
                    Ok(())
                }
                ContactField::Country => fields::country(&path, &input.country).map(|v| values.country = v),
                ContactField::Region => {
                    fields::text(&path, &input.region, false, 100).map(|v| values.region = v)
                }
            };
            if let Err(violation) = outcome {
                violations.push(violation);
            }
        }
        if violations.is_empty() {
            Ok(ContactDraft { fields: fields.to_vec(), values })
        } else {
            Err(violations)
        }
    }

    /// The company this draft sets, if it sets one.
    pub fn company_id(&self) -> Option<Option<CompanyId>> {
        self.fields.contains(&ContactField::CompanyId).then_some(self.values.company_id)
    }

    /// A new contact from a draft parsed with [`ContactField::ALL`].
    pub fn into_new(self, now: DateTime<Utc>) -> Result<ContactState, Vec<Violation>> {
        let values = self.values;
        let email = values.email.ok_or_else(|| vec![Violation::new("contact.email", "is required")])?;
        Ok(ContactState {
            given_name: values.given_name,
            family_name: values.family_name,
            email,
            phone: values.phone,
            job_title: values.job_title,
            company_id: values.company_id,
            owner_id: values.owner_id,
            team_id: values.team_id,
            lifecycle_stage: values.lifecycle_stage.unwrap_or(LifecycleStage::Lead),
            lead_source: values.lead_source,
            lead_source_detail: values.lead_source_detail,
            source_campaign_id: values.source_campaign_id,
            tags: values.tags,
            email_opt_in: values.email_opt_in,
            email_opt_in_time: values.email_opt_in.then_some(now),
            country: values.country,
            region: values.region,
        })
    }
}

impl ContactState {
    /// Applies the draft's fields; returns the paths that actually changed.
    pub fn apply(&mut self, draft: &ContactDraft, now: DateTime<Utc>) -> Vec<String> {
        let values = &draft.values;
        let mut changed = Vec::new();
        for field in &draft.fields {
            let differs = match field {
                ContactField::GivenName => replace(&mut self.given_name, &values.given_name),
                ContactField::FamilyName => replace(&mut self.family_name, &values.family_name),
                ContactField::Email => match &values.email {
                    Some(email) => replace(&mut self.email, email),
                    None => false,
                },
                ContactField::Phone => replace(&mut self.phone, &values.phone),
                ContactField::JobTitle => replace(&mut self.job_title, &values.job_title),
                ContactField::CompanyId => replace(&mut self.company_id, &values.company_id),
                ContactField::OwnerId => replace(&mut self.owner_id, &values.owner_id),
                ContactField::TeamId => replace(&mut self.team_id, &values.team_id),
                ContactField::LifecycleStage => match values.lifecycle_stage {
                    Some(stage) => replace(&mut self.lifecycle_stage, &stage),
                    None => false,
                },
                ContactField::LeadSource => replace(&mut self.lead_source, &values.lead_source),
                ContactField::LeadSourceDetail => {
                    replace(&mut self.lead_source_detail, &values.lead_source_detail)
                }
                ContactField::SourceCampaignId => {
                    replace(&mut self.source_campaign_id, &values.source_campaign_id)
                }
                ContactField::Tags => replace(&mut self.tags, &values.tags),
                ContactField::EmailOptIn => {
                    let differs = replace(&mut self.email_opt_in, &values.email_opt_in);
                    if differs {
                        self.email_opt_in_time = Some(now);
                    }
                    differs
                }
                ContactField::Country => replace(&mut self.country, &values.country),
                ContactField::Region => replace(&mut self.region, &values.region),
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

/// A stage from the wire: UNSPECIFIED means "default" (None); unknown
/// numbers are violations.
fn lifecycle_stage(path: &str, raw: i32) -> Result<Option<LifecycleStage>, Violation> {
    match LifecycleStage::try_from(raw) {
        Ok(LifecycleStage::Unspecified) => Ok(None),
        Ok(LifecycleStage::Disqualified) => Err(Violation::new(
            path,
            "a lead is disqualified with LifecycleService.DisqualifyLead (it needs a reason)",
        )),
        Ok(stage) => Ok(Some(stage)),
        Err(_) => Err(Violation::new(path, format!("{raw} is not a lifecycle stage"))),
    }
}

fn lead_source(path: &str, raw: i32) -> Result<LeadSource, Violation> {
    LeadSource::try_from(raw).map_err(|_| Violation::new(path, format!("{raw} is not a lead source")))
}

/// The stored name of a stage, e.g. `CUSTOMER`.
pub fn stage_name(stage: LifecycleStage) -> &'static str {
    stage.as_str_name().trim_start_matches("LIFECYCLE_STAGE_")
}

/// The stage stored as `name`; an unknown name is a decode error.
pub fn stage_from_name(name: &str) -> Result<LifecycleStage, sqlx::Error> {
    rapport_kit::db::stored_enum("lifecycle_stage", "LIFECYCLE_STAGE_", name, LifecycleStage::from_str_name)
}

/// The stored name of a lead source, e.g. `TRADE_SHOW`.
pub fn source_name(source: LeadSource) -> &'static str {
    source.as_str_name().trim_start_matches("LEAD_SOURCE_")
}

/// The lead source stored as `name`; an unknown name is a decode error.
pub fn source_from_name(name: &str) -> Result<LeadSource, sqlx::Error> {
    rapport_kit::db::stored_enum("lead_source", "LEAD_SOURCE_", name, LeadSource::from_str_name)
}

/// Stored names of every stage (for filters).
pub const STAGE_NAMES: &[&str] = &[
    "SUBSCRIBER",
    "LEAD",
    "MARKETING_QUALIFIED",
    "SALES_QUALIFIED",
    "OPPORTUNITY",
    "CUSTOMER",
    "EVANGELIST",
    "CHURNED",
    "DISQUALIFIED",
];

/// Stored names of every lead source (for filters).
pub const SOURCE_NAMES: &[&str] = &[
    "UNSPECIFIED",
    "WEB",
    "REFERRAL",
    "TRADE_SHOW",
    "EVENT",
    "ADVERTISING",
    "EMAIL_CAMPAIGN",
    "COLD_OUTREACH",
    "SOCIAL",
    "CONTENT",
    "PURCHASED_LIST",
    "PARTNER",
    "OTHER",
    "SUPPORT_EMAIL",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> Contact {
        Contact {
            given_name: " Ada ".into(),
            family_name: "Lovelace".into(),
            email: "ADA@example.com".into(),
            tags: vec!["vip".into()],
            ..Contact::default()
        }
    }

    #[test]
    fn new_contacts_default_to_lead_and_normalize() {
        let now = Utc::now();
        let state = ContactDraft::parse(&input(), &ContactField::ALL).unwrap().into_new(now).unwrap();
        assert_eq!(state.given_name, "Ada");
        assert_eq!(state.email.as_str(), "ada@example.com");
        assert_eq!(state.lifecycle_stage, LifecycleStage::Lead);
        assert_eq!(state.email_opt_in_time, None);
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let bad = Contact {
            given_name: " ".into(),
            email: "nope".into(),
            company_id: "x".into(),
            lifecycle_stage: 42,
            ..Contact::default()
        };
        let violations = ContactDraft::parse(&bad, &ContactField::ALL).unwrap_err();
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["contact.given_name", "contact.email", "contact.company_id", "contact.lifecycle_stage"]
        );
    }

    #[test]
    fn masks_reject_unknown_and_output_only_paths() {
        assert!(ContactField::parse_mask(&[]).is_err());
        let err = ContactField::parse_mask(&["etag".into(), "nickname".into()]).unwrap_err();
        assert_eq!(err.len(), 2);
        assert_eq!(
            ContactField::parse_mask(&["tags".into(), "tags".into()]).unwrap(),
            vec![ContactField::Tags]
        );
    }

    #[test]
    fn updates_report_only_real_changes_and_stamp_consent() {
        let now = Utc::now();
        let mut state = ContactDraft::parse(&input(), &ContactField::ALL).unwrap().into_new(now).unwrap();
        let update =
            Contact { job_title: "Engineer".into(), email_opt_in: true, given_name: "Ada".into(), ..input() };
        let fields = [ContactField::JobTitle, ContactField::EmailOptIn, ContactField::GivenName];
        let draft = ContactDraft::parse(&update, &fields).unwrap();
        assert_eq!(state.apply(&draft, now), vec!["job_title", "email_opt_in"]);
        assert_eq!(state.email_opt_in_time, Some(now));
        assert!(state.apply(&draft, now).is_empty());
    }

    #[test]
    fn stored_names_round_trip() {
        assert_eq!(stage_name(LifecycleStage::SalesQualified), "SALES_QUALIFIED");
        assert_eq!(stage_from_name("CUSTOMER").unwrap(), LifecycleStage::Customer);
        assert_eq!(source_from_name(source_name(LeadSource::TradeShow)).unwrap(), LeadSource::TradeShow);
        assert!(stage_from_name("WHALE").is_err(), "an unknown stored stage is not a default");
        assert!(source_from_name("").is_err());
        assert_eq!(STAGE_NAMES.len(), 9);
        assert_eq!(SOURCE_NAMES.len(), 14);
    }
}
