//! Likely duplicate contacts: why two contacts may be one person, how
//! sure that is, and phone numbers in E.164. Pure; the candidates come
//! from `store::duplicates`.

use std::str::FromStr;

/// Why two contacts may be the same person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The same address once provider rules are applied.
    SameEmail,
    /// The same phone number in E.164.
    SamePhone,
    /// Similar names at the same company.
    SimilarNameSameCompany,
    /// Similar names under the same (not freemail) email domain.
    SimilarNameSameDomain,
}

impl Reason {
    /// The name the store uses for it.
    pub fn name(self) -> &'static str {
        match self {
            Reason::SameEmail => "email",
            Reason::SamePhone => "phone",
            Reason::SimilarNameSameCompany => "company",
            Reason::SimilarNameSameDomain => "domain",
        }
    }

    /// The reason the store named `name`.
    pub fn from_name(name: &str) -> Option<Reason> {
        [Reason::SameEmail, Reason::SamePhone, Reason::SimilarNameSameCompany, Reason::SimilarNameSameDomain]
            .into_iter()
            .find(|reason| reason.name() == name)
    }
}

/// How similar (pg_trgm similarity of the lower-cased, accent-folded full
/// names) two names must be to count as "similar".
pub const NAME_SIMILARITY: f64 = 0.6;

/// How sure one reason makes us, 0-1: an email or a phone alone is strong
/// evidence; a similar name counts more the more similar it is, and more
/// at one company than under one domain.
pub fn score(reason: Reason, name_similarity: f64) -> f64 {
    let similarity = name_similarity.clamp(0.0, 1.0);
    match reason {
        Reason::SameEmail => 0.95,
        Reason::SamePhone => 0.8,
        Reason::SimilarNameSameCompany => 0.5 + 0.4 * similarity,
        Reason::SimilarNameSameDomain => 0.4 + 0.4 * similarity,
    }
}

/// Several independent reasons together: 1 − Π(1 − score).
pub fn combined(scores: impl IntoIterator<Item = f64>) -> f64 {
    1.0 - scores.into_iter().map(|score| 1.0 - score.clamp(0.0, 1.0)).product::<f64>()
}

/// Email domains shared by unrelated people: a shared one says nothing.
pub const FREEMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "googlemail.com",
    "yahoo.com",
    "hotmail.com",
    "outlook.com",
    "live.com",
    "icloud.com",
    "me.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
    "mail.com",
    "yandex.ru",
    "qq.com",
    "163.com",
];

/// The region phone numbers without a country code belong to, e.g. `US`
/// (`CONTACTS_PHONE_REGION`; the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhoneRegion(phonenumber::country::Id);

impl Default for PhoneRegion {
    fn default() -> Self {
        PhoneRegion(phonenumber::country::Id::US)
    }
}

impl FromStr for PhoneRegion {
    type Err = String;

    fn from_str(code: &str) -> Result<Self, String> {
        PhoneRegion::parse(code)
    }
}

impl PhoneRegion {
    /// Parses an ISO 3166-1 alpha-2 code.
    pub fn parse(code: &str) -> Result<PhoneRegion, String> {
        phonenumber::country::Id::from_str(&code.trim().to_uppercase())
            .map(PhoneRegion)
            .map_err(|_| format!("{code:?} is not a two-letter region code such as US or DE"))
    }

    /// `raw` in E.164 (`+4930123456`), or `None` when it does not parse as
    /// a phone number (empty, too short, letters…).
    pub fn e164(self, raw: &str) -> Option<String> {
        if raw.trim().is_empty() {
            return None;
        }
        let number = phonenumber::parse(Some(self.0), raw).ok()?;
        Some(phonenumber::format(&number).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_normalized_with_the_default_region() {
        let us = PhoneRegion::parse("us").unwrap();
        assert_eq!(us.e164("+1 (415) 555-2671").as_deref(), Some("+14155552671"));
        assert_eq!(us.e164("415.555.2671").as_deref(), Some("+14155552671"));
        assert_eq!(us.e164("+49 30 1234567").as_deref(), Some("+49301234567"));
        let de = PhoneRegion::parse("DE").unwrap();
        assert_eq!(de.e164("030 1234567").as_deref(), Some("+49301234567"));
        for raw in ["", "  ", "call me", "12"] {
            assert_eq!(us.e164(raw), None, "{raw:?}");
        }
        assert!(PhoneRegion::parse("Atlantis").is_err());
    }

    #[test]
    fn reasons_combine_to_more_certainty() {
        let email = score(Reason::SameEmail, 0.0);
        let name = score(Reason::SimilarNameSameCompany, 1.0);
        assert!((name - 0.9).abs() < 1e-9);
        assert!(score(Reason::SimilarNameSameDomain, 0.6) < score(Reason::SimilarNameSameCompany, 0.6));
        let both = combined([email, name]);
        assert!(both > email && both < 1.0, "{both}");
        assert_eq!(combined([]), 0.0);
        for reason in [
            Reason::SameEmail,
            Reason::SamePhone,
            Reason::SimilarNameSameCompany,
            Reason::SimilarNameSameDomain,
        ] {
            assert_eq!(Reason::from_name(reason.name()), Some(reason));
        }
    }
}
