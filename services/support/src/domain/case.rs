//! Case fields parsed from requests, the status transitions, and the
//! stored names of the case enums.

use rapport_kit::fields::{self, Violation, cap, long_text, text};
use rapport_proto::support::v1::{Case, CaseChannel, CasePriority, CaseStatus};

use super::ids::{CompanyId, ContactId, DealId};

/// Most tags on a case.
pub const MAX_TAGS: usize = 20;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 100_000;

/// A field of a case an update may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseField {
    Subject,
    Description,
    Status,
    Priority,
    Channel,
    Category,
    Product,
    Tags,
    DealId,
    CompanyId,
    Requester,
}

impl CaseField {
    /// Every updatable field with its mask path.
    pub const ALL: &[(CaseField, &'static str)] = &[
        (CaseField::Subject, "subject"),
        (CaseField::Description, "description"),
        (CaseField::Status, "status"),
        (CaseField::Priority, "priority"),
        (CaseField::Channel, "channel"),
        (CaseField::Category, "category"),
        (CaseField::Product, "product"),
        (CaseField::Tags, "tags"),
        (CaseField::DealId, "deal_id"),
        (CaseField::CompanyId, "company_id"),
        (CaseField::Requester, "requester_contact_id"),
    ];

    /// The fields of an update mask; INVALID_ARGUMENT names an unknown or
    /// output-only path.
    pub fn parse_mask(paths: &[String]) -> Result<Vec<CaseField>, Vec<Violation>> {
        fields::cap_mask(paths).map_err(|violation| vec![violation])?;
        if paths.is_empty() {
            return Err(vec![Violation::new("update_mask", "name at least one field to update")]);
        }
        let mut parsed = Vec::with_capacity(paths.len());
        let mut violations = Vec::new();
        for path in paths {
            match CaseField::ALL.iter().find(|(_, name)| name == path) {
                Some((field, _)) => parsed.push(*field),
                None => violations.push(Violation::new(
                    "update_mask",
                    format!("{path:?} cannot be updated (assignee_id and team_id change with AssignCase)"),
                )),
            }
        }
        if violations.is_empty() { Ok(parsed) } else { Err(violations) }
    }

    /// The mask path of this field.
    pub fn path(self) -> &'static str {
        CaseField::ALL.iter().find(|(field, _)| *field == self).map_or("", |(_, path)| path)
    }
}

/// The parsed fields of a create or update (only those named are set).
#[derive(Debug, Clone, Default)]
pub struct CaseInput {
    /// The fields named (a create names them all).
    pub fields: Vec<CaseField>,
    pub subject: String,
    pub description: String,
    pub status: Option<CaseStatus>,
    pub priority: CasePriority,
    pub channel: CaseChannel,
    pub category: String,
    pub product: String,
    pub tags: Vec<String>,
    pub deal_id: Option<DealId>,
    pub company_id: Option<CompanyId>,
    pub requester: Option<ContactId>,
}

impl CaseInput {
    /// Parses the `fields` of `case` (every violation at once, paths
    /// prefixed `case.`).
    pub fn parse(case: &Case, fields: &[CaseField]) -> Result<CaseInput, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut input = CaseInput { fields: fields.to_vec(), ..CaseInput::default() };
        let mut keep = |result: Result<(), Violation>| {
            if let Err(violation) = result {
                violations.push(violation);
            }
        };
        for field in fields {
            match field {
                CaseField::Subject => {
                    keep(text("case.subject", &case.subject, true, 300).map(|value| input.subject = value))
                }
                CaseField::Description => keep(
                    long_text("case.description", &case.description, false, MAX_DESCRIPTION)
                        .map(|value| input.description = value),
                ),
                CaseField::Status => match CaseStatus::try_from(case.status) {
                    Ok(CaseStatus::Unspecified) => input.status = None,
                    Ok(status) => input.status = Some(status),
                    Err(_) => keep(Err(Violation::new("case.status", "is not a known status"))),
                },
                CaseField::Priority => match CasePriority::try_from(case.priority) {
                    Ok(CasePriority::Unspecified) => input.priority = CasePriority::Normal,
                    Ok(priority) => input.priority = priority,
                    Err(_) => keep(Err(Violation::new("case.priority", "is not a known priority"))),
                },
                CaseField::Channel => match CaseChannel::try_from(case.channel) {
                    Ok(CaseChannel::Unspecified) => input.channel = CaseChannel::Web,
                    Ok(channel) => input.channel = channel,
                    Err(_) => keep(Err(Violation::new("case.channel", "is not a known channel"))),
                },
                CaseField::Category => keep(
                    text("case.category", &case.category, false, 100).map(|value| input.category = value),
                ),
                CaseField::Product => {
                    keep(text("case.product", &case.product, false, 200).map(|value| input.product = value))
                }
                CaseField::Tags => keep(tags(&case.tags).map(|value| input.tags = value)),
                CaseField::DealId => keep(
                    optional_id(&case.deal_id, |raw| DealId::parse("case.deal_id", raw))
                        .map(|value| input.deal_id = value),
                ),
                CaseField::CompanyId => keep(
                    optional_id(&case.company_id, |raw| CompanyId::parse("case.company_id", raw))
                        .map(|value| input.company_id = value),
                ),
                CaseField::Requester => keep(
                    ContactId::parse("case.requester_contact_id", &case.requester_contact_id)
                        .map(|value| input.requester = Some(value)),
                ),
            }
        }
        if violations.is_empty() { Ok(input) } else { Err(violations) }
    }

    /// Whether the input names `field`.
    pub fn sets(&self, field: CaseField) -> bool {
        self.fields.contains(&field)
    }
}

