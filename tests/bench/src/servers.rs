//! The servers under test: the echo ceiling, served by the same kit
//! bootstrap as every service (trace layer, auth, health, reflection),
//! Contacts and Pipeline instances built exactly as `rapport serve` builds
//! them, and the gateway in front of them.
//!
//! Start and stop them from inside the servers' runtime: everything they
//! spawn lands there.

use std::net::SocketAddr;

use anyhow::Context;
use rapport_contacts::Config;
use rapport_contacts::cache::Caches;
use rapport_kit::config::Env;
use rapport_kit::server;
use rapport_kit::testing;
use rapport_kit::testing::echo::{self, Echo};

/// A server running until [`Running::stop`], with the Contacts caches
/// (for their hit counters) when it is, or fronts, a Contacts.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The Contacts caches (None for echo), for their hit counters.
    pub caches: Option<Caches>,
    server: testing::Running,
}

impl Running {
    /// Stops the server and waits until it has drained.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.server.begin_stop();
        self.server.stopped().await
    }
}

/// The environment every server here reads: the process environment
/// (so `DATABASE_MAX_CONNECTIONS=32 make bench` reaches Contacts) under the
/// bench's own fixed values.
pub fn base_env() -> Env {
    Env::process()
        .with("AUTH_JWT_SECRET", testing::DEV_SECRET)
        .with("AUTH_ISSUER", testing::DEV_ISSUER)
        .with("AUTH_AUDIENCE", testing::DEV_AUDIENCE)
        .with("REDIS_URL", testing::redis_url())
        .with("SHUTDOWN_GRACE", "2s")
        .with("CONTACTS_METRICS_ADDR", "off")
        // The bench's Contacts follows no Pipeline or Support feed (its
        // scenarios run the services one at a time).
        .with("CONTACTS_PIPELINE_ADDR", "off")
        .with("CONTACTS_SUPPORT_ADDR", "off")
}

/// Serves the echo service on a free port through `kit::server::serve`.
pub async fn start_echo() -> anyhow::Result<Running> {
    let listener = server::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let server = echo::serve(listener, &base_env(), Echo::default())?;
    Ok(Running { addr: server.addr, caches: None, server })
}

/// Contacts over `database_url` (already migrated) with `cache_flags`
/// (e.g. `CONTACTS_CACHE_LOCAL=false`) on a free port. Waits until the
/// in-process tier follows invalidations when it is enabled, so that
/// warming fills it.
pub async fn start_contacts(database_url: &str, cache_flags: &[(&str, &str)]) -> anyhow::Result<Running> {
    let mut env = base_env()
        .with("DATABASE_URL", database_url)
        .with("CONTACTS_ADDR", "127.0.0.1:0")
        .with("RAPPORT_AUTO_MIGRATE", "false");
    for (name, value) in cache_flags {
        env = env.with(name, *value);
    }
    let config = Config::from_env(&env)?;
    let wants_local = config.service.cache.local;
    let (server, caches) =
        testing::serve(rapport_contacts::build(config).await.context("building contacts")?);
    if wants_local {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !caches.contacts.local_tier_live() {
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the in-process cache tier did not go live (Redis subscription) within 10s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    Ok(Running { addr: server.addr, caches: Some(caches), server })
}

/// Pipeline over `database_url` (already migrated and seeded) on a free
/// port, its Contacts client pointed at `contacts`.
pub async fn start_pipeline(database_url: &str, contacts: &Running) -> anyhow::Result<Running> {
    let env = base_env()
        .with("DATABASE_URL", database_url)
        .with("PIPELINE_ADDR", "127.0.0.1:0")
        .with("PIPELINE_METRICS_ADDR", "off")
        .with("RAPPORT_AUTO_MIGRATE", "false");
    let config = rapport_pipeline::Config::from_env(&env)?.with_contacts(contacts.addr);
    let (server, ()) = testing::serve(rapport_pipeline::build(config).await.context("building pipeline")?);
    Ok(Running { addr: server.addr, caches: None, server })
}

/// Support over `database_url` (already migrated and seeded) on a free
/// port, its Contacts client pointed at `contacts`; its sweeper and mail
/// worker idle (a sweep is measured on its own).
pub async fn start_support(database_url: &str, contacts: &Running) -> anyhow::Result<Running> {
    let env = base_env()
        .with("DATABASE_URL", database_url)
        .with("SUPPORT_ADDR", "127.0.0.1:0")
        .with("SUPPORT_METRICS_ADDR", "off")
        .with("SUPPORT_SWEEP_INTERVAL", "1h")
        .with("RAPPORT_AUTO_MIGRATE", "false");
    let config = rapport_support::Config::from_env(&env)?.with_contacts(contacts.addr);
    let (server, ()) = testing::serve(rapport_support::build(config).await.context("building support")?);
    Ok(Running { addr: server.addr, caches: None, server })
}

/// The gateway on a free port, routing `contacts` to `contacts.addr`,
/// with rate limiting off. Its [`Running::caches`] are those of
/// `contacts`, so a run through it still counts the cache tiers. Stop it
/// before `contacts`.
pub async fn start_gateway(contacts: &Running) -> anyhow::Result<Running> {
    start_gateway_with(contacts, None).await
}

/// [`start_gateway`], also routing `pipeline` when given (Customer 360
/// fetches from both). Stop it before either.
pub async fn start_gateway_with(contacts: &Running, pipeline: Option<&Running>) -> anyhow::Result<Running> {
    let env = base_env()
        .with("GATEWAY_ADDR", "127.0.0.1:0")
        .with("GATEWAY_METRICS_ADDR", "off")
        .with("GATEWAY_BACKEND_CONTACTS", "off")
        .with("GATEWAY_BACKEND_PIPELINE", "off")
        .with("RATE_LIMIT_PER_SECOND", "0");
    let mut config = rapport_gateway::Config::from_env(&env)?
        .with_backend("contacts", rapport_gateway::backend::Target::Static(vec![contacts.addr.to_string()]));
    if let Some(pipeline) = pipeline {
        config = config.with_backend(
            "pipeline",
            rapport_gateway::backend::Target::Static(vec![pipeline.addr.to_string()]),
        );
    }
    let app = rapport_gateway::App::build(config).await.context("building the gateway")?;
    let server = testing::Running::spawn(app.local_addr(), None, move |shutdown| app.run_until(shutdown));
    Ok(Running { addr: server.addr, caches: contacts.caches.clone(), server })
}
