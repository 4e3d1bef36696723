//! The Pipeline service's errors: the kit's common kinds, and the problems
//! of Pipeline's own refusals (the functions below).

use rapport_kit::error::Problem;

/// Resource type names (fully-qualified message names) used in
/// `ResourceInfo` and the change log.
pub mod resource {
    /// A pipeline (with its stages).
    pub const PIPELINE: &str = "rapport.pipeline.v1.Pipeline";
    /// A stage of a pipeline.
    pub const STAGE: &str = "rapport.pipeline.v1.Stage";
    /// A lost reason.
    pub const LOST_REASON: &str = "rapport.pipeline.v1.LostReason";
    /// A product.
    pub const PRODUCT: &str = "rapport.pipeline.v1.Product";
    /// A deal.
    pub const DEAL: &str = "rapport.pipeline.v1.Deal";
    /// An order.
    pub const ORDER: &str = "rapport.pipeline.v1.Order";
    /// An invoice.
    pub const INVOICE: &str = "rapport.pipeline.v1.Invoice";
    /// A payment.
    pub const PAYMENT: &str = "rapport.pipeline.v1.Payment";
    /// An exchange rate.
    pub const EXCHANGE_RATE: &str = "rapport.pipeline.v1.ExchangeRate";
    /// A quota.
    pub const QUOTA: &str = "rapport.pipeline.v1.Quota";
}

/// Everything that can go wrong in the Pipeline service: the kit's common
/// kinds; Pipeline's own refusals are problems made by the functions below.
pub type Error = rapport_kit::error::Error;

// The errors of deals.

/// The error of a deal write refused by the domain (`subject`: the deal,
/// or the stage a new deal was sent to).
pub fn deal_refused(refusal: crate::domain::deal::Refusal, subject: &str) -> Error {
    use crate::domain::deal::Refusal;
    match refusal {
        Refusal::Closed => Error::precondition(
            "DEAL_CLOSED",
            format!("deal {subject} is closed; reopen it first"),
            "DEAL_OPEN",
            subject,
        ),
        Refusal::StageNotOpen(kind) => Error::precondition(
            "STAGE_NOT_OPEN",
            format!(
                "stage {subject} is a {} stage; win or lose deals with WinDeal, LoseDeal or MoveDealStage",
                kind.name()
            ),
            "STAGE_NOT_OPEN",
            subject,
        ),
        Refusal::Invalid(violation) => Error::from(violation),
    }
}

/// The error of line items the domain could not resolve.
pub fn lines_refused(err: crate::domain::line_items::LineError) -> Error {
    use crate::domain::line_items::LineError;
    match err {
        LineError::Invalid(violations) => Error::Invalid(violations),
        LineError::ProductNotFound(product) => Error::precondition(
            "PRODUCT_NOT_FOUND",
            format!("product {product} does not exist or is not active"),
            "PRODUCT_NOT_FOUND",
            &product.to_string(),
        ),
        LineError::PriceMissing(product, currency) => Error::precondition(
            "PRODUCT_PRICE_MISSING",
            format!("product {product} has no price in {currency}; give the line a unit_price"),
            "PRODUCT_PRICE_MISSING",
            &product.to_string(),
        ),
    }
}

// The errors of orders, invoices and payments.

/// ALREADY_EXISTS, reason `EXTERNAL_REF_CONFLICT`: the ERP reference
/// `field` = `value` was used before with different content.
pub fn external_ref_conflict(resource_type: &str, field: &str, value: &str, existing_id: &str) -> Error {
    Error::Problem(
        Problem::already_exists(
            "EXTERNAL_REF_CONFLICT",
            format!("{field} {value:?} was already used with different content"),
        )
        .resource(resource_type, existing_id, "recorded before under this reference")
        .meta(field, value.to_owned()),
    )
}

/// The FAILED_PRECONDITION of an order transition refused by the domain.
pub fn order_refused(refusal: crate::domain::order::Refusal, order_id: &str) -> Error {
    use crate::domain::order::Refusal;
    let (reason, message) = match refusal {
        Refusal::AlreadyAcknowledged => {
            ("ORDER_ALREADY_ACKNOWLEDGED", "the order was already acknowledged under another external_ref")
        }
        Refusal::NotAcknowledged => ("ORDER_NOT_ACKNOWLEDGED", "the order must be acknowledged first"),
        Refusal::Cancelled => ("ORDER_CANCELLED", "the order is cancelled"),
        Refusal::Fulfilled => ("ORDER_FULFILLED", "a fulfilled order cannot be cancelled"),
        Refusal::HasInvoices => ("ORDER_HAS_INVOICES", "an order with invoices cannot be cancelled"),
    };
    Error::precondition(reason, message, reason, order_id)
}

/// FAILED_PRECONDITION, reason `PAYMENT_EXCEEDS_OUTSTANDING`.
pub fn payment_exceeds_outstanding(invoice_id: &str, outstanding: &str) -> Error {
    let message = format!("the payment is more than the {outstanding} outstanding on the invoice");
    Error::precondition("PAYMENT_EXCEEDS_OUTSTANDING", message, "PAYMENT_EXCEEDS_OUTSTANDING", invoice_id)
}

// The errors of forecasts.

/// The error of a forecast that cannot be computed: a missing rate, or a
/// total beyond 64-bit minor units (`OUT_OF_RANGE`, reason `AMOUNT_OUT_OF_RANGE`).
pub fn forecast_failed(err: crate::domain::forecast::ForecastError) -> Error {
    use crate::domain::forecast::ForecastError;
    match err {
        ForecastError::RateMissing { from, to, day } => exchange_rate_missing(from.code(), to.code(), day),
        ForecastError::OutOfRange(figure) => Error::Problem(Problem::out_of_range(
            "AMOUNT_OUT_OF_RANGE",
            format!("the forecast's {figure} total exceeds 2^63-1 minor units; narrow the query"),
        )),
    }
}

/// FAILED_PRECONDITION, reason `EXCHANGE_RATE_MISSING`: no rate from
/// `from` to `to` (nor the opposite) is in force on `day`.
pub fn exchange_rate_missing(from: &str, to: &str, day: chrono::NaiveDate) -> Error {
    let pair = format!("{from}/{to}");
    let day = day.format("%Y-%m-%d").to_string();
    let message = format!("no exchange rate from {from} to {to} (or back) is in force on {day}; set one");
    Error::Problem(
        Problem::failed_precondition("EXCHANGE_RATE_MISSING", message.clone())
            .precondition("EXCHANGE_RATE_MISSING", &pair, &message)
            .meta("currency_pair", pair.clone())
            .meta("date", day),
    )
}
