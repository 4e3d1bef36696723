//! Exact decimal numbers for quantities, discounts and exchange rates.

use std::fmt;

use super::Violation;

/// A decimal number as an integer mantissa and a scale: the value is
/// `mantissa / 10^scale`. Parsed values are normalized (no trailing zeros
/// in the fraction), so equal values have equal representations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Decimal {
    pub(super) mantissa: i64,
    pub(super) scale: u8,
}

impl Decimal {
    /// Parses `-?[0-9]+(\.[0-9]+)?` with at most `max_scale` significant
    /// fraction digits (trailing zeros beyond them are fine: `1.50000`).
    /// No exponents, signs other than a leading `-`, spaces or separators.
    fn parse(field: &str, raw: &str, max_scale: u8) -> Result<Decimal, Violation> {
        if raw.is_empty() {
            return Err(Violation::new(field, "is required: a decimal number such as 2.5"));
        }
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(whole) || (digits.contains('.') && !all_digits(fraction)) {
            return Err(Violation::new(
                field,
                format!(
                    "{raw:?} is not a decimal number: write digits with an optional fraction, e.g. 2.5 (no exponent, no grouping)"
                ),
            ));
        }
        let fraction = fraction.trim_end_matches('0');
        if fraction.len() > usize::from(max_scale) {
            return Err(Violation::new(
                field,
                format!("{raw:?} has more than {max_scale} digits after the decimal point"),
            ));
        }
        let too_large = || Violation::new(field, format!("{raw:?} is too large"));
        let mut mantissa: i64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(digit - b'0')))
                .ok_or_else(too_large)?;
        }
        let scale = u8::try_from(fraction.len()).map_err(|_| too_large())?;
        Ok(Decimal { mantissa: if negative { -mantissa } else { mantissa }, scale })
    }

    /// The mantissa at scale `scale` (at least `self.scale`), widened so it
    /// cannot overflow.
    pub(super) fn mantissa_at(self, scale: u8) -> i128 {
        i128::from(self.mantissa) * 10_i128.pow(u32::from(scale.saturating_sub(self.scale)))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let magnitude = self.mantissa.unsigned_abs();
        if self.scale == 0 {
            return write!(f, "{sign}{magnitude}");
        }
        let unit = 10_u64.pow(u32::from(self.scale));
        let width = usize::from(self.scale);
        write!(f, "{sign}{}.{:0width$}", magnitude / unit, magnitude % unit)
    }
}

/// A quantity of a product on a line: greater than 0, at most
/// [`Quantity::MAX_SCALE`] fraction digits (`3`, `1.5`, `0.125`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quantity(pub(super) Decimal);

impl Quantity {
    /// The most fraction digits a quantity may have.
    pub const MAX_SCALE: u8 = 4;

    /// Parses a decimal string; `field` names the input in the violation.
    pub fn parse(field: &str, raw: &str) -> Result<Quantity, Violation> {
        let decimal = Decimal::parse(field, raw, Quantity::MAX_SCALE)?;
        if decimal.mantissa <= 0 {
            return Err(Violation::new(field, "must be greater than 0"));
        }
        Ok(Quantity(decimal))
    }
}

/// A percentage from 0 to 100 inclusive with at most
/// [`Percent::MAX_SCALE`] fraction digits: line discounts (`12.5`) and
/// deal probabilities (whole numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Percent(pub(super) Decimal);

impl Percent {
    /// The most fraction digits a percentage may have.
    pub const MAX_SCALE: u8 = 4;

    /// Parses a decimal string; `field` names the input in the violation.
    pub fn parse(field: &str, raw: &str) -> Result<Percent, Violation> {
        Percent::checked(field, Decimal::parse(field, raw, Percent::MAX_SCALE)?)
    }

    /// A whole percentage such as a deal's probability (0–100).
    pub fn whole(field: &str, percent: i64) -> Result<Percent, Violation> {
        Percent::checked(field, Decimal { mantissa: percent, scale: 0 })
    }

    fn checked(field: &str, decimal: Decimal) -> Result<Percent, Violation> {
        let hundred = 100 * 10_i128.pow(u32::from(decimal.scale));
        if decimal.mantissa < 0 || i128::from(decimal.mantissa) > hundred {
            return Err(Violation::new(field, "must be between 0 and 100"));
        }
        Ok(Percent(decimal))
    }
}

/// An exchange rate: how many units of one currency buy one unit of
/// another (`1.0842` USD per EUR). Greater than 0, at most
/// [`Rate::MAX_SCALE`] fraction digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate(pub(super) Decimal);

impl Rate {
    /// The most fraction digits a rate may have.
    pub const MAX_SCALE: u8 = 10;

