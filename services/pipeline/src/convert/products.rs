//! Products on the wire.

use rapport_kit::changelog::timestamp;
use rapport_proto::pipeline::v1::Product;

use crate::model::products::ProductRecord;
use rapport_kit::db::etag;

/// The wire form of a product.
pub fn product_to_proto(record: &ProductRecord) -> Product {
    Product {
        id: record.id.to_string(),
        sku: record.sku.clone(),
        name: record.name.clone(),
        description: record.description.clone(),
        prices: record.prices.iter().map(|price| price.to_proto()).collect(),
        active: Some(record.active),
        create_time: Some(timestamp(record.create_time)),
        update_time: Some(timestamp(record.update_time)),
        delete_time: record.delete_time.map(timestamp),
        etag: etag(record.version),
    }
}
