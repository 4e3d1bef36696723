//! A product's fields and how client input is parsed into them.

use std::collections::HashSet;

use rapport_kit::fields::{self, Violation};
use rapport_kit::money::{Currency, Money};
use rapport_proto::pipeline::v1::Product;

/// Updatable (and, on create, settable) product fields.
pub const PRODUCT_FIELDS: &[&str] = &["sku", "name", "description", "prices", "active"];

/// The new value of each field a create sets or an update masks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductDraft {
    /// Stock keeping unit.
    pub sku: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Unit prices, at most one per currency, never negative.
    pub prices: Option<Vec<Money>>,
    /// Whether it can be added to deals.
    pub active: Option<bool>,
}

/// A SKU: 1-64 letters, digits, '-', '_' and '.'.
pub fn sku(field: &str, raw: &str) -> Result<String, Violation> {
    let sku = fields::text(field, raw, true, 64)?;
    if sku.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
        Ok(sku)
    } else {
        Err(Violation::new(field, "may only contain letters, digits, '-', '_' and '.'"))
    }
}

/// The most prices a product has (one per currency).
pub const MAX_PRICES: usize = 200;

fn prices(input: &[rapport_proto::common::v1::Money], violations: &mut Vec<Violation>) -> Vec<Money> {
    if let Err(cap) = rapport_kit::fields::cap("product.prices", input, MAX_PRICES) {
        violations.push(cap);
        return Vec::new();
    }
    let mut seen = HashSet::new();
    let mut prices = Vec::new();
    for (index, price) in input.iter().enumerate() {
        let field = format!("product.prices[{index}]");
        match Currency::parse(&format!("{field}.currency_code"), &price.currency_code) {
            Err(violation) => violations.push(violation),
            Ok(currency) if !seen.insert(currency) => {
                violations.push(Violation::new(format!("{field}.currency_code"), "has a price already"))
            }
            Ok(_) if price.minor_units < 0 => {
                violations.push(Violation::new(format!("{field}.minor_units"), "must not be negative"))
            }
            Ok(currency) => prices.push(Money::new(currency, price.minor_units)),
        }
    }
    prices
}

impl ProductDraft {
    /// Parses the `fields` of `input`, reporting every violation at once.
    pub fn parse(input: &Product, fields: &[&str]) -> Result<ProductDraft, Vec<Violation>> {
        let mut violations = Vec::new();
        let mut draft = ProductDraft::default();
        for field in fields {
            match *field {
                "sku" => draft.sku = sku("product.sku", &input.sku).map_err(|v| violations.push(v)).ok(),
                "name" => {
                    draft.name = fields::text("product.name", &input.name, true, 200)
                        .map_err(|v| violations.push(v))
                        .ok()
                }
                "description" => {
                    draft.description = fields::text("product.description", &input.description, false, 2000)
                        .map_err(|v| violations.push(v))
                        .ok()
                }
                "prices" => draft.prices = Some(prices(&input.prices, &mut violations)),
                _ => draft.active = Some(input.active.unwrap_or(true)),
            }
        }
        if violations.is_empty() { Ok(draft) } else { Err(violations) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rapport_proto::common::v1::Money as ProtoMoney;

    #[test]
    fn reports_every_violation() {
        let price = |code: &str, minor_units| ProtoMoney { currency_code: code.into(), minor_units };
        let input = Product {
            sku: "a b".into(),
            prices: vec![price("EUR", 1), price("EUR", 2), price("XXX1", 1), price("USD", -1)],
            ..Default::default()
        };
        let fields: Vec<String> =
            ProductDraft::parse(&input, PRODUCT_FIELDS).unwrap_err().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "product.sku",
                "product.name",
                "product.prices[1].currency_code",
                "product.prices[2].currency_code",
                "product.prices[3].minor_units"
            ]
        );
    }

    #[test]
    fn active_defaults_to_true() {
        let input = Product { sku: "A-1".into(), name: "A".into(), ..Default::default() };
        assert_eq!(ProductDraft::parse(&input, PRODUCT_FIELDS).unwrap().active, Some(true));
    }
}
