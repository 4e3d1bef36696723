//! The Contacts service: people and the companies they work for, the one
//! customer record every department shares.
//!
//! - [`config`]: its settings (the kit's common ones, the task reminder
//!   settings, the clock).
//! - `api`: the tonic adapter (one file per resource).
//! - [`domain`]: validated fields and update rules; pure.
//! - [`store`]: all SQL; every write appends to the change log.
//! - [`model`]: stored records, what `store` returns and `convert` reads.
//! - [`convert`]: stored records to protobuf.
//! - [`cache`]: the two caches of hot records (kit's two-tier cache).
//! - [`error`]: its own error kinds beside the kit's common ones.
//! - [`policy`]: which roles may call which RPC, and who may change which
//!   contact, company and activity.
//! - [`workers`]: the task reminder sweep, the lead scorer, the search
//!   vocabulary's pruner and the phone keys of duplicate detection.
//! - [`feeds`]: follows Pipeline's and Support's change feeds into the
//!   timeline, deal-caused lifecycle moves and activity links.
//!
//! [`build`] starts it on the kit's service shell; the [`App`] serves
//! until shutdown.

mod api;
pub mod cache;
pub mod config;
pub mod convert;
pub mod domain;
pub mod error;
pub mod feeds;
pub mod model;
pub mod policy;
pub mod store;
pub mod workers;

use rapport_kit::service::{Ports, Shell, Spec};
use rapport_kit::worker::Periodic;
use rapport_proto::contacts::v1::activity_service_server::ActivityServiceServer;
use rapport_proto::contacts::v1::assignment_service_server::AssignmentServiceServer;
use rapport_proto::contacts::v1::consent_service_server::ConsentServiceServer;
use rapport_proto::contacts::v1::contact_service_server::ContactServiceServer;
use rapport_proto::contacts::v1::lifecycle_service_server::LifecycleServiceServer;
use rapport_proto::contacts::v1::scoring_service_server::ScoringServiceServer;

pub use config::{Config, Now};

/// The service's migrations (kit's tables are added by the shell).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What the kit knows of Contacts.
pub static SPEC: Spec = Spec {
    name: "contacts",
    migrations: &MIGRATIONS,
    db_settings: &[],
    ports: Ports { grpc: 50051, metrics: 9151 },
};

/// A built, bound, not yet serving Contacts service; it exposes its caches.
pub type App = rapport_kit::service::App<cache::Caches>;

/// Connects, migrates (when configured), and binds the listeners.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let shell = Shell::start(&SPEC, config.service.clone()).await?;
    let caches = cache::Caches::new(&shell.settings().cache, shell.redis()?, &shell.workers().shutdown());
    let reminders = workers::Reminders { feed: shell.feed(), config: config.clone() };
    shell.periodic(Periodic { name: workers::REMINDERS, every: config.reminder_interval }, reminders);
    let scorer = workers::Scorer {
        feed: shell.feed(),
        config: config.clone(),
        caches: caches.clone(),
        changed: cache::AfterCommit::default(),
    };
    shell.periodic(Periodic { name: workers::SCORER, every: config.scoring_interval }, scorer);
    shell.periodic(
        Periodic { name: workers::VOCABULARY, every: config.vocabulary_interval },
        workers::Vocabulary::default(),
    );
    let phone_keys = workers::PhoneKeys { region: config.phone_region };
    shell.periodic(Periodic { name: workers::PHONE_KEYS, every: config.phone_key_interval }, phone_keys);
    let following = feeds::Following {
        pool: shell.pool(),
        feed: shell.feed(),
        caches: caches.clone(),
        config: &config,
        metrics: &shell.metrics(),
        shutdown: shell.workers().shutdown(),
    };
    for consumer in feeds::spawn(following)? {
        shell.workers().keep_consumer(consumer);
    }
    let state = api::State { pool: shell.pool(), caches: caches.clone(), feed: shell.feed(), config };
    let api = api::Api { state: std::sync::Arc::new(state) };
    let routes = shell
        .routes()
        .serve(ContactServiceServer::new(api.clone()))
        .serve(ActivityServiceServer::new(api.clone()))
        .serve(LifecycleServiceServer::new(api.clone()))
        .serve(ScoringServiceServer::new(api.clone()))
        .serve(ConsentServiceServer::new(api.clone()))
        .serve(AssignmentServiceServer::new(api));
    Ok(shell.into_app(routes, policy::policies()).with(caches))
}

/// Applies the Contacts migrations (for `rapport migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    rapport_kit::service::migrate(&SPEC, &config.service).await
}
