//! Orders: their statuses and the ERP's transitions between them.

use rapport_kit::fields::{self, Violation};

/// Where an order is in fulfilment (stored as the proto name without prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Created from a won deal.
    New,
    /// Taken over by the ERP.
    Acknowledged,
    /// Delivered.
    Fulfilled,
    /// Cancelled.
    Cancelled,
}

/// The stored names, in proto order.
pub const ORDER_STATUS_NAMES: &[&str] = &["NEW", "ACKNOWLEDGED", "FULFILLED", "CANCELLED"];

impl OrderStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::New => "NEW",
            OrderStatus::Acknowledged => "ACKNOWLEDGED",
            OrderStatus::Fulfilled => "FULFILLED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// The status of a stored name (`None` for anything else).
    pub fn from_stored(name: &str) -> Option<OrderStatus> {
        match name {
            "NEW" => Some(OrderStatus::New),
            "ACKNOWLEDGED" => Some(OrderStatus::Acknowledged),
            "FULFILLED" => Some(OrderStatus::Fulfilled),
            "CANCELLED" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }
}

/// An ERP reference (of an order or a payment): trimmed, 1–`max` characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalRef(String);

impl ExternalRef {
    /// Parses `raw`; `field` names the input on error.
    pub fn parse(field: &str, raw: &str, max_chars: usize) -> Result<ExternalRef, Violation> {
        fields::text(field, raw, true, max_chars).map(ExternalRef)
    }

    /// The reference.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a transition asked of an order does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Change the order to this status.
    To(OrderStatus),
    /// Already done: return the order unchanged, record nothing.
    Unchanged,
}

/// Why a transition is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Acknowledged (or further) under another reference.
    AlreadyAcknowledged,
    /// The order must be acknowledged first.
    NotAcknowledged,
    /// The order is cancelled.
    Cancelled,
    /// The order is fulfilled and cannot be cancelled.
    Fulfilled,
    /// The order has invoices and cannot be cancelled.
    HasInvoices,
}

/// AcknowledgeOrder: only NEW moves; the same reference again is a replay.
pub fn acknowledge(
    status: OrderStatus,
    current_ref: Option<&str>,
    requested: &ExternalRef,
) -> Result<Transition, Refusal> {
    match status {
        OrderStatus::New => Ok(Transition::To(OrderStatus::Acknowledged)),
        OrderStatus::Cancelled => Err(Refusal::Cancelled),
        OrderStatus::Acknowledged | OrderStatus::Fulfilled if current_ref == Some(requested.as_str()) => {
            Ok(Transition::Unchanged)
        }
        OrderStatus::Acknowledged | OrderStatus::Fulfilled => Err(Refusal::AlreadyAcknowledged),
    }
}

/// FulfillOrder: ACKNOWLEDGED moves; FULFILLED again is a no-op.
pub fn fulfill(status: OrderStatus) -> Result<Transition, Refusal> {
    match status {
        OrderStatus::Acknowledged => Ok(Transition::To(OrderStatus::Fulfilled)),
        OrderStatus::Fulfilled => Ok(Transition::Unchanged),
        OrderStatus::New => Err(Refusal::NotAcknowledged),
        OrderStatus::Cancelled => Err(Refusal::Cancelled),
    }
}

/// CancelOrder: NEW or ACKNOWLEDGED without invoices; CANCELLED again is a no-op.
pub fn cancel(status: OrderStatus, has_invoices: bool) -> Result<Transition, Refusal> {
    match status {
        OrderStatus::Cancelled => Ok(Transition::Unchanged),
        OrderStatus::Fulfilled => Err(Refusal::Fulfilled),
        OrderStatus::New | OrderStatus::Acknowledged if has_invoices => Err(Refusal::HasInvoices),
        OrderStatus::New | OrderStatus::Acknowledged => Ok(Transition::To(OrderStatus::Cancelled)),
    }
}

/// Whether invoices may be recorded for an order in `status`.
pub fn invoiceable(status: OrderStatus) -> Result<(), Refusal> {
    match status {
        OrderStatus::Acknowledged | OrderStatus::Fulfilled => Ok(()),
        OrderStatus::New => Err(Refusal::NotAcknowledged),
        OrderStatus::Cancelled => Err(Refusal::Cancelled),
    }
}

/// A cancellation reason: trimmed, at most 1000 characters, may be empty.
pub fn cancel_reason(raw: &str) -> Result<String, Violation> {
    fields::text("reason", raw, false, 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(raw: &str) -> ExternalRef {
        ExternalRef::parse("external_ref", raw, 128).unwrap()
    }

    #[test]
    fn acknowledging_moves_only_new_orders() {
        let erp = reference("ERP-1");
        assert_eq!(acknowledge(OrderStatus::New, None, &erp), Ok(Transition::To(OrderStatus::Acknowledged)));
        assert_eq!(acknowledge(OrderStatus::Acknowledged, Some("ERP-1"), &erp), Ok(Transition::Unchanged));
        assert_eq!(acknowledge(OrderStatus::Fulfilled, Some("ERP-1"), &erp), Ok(Transition::Unchanged));
        assert_eq!(
            acknowledge(OrderStatus::Acknowledged, Some("ERP-2"), &erp),
            Err(Refusal::AlreadyAcknowledged)
        );
        assert_eq!(acknowledge(OrderStatus::Cancelled, None, &erp), Err(Refusal::Cancelled));
    }

    #[test]
    fn fulfilling_and_cancelling_follow_the_status() {
        assert_eq!(fulfill(OrderStatus::Acknowledged), Ok(Transition::To(OrderStatus::Fulfilled)));
        assert_eq!(fulfill(OrderStatus::Fulfilled), Ok(Transition::Unchanged));
        assert_eq!(fulfill(OrderStatus::New), Err(Refusal::NotAcknowledged));
        assert_eq!(cancel(OrderStatus::New, false), Ok(Transition::To(OrderStatus::Cancelled)));
        assert_eq!(cancel(OrderStatus::Acknowledged, true), Err(Refusal::HasInvoices));
        assert_eq!(cancel(OrderStatus::Fulfilled, false), Err(Refusal::Fulfilled));
        assert_eq!(cancel(OrderStatus::Cancelled, false), Ok(Transition::Unchanged));
    }

    #[test]
    fn references_are_trimmed_and_bounded() {
        assert_eq!(reference("  ERP-1 ").as_str(), "ERP-1");
        assert!(ExternalRef::parse("external_ref", " ", 128).is_err());
        assert!(ExternalRef::parse("external_ref", &"x".repeat(129), 128).is_err());
    }
}
