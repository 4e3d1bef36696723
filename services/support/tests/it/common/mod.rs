//! The test harness: a real Support server with a real Contacts server
//! beside it (requesters are checked there), over one fresh database and
//! real Redis; a clock the test moves; and authenticated clients.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rapport_kit::auth::{Principal, Role};
use rapport_kit::config::Env;
use rapport_kit::db::DbConfig;
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use rapport_proto::contacts::v1::{Contact, CreateContactRequest};
use rapport_proto::support::v1::assignment_service_client::AssignmentServiceClient;
use rapport_proto::support::v1::case_service_client::CaseServiceClient;
use rapport_proto::support::v1::knowledge_service_client::KnowledgeServiceClient;
use rapport_proto::support::v1::satisfaction_service_client::SatisfactionServiceClient;
use rapport_proto::support::v1::sla_service_client::SlaServiceClient;
use rapport_proto::support::v1::{Case, CreateCaseRequest};
use sqlx::PgPool;
use tonic::Status;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub mod smtp;

pub use rapport_kit::testing::{Bearer, Running};

/// A channel whose calls carry a bearer token.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Clients of Support (and of Contacts), acting as one principal.
#[derive(Clone)]
pub struct Clients {
    pub cases: CaseServiceClient<Authed>,
    pub sla: SlaServiceClient<Authed>,
    pub assignment: AssignmentServiceClient<Authed>,
    pub satisfaction: SatisfactionServiceClient<Authed>,
    pub knowledge: KnowledgeServiceClient<Authed>,
    pub contacts: ContactServiceClient<Authed>,
}

/// The time the service reads, moved by the test.
#[derive(Clone)]
pub struct TestTime(Arc<Mutex<DateTime<Utc>>>);

impl TestTime {
    /// A clock standing at `at` (RFC 3339).
    pub fn at(at: &str) -> TestTime {
        TestTime(Arc::new(Mutex::new(utc(at))))
    }

    /// Moves the clock to `at`.
    pub fn set(&self, at: &str) {
        *self.0.lock().unwrap() = utc(at);
    }

    /// The current reading.
    pub fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    fn source(&self) -> rapport_support::Now {
        let time = self.0.clone();
        rapport_support::Now::from_fn(move || *time.lock().unwrap())
    }
}

pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

/// A Support server and the Contacts server it checks requesters with.
pub struct TestApp {
    pub addr: SocketAddr,
    pub database_url: String,
    pub contacts: Running,
    pub time: TestTime,
    server: Option<Running>,
    _database: TestDatabase,
}

/// The environment both servers share.
pub fn base_env(database_url: &str) -> Env {
    testing::service_env(&rapport_support::SPEC, database_url)
        .with("CONTACTS_ADDR", "127.0.0.1:0")
        .with("CONTACTS_METRICS_ADDR", "off")
        // Contacts follows no Pipeline or Support here (nothing else's
        // default ports are followed by a test).
        .with("CONTACTS_PIPELINE_ADDR", "off")
        .with("CONTACTS_SUPPORT_ADDR", "off")
}

impl TestApp {
    /// Contacts and Support over a fresh database, the clock at Monday
    /// 2026-05-04 09:00 UTC.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// Contacts and Support with extra environment pairs for Support.
    pub async fn spawn_with(env: &[(&str, &str)]) -> TestApp {
        let database = TestDatabase::migrated(&[
            ("contacts", &rapport_contacts::MIGRATIONS),
            ("support", &rapport_support::MIGRATIONS),
        ])
        .await
        .expect("test database");
        let database_url = database.url.clone();
        let config = rapport_contacts::Config::from_env(&base_env(&database_url)).unwrap();
        let contacts = testing::serve(rapport_contacts::build(config).await.unwrap()).0;
        let time = TestTime::at("2026-05-04T09:00:00Z");
        let mut app =
            TestApp { addr: contacts.addr, database_url, contacts, time, server: None, _database: database };
        app.start_support(env).await;
        app
    }

    /// Starts (another) Support server on the same database and clock.
    pub async fn start_support(&mut self, env: &[(&str, &str)]) {
        let server = self.another_support(env).await;
        self.addr = server.addr;
        if let Some(old) = self.server.replace(server) {
            old.stop().await;
        }
    }

    /// A second Support replica on the same database and clock.
    pub async fn another_support(&self, env: &[(&str, &str)]) -> Running {
        let mut vars = base_env(&self.database_url);
        for (name, value) in env {
            vars = vars.with(name, *value);
        }
        let config = rapport_support::Config::from_env(&vars)
            .expect("config")
            .with_contacts(self.contacts.addr)
            .with_now(self.time.source());
        testing::serve(rapport_support::build(config).await.expect("app builds")).0
    }

    /// Clients acting as `subject` with `roles` in `teams`.
    pub fn clients_as(&self, subject: &str, roles: &[Role], teams: &[&str]) -> Clients {
        self.clients_for(&Principal::new(subject, roles.to_vec()).with_teams(teams))
    }

    /// Clients acting as `principal`.
    pub fn clients_for(&self, principal: &Principal) -> Clients {
        let bearer = testing::harness::bearer_for(principal);
        let channel =
            |addr: SocketAddr| InterceptedService::new(testing::harness::channel(addr), bearer.clone());
        Clients {
            cases: CaseServiceClient::new(channel(self.addr)),
            sla: SlaServiceClient::new(channel(self.addr)),
            assignment: AssignmentServiceClient::new(channel(self.addr)),
            satisfaction: SatisfactionServiceClient::new(channel(self.addr)),
            knowledge: KnowledgeServiceClient::new(channel(self.addr)),
            contacts: ContactServiceClient::new(channel(self.contacts.addr)),
        }
    }

    /// Clients acting as an admin.
    pub fn admin(&self) -> Clients {
        self.clients_as("admin-1", &[Role::Admin], &[])
    }

    /// A raw channel to the Support server.
    pub fn channel(&self) -> Channel {
        testing::harness::channel(self.addr)
    }

    /// A pool on the `support` schema.
    pub fn pool(&self) -> PgPool {
        let config = DbConfig::from_env(&base_env(&self.database_url), "support").unwrap();
        rapport_kit::db::pool(&config).unwrap()
    }

    /// A contact to be a requester.
    pub async fn requester(&self, email: &str) -> Contact {
        let contact = Contact { given_name: "Ada".into(), email: email.into(), ..Contact::default() };
        self.admin()
            .contacts
            .create_contact(CreateContactRequest { contact: Some(contact), ..Default::default() })
            .await
            .unwrap()
            .into_inner()
    }

    /// Stops both servers.
    pub async fn stop(self) {
        if let Some(server) = self.server {
            server.stop().await;
        }
        self.contacts.stop().await;
    }
}

/// A minimal case from `requester`.
pub fn case(subject: &str, requester: &Contact) -> Case {
    Case { subject: subject.into(), requester_contact_id: requester.id.clone(), ..Case::default() }
}

/// Creates `case` as `clients`.
pub async fn create(clients: &Clients, case: Case) -> Result<Case, Status> {
    clients
        .cases
        .clone()
        .create_case(CreateCaseRequest { case: Some(case), request_id: String::new() })
        .await
        .map(tonic::Response::into_inner)
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

/// A field mask of `paths`.
pub fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|path| (*path).to_owned()).collect() })
}
