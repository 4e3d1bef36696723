//! The test harness: a real Pipeline server, with a real Contacts server
//! beside it (references are checked there), over one fresh database and
//! real Redis, and authenticated clients for both.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use rapport_kit::auth::Role;
use rapport_kit::config::Env;
use rapport_kit::db::DbConfig;
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::pipeline::v1::deal_service_client::DealServiceClient;
use rapport_proto::pipeline::v1::forecast_service_client::ForecastServiceClient;
use rapport_proto::pipeline::v1::order_service_client::OrderServiceClient;
use rapport_proto::pipeline::v1::pipeline_service_client::PipelineServiceClient;
use rapport_proto::pipeline::v1::product_service_client::ProductServiceClient;
use sqlx::PgPool;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use rapport_kit::testing::{Bearer, Running};

/// A channel whose calls carry a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Clients of every Pipeline service (and of Contacts), acting as one
/// principal. Cheap to clone.
#[derive(Clone)]
pub struct Clients {
    pub pipelines: PipelineServiceClient<Authed>,
    pub deals: DealServiceClient<Authed>,
    pub products: ProductServiceClient<Authed>,
    pub forecasts: ForecastServiceClient<Authed>,
    pub orders: OrderServiceClient<Authed>,
    pub contacts: ContactServiceClient<Authed>,
}

/// Settings for [`TestApp::spawn_with`].
#[derive(Default)]
pub struct Options {
    /// Extra environment pairs for the Pipeline service.
    pub env: Vec<(String, String)>,
}

/// A Pipeline server and the Contacts server it checks references with.
pub struct TestApp {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub database_url: String,
    pub contacts: Running,
    server: Option<Running>,
    _database: TestDatabase,
}

/// The environment both servers share.
pub fn base_env(database_url: &str) -> Env {
    testing::service_env(&rapport_pipeline::SPEC, database_url)
        .with("CONTACTS_ADDR", "127.0.0.1:0")
        .with("CONTACTS_METRICS_ADDR", "off")
        .with("PIPELINE_METRICS_ADDR", "127.0.0.1:0")
        // Contacts follows no Pipeline or Support here (nothing else's
        // default ports are followed by a test).
        .with("CONTACTS_PIPELINE_ADDR", "off")
        .with("CONTACTS_SUPPORT_ADDR", "off")
}

/// Starts a Contacts server on `database_url`.
pub async fn start_contacts(database_url: &str) -> Running {
    let config = rapport_contacts::Config::from_env(&base_env(database_url)).unwrap();
    testing::serve(rapport_contacts::build(config).await.unwrap()).0
}

impl TestApp {
    /// Contacts and Pipeline over a fresh database and the shared Redis.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// Contacts and Pipeline with `options`.
    pub async fn spawn_with(options: Options) -> TestApp {
        let database = TestDatabase::migrated(&[
            ("contacts", &rapport_contacts::MIGRATIONS),
            ("pipeline", &rapport_pipeline::MIGRATIONS),
        ])
        .await
        .expect("test database");
        let database_url = database.url.clone();
        let contacts = start_contacts(&database_url).await;
        let mut env = base_env(&database_url);
        for (name, value) in &options.env {
            env = env.with(name, value.clone());
        }
        let config = rapport_pipeline::Config::from_env(&env).expect("config").with_contacts(contacts.addr);
        let (server, ()) = testing::serve(rapport_pipeline::build(config).await.expect("app builds"));
        TestApp {
            addr: server.addr,
            metrics_addr: server.metrics_addr,
            database_url,
            contacts,
            server: Some(server),
            _database: database,
        }
    }

    /// Clients acting as `subject` with `roles`.
    pub fn clients_as(&self, subject: &str, roles: &[Role]) -> Clients {
        self.clients_for(&rapport_kit::auth::Principal::new(subject, roles.to_vec()))
    }

    /// Clients acting as `principal` (its teams included).
    pub fn clients_for(&self, principal: &rapport_kit::auth::Principal) -> Clients {
        let bearer = testing::harness::bearer_for(principal);
        let channel =
            |addr: SocketAddr| InterceptedService::new(testing::harness::channel(addr), bearer.clone());
        Clients {
            pipelines: PipelineServiceClient::new(channel(self.addr)),
            deals: DealServiceClient::new(channel(self.addr)),
            products: ProductServiceClient::new(channel(self.addr)),
            forecasts: ForecastServiceClient::new(channel(self.addr)),
            orders: OrderServiceClient::new(channel(self.addr)),
            contacts: ContactServiceClient::new(channel(self.contacts.addr)),
        }
    }

    /// Clients acting as an admin.
    pub fn clients(&self) -> Clients {
        self.clients_as("admin-1", &[Role::Admin])
    }

    /// A raw channel to the Pipeline server (health, reflection).
    pub fn channel(&self) -> Channel {
        testing::harness::channel(self.addr)
    }

    /// A pool on the database, in the `pipeline` schema.
    pub fn pool(&self) -> PgPool {
        let config = DbConfig::from_env(&base_env(&self.database_url), "pipeline").unwrap();
        rapport_kit::db::pool(&config).unwrap()
    }

    /// Stops both servers and waits for them.
    pub async fn stop(self) {
        if let Some(server) = self.server {
            server.stop().await;
        }
        self.contacts.stop().await;
    }
}

/// The `google.rpc.ErrorInfo` reason of a failed call.
pub fn reason(status: &Status) -> String {
    use tonic_types::StatusExt;
    status.get_details_error_info().map(|info| info.reason).unwrap_or_default()
}

/// The `BadRequest` field paths of a failed call.
pub fn violated_fields(status: &Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|bad| bad.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

impl TestApp {
    /// Stops the Pipeline server and starts a new one on the same database
    /// (and the same Contacts), with the base environment (not the
    /// `Options` it was spawned with). The address changes.
    pub async fn restart_pipeline(&mut self) {
        self.stop_pipeline().await;
        self.start_pipeline().await;
    }

    /// Stops the Pipeline server (Contacts runs on); start it again with
    /// [`TestApp::start_pipeline`] before anything else.
    pub async fn stop_pipeline(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }

    /// Starts a Pipeline server after [`TestApp::stop_pipeline`].
    pub async fn start_pipeline(&mut self) {
        let env = base_env(&self.database_url);
        let config =
            rapport_pipeline::Config::from_env(&env).expect("config").with_contacts(self.contacts.addr);
        let (server, ()) = testing::serve(rapport_pipeline::build(config).await.expect("app builds"));
        self.addr = server.addr;
        self.metrics_addr = server.metrics_addr;
        self.server = Some(server);
    }

    /// A pool on the Contacts service's schema.
    pub fn contacts_pool(&self) -> PgPool {
        let config = DbConfig::from_env(&base_env(&self.database_url), "contacts").unwrap();
        rapport_kit::db::pool(&config).unwrap()
    }
}
