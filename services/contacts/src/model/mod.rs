//! Stored records: what `store` returns and `convert` reads (one file per
//! resource). Defined here, below both, so neither imports the other.

pub mod activities;
pub mod companies;
pub mod consent;
pub mod contacts;

pub use activities::{ActivityRecord, TimelineRecord, TransitionRecord};
pub use companies::CompanyRecord;
pub use consent::{ConsentEventRecord, ConsentRecord, ContactConsentRecord};
pub use contacts::ContactRecord;
