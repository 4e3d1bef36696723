//! Validated support data and the rules that change it. Pure: no I/O, no
//! SQL, no protobuf beyond its enums.
//!
//! - [`calendar`]: business hours in a time zone, with holidays.
//! - [`clock`]: one SLA target's clock, kept incrementally.
//! - [`sla`]: policies, their targets, and how case events move clocks.
//! - [`case`]: case fields, statuses and their transitions.
//! - [`comment`]: comments and attachments.
//! - [`email`]: inbound email parsed (mail-parser); case numbers in subjects.
//! - [`sla_input`]: calendars and policies parsed from requests, holidays from iCalendar files.
//! - [`ids`]: typed ids.

pub mod calendar;
pub mod case;
pub mod clock;
pub mod comment;
pub mod email;
pub mod ids;
pub mod sla;
pub mod sla_input;

pub use rapport_kit::fields::Violation;
