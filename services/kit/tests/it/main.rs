//! The kit's integration tests, one binary: a module per area, the shared
//! helpers in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cache;
mod changelog_order;
mod changelog_watch;
mod consumer;
mod consumer_dead_letters;
mod consumer_lease;
mod database_errors;
mod fuzz;
mod grpc_web;
mod idempotency;
mod jwks_url;
mod metrics;
mod migrate;
mod ratelimit;
mod server;
mod support;
mod telemetry;
mod tls;
mod trace_status;
mod worker;
