//! Exact money arithmetic: currencies, amounts, quantities, percentages,
//! exchange rates, and the one rounding rule.
//!
//! **Representation.** Money is never a float. An amount ([`Money`]) is an
//! ISO 4217 [`Currency`] and a signed `i64` count of its minor units (1234
//! EUR cents = 12.34 EUR; JPY has no minor unit, KWD has three decimals).
//! Quantities, discount percentages and exchange rates ([`Quantity`],
//! [`Percent`], [`Rate`]) are exact decimals, parsed from strings such as
//! `"1.5"` into an integer mantissa and a scale (no exponent notation) and
//! printed back canonically (trailing zeros trimmed). Each type checks its
//! range once, in `parse`; past the API edge only parsed values exist.
//!
//! **Rounding: half away from zero, once, at the end.** Whenever a result
//! has more decimals than its currency's minor unit, it is rounded to the
//! nearest minor unit, and an exact half goes away from zero: 29.985 EUR →
//! 29.99 EUR, −29.985 EUR → −29.99 EUR, 0.5 JPY → 1 JPY. This is commercial
//! rounding — the rule customers, price lists and accountants apply by hand
//! and the one the EU prescribes for currency conversion (Regulation
//! 1103/97, art. 5: an exact half is rounded up) — so an invoice line the
//! customer recomputes on a calculator gives the same cent. It is symmetric,
//! so a credit note is exactly the negation of its invoice. Banker's
//! rounding (half to even) only pays off when many rounded values are
//! summed and the bias matters; here sums are of amounts already in minor
//! units and are exact, and each computed amount is rounded once.
//! Every operation multiplies the exact inputs in `i128` and rounds only
//! the final value (`1.5 × 19.99 EUR × 50 %` is 14.9925 → 14.99 EUR, where
//! rounding each step would give 15.00 EUR). The one helper that rounds is
//! private to this module: [`line_amount`], [`percent_of`], [`convert`],
//! [`convert_inverse`] and [`basis_points`] all go through it, and a new
//! computation belongs here, not in a service.
//!
//! **Overflow** is an error, never a wrap or a clamp: additions and the
//! final `i64` of every operation are checked ([`MoneyError::Overflow`]).
//! Amounts in different currencies are never combined
//! ([`MoneyError::CurrencyMismatch`]); [`convert`] one of them first.
//!
//! Bad input is reported as a [`Violation`] naming the field path the
//! client wrote (`deal.amount.currency_code`), the same shape as the
//! services' own field violations.

mod amount;
mod currency;
mod decimal;

pub use amount::Money;
pub use currency::Currency;
pub use decimal::{Percent, Quantity, Rate};

pub use crate::fields::Violation;

/// Why an amount could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("cannot combine {left} with {right}: convert one of them first")]
    CurrencyMismatch {
        /// The currency of the left operand (or of the expected total).
        left: Currency,
        /// The currency of the operand that differs.
        right: Currency,
    },
    /// The result does not fit in `i64` minor units.
    #[error("amount out of range: the result does not fit in 64-bit minor units")]
    Overflow,
}

/// The amount of an order line: `unit_price × quantity × (1 − discount/100)`
/// in the unit price's currency, rounded once at the end (half away from
/// zero).
pub fn line_amount(
    unit_price: Money,
    quantity: Quantity,
    discount_percent: Percent,
) -> Result<Money, MoneyError> {
    // In integers: price (minor units) × quantity × 10^4 × (100 − discount) × 10^4, over 10^(4 + 2 + 4).
    let quantity = quantity.0.mantissa_at(Quantity::MAX_SCALE);
    let remaining =
        100 * 10_i128.pow(u32::from(Percent::MAX_SCALE)) - discount_percent.0.mantissa_at(Percent::MAX_SCALE);
    let numerator = i128::from(unit_price.minor_units())
        .checked_mul(quantity)
        .and_then(|n| n.checked_mul(remaining))
        .ok_or(MoneyError::Overflow)?;
    let scale = u32::from(Quantity::MAX_SCALE) + 2 + u32::from(Percent::MAX_SCALE);
    Ok(Money::new(unit_price.currency(), round_scaled(numerator, scale)?))
}

