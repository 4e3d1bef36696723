//! `Money`: a currency and an integer number of its minor units.

use std::fmt;

use rapport_proto::common::v1::Money as ProtoMoney;

use super::{Currency, MoneyError, Violation};

/// An amount of money: a [`Currency`] and a signed count of its minor units
/// (cents for EUR, yen for JPY, fils for KWD). Never a float. Negative
/// amounts are credits and refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    currency: Currency,
    minor_units: i64,
}

impl Money {
    /// `minor_units` of `currency`.
    pub fn new(currency: Currency, minor_units: i64) -> Money {
        Money { currency, minor_units }
    }

    /// Nothing, in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money::new(currency, 0)
    }

    /// Parses an amount from its two wire fields; `field` is the path of the
    /// money field (e.g. `deal.amount`), and a bad code is reported at
    /// `<field>.currency_code`.
    pub fn parse(field: &str, currency_code: &str, minor_units: i64) -> Result<Money, Violation> {
        let currency = Currency::parse(&format!("{field}.currency_code"), currency_code)?;
        Ok(Money::new(currency, minor_units))
    }

    /// Parses the protobuf message; `field` as for [`Money::parse`].
    pub fn from_proto(field: &str, proto: &ProtoMoney) -> Result<Money, Violation> {
        Money::parse(field, &proto.currency_code, proto.minor_units)
    }

    /// The protobuf message.
    pub fn to_proto(self) -> ProtoMoney {
        ProtoMoney { currency_code: self.currency.code().to_owned(), minor_units: self.minor_units }
    }

    /// The currency.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The amount in minor units of [`Money::currency`].
    pub fn minor_units(self) -> i64 {
        self.minor_units
    }

    /// `self + other`, both in the same currency.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let sum = self.minor_units.checked_add(other.minor_units).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(currency, sum))
    }

    /// `self - other`, both in the same currency.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        let difference = self.minor_units.checked_sub(other.minor_units).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(currency, difference))
    }

    /// The total of `amounts`, every one in `currency` (zero when there are
    /// none). Fails on an amount in another currency, or when the total
    /// does not fit in `i64` (intermediate totals may: `[MAX, 1, -1]` is
    /// `MAX`).
    pub fn sum(currency: Currency, amounts: impl IntoIterator<Item = Money>) -> Result<Money, MoneyError> {
        let mut total: i128 = 0;
        for amount in amounts {
            if amount.currency != currency {
                return Err(MoneyError::CurrencyMismatch { left: currency, right: amount.currency });
            }
            total = total.checked_add(i128::from(amount.minor_units)).ok_or(MoneyError::Overflow)?;
        }
        let total = i64::try_from(total).map_err(|_| MoneyError::Overflow)?;
        Ok(Money::new(currency, total))
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch { left: self.currency, right: other.currency })
        }
    }
}

impl From<Money> for ProtoMoney {
    fn from(money: Money) -> ProtoMoney {
        money.to_proto()
    }
}

