//! The Pipeline service: pipelines and stages, deals with their buying
//! committees and line items, products, forecasts, and the order → invoice
//! → payment loop with ERP systems.
//!
//! - [`config`]: typed configuration from the environment.
//! - [`contacts`]: the Contacts client that checks deal references.
//! - [`contacts_feed`]: follows Contacts' change feed; drops deleted
//!   companies and contacts from deals.
//! - `api`: the tonic adapter (one file per gRPC service).
//! - [`domain`]: validated types and rules; pure.
//! - [`store`]: all SQL; every write appends to the change log.
//! - `convert`: stored records to their protobuf form (pipelines, products,
//!   deals, orders with invoices and payments, exchange rates and quotas, and
//!   forecast figures from the store's sums).
//! - [`error`]: the error enum and its mapping to gRPC statuses.
//! - [`policy`]: which roles may call which RPC.
//! - [`overdue`]: the worker marking invoices past their due date OVERDUE.
//!
//! [`App::build`] binds the listeners (gRPC and metrics, so tests can use
//! port 0) and [`App::run_until`] serves until shutdown.

mod api;
pub mod config;
pub mod contacts;
pub mod contacts_feed;
mod convert;
pub mod domain;
pub mod error;
pub mod overdue;
pub mod policy;
pub mod store;

use std::net::SocketAddr;

use anyhow::Context;
use rapport_kit::auth::{AuthLayer, Verifier};
use rapport_kit::changelog::{self, Feed};
use rapport_kit::consumer::ConsumerHandle;
use rapport_kit::metrics::Metrics;
use rapport_kit::server::{self, Served};
use rapport_kit::shutdown::{self, Shutdown, Trigger};
use rapport_proto::pipeline::v1::deal_service_server::DealServiceServer;
use rapport_proto::pipeline::v1::forecast_service_server::ForecastServiceServer;
use rapport_proto::pipeline::v1::order_service_server::OrderServiceServer;
use rapport_proto::pipeline::v1::pipeline_service_server::PipelineServiceServer;
use rapport_proto::pipeline::v1::product_service_server::ProductServiceServer;
use sqlx::PgPool;
use tokio::net::TcpListener;

pub use config::Config;

/// The fully-qualified gRPC service names this service serves.
pub const SERVICE_NAMES: [&str; 5] = [
    "rapport.pipeline.v1.PipelineService",
    "rapport.pipeline.v1.DealService",
    "rapport.pipeline.v1.ProductService",
    "rapport.pipeline.v1.ForecastService",
    "rapport.pipeline.v1.OrderService",
];

/// The service's migrations (kit's tables are added by `rapport_kit::db`).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A built, bound, not yet serving Pipeline service.
pub struct App {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    metrics: Metrics,
    config: Config,
    pool: PgPool,
    api: api::Api,
    background: Trigger,
    background_shutdown: Shutdown,
    contacts_feed: Option<ConsumerHandle>,
}

/// Run-time parameters of every service connection.
///
/// Generic plans: the service's statements are prepared once per
/// connection, and PostgreSQL otherwise re-plans a statement whose generic
/// plan it costs above its custom ones on every execution. ListDeals with
/// a buying-committee filter (Customer 360's open deals) is one: the
/// generic estimate of `contact_ids @> ARRAY[$n]` is 0.5 % of the deals,
/// so each call planned for ~0.2 ms to execute for 0.05 ms with the same
/// plan. Planning was a third of PostgreSQL's CPU under Customer 360 load;
/// forcing generic plans took it from ~1,600 to ~2,300 views/s. A generic
/// plan differs only where its estimate is the more pessimistic one, so
/// it picks the safer plan (bitmap scans and a sort) there; the forecast,
/// whose ranges do depend on the values, asks for custom plans in its own
/// transaction ([`store::forecasts::read_only`]).
const DB_SETTINGS: &[(&str, &str)] = &[("plan_cache_mode", "force_generic_plan")];

impl App {
    /// Connects, migrates (when configured), and binds the listeners.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let pool = rapport_kit::db::pool_with_settings(&config.db, DB_SETTINGS)?;
        if config.auto_migrate {
            rapport_kit::db::migrate(&pool, &config.db.schema, &MIGRATIONS).await?;
        }
        store::pipelines::ensure_defaults(&pool).await.context("creating the default pipeline")?;
        let (background, background_shutdown) = shutdown::channel();
        let feed =
            Feed::start(pool.clone(), &config.db.schema, config.watch_heartbeat, background_shutdown.clone());
        changelog::spawn_pruner(
            pool.clone(),
            config.change_log_retention,
            std::time::Duration::from_secs(600),
            background_shutdown.clone(),
        );
        overdue::spawn(pool.clone(), feed.clone(), config.overdue_interval, background_shutdown.clone());
        let contacts = contacts::Contacts::new(&config.contacts_addr)?;
        let metrics = Metrics::new();
        let contacts_feed = contacts_feed::spawn(
            pool.clone(),
            &config,
            contacts.clone(),
            feed.clone(),
            &metrics,
            background_shutdown.clone(),
        )?;
        let api = api::Api::new(api::State { pool: pool.clone(), feed, config: config.clone(), contacts });
        let listener = server::bind(config.listen).await?;
        let metrics_listener = match config.metrics_listen {
            Some(addr) => Some(server::bind(addr).await.context("metrics endpoint (PIPELINE_METRICS_ADDR)")?),
            None => None,
        };
        Ok(App {
            listener,
            metrics_listener,
            metrics,
            config,
            pool,
            api,
            background,
            background_shutdown,
            contacts_feed,
        })
    }

    /// The bound address (the real port when configured with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Where `/metrics` is served; `None` when `PIPELINE_METRICS_ADDR` is `off`.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok())
    }

    /// The service's metrics registry (to register more families).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Serves until `shutdown`, then drains in-flight calls.
    pub async fn run_until(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let verifier = Verifier::new(self.config.auth.clone()).context("authentication settings")?;
        let auth = AuthLayer::new(verifier, policy::policies());
        let addr = self.local_addr();
        let max = self.config.server.max_message_bytes;
        let routes = tonic::service::Routes::new(
            PipelineServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            DealServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ProductServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            ForecastServiceServer::new(self.api.clone())
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            OrderServiceServer::new(self.api).max_decoding_message_size(max).max_encoding_message_size(max),
        );
        let readiness = rapport_kit::db::readiness(&self.pool, &MIGRATIONS);
        let served = Served {
            routes,
            service_names: SERVICE_NAMES.to_vec(),
            auth,
            readiness,
            metrics: self.metrics,
            admin_listener: self.metrics_listener,
            web: None,
        };
        tracing::info!(%addr, "pipeline serving");
        let result = server::serve_with_background(
            self.listener,
            &self.config.server,
            served,
            shutdown,
            self.background,
        )
        .await;
        // The consumer lets its lease go before the pool closes, so a
        // replica (or this service restarted) takes over at once.
        if let Some(consumer) = self.contacts_feed {
            consumer.stopped().await;
        }
        drop(self.background_shutdown);
        self.pool.close().await;
        result
    }
}

/// Applies the Pipeline migrations (for `rapport migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    let pool = rapport_kit::db::pool(&config.db)?;
    rapport_kit::db::migrate(&pool, &config.db.schema, &MIGRATIONS).await?;
    pool.close().await;
    Ok(())
}
