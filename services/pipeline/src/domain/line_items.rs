//! Deal line items: parsing the client's lines, and their amounts in the
//! deal's currency (kit money: exact, rounded once).

use std::collections::HashMap;

use rapport_kit::fields;
use rapport_kit::money::{self, Currency, Money, MoneyError, Percent, Quantity};
use rapport_proto::pipeline::v1::LineItem;

use super::Violation;
use super::ids::{LineItemId, ProductId};

/// The most line items a deal may have.
pub const MAX_LINE_ITEMS: usize = 200;

/// A line as the client sent it, parsed; product defaults not yet applied.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItemInput {
    /// The id of an existing line to keep; `None` for a new line.
    pub id: Option<LineItemId>,
    /// The product sold, if any.
    pub product_id: Option<ProductId>,
    /// The description; empty means "the product's name".
    pub description: String,
    /// Quantity, default 1.
    pub quantity: Quantity,
    /// Unit price (its currency checked against the deal's by the store);
    /// `None` means "the product's price in the deal's currency".
    pub unit_price: Option<Money>,
    /// Discount, default 0.
    pub discount: Percent,
}

/// A line with every value known and its amount computed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedLine {
    /// Id.
    pub id: LineItemId,
    /// Product, if any.
    pub product_id: Option<ProductId>,
    /// What is sold.
    pub description: String,
    /// Quantity.
    pub quantity: Quantity,
    /// Unit price.
    pub unit_price: Money,
    /// Discount.
    pub discount: Percent,
    /// unit price × quantity × (1 − discount/100), rounded once.
    pub amount: Money,
}

/// Parses `lines` (field paths `{prefix}[i].…`); unit prices must be in
/// `currency` when it is known. Reports every violation.
pub fn parse_lines(
    prefix: &str,
    lines: &[LineItem],
    currency: Option<Currency>,
) -> Result<Vec<LineItemInput>, Vec<Violation>> {
    fields::cap(prefix, lines, MAX_LINE_ITEMS).map_err(|violation| vec![violation])?;
    let mut violations = Vec::new();
    let mut parsed = Vec::with_capacity(lines.len());
    for (index, line) in lines.iter().enumerate() {
        let path = |name: &str| format!("{prefix}[{index}].{name}");
        let before = violations.len();
        let v = &mut violations;
        let id = if line.id.is_empty() { None } else { take(v, LineItemId::parse(&path("id"), &line.id)) };
        let product_id = if line.product_id.is_empty() {
            None
        } else {
            take(v, ProductId::parse(&path("product_id"), &line.product_id))
        };
        let description = take(v, fields::text(&path("description"), &line.description, false, 500));
        let quantity = if line.quantity.is_empty() { "1" } else { line.quantity.as_str() };
        let quantity = take(v, Quantity::parse(&path("quantity"), quantity));
        let discount = if line.discount_percent.is_empty() { "0" } else { line.discount_percent.as_str() };
        let discount = take(v, Percent::parse(&path("discount_percent"), discount));
        let unit_price = match &line.unit_price {
            None => None,
            Some(price) => take(v, unit_price(&path("unit_price"), price, currency)),
        };
        if line.product_id.is_empty() {
            if line.description.trim().is_empty() {
                v.push(Violation::new(path("description"), "is required for a line without a product"));
            }
            if line.unit_price.is_none() {
                v.push(Violation::new(path("unit_price"), "is required for a line without a product"));
            }
        }
        if let (true, Some(quantity), Some(discount), Some(description)) =
            (violations.len() == before, quantity, discount, description)
        {
            parsed.push(LineItemInput { id, product_id, description, quantity, unit_price, discount });
        }
    }
    if violations.is_empty() { Ok(parsed) } else { Err(violations) }
}

fn take<T>(violations: &mut Vec<Violation>, result: Result<T, Violation>) -> Option<T> {
    result.map_err(|violation| violations.push(violation)).ok()
}

fn unit_price(
    field: &str,
    price: &rapport_proto::common::v1::Money,
    currency: Option<Currency>,
) -> Result<Money, Violation> {
    let money = Money::from_proto(field, price)?;
    if money.minor_units() < 0 {
        return Err(Violation::new(field, "must not be negative"));
    }
    match currency {
        Some(currency) if money.currency() != currency => Err(Violation::new(
            format!("{field}.currency_code"),
            format!("must be the deal's currency {currency}, not {}", money.currency()),
        )),
        _ => Ok(money),
    }
}

/// The amount of one line in `currency`.
pub fn amount(
    currency: Currency,
    unit_price_minor: i64,
    quantity: Quantity,
    discount: Percent,
) -> Result<Money, MoneyError> {
    money::line_amount(Money::new(currency, unit_price_minor), quantity, discount)
}

