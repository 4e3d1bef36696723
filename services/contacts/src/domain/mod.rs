//! Validated contact and company data and the rules that change it (typed
//! ids, `Email`, text and tag limits in `fields`; drafts and updates in
//! `contact` and `company`; consent changes in `consent`; activities and tasks in `activity`; stage
//! moves in `lifecycle`; likely duplicates and E.164 phones in
//! `duplicates`; qualification answers in `qualification`; what
//! other services' events do here in `effects`; lead scores in `scoring`;
//! assignment rules and team members in `assignment`; search
//! queries' words in `search`).
//! Pure:
//! no I/O, no protobuf beyond the enums the contract defines.
//!
//! Everything past the API edge holds these parsed types: a `ContactDraft`
//! can only be built by `parse`, which reports every invalid field at once.

pub mod activity;
pub mod assignment;
pub mod company;
pub mod consent;
pub mod contact;
pub mod duplicates;
pub mod effects;
pub mod fields;
pub mod lifecycle;
pub mod qualification;
pub mod scoring;
pub mod search;

pub use company::{CompanyDraft, CompanyField, CompanyState};
pub use contact::{ContactDraft, ContactField, ContactState};
pub use fields::{CompanyId, ContactId, Violation};
