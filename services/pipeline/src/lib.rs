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
//! - [`model`]: stored records, what `store` returns and `convert` reads.
//! - `convert`: stored records to their protobuf form (pipelines, products,
//!   deals, orders with invoices and payments, exchange rates and quotas, and
//!   forecast figures from the store's sums).
//! - [`error`]: the error enum and its mapping to gRPC statuses.
//! - [`policy`]: which roles may call which RPC.
//! - [`overdue`]: the worker marking invoices past their due date OVERDUE.
//!
//! [`build`] starts it on the kit's service shell; the [`App`] serves
//! until shutdown.

mod api;
pub mod config;
pub mod contacts;
pub mod contacts_feed;
mod convert;
pub mod domain;
pub mod error;
pub mod model;
pub mod overdue;
pub mod policy;
pub mod store;

use anyhow::Context as _;
use rapport_kit::service::{Ports, Shell, Spec};
use rapport_kit::worker::Periodic;
use rapport_proto::pipeline::v1::deal_service_server::DealServiceServer;
use rapport_proto::pipeline::v1::forecast_service_server::ForecastServiceServer;
use rapport_proto::pipeline::v1::order_service_server::OrderServiceServer;
use rapport_proto::pipeline::v1::pipeline_service_server::PipelineServiceServer;
use rapport_proto::pipeline::v1::product_service_server::ProductServiceServer;

pub use config::Config;

/// The service's migrations (kit's tables are added by the shell).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

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

/// What the kit knows of Pipeline.
pub static SPEC: Spec = Spec {
    name: "pipeline",
    migrations: &MIGRATIONS,
    db_settings: DB_SETTINGS,
    ports: Ports { grpc: 50052, metrics: 9152 },
};

/// A built, bound, not yet serving Pipeline service.
pub type App = rapport_kit::service::App;

/// Connects, migrates (when configured), creates the default pipeline, and
/// binds the listeners.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let shell = Shell::start(&SPEC, config.service.clone()).await?;
    store::pipelines::ensure_defaults(&shell.pool()).await.context("creating the default pipeline")?;
    let overdue = overdue::Overdue { feed: shell.feed() };
    shell.periodic(Periodic { name: overdue::NAME, every: config.overdue_interval }, overdue);
    let contacts = contacts::Contacts::new(&config.contacts, contacts_feed::identity(&config)?)?;
    let consumer = contacts_feed::spawn(
        shell.pool(),
        contacts.clone(),
        shell.feed(),
        &shell.metrics(),
        shell.workers().shutdown(),
    );
    if let Some(consumer) = consumer {
        shell.workers().keep_consumer(consumer);
    }
    let state = api::State { pool: shell.pool(), feed: shell.feed(), config, contacts };
    let api = api::Api { state: std::sync::Arc::new(state) };
    let routes = shell
        .routes()
        .serve(PipelineServiceServer::new(api.clone()))
        .serve(DealServiceServer::new(api.clone()))
        .serve(ProductServiceServer::new(api.clone()))
        .serve(ForecastServiceServer::new(api.clone()))
        .serve(OrderServiceServer::new(api));
    Ok(shell.into_app(routes, policy::policies()))
}

/// Applies the Pipeline migrations (for `rapport migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    rapport_kit::service::migrate(&SPEC, &config.service).await
}
