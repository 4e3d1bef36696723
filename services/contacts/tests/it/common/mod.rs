//! The test harness: a real Contacts server on a free port over a fresh
//! database and real Redis, and authenticated clients for it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::time::Duration;

use rapport_contacts::Config;
use rapport_kit::auth::Role;
use rapport_kit::db::DbConfig;
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::contacts::v1::activity_service_client::ActivityServiceClient;
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::lifecycle_service_client::LifecycleServiceClient;
use rapport_proto::contacts::v1::{
    Company, Contact, CreateCompanyRequest, CreateContactRequest, GetCompanyRequest, GetContactRequest,
    ListContactsRequest,
};
use sqlx::PgPool;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A client whose calls carry a bearer token. Cheap to clone.
pub type Client = ContactServiceClient<InterceptedService<Channel, Bearer>>;

pub use rapport_kit::testing::Bearer;

/// A running server and what it runs on.
pub struct TestApp {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub database_url: String,
    pub caches: rapport_contacts::cache::Caches,
    server: testing::Running,
    _database: Option<TestDatabase>,
}

/// Settings for [`TestApp::spawn_with`].
#[derive(Default)]
pub struct Options {
    /// Extra environment pairs.
    pub env: Vec<(String, String)>,
    /// Reuse this database (a second "replica") instead of a fresh one.
    pub database_url: Option<String>,
    /// The clock (the system's by default).
    pub now: Option<rapport_contacts::Now>,
}

