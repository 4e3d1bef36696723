//! Stored records: what `store` returns and `convert` reads (one file per
//! resource). Defined here, below both, so neither imports the other.

pub mod companies;
pub mod contacts;

pub use companies::CompanyRecord;
pub use contacts::ContactRecord;
