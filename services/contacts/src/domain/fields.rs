//! Field-level value types: ids, emails, names, tags, money.

pub use rapport_kit::fields::{Violation, text};

rapport_kit::typed_id!(ContactId, "contact");
rapport_kit::typed_id!(CompanyId, "company");

/// Parses an optional reference: empty means none.
pub fn optional_company(field: &str, raw: &str) -> Result<Option<CompanyId>, Violation> {
    if raw.trim().is_empty() { Ok(None) } else { CompanyId::parse(field, raw).map(Some) }
}

/// An email address, trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses `local@domain.tld` (at most 254 characters).
    pub fn parse(field: &str, raw: &str) -> Result<Email, Violation> {
        let email = raw.trim().to_lowercase();
        let invalid = || Violation::new(field, format!("{raw:?} is not a valid email address"));
        if email.is_empty() {
            return Err(Violation::new(field, "is required"));
        }
        if email.len() > 254 {
            return Err(Violation::new(field, "must be at most 254 characters"));
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local_ok && domain_ok { Ok(Email(email)) } else { Err(invalid()) }
    }

    /// An address read back from the database, where only parsed ones go.
    pub fn from_stored(stored: String) -> Email {
        Email(stored)
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A country: an ISO 3166-1 alpha-2 code, upper-cased (`DE`); empty for
/// none.
pub fn country(field: &str, raw: &str) -> Result<String, Violation> {
    let code = raw.trim().to_ascii_uppercase();
    if code.is_empty() || (code.len() == 2 && code.chars().all(|c| c.is_ascii_uppercase())) {
        Ok(code)
    } else {
        Err(Violation::new(field, format!("{raw:?} is not an ISO 3166-1 alpha-2 country code (e.g. \"DE\")")))
    }
}

/// An internet domain, lower-cased, e.g. `example.com`.
pub fn domain(field: &str, raw: &str) -> Result<Option<String>, Violation> {
    let domain = raw.trim().trim_end_matches('.').to_lowercase();
    if domain.is_empty() {
        return Ok(None);
    }
    let labels: Vec<&str> = domain.split('.').collect();
    let valid = domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if valid {
        Ok(Some(domain))
    } else {
        Err(Violation::new(field, format!("{raw:?} is not a domain name like example.com")))
    }
}

/// A phone number as entered: digits and common punctuation.
pub fn phone(field: &str, raw: &str) -> Result<String, Violation> {
    let phone = text(field, raw, false, 50)?;
    if phone.chars().all(|c| c.is_ascii_digit() || " +-().x/".contains(c)) {
        Ok(phone)
    } else {
        Err(Violation::new(field, "may contain only digits, spaces and + - ( ) . / x"))
    }
}

/// The most tags a record carries (checked on the list as sent, before
/// any per-tag work).
pub const MAX_TAGS: usize = 50;

/// Tags: at most [`MAX_TAGS`], each trimmed and 1–64 characters,
/// de-duplicated in order (linear time).
pub fn tags(field: &str, raw: &[String]) -> Result<Vec<String>, Violation> {
    rapport_kit::fields::cap(field, raw, MAX_TAGS)?;
    let mut seen = std::collections::HashSet::with_capacity(raw.len());
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for tag in raw {
        let tag = text(field, tag, true, 64)?;
        if seen.insert(tag.clone()) {
            out.push(tag);
        }
    }
    Ok(out)
}

/// An amount of money: an active ISO 4217 code and minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Money {
    /// Currency code.
    pub currency_code: String,
    /// Amount in minor units.
    pub minor_units: i64,
}

impl Money {
    /// Checks the currency code against kit's ISO 4217 list; a bad code is
    /// reported at `<field>.currency_code`.
    pub fn parse(field: &str, currency_code: &str, minor_units: i64) -> Result<Money, Violation> {
        let money = rapport_kit::money::Money::parse(field, currency_code, minor_units)?;
        Ok(Money { currency_code: money.currency().code().to_owned(), minor_units })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalized_and_checked() {
        assert_eq!(Email::parse("email", "  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in
            ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@@x.io", ".a@x.io"]
        {
            assert!(Email::parse("email", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(text("f", "  Ada ", true, 10).unwrap(), "Ada");
        assert!(text("f", "   ", true, 10).is_err());
        assert_eq!(text("f", "", false, 10).unwrap(), "");
        assert!(text("f", &"x".repeat(11), false, 10).is_err());
        assert!(text("f", "a\u{0}b", false, 10).is_err());
    }

    #[test]
    fn ids_domains_phones_tags_money() {
        assert!(ContactId::parse("id", "not-a-uuid").is_err());
        let id = ContactId::generate();
        assert_eq!(ContactId::parse("id", &id.to_string()).unwrap(), id);
        assert_eq!(domain("d", "Example.COM.").unwrap().as_deref(), Some("example.com"));
        assert_eq!(domain("d", "").unwrap(), None);
        assert!(domain("d", "not a domain").is_err());
        assert!(phone("p", "+49 (30) 123-456").is_ok());
        assert!(phone("p", "call me").is_err());
        assert_eq!(tags("t", &["vip".into(), " vip ".into(), "b".into()]).unwrap(), vec!["vip", "b"]);
        assert!(tags("t", &["".into()]).is_err());
        assert!(Money::parse("m", "EUR", 100).is_ok());
        assert!(Money::parse("m", "eur", 100).is_err());
        let unknown = Money::parse("company.annual_revenue", "EUX", 100).unwrap_err();
        assert_eq!(unknown.field, "company.annual_revenue.currency_code");
        assert_eq!(
            unknown.description,
            r#""EUX" is not an active ISO 4217 currency code such as EUR or USD"#
        );
    }
}
