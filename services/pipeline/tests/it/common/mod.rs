//! The test harness: a real Pipeline server, with a real Contacts server
//! beside it (references are checked there), over one fresh database and
//! real Redis, and authenticated clients for both.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use rapport_kit::auth::Role;
use rapport_kit::config::Env;
use rapport_kit::db::DbConfig;
use rapport_kit::shutdown::{self, Trigger};
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

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

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

/// A running server (Pipeline or Contacts).
pub struct Running {
    pub addr: SocketAddr,
    trigger: Trigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.trigger.fire();
        self.task.await.unwrap().unwrap();
    }
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
    trigger: Trigger,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _database: TestDatabase,
}

/// The environment both servers share.
pub fn base_env(database_url: &str) -> Env {
    Env::from_pairs([])
        .with("DATABASE_URL", database_url)
        .with("DATABASE_MAX_CONNECTIONS", "8")
        .with("REDIS_URL", testing::redis_url())
        .with("CONTACTS_ADDR", "127.0.0.1:0")
        .with("CONTACTS_METRICS_ADDR", "off")
        .with("PIPELINE_ADDR", "127.0.0.1:0")
        .with("PIPELINE_METRICS_ADDR", "127.0.0.1:0")
        .with("WATCH_HEARTBEAT", "200ms")
        .with("SHUTDOWN_GRACE", "2s")
}

/// Starts a Contacts server on `database_url`.
pub async fn start_contacts(database_url: &str) -> Running {
    let config = rapport_contacts::Config::from_env(&base_env(database_url)).unwrap();
    let app = rapport_contacts::build(config).await.unwrap();
    let addr = app.local_addr();
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(app.run_until(shutdown));
    Running { addr, trigger, task }
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
        let app = rapport_pipeline::build(config).await.expect("app builds");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let (trigger, shutdown) = shutdown::channel();
        let server = tokio::spawn(app.run_until(shutdown));
        TestApp { addr, metrics_addr, database_url, contacts, trigger, server, _database: database }
    }

    /// Clients acting as `subject` with `roles`.
    pub fn clients_as(&self, subject: &str, roles: &[Role]) -> Clients {
        let header: tonic::metadata::MetadataValue<_> =
            format!("Bearer {}", testing::token(subject, roles)).parse().unwrap();
        let channel = |addr: SocketAddr| {
            let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
            InterceptedService::new(channel, Bearer(header.clone()))
        };
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
        Channel::from_shared(format!("http://{}", self.addr)).unwrap().connect_lazy()
    }

    /// A pool on the database, in the `pipeline` schema.
    pub fn pool(&self) -> PgPool {
        let config = DbConfig::from_env(&base_env(&self.database_url), "pipeline").unwrap();
        rapport_kit::db::pool(&config).unwrap()
    }

    /// Stops both servers and waits for them.
    pub async fn stop(self) {
        self.trigger.fire();
        self.server.await.unwrap().unwrap();
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
        self.trigger.fire();
        (&mut self.server).await.unwrap().unwrap();
    }

    /// Starts a Pipeline server after [`TestApp::stop_pipeline`].
    pub async fn start_pipeline(&mut self) {
        let env = base_env(&self.database_url);
        let config =
            rapport_pipeline::Config::from_env(&env).expect("config").with_contacts(self.contacts.addr);
        let app = rapport_pipeline::build(config).await.expect("app builds");
        self.addr = app.local_addr();
        self.metrics_addr = app.metrics_addr();
        let (trigger, shutdown) = shutdown::channel();
        self.trigger = trigger;
        self.server = tokio::spawn(app.run_until(shutdown));
    }

    /// A pool on the Contacts service's schema.
    pub fn contacts_pool(&self) -> PgPool {
        let config = DbConfig::from_env(&base_env(&self.database_url), "contacts").unwrap();
        rapport_kit::db::pool(&config).unwrap()
    }
}
