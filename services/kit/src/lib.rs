//! Shared plumbing for Rapport services, written once: plain functions and
//! small types, not a framework.
//!
//! - [`config`]: typed values from the environment, failing with the variable's name.
//! - [`telemetry`]: tracing subscriber, OTLP export, W3C trace context in and out.
//! - [`server`]: the tonic server bootstrap (health, reflection, limits, shutdown, layers,
//!   gRPC-web with CORS).
//! - [`service`]: the service shell: common settings with the service's prefix, startup,
//!   routes, the run loop with authentication, ordered shutdown, `migrate`.
//! - [`worker`]: periodic jobs that run once per interval across replicas.
//! - [`clock`]: the time source services read where time drives behaviour (tests move it).
//! - [`money`]: exact money: ISO 4217 currencies, amounts in minor units, quantities,
//!   discounts, exchange rates and the one rounding rule.
//! - [`metrics`]: the Prometheus registry, the RPC metrics, the `/metrics` endpoint.
//! - [`shutdown`]: one trigger, many listeners; SIGTERM and ctrl-c.
//! - [`db`]: the PostgreSQL pool per service schema and migrations.
//! - [`redis`]: a reconnecting Redis whose failures are cache misses.
//! - [`cache`]: the two-tier (in-process + Redis) cache of hot records.
//! - [`fields`]: input violations, typed ids, text limits.
//! - [`problem`]: a client-facing error: code, stable reason, google.rpc details.
//! - [`error`]: every service's error (shared kinds + its own) to `tonic::Status`.
//! - [`auth`]: bearer JWT and API key verification and the per-service role table.
//! - [`peer`]: calling another service: identity, deadline forwarding, trace context, retried reads.
//! - [`rpc`]: gRPC request paths.
//! - [`paging`]: page sizes and opaque keyset page tokens.
//! - [`filter`]: AIP-160 filters to bound SQL.
//! - [`listing`]: a List request parsed into one keyset page query.
//! - [`search`]: free-text queries and ranked keyset pages of the Search RPCs.
//! - [`idempotency`]: `request_id` replay of creates.
//! - [`changelog`]: the change log (append in commit order, watch, prune).
//! - [`consumer`]: applying another service's change feed exactly once in effect (lease,
//!   cursor in the same transaction, idempotent apply, resync).
//! - [`testing`]: fresh databases, helpers and the servers (echo, OTLP collector,
//!   `redis-server`) that integration tests and the benchmark run against.

pub mod auth;
pub mod cache;
pub mod changelog;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod db;
pub mod error;
pub mod fields;
pub mod filter;
pub mod idempotency;
pub mod listing;
pub mod metrics;
pub mod money;
pub mod paging;
pub mod peer;
pub mod problem;
pub mod ratelimit;
pub mod redis;
pub mod rpc;
pub mod search;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod tls;
pub mod worker;
