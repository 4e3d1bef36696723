//! The Contacts service's integration tests, one binary: a module per
//! area, the harness in `common`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod activities;
mod assignment;
mod auth;
mod cache;
mod changes;
mod common;
mod companies;
mod concurrency;
mod consent;
mod contacts_crud;
mod crash;
mod duplicates;
mod lifecycle;
mod listing;
mod metrics;
mod projection;
mod scoring;
mod search;
mod smoke;
mod tasks;
mod timeline;
mod tls;
mod validation;
