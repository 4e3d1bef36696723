//! Deal line items: parsing the client's lines, and their amounts in the
//! deal's currency (kit money: exact, rounded once).

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
    let mut violations = Vec::new();
    if lines.len() > MAX_LINE_ITEMS {
        violations.push(Violation::new(prefix, format!("at most {MAX_LINE_ITEMS} line items")));
    }
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

/// The sum of the lines' amounts.
pub fn total(currency: Currency, lines: &[ResolvedLine]) -> Result<Money, MoneyError> {
    Money::sum(currency, lines.iter().map(|line| line.amount))
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