/// A client of the ActivityService carrying a bearer token.
pub type Activities = ActivityServiceClient<InterceptedService<Channel, Bearer>>;
/// A client of the LifecycleService carrying a bearer token.
pub type Lifecycle = LifecycleServiceClient<InterceptedService<Channel, Bearer>>;

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
                let database = TestDatabase::migrated(&[("contacts", &rapport_contacts::MIGRATIONS)])
                    .await
                    .expect("test database");
                let url = database.url.clone();
                (Some(database), url)
            }
        };
        let mut env = testing::service_env(&rapport_contacts::SPEC, &database_url)
            .with("CONTACTS_METRICS_ADDR", "127.0.0.1:0")
            .with("CONTACTS_PIPELINE_ADDR", "off")
            .with("CONTACTS_SUPPORT_ADDR", "off");
        for (name, value) in &options.env {
            env = env.with(name, value.clone());
        }
        let mut config = Config::from_env(&env).expect("config");
        if let Some(now) = options.now {
            config = config.with_now(now);
        }
        let (server, caches) = testing::serve(rapport_contacts::build(config).await.expect("app builds"));
        TestApp {
            addr: server.addr,
            metrics_addr: server.metrics_addr,
            database_url,
            caches,
            server,
            _database: database,
        }
    }

    /// A client acting as `subject` with `roles`.
    pub async fn client_as(&self, subject: &str, roles: &[Role]) -> Client {
        ContactServiceClient::with_interceptor(self.channel(), testing::bearer(subject, roles))
    }

    /// A client acting as `principal` (its teams included).
    pub fn client_for(&self, principal: &rapport_kit::auth::Principal) -> Client {
        ContactServiceClient::with_interceptor(self.channel(), testing::harness::bearer_for(principal))
    }

    /// An ActivityService client acting as `principal`.
    pub fn activities_for(&self, principal: &rapport_kit::auth::Principal) -> Activities {
        ActivityServiceClient::with_interceptor(self.channel(), testing::harness::bearer_for(principal))
    }

    /// An ActivityService client acting as `subject` with `roles`.
    pub fn activities_as(&self, subject: &str, roles: &[Role]) -> Activities {
        ActivityServiceClient::with_interceptor(self.channel(), testing::bearer(subject, roles))
    }

    /// A LifecycleService client acting as `principal`.
    pub fn lifecycle_for(&self, principal: &rapport_kit::auth::Principal) -> Lifecycle {
        LifecycleServiceClient::with_interceptor(self.channel(), testing::harness::bearer_for(principal))
    }

    /// A client acting as an admin.
    pub async fn client(&self) -> Client {
        self.client_as("admin-1", &[Role::Admin]).await
    }

    /// Polls until `sql`, a query of one boolean, is true in this app's
    /// database (a background job caught up).
    pub async fn until(&self, what: &str, sql: &'static str) {
        let pool = self.pool();
        testing::eventually(what, || async {
            sqlx::query_scalar::<_, bool>(sql).fetch_one(&pool).await.expect("a boolean query")
        })
        .await;
    }

    /// A client without credentials.
    pub fn anonymous(&self) -> ContactServiceClient<Channel> {
        ContactServiceClient::new(self.channel())
    }

    /// A raw channel (health, reflection).
    pub fn channel(&self) -> Channel {
        testing::harness::channel(self.addr)
    }

    /// A pool on this server's database, in the `contacts` schema.
    pub fn pool(&self) -> PgPool {
        rapport_kit::db::pool(&DbConfig {
            url: self.database_url.clone(),
            schema: "contacts".into(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(5),
            ..DbConfig::default()
        })
        .unwrap()
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(self) {
        self.server.stop().await;
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
    details(status).error_info().map(|info| info.reason.clone()).unwrap_or_default()
}

/// The BadRequest field names of a status.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    details(status)
        .bad_request()
        .map(|bad| bad.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The ErrorInfo metadata of a status.
pub fn error_metadata(status: &Status) -> HashMap<String, String> {
    details(status).error_info().map(|info| info.metadata.clone()).unwrap_or_default()
}

/// The ResourceInfo name of a status (the id it is about).
pub fn resource_name(status: &Status) -> String {
    details(status).resource_info().map(|info| info.resource_name.clone()).unwrap_or_default()
}

/// The error of a call that must fail; panics with the answer if it did not.
pub fn failure<T: Debug>(result: Result<tonic::Response<T>, Status>) -> Status {
    match result {
        Ok(response) => panic!("expected an error, got {:?}", response.into_inner()),
        Err(status) => status,
    }
}

/// An update mask naming `paths`.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|path| (*path).to_owned()).collect() })
}

/// Creates `contact` (no request_id); panics on failure.
pub async fn create(client: &mut Client, contact: Contact) -> Contact {
    client
        .create_contact(CreateContactRequest { contact: Some(contact), request_id: String::new() })
        .await
        .unwrap()
        .into_inner()
}

/// Reads one contact; panics on failure.
pub async fn get(client: &mut Client, id: &str) -> Contact {
    client.get_contact(GetContactRequest { id: id.into() }).await.unwrap().into_inner()
}

/// Reads one company; panics on failure.
pub async fn get_company(client: &mut Client, id: &str) -> Company {
    client.get_company(GetCompanyRequest { id: id.into() }).await.unwrap().into_inner()
}

/// Creates a company named `name` with `domain` (may be empty).
pub async fn create_company(client: &mut Client, name: &str, domain: &str) -> Company {
    client
        .create_company(CreateCompanyRequest {
            company: Some(Company { name: name.into(), domain: domain.into(), ..Default::default() }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every contact `request` selects, following page tokens; every page
/// but the last is full and only the last has no token.
pub async fn list_all(client: &mut Client, mut request: ListContactsRequest) -> Vec<Contact> {
    let mut contacts = Vec::new();
    for _ in 0..1000 {
        let page = client.list_contacts(request.clone()).await.unwrap().into_inner();
        let full = page.contacts.len() == usize::try_from(request.page_size).unwrap();
        contacts.extend(page.contacts);
        if page.next_page_token.is_empty() {
            return contacts;
        }
        assert!(full, "a page before the last is short");
        request.page_token = page.next_page_token;
    }
    panic!("more than 1000 pages");
}

/// The ids of `contacts`, in order.
pub fn ids(contacts: &[Contact]) -> Vec<String> {
    contacts.iter().map(|contact| contact.id.clone()).collect()
}

/// A principal with `roles` in `teams`.
pub fn principal(subject: &str, roles: &[Role], teams: &[&str]) -> rapport_kit::auth::Principal {
    rapport_kit::auth::Principal {
        subject: subject.into(),
        roles: roles.to_vec(),
        teams: teams.iter().map(|team| (*team).to_owned()).collect(),
    }
}

/// A clock tests move by hand: starts at `start`.
#[derive(Clone)]
pub struct ManualClock(std::sync::Arc<std::sync::Mutex<chrono::DateTime<chrono::Utc>>>);

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: chrono::DateTime<chrono::Utc>) -> ManualClock {
        ManualClock(std::sync::Arc::new(std::sync::Mutex::new(start)))
    }

    /// The service's view of it.
    pub fn now(&self) -> rapport_contacts::Now {
        let clock = self.0.clone();
        rapport_contacts::Now::from_fn(move || *clock.lock().unwrap())
    }

    /// Moves it to `time`.
    pub fn set(&self, time: chrono::DateTime<chrono::Utc>) {
        *self.0.lock().unwrap() = time;
    }
}