fn optional_id<T>(raw: &str, parse: impl Fn(&str) -> Result<T, Violation>) -> Result<Option<T>, Violation> {
    if raw.trim().is_empty() { Ok(None) } else { parse(raw).map(Some) }
}

/// Tags: at most [`MAX_TAGS`], each 1-50 characters, trimmed, unique
/// (case-insensitive; the first spelling is kept).
pub fn tags(raw: &[String]) -> Result<Vec<String>, Violation> {
    cap("case.tags", raw, MAX_TAGS)?;
    let mut kept: Vec<String> = Vec::with_capacity(raw.len());
    for (index, tag) in raw.iter().enumerate() {
        let tag = text(&format!("case.tags[{index}]"), tag, true, 50)?;
        if !kept.iter().any(|other| other.eq_ignore_ascii_case(&tag)) {
            kept.push(tag);
        }
    }
    Ok(kept)
}

/// Whether a case may move from `from` to `to` (see the service's
/// documentation). Staying put is not a transition.
pub fn may_move(from: CaseStatus, to: CaseStatus) -> bool {
    use CaseStatus::*;
    match (from, to) {
        (_, Unspecified | New) | (Closed, _) => false,
        (a, b) if a == b => false,
        (New | Open | PendingCustomer | OnHold, _) => true,
        (Resolved, Open | Closed) => true,
        (Resolved, _) | (Unspecified, _) => false,
    }
}

/// Whether a case in `status` is still to be worked on.
pub fn is_open(status: CaseStatus) -> bool {
    !matches!(status, CaseStatus::Resolved | CaseStatus::Closed)
}

/// The stored name of an enum value: its proto name without the prefix.
pub fn stored(proto_name: &str, prefix: &str) -> String {
    proto_name.strip_prefix(prefix).unwrap_or(proto_name).to_owned()
}

/// The stored name of a status (`OPEN`).
pub fn status_name(status: CaseStatus) -> String {
    stored(status.as_str_name(), "CASE_STATUS_")
}

/// The status stored as `name`.
pub fn status_of(name: &str) -> Option<CaseStatus> {
    CaseStatus::from_str_name(&format!("CASE_STATUS_{name}"))
}

/// The stored name of a priority (`HIGH`).
pub fn priority_name(priority: CasePriority) -> String {
    stored(priority.as_str_name(), "CASE_PRIORITY_")
}

/// The priority stored as `name`.
pub fn priority_of(name: &str) -> Option<CasePriority> {
    CasePriority::from_str_name(&format!("CASE_PRIORITY_{name}"))
}

/// The stored name of a channel (`EMAIL`).
pub fn channel_name(channel: CaseChannel) -> String {
    stored(channel.as_str_name(), "CASE_CHANNEL_")
}

/// The channel stored as `name`.
pub fn channel_of(name: &str) -> Option<CaseChannel> {
    CaseChannel::from_str_name(&format!("CASE_CHANNEL_{name}"))
}

/// A case number as shown: `prefix` and the number, e.g. `CASE-1042`.
pub fn display_number(prefix: &str, number: i64) -> String {
    format!("{prefix}{number}")
}

/// The number in `text` when it is `prefix` followed by digits
/// (case-insensitive prefix).
pub fn parse_number(prefix: &str, text: &str) -> Option<i64> {
    let text = text.trim();
    let head = text.get(..prefix.len())?;
    if !head.eq_ignore_ascii_case(prefix) {
        return None;
    }
    let digits = &text[prefix.len()..];
    if digits.is_empty() || digits.len() > 18 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_follow_the_documented_table() {
        use CaseStatus::*;
        assert!(may_move(New, Open) && may_move(Open, PendingCustomer) && may_move(PendingCustomer, Open));
        assert!(may_move(OnHold, Resolved) && may_move(Resolved, Open) && may_move(Resolved, Closed));
        assert!(!may_move(Resolved, PendingCustomer) && !may_move(Closed, Open) && !may_move(Open, New));
        assert!(!may_move(Open, Open));
    }

    #[test]
    fn numbers_read_back_only_with_their_prefix() {
        assert_eq!(parse_number("CASE-", "case-1042"), Some(1042));
        assert_eq!(display_number("CASE-", 1042), "CASE-1042");
        for bad in ["CASE-", "CASE-12a", "TICKET-12", "CASE-99999999999999999999", "ÇASE-1"] {
            assert_eq!(parse_number("CASE-", bad), None, "{bad}");
        }
    }

    #[test]
    fn tags_are_trimmed_deduplicated_and_capped() {
        let raw: Vec<String> = [" vip ", "VIP", "billing"].iter().map(|tag| (*tag).to_owned()).collect();
        assert_eq!(tags(&raw).unwrap_or_default(), ["vip", "billing"]);
        let many: Vec<String> = (0..21).map(|n| format!("t{n}")).collect();
        assert!(tags(&many).is_err());
        assert!(tags(&["a\0b".to_owned()]).is_err());
    }
}
