//! Validated pipeline data and the rules that change it. Pure: no I/O.
//!
//! Everything past the API edge holds these parsed types.

pub mod ids;
pub mod pipeline;
pub mod product;

pub use rapport_kit::fields::Violation;
pub mod deal;
pub mod forecast;
pub mod invoice;
pub mod line_items;
pub mod order;
pub mod search;
