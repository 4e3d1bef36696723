//! The gateway's integration tests, one binary: a module per area, the
//! harness in `common`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod bad_input;
mod balance;
mod common;
mod customer360;
mod fuzz;
mod protection;
mod proxy;
mod recycling;
mod shutdown;
mod timeline;
mod traces;
mod web;
