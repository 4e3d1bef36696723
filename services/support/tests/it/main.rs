//! The Support service's integration tests, one binary: a module per
//! area, the harness in `common`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod assignment;
mod cases;
mod comments;
mod common;
mod contacts_feed;
mod email;
mod hostile;
mod knowledge;
mod ownership;
mod satisfaction;
mod sla;
mod smoke;
mod sweeper;