impl fmt::Display for Money {
    /// The amount with all of its currency's decimals, then the code:
    /// `12.34 EUR`, `-0.05 EUR`, `1234 JPY`, `1.234 KWD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.minor_units < 0 { "-" } else { "" };
        let magnitude = self.minor_units.unsigned_abs();
        let exponent = self.currency.exponent();
        if exponent == 0 {
            return write!(f, "{sign}{magnitude} {}", self.currency);
        }
        let unit = 10_u64.pow(u32::from(exponent));
        let width = usize::from(exponent);
        write!(f, "{sign}{}.{:0width$} {}", magnitude / unit, magnitude % unit, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(code: &str, minor_units: i64) -> Money {
        Money::parse("m", code, minor_units).unwrap()
    }

    #[test]
    fn display_shows_every_minor_digit() {
        assert_eq!(money("EUR", 1234).to_string(), "12.34 EUR");
        assert_eq!(money("EUR", 1230).to_string(), "12.30 EUR");
        assert_eq!(money("EUR", 5).to_string(), "0.05 EUR");
        assert_eq!(money("EUR", -5).to_string(), "-0.05 EUR");
        assert_eq!(money("EUR", -1234).to_string(), "-12.34 EUR");
        assert_eq!(money("EUR", 0).to_string(), "0.00 EUR");
        assert_eq!(money("JPY", 1234).to_string(), "1234 JPY");
        assert_eq!(money("JPY", -1234).to_string(), "-1234 JPY");
        assert_eq!(money("KWD", 1234).to_string(), "1.234 KWD");
        assert_eq!(money("BHD", -1).to_string(), "-0.001 BHD");
        assert_eq!(money("CLF", 12345).to_string(), "1.2345 CLF");
        assert_eq!(money("EUR", i64::MIN).to_string(), "-92233720368547758.08 EUR");
        assert_eq!(money("EUR", i64::MAX).to_string(), "92233720368547758.07 EUR");
    }

    #[test]
    fn parse_names_the_currency_field() {
        let refused = Money::parse("deal.amount", "EUX", 100).unwrap_err();
        assert_eq!(refused.field, "deal.amount.currency_code");
        assert_eq!(
            refused.description,
            r#""EUX" is not an active ISO 4217 currency code such as EUR or USD"#
        );
        let refused =
            Money::from_proto("deal.amount", &ProtoMoney { currency_code: "eur".into(), minor_units: 1 });
        assert_eq!(refused.unwrap_err().field, "deal.amount.currency_code");
    }

    #[test]
    fn proto_round_trips() {
        let proto = ProtoMoney { currency_code: "KWD".into(), minor_units: -1234 };
        let parsed = Money::from_proto("deal.amount", &proto).unwrap();
        assert_eq!(parsed.currency().exponent(), 3);
        assert_eq!(parsed.minor_units(), -1234);
        assert_eq!(parsed.to_proto(), proto);
        assert_eq!(ProtoMoney::from(parsed), proto);
    }

    #[test]
    fn add_sub_and_sum_stay_in_one_currency() {
        let eur = money("EUR", 0).currency();
        assert_eq!(money("EUR", 1999).checked_add(money("EUR", 1)), Ok(money("EUR", 2000)));
        assert_eq!(money("EUR", 1).checked_sub(money("EUR", 2)), Ok(money("EUR", -1)));
        assert_eq!(
            money("EUR", 1).checked_add(money("USD", 1)),
            Err(MoneyError::CurrencyMismatch { left: eur, right: money("USD", 0).currency() })
        );
        assert_eq!(
            money("EUR", 1).checked_add(money("USD", 1)).unwrap_err().to_string(),
            "cannot combine EUR with USD: convert one of them first"
        );
        assert!(matches!(
            money("JPY", 1).checked_sub(money("EUR", 1)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
        assert_eq!(Money::sum(eur, []), Ok(Money::zero(eur)));
        assert_eq!(
            Money::sum(eur, [money("EUR", 1), money("EUR", 2), money("EUR", -4)]),
            Ok(money("EUR", -1))
        );
        assert!(matches!(
            Money::sum(eur, [money("EUR", 1), money("GBP", 2)]),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn overflow_is_refused() {
        assert_eq!(money("EUR", i64::MAX).checked_add(money("EUR", 1)), Err(MoneyError::Overflow));
        assert_eq!(money("EUR", i64::MIN).checked_sub(money("EUR", 1)), Err(MoneyError::Overflow));
        assert_eq!(money("EUR", i64::MAX).checked_add(money("EUR", 0)), Ok(money("EUR", i64::MAX)));
        let eur = money("EUR", 0).currency();
        assert_eq!(Money::sum(eur, [money("EUR", i64::MAX), money("EUR", 1)]), Err(MoneyError::Overflow));
        assert_eq!(Money::sum(eur, [money("EUR", i64::MIN), money("EUR", -1)]), Err(MoneyError::Overflow));
        let back_in_range = [money("EUR", i64::MAX), money("EUR", 1), money("EUR", -1)];
        assert_eq!(Money::sum(eur, back_in_range), Ok(money("EUR", i64::MAX)));
    }
}
