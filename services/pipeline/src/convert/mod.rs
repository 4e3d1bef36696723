//! Stored records to their protobuf form: the only place that maps them to
//! wire messages (the API and the change log both use it).

pub(crate) mod deals;
pub(crate) mod forecasts;
pub(crate) mod orders;
mod pipelines;
mod products;

pub use pipelines::{lost_reason_to_proto, pipeline_to_proto};
pub use products::product_to_proto;