/// A product as a line sees it: its name, and its price in the deal's
/// currency when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The default description.
    pub name: String,
    /// The default unit price.
    pub price: Option<Money>,
}

/// Why lines cannot be resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum LineError {
    /// Field violations, every one found.
    Invalid(Vec<Violation>),
    /// A line names a product that does not exist or is not active.
    ProductNotFound(ProductId),
    /// A line takes its price from a product that has none in this currency.
    PriceMissing(ProductId, Currency),
}

/// Resolves the lines of a deal in `currency`: a line's description and
/// unit price default to its product's (`products`, the active products the
/// lines name), a kept line must be one of the deal's (`existing`), a new
/// one gets a fresh id, and each amount is computed.
pub fn resolve(
    currency: Currency,
    inputs: &[LineItemInput],
    existing: &[LineItemId],
    products: &HashMap<ProductId, Product>,
) -> Result<Vec<ResolvedLine>, LineError> {
    let mut violations = Vec::new();
    let mut lines = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let path = |name: &str| format!("deal.line_items[{index}].{name}");
        let id = match input.id {
            Some(id) if existing.contains(&id) => id,
            Some(id) => {
                violations.push(Violation::new(
                    path("id"),
                    format!("{id} is not a line of this deal; send new lines without an id"),
                ));
                continue;
            }
            None => LineItemId::generate(),
        };
        let mut description = input.description.clone();
        let mut unit_price = input.unit_price;
        if let Some(product_id) = input.product_id {
            let product = products.get(&product_id).ok_or(LineError::ProductNotFound(product_id))?;
            if description.is_empty() {
                description = product.name.clone();
            }
            if unit_price.is_none() {
                unit_price = Some(product.price.ok_or(LineError::PriceMissing(product_id, currency))?);
            }
        }
        let Some(unit_price) = unit_price else { continue };
        if unit_price.currency() != currency {
            violations.push(Violation::new(
                path("unit_price.currency_code"),
                format!("must be the deal's currency {currency}, not {}", unit_price.currency()),
            ));
            continue;
        }
        match amount(currency, unit_price.minor_units(), input.quantity, input.discount) {
            Ok(amount) => lines.push(ResolvedLine {
                id,
                product_id: input.product_id,
                description,
                quantity: input.quantity,
                unit_price,
                discount: input.discount,
                amount,
            }),
            Err(err) => violations.push(Violation::new(path("amount"), err.to_string())),
        }
    }
    if violations.is_empty() { Ok(lines) } else { Err(LineError::Invalid(violations)) }
}

/// A deal's amount and whether it is derived from its lines: the lines'
/// total when there are lines (then `given` must be `None`), else `given`
/// in the deal's currency, else zero.
pub fn deal_amount(
    currency: Currency,
    given: Option<Money>,
    lines: &[Money],
) -> Result<(Money, bool), Violation> {
    if lines.is_empty() {
        return match given {
            Some(money) if money.currency() != currency => Err(Violation::new(
                "deal.amount.currency_code",
                format!("must be the deal's currency {currency}"),
            )),
            Some(money) => Ok((money, false)),
            None => Ok((Money::zero(currency), false)),
        };
    }
    if given.is_some() {
        return Err(Violation::new(
            "deal.amount",
            "is the sum of the line items; do not set it with line items",
        ));
    }
    let total = Money::sum(currency, lines.iter().copied())
        .map_err(|err| Violation::new("deal.line_items", err.to_string()))?;
    Ok((total, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quantity(raw: &str) -> Quantity {
        Quantity::parse("q", raw).unwrap_or_else(|err| panic!("{err}"))
    }

    fn percent(raw: &str) -> Percent {
        Percent::parse("p", raw).unwrap_or_else(|err| panic!("{err}"))
    }

    #[test]
    fn amounts_round_once_half_away_from_zero() {
        let eur = Currency::parse("c", "EUR").unwrap_or_else(|err| panic!("{err}"));
        // 1.5 × 19.99 × 50 % = 14.9925 → 14.99
        let line = amount(eur, 1999, quantity("1.5"), percent("50"));
        assert_eq!(line.map(Money::minor_units), Ok(1499));
    }

    #[test]
    fn lines_without_product_need_description_and_price() {
        let lines = vec![LineItem { quantity: "2".into(), ..LineItem::default() }];
        let violations = parse_lines("deal.line_items", &lines, None).err().unwrap_or_default();
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["deal.line_items[0].description", "deal.line_items[0].unit_price"]);
    }
}