/// `percent` of `amount` (e.g. a deal amount weighted by its probability),
/// rounded half away from zero. Cannot overflow: the result is never larger
/// than `amount`.
pub fn percent_of(amount: Money, percent: Percent) -> Money {
    let numerator = i128::from(amount.minor_units()) * i128::from(percent.0.mantissa);
    let scale = 2 + u32::from(percent.0.scale);
    // `unwrap_or` is unreachable: |amount × percent / 100| ≤ |amount| for 0 ≤ percent ≤ 100.
    Money::new(amount.currency(), round_scaled(numerator, scale).unwrap_or(amount.minor_units()))
}

/// `amount` in currency `to`, where `rate` is how many units of `to` one
/// unit of `amount`'s currency buys (1 EUR = 1.0842 USD: rate `1.0842`
/// from EUR to USD). Exact across minor-unit exponents:
/// `minor_to = round(minor_from × rate × 10^(exp_to − exp_from))`, rounded
/// once, half away from zero.
pub fn convert(amount: Money, rate: Rate, to: Currency) -> Result<Money, MoneyError> {
    let numerator = i128::from(amount.minor_units())
        .checked_mul(i128::from(rate.0.mantissa))
        .and_then(|n| n.checked_mul(10_i128.pow(u32::from(to.exponent()))))
        .ok_or(MoneyError::Overflow)?;
    let scale = u32::from(rate.0.scale) + u32::from(amount.currency().exponent());
    Ok(Money::new(to, round_scaled(numerator, scale)?))
}

/// `amount` in currency `to` where only the opposite rate is known:
/// `rate` is how many units of `amount`'s currency one unit of `to` buys
/// (1 EUR = 1.0842 USD: converting USD to EUR with rate `1.0842`). Exact:
/// `minor_to = round(minor_from × 10^exp_to / (rate × 10^exp_from))`, one
/// rational number rounded once, half away from zero (never `1/rate`
/// rounded first).
pub fn convert_inverse(amount: Money, rate: Rate, to: Currency) -> Result<Money, MoneyError> {
    let numerator = i128::from(amount.minor_units())
        .checked_mul(10_i128.pow(u32::from(rate.0.scale) + u32::from(to.exponent())))
        .ok_or(MoneyError::Overflow)?;
    let denominator = i128::from(rate.0.mantissa) * 10_i128.pow(u32::from(amount.currency().exponent()));
    Ok(Money::new(to, round_ratio(numerator, denominator)?))
}

/// The exact factor [`convert`] (or, with `inverse`, [`convert_inverse`])
/// multiplies minor units of `from` by to get minor units of `to`, as a
/// reduced fraction `(numerator, denominator)`, both positive: converting
/// `m` is `m × numerator / denominator` rounded once, half away from zero.
/// For code that converts many amounts elsewhere (e.g. in SQL) and must
/// agree with this module to the minor unit.
pub fn conversion_factor(from: Currency, to: Currency, rate: Rate, inverse: bool) -> (i128, i128) {
    let rate_scale = 10_i128.pow(u32::from(rate.0.scale));
    let pow_from = 10_i128.pow(u32::from(from.exponent()));
    let pow_to = 10_i128.pow(u32::from(to.exponent()));
    let mantissa = i128::from(rate.0.mantissa);
    let (numerator, denominator) = if inverse {
        (rate_scale * pow_to, mantissa * pow_from)
    } else {
        (mantissa * pow_to, rate_scale * pow_from)
    };
    let divisor = gcd(numerator, denominator);
    (numerator / divisor, denominator / divisor)
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs().max(1)
}

/// `part / whole` in basis points (10000 = 100 %), rounded half away from
/// zero, e.g. quota attainment; `None` when `whole` is zero or the
/// currencies differ.
pub fn basis_points(part: Money, whole: Money) -> Option<i64> {
    if whole.minor_units() == 0 || part.currency() != whole.currency() {
        return None;
    }
    round_ratio(i128::from(part.minor_units()) * 10_000, i128::from(whole.minor_units())).ok()
}

