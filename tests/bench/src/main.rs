//! `make bench`: one run, client and server in this process on separate
//! tokio runtimes, that seeds a fresh database with 100,000 contacts (and,
//! for the Pipeline scenarios, 200,000 deals), measures a trivial echo
//! served by the kit bootstrap (the ceiling), then the Contacts and
//! Pipeline RPCs and Customer 360 through the gateway, and writes
//! `BENCHMARKS.md`.
//!
//! - [`settings`]: the flags (each also an environment variable).
//! - [`seed`]: the fresh database, set-based seeding, the working set.
//! - [`seed::pipeline`]: the Pipeline's deals, orders, invoices, rates.
//! - [`servers`]: the echo server, Contacts and Pipeline instances, gateways.
//! - [`load`]: the load generator (fixed concurrency, histogram, errors by code).
//! - [`cpu`]: CPU time of the server and load-generator threads.
//! - [`scenarios`]: what each scenario sends.
//! - [`report`]: the Markdown table, the machine, the targets, `BENCHMARKS.md`.
//! - [`run`]: the whole run, in order.

mod cpu;
mod load;
mod report;
mod run;
mod scenarios;
mod seed;
mod servers;
mod settings;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // sqlx's slow-statement warnings would print the whole seed SQL.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx::query=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    run::run(&settings::Settings::parse())
}
