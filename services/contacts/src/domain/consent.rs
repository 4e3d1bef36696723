//! Consent to contact a person: channels, purposes, sources, and the
//! parsed change a RecordConsent carries. Pure.

use chrono::{DateTime, Utc};
use rapport_proto::contacts::v1::{ConsentChannel, ConsentEvent, ConsentSource};

use super::Violation;

/// The purpose when none is given, and the one `email_opt_in` mirrors.
pub const MARKETING: &str = "marketing";
/// The longest evidence text, in characters.
const MAX_EVIDENCE_CHARS: usize = 2000;
/// The longest do-not-contact reason, in characters.
const MAX_REASON_CHARS: usize = 500;

/// The stored name of a channel (`EMAIL`, `PHONE`, `SMS`).
pub fn channel_name(channel: ConsentChannel) -> &'static str {
    match channel {
        ConsentChannel::Email => "EMAIL",
        ConsentChannel::Phone => "PHONE",
        ConsentChannel::Sms => "SMS",
        ConsentChannel::Unspecified => "",
    }
}

/// The channel stored as `name`.
pub fn channel_from_name(name: &str) -> ConsentChannel {
    ConsentChannel::from_str_name(&format!("CONSENT_CHANNEL_{name}")).unwrap_or(ConsentChannel::Unspecified)
}

/// The stored name of a source (`FORM`, `UNSUBSCRIBE_LINK`, …).
pub fn source_name(source: ConsentSource) -> &'static str {
    source.as_str_name().strip_prefix("CONSENT_SOURCE_").unwrap_or("")
}

/// The source stored as `name`.
pub fn source_from_name(name: &str) -> ConsentSource {
    ConsentSource::from_str_name(&format!("CONSENT_SOURCE_{name}")).unwrap_or(ConsentSource::Unspecified)
}

/// A consent change to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentDraft {
    pub channel: ConsentChannel,
    pub purpose: String,
    pub granted: bool,
    pub source: ConsentSource,
    pub evidence: String,
    /// When the person gave or withdrew it.
    pub occur_time: DateTime<Utc>,
}

impl ConsentDraft {
    /// Parses `input` (its output-only fields ignored), reporting every
    /// invalid field at once; `now` is the default time and the latest
    /// allowed.
    pub fn parse(input: &ConsentEvent, now: DateTime<Utc>) -> Result<ConsentDraft, Vec<Violation>> {
        let mut violations = Vec::new();
        let channel = match ConsentChannel::try_from(input.channel) {
            Ok(ConsentChannel::Unspecified) | Err(_) => {
                violations.push(Violation::new("event.channel", "must be EMAIL, PHONE or SMS"));
                ConsentChannel::Unspecified
            }
            Ok(channel) => channel,
        };
        let source = match ConsentSource::try_from(input.source) {
            Ok(ConsentSource::Unspecified | ConsentSource::Migrated) | Err(_) => {
                violations.push(Violation::new(
                    "event.source",
                    "must be FORM, IMPORT, UNSUBSCRIBE_LINK, AGENT or API",
                ));
                ConsentSource::Unspecified
            }
            Ok(source) => source,
        };
        let purpose = match parse_purpose(&input.purpose) {
            Ok(purpose) => purpose,
            Err(violation) => {
                violations.push(violation);
                String::new()
            }
        };
        let evidence =
            rapport_kit::fields::text("event.evidence", &input.evidence, false, MAX_EVIDENCE_CHARS)
                .map_err(|violation| violations.push(violation))
                .unwrap_or_default();
        let occur_time = match &input.occur_time {
            None => now,
            Some(raw) => match rapport_kit::fields::time("event.occur_time", raw) {
                Ok(time) if time > now => {
                    violations.push(Violation::new("event.occur_time", "must not be in the future"));
                    now
                }
                Ok(time) => time,
                Err(violation) => {
                    violations.push(violation);
                    now
                }
            },
        };
        if !violations.is_empty() {
            return Err(violations);
        }
        Ok(ConsentDraft { channel, purpose, granted: input.granted, source, evidence, occur_time })
    }

    /// Whether this is the email-marketing consent `email_opt_in` mirrors.
    pub fn is_email_marketing(&self) -> bool {
        self.channel == ConsentChannel::Email && self.purpose == MARKETING
    }
}

/// A purpose: 1-64 of a-z, 0-9, `_`, `-`; empty means [`MARKETING`].
fn parse_purpose(raw: &str) -> Result<String, Violation> {
    let purpose = raw.trim();
    if purpose.is_empty() {
        return Ok(MARKETING.to_owned());
    }
    let valid = purpose.len() <= 64
        && purpose.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(Violation::new("event.purpose", "must be 1-64 characters of a-z, 0-9, _ and -"));
    }
    Ok(purpose.to_owned())
}

/// A do-not-contact reason: required (1-500 characters) when setting.
pub fn parse_reason(set: bool, raw: &str) -> Result<String, Violation> {
    if !set {
        return Ok(String::new());
    }
    rapport_kit::fields::text("reason", raw, true, MAX_REASON_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(channel: ConsentChannel, source: ConsentSource) -> ConsentEvent {
        ConsentEvent { channel: channel as i32, source: source as i32, ..Default::default() }
    }

    #[test]
    fn a_change_needs_a_channel_a_source_and_a_past_time() {
        let now = Utc::now();
        let draft = ConsentDraft::parse(&event(ConsentChannel::Email, ConsentSource::Form), now).unwrap();
        assert_eq!((draft.purpose.as_str(), draft.occur_time), (MARKETING, now));
        assert!(draft.is_email_marketing());

        let mut bad = event(ConsentChannel::Unspecified, ConsentSource::Migrated);
        bad.purpose = "Newsletter!".into();
        bad.evidence = "x".repeat(2001);
        bad.occur_time = Some(prost_types::Timestamp { seconds: now.timestamp() + 3600, nanos: 0 });
        let fields: Vec<String> = ConsentDraft::parse(&bad, now)
            .unwrap_err()
            .into_iter()
            .map(|violation| violation.field)
            .collect();
        assert_eq!(
            fields,
            ["event.channel", "event.source", "event.purpose", "event.evidence", "event.occur_time"]
        );
    }

    #[test]
    fn names_round_trip() {
        for channel in [ConsentChannel::Email, ConsentChannel::Phone, ConsentChannel::Sms] {
            assert_eq!(channel_from_name(channel_name(channel)), channel);
        }
        assert_eq!(source_name(ConsentSource::UnsubscribeLink), "UNSUBSCRIBE_LINK");
        assert_eq!(source_from_name("UNSUBSCRIBE_LINK"), ConsentSource::UnsubscribeLink);
        assert!(parse_reason(true, " ").is_err());
        assert_eq!(parse_reason(false, "ignored").unwrap(), "");
    }
}