/// The rounding itself, for any non-zero denominator:
/// `numerator / denominator` to the nearest integer, an exact half away
/// from zero.
fn round_ratio(numerator: i128, denominator: i128) -> Result<i64, MoneyError> {
    if denominator == 0 {
        return Err(MoneyError::Overflow);
    }
    let quotient = numerator / denominator;
    let remainder = numerator % denominator;
    let rounded = if remainder.unsigned_abs() * 2 >= denominator.unsigned_abs() {
        quotient + (numerator.signum() * denominator.signum())
    } else {
        quotient
    };
    i64::try_from(rounded).map_err(|_| MoneyError::Overflow)
}

/// The one rounding rule: `numerator / 10^scale` to the nearest integer, an
/// exact half away from zero; [`MoneyError::Overflow`] when that is not an
/// `i64`. (A numerator that overflowed `i128` before this point always
/// means an overflowing result: every scale used here is at most 14, and
/// `i128::MAX / 10^14` is far above `i64::MAX`.)
fn round_scaled(numerator: i128, scale: u32) -> Result<i64, MoneyError> {
    round_ratio(numerator, 10_i128.checked_pow(scale).ok_or(MoneyError::Overflow)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn currency(code: &str) -> Currency {
        Currency::parse("currency", code).unwrap()
    }

    fn money(code: &str, minor_units: i64) -> Money {
        Money::new(currency(code), minor_units)
    }

    /// `line_amount` of a unit price in `code`, printed.
    fn line(code: &str, unit_minor: i64, quantity: &str, discount: &str) -> Result<String, MoneyError> {
        let quantity = Quantity::parse("quantity", quantity).unwrap();
        let discount = Percent::parse("discount_percent", discount).unwrap();
        line_amount(money(code, unit_minor), quantity, discount).map(|amount| amount.to_string())
    }

    /// `convert` of an amount in `from` at `rate` to `to`, printed.
    fn conversion(from: &str, minor: i64, rate: &str, to: &str) -> Result<String, MoneyError> {
        let rate = Rate::parse("rate", rate).unwrap();
        convert(money(from, minor), rate, currency(to)).map(|amount| amount.to_string())
    }

    fn weighted(code: &str, minor: i64, percent: &str) -> String {
        percent_of(money(code, minor), Percent::parse("probability", percent).unwrap()).to_string()
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(round_scaled(25, 1), Ok(3));
        assert_eq!(round_scaled(-25, 1), Ok(-3));
        assert_eq!(round_scaled(24, 1), Ok(2));
        assert_eq!(round_scaled(-24, 1), Ok(-2));
        assert_eq!(round_scaled(26, 1), Ok(3));
        assert_eq!(round_scaled(-26, 1), Ok(-3));
        assert_eq!(round_scaled(5, 1), Ok(1));
        assert_eq!(round_scaled(-5, 1), Ok(-1));
        assert_eq!(round_scaled(4, 1), Ok(0));
        assert_eq!(round_scaled(0, 10), Ok(0));
        assert_eq!(round_scaled(7, 0), Ok(7));
        assert_eq!(round_scaled(i128::from(i64::MAX) * 10 + 4, 1), Ok(i64::MAX));
        assert_eq!(round_scaled(i128::from(i64::MAX) * 10 + 5, 1), Err(MoneyError::Overflow));
        assert_eq!(round_scaled(i128::from(i64::MIN) * 10 - 4, 1), Ok(i64::MIN));
        assert_eq!(round_scaled(i128::from(i64::MIN) * 10 - 5, 1), Err(MoneyError::Overflow));
    }

    #[test]
    fn line_amounts_round_once_at_the_end() {
        // 1.5 × 19.99 = 29.985 → 29.99; negative prices (credits) mirror.
        assert_eq!(line("EUR", 1999, "1.5", "0"), Ok("29.99 EUR".into()));
        assert_eq!(line("EUR", -1999, "1.5", "0"), Ok("-29.99 EUR".into()));
        // 3 × 33.33 = 99.99, less 12.5 % = 87.49125 → 87.49.
        assert_eq!(line("EUR", 3333, "3", "12.5"), Ok("87.49 EUR".into()));
        // 1.5 × 19.99 × 50 % = 14.9925 → 14.99 (per-step rounding would say 15.00).
        assert_eq!(line("EUR", 1999, "1.5", "50"), Ok("14.99 EUR".into()));
        // Exact halves: 0.25 × 0.10 = 0.025, 0.01 × 50 % = 0.005.
        assert_eq!(line("EUR", 10, "0.25", "0"), Ok("0.03 EUR".into()));
        assert_eq!(line("EUR", -10, "0.25", "0"), Ok("-0.03 EUR".into()));
        assert_eq!(line("EUR", 1, "1", "50"), Ok("0.01 EUR".into()));
        assert_eq!(line("EUR", -1, "1", "50"), Ok("-0.01 EUR".into()));
        assert_eq!(line("EUR", 1, "1", "50.0001"), Ok("0.00 EUR".into()));
        // 0 % and 100 % discounts.
        assert_eq!(line("EUR", 1999, "2", "0"), Ok("39.98 EUR".into()));
        assert_eq!(line("EUR", 1999, "2", "100"), Ok("0.00 EUR".into()));
        assert_eq!(line("EUR", i64::MAX, "1000", "100"), Ok("0.00 EUR".into()));
        // Zero- and three-decimal currencies: 3 × 333 JPY − 10 % = 899.1 → 899;
        // 2.5 × 1.001 KWD = 2.5025 → 2.503; 0.125 × 1.000 BHD = 0.125 exactly.
        assert_eq!(line("JPY", 333, "3", "10"), Ok("899 JPY".into()));
        assert_eq!(line("JPY", 5, "0.5", "0"), Ok("3 JPY".into()));
        assert_eq!(line("KWD", 1001, "2.5", "0"), Ok("2.503 KWD".into()));
        assert_eq!(line("KWD", -1001, "2.5", "0"), Ok("-2.503 KWD".into()));
        assert_eq!(line("BHD", 1000, "0.125", "0"), Ok("0.125 BHD".into()));
        assert_eq!(line("BHD", 1, "0.0001", "0"), Ok("0.000 BHD".into()));
    }

    #[test]
    fn line_amounts_refuse_overflow() {
        assert_eq!(line("EUR", i64::MAX, "1", "0"), Ok("92233720368547758.07 EUR".into()));
        assert_eq!(line("EUR", i64::MIN, "1", "0"), Ok("-92233720368547758.08 EUR".into()));
        assert_eq!(line("EUR", i64::MAX, "2", "50"), Ok("92233720368547758.07 EUR".into()));
        assert_eq!(line("EUR", i64::MAX, "2", "0"), Err(MoneyError::Overflow));
        assert_eq!(line("EUR", i64::MIN, "1.0001", "0"), Err(MoneyError::Overflow));
        // The exact product leaves i128 too: still an overflow, not a wrap.
        assert_eq!(line("EUR", i64::MAX, "922337203685477.5807", "0"), Err(MoneyError::Overflow));
    }

    #[test]
    fn percent_of_weights_amounts() {
        assert_eq!(weighted("EUR", 100_000, "40"), "400.00 EUR");
        assert_eq!(weighted("EUR", 1999, "0"), "0.00 EUR");
        assert_eq!(weighted("EUR", 1999, "100"), "19.99 EUR");
        assert_eq!(weighted("EUR", 1999, "50"), "10.00 EUR"); // 9.995 → 10.00
        assert_eq!(weighted("EUR", -1999, "50"), "-10.00 EUR");
        assert_eq!(weighted("JPY", 333, "33"), "110 JPY"); // 109.89
        assert_eq!(weighted("KWD", 1001, "12.5"), "0.125 KWD"); // 125.125 fils
        assert_eq!(weighted("EUR", i64::MAX, "100"), "92233720368547758.07 EUR");
        assert_eq!(weighted("EUR", i64::MIN, "100"), "-92233720368547758.08 EUR");
        assert_eq!(weighted("EUR", i64::MIN, "50"), "-46116860184273879.04 EUR");
        let probability = Percent::whole("deal.probability", 25).unwrap();
        assert_eq!(percent_of(money("USD", 10), probability), money("USD", 3)); // 2.5 → 3
    }

    #[test]
    fn conversions_are_exact_across_exponents() {
        // 100.00 EUR × 1.0842 = 108.42 USD.
        assert_eq!(conversion("EUR", 10_000, "1.0842", "USD"), Ok("108.42 USD".into()));
        // 12.34 EUR × 162.35 = 2003.399 JPY → 2003.
        assert_eq!(conversion("EUR", 1234, "162.35", "JPY"), Ok("2003 JPY".into()));
        // 2003 JPY × 0.00616 = 12.33848 EUR → 12.34.
        assert_eq!(conversion("JPY", 2003, "0.00616", "EUR"), Ok("12.34 EUR".into()));
        // 1234 JPY × 0.00201 = 2.48034 KWD → 2.480.
        assert_eq!(conversion("JPY", 1234, "0.00201", "KWD"), Ok("2.480 KWD".into()));
        // 2.480 KWD × 497.5 = 1233.8 JPY → 1234.
        assert_eq!(conversion("KWD", 2480, "497.5", "JPY"), Ok("1234 JPY".into()));
        // 1.234 KWD × 2.7913 = 3.4444642 EUR → 3.44.
        assert_eq!(conversion("KWD", 1234, "2.7913", "EUR"), Ok("3.44 EUR".into()));
        // 3.44 EUR × 0.3582 = 1.232208 KWD → 1.232.
        assert_eq!(conversion("EUR", 344, "0.3582", "KWD"), Ok("1.232 KWD".into()));
        // Halves go away from zero: 1 JPY × 0.005 = 0.005 EUR → 0.01.
        assert_eq!(conversion("JPY", 1, "0.005", "EUR"), Ok("0.01 EUR".into()));
        assert_eq!(conversion("JPY", -1, "0.005", "EUR"), Ok("-0.01 EUR".into()));
        // Four decimals: 1.00 EUR × 0.0254 = 0.0254 CLF.
        assert_eq!(conversion("EUR", 100, "0.0254", "CLF"), Ok("0.0254 CLF".into()));
        assert_eq!(conversion("EUR", 0, "1.0842", "USD"), Ok("0.00 USD".into()));
    }

    #[test]
    fn conversions_refuse_overflow() {
        assert_eq!(conversion("EUR", i64::MAX, "1", "USD"), Ok("92233720368547758.07 USD".into()));
        assert_eq!(conversion("EUR", i64::MAX, "2", "USD"), Err(MoneyError::Overflow));
        assert_eq!(conversion("EUR", i64::MIN, "1.0000000001", "USD"), Err(MoneyError::Overflow));
        assert_eq!(conversion("KWD", i64::MAX, "1", "JPY"), Ok("9223372036854776 JPY".into()));
        assert_eq!(conversion("JPY", i64::MAX, "1", "KWD"), Err(MoneyError::Overflow));
        // The exact product leaves i128 too: still an overflow, not a wrap.
        assert_eq!(conversion("JPY", i64::MAX, "922337203.6854775807", "CLF"), Err(MoneyError::Overflow));
    }

    #[test]
    fn inverse_conversions_round_the_exact_quotient_once() {
        let inverse = |from: &str, minor: i64, rate: &str, to: &str| {
            let rate = Rate::parse("rate", rate).unwrap();
            convert_inverse(money(from, minor), rate, currency(to)).map(|amount| amount.to_string())
        };
        // 108.42 USD at 1 EUR = 1.0842 USD is 100.00 EUR exactly.
        assert_eq!(inverse("USD", 10_842, "1.0842", "EUR"), Ok("100.00 EUR".into()));
        // 1.00 USD / 3 = 0.3333… EUR → 0.33; 2.00 USD / 3 = 0.6666… → 0.67.
        assert_eq!(inverse("USD", 100, "3", "EUR"), Ok("0.33 EUR".into()));
        assert_eq!(inverse("USD", 200, "3", "EUR"), Ok("0.67 EUR".into()));
        // Exact halves away from zero: 0.01 USD / 2 = 0.005 EUR → 0.01.
        assert_eq!(inverse("USD", 1, "2", "EUR"), Ok("0.01 EUR".into()));
        assert_eq!(inverse("USD", -1, "2", "EUR"), Ok("-0.01 EUR".into()));
        // Across exponents: 1000 JPY at 1 EUR = 162.35 JPY is 6.1595… EUR → 6.16;
        // 1.000 KWD at 1 EUR = 0.3582 KWD is 2.79174… EUR → 2.79.
        assert_eq!(inverse("JPY", 1000, "162.35", "EUR"), Ok("6.16 EUR".into()));
        assert_eq!(inverse("KWD", 1000, "0.3582", "EUR"), Ok("2.79 EUR".into()));
        // 3.44 EUR at 1 KWD = 2.7913 EUR is 1.23240… KWD → 1.232.
        assert_eq!(inverse("EUR", 344, "2.7913", "KWD"), Ok("1.232 KWD".into()));
        // A quotient just below a half stays below: 1 cent / 2.0000000001 = 0.4999… cent → 0.
        assert_eq!(inverse("EUR", 1, "2.0000000001", "USD"), Ok("0.00 USD".into()));
        assert_eq!(inverse("EUR", i64::MAX, "0.5", "USD"), Err(MoneyError::Overflow));
    }

    #[test]
    fn basis_points_round_half_away_from_zero() {
        assert_eq!(basis_points(money("EUR", 500), money("EUR", 1000)), Some(5000));
        assert_eq!(basis_points(money("EUR", 1), money("EUR", 3)), Some(3333));
        assert_eq!(basis_points(money("EUR", 2), money("EUR", 3)), Some(6667));
        assert_eq!(basis_points(money("EUR", 1), money("EUR", 20_000)), Some(1)); // 0.5 → 1
        assert_eq!(basis_points(money("EUR", 3000), money("EUR", 1000)), Some(30_000));
        assert_eq!(basis_points(money("EUR", 1), money("EUR", 0)), None);
        assert_eq!(basis_points(money("EUR", 1), money("USD", 1)), None);
    }

    #[test]
    fn conversion_factors_agree_with_convert() {
        let cases = [
            ("USD", "EUR", "0.9137"),
            ("EUR", "JPY", "161.37"),
            ("KWD", "EUR", "3.0125"),
            ("EUR", "JPY", "3"),
        ];
        for (from, to, rate) in cases {
            let rate = Rate::parse("rate", rate).unwrap();
            let (from, to) = (currency(from), currency(to));
            for minor in [0, 1, 5, 12_345, 9_999_999, 1_000_000_007] {
                let (n, d) = conversion_factor(from, to, rate, false);
                assert_eq!(
                    Ok(Money::new(to, round_ratio(minor * n, d).unwrap())),
                    convert(Money::new(from, minor as i64), rate, to)
                );
                let (n, d) = conversion_factor(to, from, rate, true);
                let back = convert_inverse(Money::new(to, minor as i64), rate, from);
                assert_eq!(Ok(Money::new(from, round_ratio(minor * n, d).unwrap())), back);
            }
        }
        // 0.9137 USD→EUR: 9137 × 100 / (10^4 × 100) reduces to 9137 / 10000.
        let rate = Rate::parse("rate", "0.9137").unwrap();
        assert_eq!(conversion_factor(currency("USD"), currency("EUR"), rate, false), (9137, 10_000));
        assert_eq!(
            conversion_factor(currency("JPY"), currency("EUR"), Rate::parse("r", "160").unwrap(), true),
            (5, 8) // 1 JPY = 100/160 cents
        );
    }
}
