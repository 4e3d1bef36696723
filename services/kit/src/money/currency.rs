//! ISO 4217 currencies and their minor-unit exponents.

use std::fmt;

use super::Violation;

/// An active ISO 4217 currency: its alphabetic code and how many decimal
/// digits its minor unit has (2 for EUR cents, 0 for JPY, 3 for KWD fils).
///
/// Only [`Currency::parse`] makes one, so a `Currency` is always on the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

impl Currency {
    /// Parses an ISO 4217 alphabetic code, exactly as listed (upper case, no
    /// spaces); `field` names the input in the violation.
    pub fn parse(field: &str, code: &str) -> Result<Currency, Violation> {
        if code.is_empty() {
            return Err(Violation::new(field, "is required: an ISO 4217 currency code such as EUR or USD"));
        }
        if let Some(currency) = Currency::lookup(code) {
            return Ok(currency);
        }
        let upper = code.to_ascii_uppercase();
        if upper != code && Currency::lookup(&upper).is_some() {
            return Err(Violation::new(field, format!("{code:?} must be written in upper case: {upper:?}")));
        }
        Err(Violation::new(
            field,
            format!("{code:?} is not an active ISO 4217 currency code such as EUR or USD"),
        ))
    }

    fn lookup(code: &str) -> Option<Currency> {
        let index = ISO_4217.binary_search_by(|(listed, _)| (*listed).cmp(code)).ok()?;
        let (code, exponent) = ISO_4217[index];
        Some(Currency { code, exponent })
    }

    /// The alphabetic code, e.g. `EUR`.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// The number of decimal digits of the minor unit: one major unit is
    /// `10^exponent` minor units.
    pub fn exponent(self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// ISO 4217 list one as published on 2026-01-01 (SIX, the maintenance
/// agency), sorted by code: every code with a minor unit, including the
/// fund codes (BOV, CHE, CHW, CLF, COU, MXV, USN, UYI, UYW). Left out are
/// the entries whose minor unit is "N.A." — precious metals (XAU, XAG, XPD,
/// XPT), bond-market units (XBA–XBD), XDR, XSU, XUA, and XTS/XXX — because
/// an amount in minor units means nothing for them. Withdrawn codes (BGN,
/// HRK, ANG, CUC, SLL, ZWL, …) are refused like any unknown code.
const ISO_4217: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BOV", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHE", 2),
    ("CHF", 2),
    ("CHW", 2),
    ("CLF", 4),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("COU", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MXV", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("USN", 2),
    ("UYI", 0),
    ("UYU", 2),
    ("UYW", 4),
    ("UZS", 2),
    ("VED", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAD", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XCG", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn check(code: &str) -> Result<(String, u8), String> {
        Currency::parse("deal.amount.currency_code", code)
            .map(|currency| (currency.to_string(), currency.exponent()))
            .map_err(|violation| {
                assert_eq!(violation.field, "deal.amount.currency_code");
                violation.description
            })
    }

    #[test]
    fn the_list_is_sorted_unique_and_upper_case() {
        assert!(ISO_4217.windows(2).all(|pair| pair[0].0 < pair[1].0), "unsorted or duplicate");
        assert!(ISO_4217.iter().all(|(code, exponent)| {
            code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) && *exponent <= 4
        }));
        assert_eq!(ISO_4217.len(), 165);
    }

    #[test]
    fn exponents_follow_iso_4217() {
        let with = |exponent: u8| -> Vec<&str> {
            ISO_4217.iter().filter(|(_, e)| *e == exponent).map(|(code, _)| *code).collect()
        };
        assert_eq!(
            with(0),
            [
                "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                "VUV", "XAF", "XOF", "XPF"
            ]
        );
        assert_eq!(with(3), ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"]);
        assert_eq!(with(4), ["CLF", "UYW"]);
        assert_eq!(check("EUR"), Ok(("EUR".into(), 2)));
        assert_eq!(check("JPY"), Ok(("JPY".into(), 0)));
        assert_eq!(check("KWD"), Ok(("KWD".into(), 3)));
    }

    #[test]
    fn unknown_lower_case_and_empty_codes_are_refused() {
        assert_eq!(
            check("EUX").unwrap_err(),
            r#""EUX" is not an active ISO 4217 currency code such as EUR or USD"#
        );
        assert_eq!(check("eur").unwrap_err(), r#""eur" must be written in upper case: "EUR""#);
        assert_eq!(check("").unwrap_err(), "is required: an ISO 4217 currency code such as EUR or USD");
        for bad in [" EUR", "EURO", "EU", "XAU", "XXX", "BGN", "HRK", "€"] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }
}
