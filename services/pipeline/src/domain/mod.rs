//! Validated pipeline data and the rules that change it. Pure: no I/O.
//!
//! Everything past the API edge holds these parsed types.

pub mod ids;

pub use rapport_kit::fields::Violation;
pub mod forecast;
pub mod invoice;
pub mod order;
