//! The Support service: cases with SLA clocks on business-hours calendars,
//! public replies and internal notes, and the agent queue.
//!
//! - [`config`]: typed configuration from the environment, and the time
//!   source (injectable, so tests walk cases across weekends and DST).
//! - [`contacts`]: the Contacts client that checks requesters and companies.
//! - [`contacts_feed`]: follows Contacts' change feed: deleted requesters marked, deleted companies dropped.
//! - `api`: the tonic adapter (one file per gRPC service).
//! - [`domain`]: calendars, SLA clocks and policies, case and comment
//!   rules; pure.
//! - [`store`]: all SQL; every write appends to the change log.
//! - [`model`]: stored records, what `store` returns and `convert` reads.
//! - `convert`: stored records to their protobuf form.
//! - [`error`]: the service's refusals.
//! - [`mail`]: mail out over SMTP (lettre).
//! - [`policy`]: who may call which RPC, and who may change which case.
//! - [`workers`]: the SLA sweeper.
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
pub mod mail;
pub mod model;
pub mod policy;
pub mod store;
pub mod workers;

use rapport_kit::ratelimit::RateLimiter;
use rapport_kit::service::{Ports, Shell, Spec};
use rapport_kit::worker::Periodic;
use rapport_proto::support::v1::assignment_service_server::AssignmentServiceServer;
use rapport_proto::support::v1::case_service_server::CaseServiceServer;
use rapport_proto::support::v1::knowledge_service_server::KnowledgeServiceServer;
use rapport_proto::support::v1::satisfaction_service_server::SatisfactionServiceServer;
use rapport_proto::support::v1::sla_service_server::SlaServiceServer;

pub use config::{Config, Now};

/// The service's migrations (kit's tables are added by the shell).
pub static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What the kit knows of Support.
pub static SPEC: Spec = Spec {
    name: "support",
    migrations: &MIGRATIONS,
    db_settings: &[],
    ports: Ports { grpc: 50053, metrics: 9153 },
};

/// A built, bound, not yet serving Support service.
pub type App = rapport_kit::service::App;

/// Connects, migrates (when configured), and binds the listeners.
pub async fn build(config: Config) -> anyhow::Result<App> {
    let shell = Shell::start(&SPEC, config.service.clone()).await?;
    let sweeper = workers::Sweeper {
        feed: shell.feed(),
        now: config.now.clone(),
        prefix: config.case_number_prefix.clone(),
    };
    shell.periodic(Periodic { name: workers::SWEEPER, every: config.sweep_interval }, sweeper);
    if let Some(settings) = &config.mail {
        let sender = workers::MailSender { mailer: mail::Mailer::new(settings)?, now: config.now.clone() };
        shell.periodic(Periodic { name: workers::MAIL_SENDER, every: config.mail_interval }, sender);
    }
    let identity = rapport_kit::peer::Identity::of(
        &config.contacts,
        &config.service.auth,
        contacts_feed::SUBJECT,
        &[rapport_kit::auth::Role::Integration],
    )?;
    let contacts = contacts::Contacts::new(&config.contacts, identity)?;
    let consumer = contacts_feed::spawn(
        shell.pool(),
        contacts.clone(),
        shell.feed(),
        config.clone(),
        &shell.metrics(),
        shell.workers().shutdown(),
    );
    if let Some(consumer) = consumer {
        shell.workers().keep_consumer(consumer);
    }
    let survey_limiter = match shell.redis()? {
        Some(redis) => RateLimiter::new(redis, config.survey_rate),
        None => RateLimiter::local(config.survey_rate),
    };
    let survey_namespace = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(format!("{}|{}", config.service.db.url, config.service.db.schema));
        digest.iter().take(6).map(|byte| format!("{byte:02x}")).collect()
    };
    let state = api::State {
        pool: shell.pool(),
        feed: shell.feed(),
        config,
        contacts,
        survey_limiter,
        survey_namespace,
        sla: store::sla::SlaCache::default(),
    };
    let api = api::Api { state: std::sync::Arc::new(state) };
    let routes = shell
        .routes()
        .serve(CaseServiceServer::new(api.clone()))
        .serve(SlaServiceServer::new(api.clone()))
        .serve(AssignmentServiceServer::new(api.clone()))
        .serve(SatisfactionServiceServer::new(api.clone()))
        .serve(KnowledgeServiceServer::new(api));
    Ok(shell.into_app(routes, policy::policies()))
}

/// Applies the Support migrations (for `rapport migrate`).
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    rapport_kit::service::migrate(&SPEC, &config.service).await
}
