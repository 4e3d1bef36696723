//! Stored records: what `store` returns and `convert` reads (one file per
//! resource family). Defined here, below both, so neither imports the
//! other.

pub mod deals;
pub mod forecasts;
pub mod orders;
pub mod pipelines;
pub mod products;
