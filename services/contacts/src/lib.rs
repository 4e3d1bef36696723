//! The Contacts service: people and the companies they work for, the one
//! customer record every department shares.
//!
//! - [`config`]: typed configuration from the environment.
//! - `api`: the tonic adapter (one file per resource).
//! - [`domain`]: validated fields and update rules; pure.
//! - [`store`]: all SQL; every write appends to the change log.
//! - [`convert`]: stored records to protobuf.
//! - [`cache`]: the two caches of hot records (kit's two-tier cache).
//! - [`error`]: the error enum and its mapping to gRPC statuses.
//! - [`policy`]: which roles may call which RPC.
//!
//! [`App::build`] binds the listeners (gRPC and metrics, so tests can use
//! port 0) and [`App::run_until`] serves until shutdown.

mod api;
pub mod cache;
pub mod config;
pub mod convert;
pub mod domain;
pub mod error;
pub mod policy;
pub mod store;

use std::net::SocketAddr;

use anyhow::Context;
use rapport_kit::auth::{AuthLayer, Verifier};
use rapport_kit::changelog::{self, Feed};
use rapport_kit::metrics::Metrics;
use rapport_kit::redis::Redis;
use rapport_kit::server::{self, Served};
use rapport_kit::shutdown::{self, Shutdown, Trigger};
use rapport_proto::contacts::v1::contact_service_server::ContactServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use config::Config;

/// The fully-qualified gRPC service name.
pub const SERVICE_NAME: &str = "rapport.contacts.v1.ContactService";

/// The service's migrations (kit's tables are added by `rapport_kit::db`).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A built, bound, not yet serving Contacts service.
pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    metrics: Metrics,
    config: Config,
    pool: PgPool,
    api: api::Api,
    caches: cache::Caches,
    background: Trigger,
    background_shutdown: Shutdown,
}

impl App {
    /// Connects, migrates (when configured), and binds the listeners.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let pool =
            rapport_kit::db::pool_with_settings(&config.db, &[store::contacts::WORD_SIMILARITY_THRESHOLD])?;
        if config.auto_migrate {
            rapport_kit::db::migrate(&pool, &config.db.schema, &MIGRATIONS).await?;
        }
        let redis = Redis::connect(&config.redis)?;
        let (background, background_shutdown) = shutdown::channel();
        let caches = cache::Caches::new(&config.cache, redis, &background_shutdown);
        let feed =
            Feed::start(pool.clone(), &config.db.schema, config.watch_heartbeat, background_shutdown.clone());
        changelog::spawn_pruner(
            pool.clone(),
            config.change_log_retention,
            std::time::Duration::from_secs(600),
            background_shutdown.clone(),
        );
        let api = api::Api::new(api::State { pool: pool.clone(), caches: caches.clone(), feed });
        let listener = server::bind(config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(server::bind(addr).await.context("metrics endpoint (CONTACTS_METRICS_ADDR)")?),
            None => None,
        };
        Ok(App {
            listener,
            metrics_listener,
            metrics: Metrics::new(),
            config,
            pool,
            api,
            caches,
            background,
            background_shutdown,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Where `/metrics` is served (the real port when configured with port
    /// 0); `None` when `CONTACTS_METRICS_ADDR` is `off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The service's metrics registry (to register more families).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The service's caches (for tests and metrics).
    pub fn caches(&self) -> cache::Caches {
        self.caches.clone()
    }

    /// Serves until `shutdown`, then drains in-flight calls.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let verifier = Verifier::new(self.config.auth.clone()).context("authentication settings")?;
        let auth = AuthLayer::new(verifier, vec![policy::policy()]);
        let addr = self.local_addr();
        let max = self.config.server.max_message_bytes;
        let routes = tonic::service::Routes::new(
            ContactServiceServer::new(self.api).max_decoding_message_size(max).max_encoding_message_size(max),
        );
        let readiness = rapport_kit::db::readiness(&self.pool, &MIGRATIONS);
        let served = Served {
            routes,
            service_names: vec![SERVICE_NAME],
            auth,
            readiness,
            metrics: self.metrics,
            admin_listener: self.metrics_listener,
            web: None,
        };
        tracing::info!(%addr, "contacts serving");
        let result = server::serve_with_background(
            self.listener,
            &self.config.server,
            served,
            shutdown,
            self.background,
        )
        .await;
        drop(self.background_shutdown);
        self.pool.close().await;
        result
    }
}

/// Applies the Contacts migrations (for `rapport migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = rapport_kit::db::pool(&config.db)?;
    rapport_kit::db::migrate(&pool, &config.db.schema, &MIGRATIONS).await?;
    pool.close().await;
    Ok(())
}
