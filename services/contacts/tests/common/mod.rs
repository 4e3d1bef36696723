//! The test harness: a real Contacts server on a free port over a fresh
//! database and real Redis, and authenticated clients for it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use rapport_contacts::{App, Config};
use rapport_kit::auth::Role;
use rapport_kit::config::Env;
use rapport_kit::shutdown::{self, Trigger};
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A client whose calls carry a bearer token.
pub type Client = ContactServiceClient<
    InterceptedService<
        Channel,
        Box<
            dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>
                + Send
                + Sync,
        >,
    >,
>;

/// A running server and what it runs on.
pub struct TestApp {
    pub addr: SocketAddr,
    pub database_url: String,
    pub caches: rapport_contacts::cache::Caches,
    trigger: Trigger,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    _database: Option<TestDatabase>,
}

/// Settings for [`TestApp::spawn_with`].
pub struct Options {
    /// Extra environment pairs.
    pub env: Vec<(String, String)>,
    /// Reuse this database (a second "replica") instead of a fresh one.
    pub database_url: Option<String>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            env: Vec::new(),
            database_url: None,
        }
    }
}

impl TestApp {
    /// A server over a fresh database and the shared Redis.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    /// A server with `options`.
    pub async fn spawn_with(options: Options) -> TestApp {
        let (database, database_url) = match options.database_url {
            Some(url) => (None, url),
            None => {
                let database = TestDatabase::create().await.expect("test database");
                let url = database.url.clone();
                (Some(database), url)
            }
        };
        let mut env = Env::from_pairs([])
            .with("DATABASE_URL", database_url.clone())
            .with("DATABASE_MAX_CONNECTIONS", "8")
            .with("REDIS_URL", testing::redis_url())
            .with("CONTACTS_ADDR", "127.0.0.1:0")
            .with("WATCH_HEARTBEAT", "200ms")
            .with("SHUTDOWN_GRACE", "2s");
        for (name, value) in &options.env {
            env = env.with(name, value.clone());
        }
        let config = Config::from_env(&env).expect("config");
        let app = App::build(config).await.expect("app builds");
        let addr = app.local_addr();
        let caches = app.caches();
        let (trigger, shutdown) = shutdown::channel();
        let server = tokio::spawn(app.run_until(shutdown));
        TestApp {
            addr,
            database_url,
            caches,
            trigger,
            server,
            _database: database,
        }
    }

    /// A client acting as `subject` with `roles`.
    pub async fn client_as(&self, subject: &str, roles: &[Role]) -> Client {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy();
        let header: tonic::metadata::MetadataValue<_> =
            format!("Bearer {}", testing::token(subject, roles))
                .parse()
                .unwrap();
        let interceptor: Box<
            dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>
                + Send
                + Sync,
        > = Box::new(move |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", header.clone());
            Ok(request)
        });
        ContactServiceClient::with_interceptor(channel, interceptor)
    }

    /// A client acting as an admin.
    pub async fn client(&self) -> Client {
        self.client_as("admin-1", &[Role::Admin]).await
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> ContactServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy();
        ContactServiceClient::new(channel)
    }

    /// A raw channel (health, reflection).
    pub fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect_lazy()
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(self) {
        self.trigger.fire();
        self.server.await.unwrap().unwrap();
    }
}

/// A contact with the required fields.
pub fn contact(given_name: &str, email: &str) -> rapport_proto::contacts::v1::Contact {
    rapport_proto::contacts::v1::Contact {
        given_name: given_name.into(),
        family_name: "Tester".into(),
        email: email.into(),
        ..Default::default()
    }
}

/// A unique email for this test run.
pub fn unique_email(stem: &str) -> String {
    format!("{stem}-{}@example.com", uuid::Uuid::now_v7().simple())
}

/// The google.rpc details of a status.
pub fn details(status: &tonic::Status) -> tonic_types::ErrorDetails {
    use tonic_types::StatusExt;
    status.get_error_details()
}

/// The ErrorInfo reason of a status.
pub fn reason(status: &tonic::Status) -> String {
    details(status)
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

/// The BadRequest field names of a status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    details(status)
        .bad_request()
        .map(|bad| {
            bad.field_violations
                .iter()
                .map(|v| v.field.clone())
                .collect()
        })
        .unwrap_or_default()
}