    /// Parses a decimal string; `field` names the input in the violation.
    pub fn parse(field: &str, raw: &str) -> Result<Rate, Violation> {
        let decimal = Decimal::parse(field, raw, Rate::MAX_SCALE)?;
        if decimal.mantissa <= 0 {
            return Err(Violation::new(field, "must be greater than 0"));
        }
        Ok(Rate(decimal))
    }
}

impl fmt::Display for Quantity {
    /// The canonical form: no trailing zeros, no exponent (`1.5`, `3`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Percent {
    /// The canonical form: no trailing zeros, no exponent (`12.5`, `100`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for Rate {
    /// The canonical form: no trailing zeros, no exponent (`1.0842`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity(raw: &str) -> Result<String, String> {
        Quantity::parse("line.quantity", raw).map(|q| q.to_string()).map_err(|v| v.description)
    }

    fn percent(raw: &str) -> Result<String, String> {
        Percent::parse("line.discount_percent", raw).map(|p| p.to_string()).map_err(|v| v.description)
    }

    fn rate(raw: &str) -> Result<String, String> {
        Rate::parse("rate", raw).map(|r| r.to_string()).map_err(|v| v.description)
    }

    #[test]
    fn decimals_print_back_canonically() {
        assert_eq!(quantity("3"), Ok("3".into()));
        assert_eq!(quantity("1.5"), Ok("1.5".into()));
        assert_eq!(quantity("0.125"), Ok("0.125".into()));
        assert_eq!(quantity("1.50000"), Ok("1.5".into()));
        assert_eq!(quantity("007.0"), Ok("7".into()));
        assert_eq!(quantity("0.0001"), Ok("0.0001".into()));
        assert_eq!(percent("0"), Ok("0".into()));
        assert_eq!(percent("12.5"), Ok("12.5".into()));
        assert_eq!(percent("100.0000"), Ok("100".into()));
        assert_eq!(rate("1.0842"), Ok("1.0842".into()));
        assert_eq!(rate("0.0000000001"), Ok("0.0000000001".into()));
        assert_eq!(rate("922337203.6854775807"), Ok("922337203.6854775807".into()));
        assert_eq!(Quantity::parse("q", "1.5"), Quantity::parse("q", "1.500"));
        assert_eq!(Decimal::parse("d", "-0.05", 4).map(|d| d.to_string()), Ok("-0.05".into()));
    }

    #[test]
    fn quantities_are_positive_with_four_fraction_digits() {
        let not_a_number = |raw: &str| {
            format!(
                "{raw:?} is not a decimal number: write digits with an optional fraction, e.g. 2.5 (no exponent, no grouping)"
            )
        };
        assert_eq!(quantity("0"), Err("must be greater than 0".into()));
        assert_eq!(quantity("0.0000"), Err("must be greater than 0".into()));
        assert_eq!(quantity("-1"), Err("must be greater than 0".into()));
        assert_eq!(
            quantity("1.23456"),
            Err(r#""1.23456" has more than 4 digits after the decimal point"#.into())
        );
        assert_eq!(quantity("1e3"), Err(not_a_number("1e3")));
        assert_eq!(quantity(""), Err("is required: a decimal number such as 2.5".into()));
        for bad in ["+1", ".5", "1.", "1,5", "1 000", " 1", "1.2.3", "--1", "-", "NaN", "inf", "１"] {
            assert_eq!(quantity(bad), Err(not_a_number(bad)), "{bad:?}");
        }
        assert_eq!(quantity("92233720368547758.08"), Err(r#""92233720368547758.08" is too large"#.into()));
    }

    #[test]
    fn percents_are_zero_to_hundred() {
        assert_eq!(percent("100.5"), Err("must be between 0 and 100".into()));
        assert_eq!(percent("100.0001"), Err("must be between 0 and 100".into()));
        assert_eq!(percent("-0.5"), Err("must be between 0 and 100".into()));
        assert_eq!(
            percent("12.34567"),
            Err(r#""12.34567" has more than 4 digits after the decimal point"#.into())
        );
        assert_eq!(Percent::whole("deal.probability", 40).map(|p| p.to_string()), Ok("40".into()));
        assert_eq!(Percent::whole("deal.probability", 40), Percent::parse("p", "40.0"));
        let refused = Percent::whole("deal.probability", 101).unwrap_err();
        assert_eq!(refused, Violation::new("deal.probability", "must be between 0 and 100"));
        assert!(Percent::whole("deal.probability", -1).is_err());
    }

    #[test]
    fn rates_are_positive_with_ten_fraction_digits() {
        assert_eq!(rate("0"), Err("must be greater than 0".into()));
        assert_eq!(rate("-1.08"), Err("must be greater than 0".into()));
        assert_eq!(
            rate("0.00000000001"),
            Err(r#""0.00000000001" has more than 10 digits after the decimal point"#.into())
        );
        assert!(rate("1.08e2").is_err());
    }
}
