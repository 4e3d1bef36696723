//! A stored product.

use chrono::{DateTime, Utc};

use rapport_kit::money::Money;

use crate::domain::ids::ProductId;

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductRecord {
    /// Id.
    pub id: ProductId,
    /// SKU.
    pub sku: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Unit prices by currency code.
    pub prices: Vec<Money>,
    /// Can be added to deals.
    pub active: bool,
    /// Created.
    pub create_time: DateTime<Utc>,
    /// Last changed.
    pub update_time: DateTime<Utc>,
    /// Soft-deleted.
    pub delete_time: Option<DateTime<Utc>>,
    /// Version for etags.
    pub version: i64,
}
