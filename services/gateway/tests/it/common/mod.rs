//! The test harness: a real gateway on a free port in front of a real
//! Contacts service (fresh database, real Redis) and a test echo backend
//! with every call shape, plus clients for all of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod echo;

use std::net::SocketAddr;

use rapport_gateway::backend::Target;
use rapport_kit::auth::Role;
use rapport_kit::config::Env;
use rapport_kit::testing::{self, TestDatabase};
use rapport_proto::contacts::v1::contact_service_client::ContactServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub use rapport_kit::testing::{Bearer, Running, eventually, within};

/// A Contacts client through the gateway.
pub type Contacts = ContactServiceClient<InterceptedService<Channel, Bearer>>;

/// A gateway, its backends, and what they run on.
pub struct Stack {
    pub gateway: Running,
    pub metrics_addr: SocketAddr,
    pub contacts: Option<Running>,
    pub pipeline: Option<Running>,
    pub support: Option<Running>,
    pub echo: Option<Running>,
    /// Dropped last: the Contacts backend needs it until it stops.
    pub database: Option<TestDatabase>,
}

/// What to start.
pub struct Options {
    /// Start a Contacts backend.
    pub contacts: bool,
    /// Start a Pipeline backend (beside Contacts, on its database).
    pub pipeline: bool,
    /// Start a Support backend (beside Contacts, on its database).
    pub support: bool,
    /// Start the echo backend (area `bench`).
    pub echo: bool,
    /// Extra gateway environment pairs.
    pub gateway_env: Vec<(&'static str, String)>,
    /// Point the `contacts` area somewhere else instead.
    pub contacts_target: Option<String>,
    /// Extra environment pairs for the gateway and the echo backend.
    pub shared_env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            contacts: true,
            pipeline: false,
            support: false,
            echo: true,
            gateway_env: Vec::new(),
            contacts_target: None,
            shared_env: Vec::new(),
        }
    }
}

/// The environment every server in a test shares.
pub fn base_env() -> Env {
    Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true")])
        .with("REDIS_URL", testing::redis_url())
        .with("SHUTDOWN_GRACE", "2s")
        .with("GATEWAY_ADDR", "127.0.0.1:0")
        .with("GATEWAY_METRICS_ADDR", "127.0.0.1:0")
        .with("CONTACTS_ADDR", "127.0.0.1:0")
        .with("CONTACTS_METRICS_ADDR", "off")
        .with("GATEWAY_HEALTH_INTERVAL", "100ms")
}

/// Where a service started after Contacts will be (Contacts follows the
/// feeds of Pipeline and Support, which start after it).
pub type Later = tokio::sync::watch::Sender<Option<SocketAddr>>;

/// Starts a Contacts server on `database_url`, following the feeds of the
/// Pipeline and Support servers whose addresses the returned senders give.
pub async fn start_contacts(database_url: &str) -> (Running, Later, Later) {
    let env = testing::service_env(&rapport_contacts::SPEC, database_url);
    let (pipeline, pipeline_later) = tokio::sync::watch::channel(None);
    let (support, support_later) = tokio::sync::watch::channel(None);
    let mut config = rapport_contacts::Config::from_env(&env).unwrap();
    config.pipeline = config.pipeline.at_later(pipeline_later);
    config.support = config.support.at_later(support_later);
    (testing::serve(rapport_contacts::build(config).await.unwrap()).0, pipeline, support)
}

/// Starts a Pipeline server on `database_url` checking references with
/// the Contacts at `contacts`.
pub async fn start_pipeline(database_url: &str, contacts: SocketAddr) -> Running {
    let env = testing::service_env(&rapport_pipeline::SPEC, database_url);
    let config = rapport_pipeline::Config::from_env(&env).unwrap().with_contacts(contacts);
    testing::serve(rapport_pipeline::build(config).await.unwrap()).0
}

/// Starts a Support server on `database_url` checking requesters with the
/// Contacts at `contacts`.
pub async fn start_support(database_url: &str, contacts: SocketAddr) -> Running {
    let env = testing::service_env(&rapport_support::SPEC, database_url);
    let config = rapport_support::Config::from_env(&env).unwrap().with_contacts(contacts);
    testing::serve(rapport_support::build(config).await.unwrap()).0
}

/// Starts a gateway routing to `backends` (area, target) with `extra` env.
pub async fn start_gateway(
    backends: &[(&str, String)],
    extra: &[(&'static str, String)],
) -> (Running, SocketAddr) {
    let mut env = base_env()
        .with("GATEWAY_BACKEND_CONTACTS", "off")
        .with("GATEWAY_BACKEND_PIPELINE", "off")
        .with("GATEWAY_BACKEND_SUPPORT", "off");
    for (name, value) in extra {
        env = env.with(name, value.clone());
    }
    // As the binary does: the paths the services declare public.
    let public = rapport_support::policy::policies()
        .iter()
        .flat_map(|policy| policy.public_paths().collect::<Vec<_>>())
        .collect::<Vec<_>>();
    let mut config = rapport_gateway::Config::from_env(&env).unwrap().with_public_paths(public);
    for (area, target) in backends {
        config = config.with_backend(area, Target::parse(target).unwrap());
    }
    let app = rapport_gateway::App::build(config).await.unwrap();
    let metrics_addr = app.metrics_addr().unwrap();
    (
        Running::spawn(app.local_addr(), Some(metrics_addr), move |shutdown| app.run_until(shutdown)),
        metrics_addr,
    )
}

impl Stack {
    /// Contacts, echo and a gateway in front of both.
    pub async fn start() -> Stack {
        Stack::start_with(Options::default()).await
    }

    /// The stack described by `options`.
    pub async fn start_with(options: Options) -> Stack {
        let mut backends = Vec::new();
        let (database, contacts) = if options.contacts {
            let database = TestDatabase::migrated(&[
                ("contacts", &rapport_contacts::MIGRATIONS),
                ("pipeline", &rapport_pipeline::MIGRATIONS),
                ("support", &rapport_support::MIGRATIONS),
            ])
            .await
            .expect("test database");
            let (contacts, pipeline_addr, support_addr) = start_contacts(&database.url).await;
            backends.push(("contacts", contacts.addr.to_string()));
            (Some(database), Some((contacts, pipeline_addr, support_addr)))
        } else {
            (None, None)
        };
        let pipeline = match (&database, &contacts) {
            (Some(database), Some((contacts, pipeline_addr, _))) if options.pipeline => {
                let pipeline = start_pipeline(&database.url, contacts.addr).await;
                backends.push(("pipeline", pipeline.addr.to_string()));
                pipeline_addr.send_replace(Some(pipeline.addr));
                Some(pipeline)
            }
            _ => None,
        };
        let support = match (&database, &contacts) {
            (Some(database), Some((contacts, _, support_addr))) if options.support => {
                let support = start_support(&database.url, contacts.addr).await;
                backends.push(("support", support.addr.to_string()));
                support_addr.send_replace(Some(support.addr));
                Some(support)
            }
            _ => None,
        };
        let contacts = contacts.map(|(contacts, _, _)| contacts);
        if let Some(target) = options.contacts_target {
            backends.retain(|(area, _)| *area != "contacts");
            backends.push(("contacts", target));
        }
        let echo = if options.echo {
            let echo = echo::start_with(SocketAddr::from(([127, 0, 0, 1], 0)), &options.shared_env).await;
            backends.push(("bench", echo.addr.to_string()));
            Some(echo)
        } else {
            None
        };
        let gateway_env: Vec<_> = options.shared_env.iter().chain(&options.gateway_env).cloned().collect();
        let (gateway, metrics_addr) = start_gateway(&backends, &gateway_env).await;
        Stack { gateway, metrics_addr, contacts, pipeline, support, echo, database }
    }

    /// A channel to the gateway.
    pub fn channel(&self) -> Channel {
        self.gateway.channel()
    }

    /// A Contacts client through the gateway acting as `subject` with `roles`.
    pub fn contacts_as(&self, subject: &str, roles: &[Role]) -> Contacts {
        ContactServiceClient::with_interceptor(self.channel(), bearer(subject, roles))
    }

    /// A Contacts client through the gateway acting as an admin.
    pub fn contacts(&self) -> Contacts {
        self.contacts_as("admin-1", &[Role::Admin])
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> String {
        http_get(self.metrics_addr, "/metrics").await.1
    }

    /// Stops everything.
    pub async fn stop(self) {
        self.gateway.stop().await;
        if let Some(echo) = self.echo {
            echo.stop().await;
        }
        if let Some(pipeline) = self.pipeline {
            pipeline.stop().await;
        }
        if let Some(support) = self.support {
            support.stop().await;
        }
        if let Some(contacts) = self.contacts {
            contacts.stop().await;
        }
    }
}

/// The bearer interceptor for `subject` with `roles`.
pub fn bearer(subject: &str, roles: &[Role]) -> Bearer {
    testing::bearer(subject, roles)
}

/// A metadata value holding a bearer token for an admin.
pub fn admin_authorization() -> tonic::metadata::MetadataValue<tonic::metadata::Ascii> {
    bearer("admin-1", &[Role::Admin]).0
}

/// A plain HTTP/1.1 GET; returns status and body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use http_body_util::BodyExt;
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::get(path)
        .header("host", addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The value of the sample `name{labels…}` in a Prometheus text, summing
/// every series whose labels include all of `labels`.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name && labels.iter().all(|(key, value)| rest.contains(&format!("{key}=\"{value}\""))))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// A contact with the required fields and a unique email.
pub fn contact(given_name: &str) -> rapport_proto::contacts::v1::Contact {
    rapport_proto::contacts::v1::Contact {
        given_name: given_name.into(),
        family_name: "Tester".into(),
        email: format!("{}-{}@example.com", given_name.to_lowercase(), uuid::Uuid::now_v7().simple()),
        ..Default::default()
    }
}

/// What a raw HTTP exchange with the gateway returned.
#[derive(Debug)]
pub struct RawAnswer {
    /// The HTTP status.
    pub http: u16,
    /// The headers.
    pub headers: http::HeaderMap,
    /// The body bytes.
    pub body: bytes::Bytes,
    /// The trailers, if any.
    pub trailers: Option<http::HeaderMap>,
}

impl RawAnswer {
    /// The gRPC status code, from the trailers or a trailers-only response.
    pub fn grpc_status(&self) -> Option<i32> {
        self.trailers
            .as_ref()
            .and_then(|trailers| trailers.get("grpc-status"))
            .or_else(|| self.headers.get("grpc-status"))
            .and_then(|value| value.to_str().ok()?.parse().ok())
    }
}

/// Sends one raw HTTP/2 POST to `addr` (an admin token attached).
pub async fn raw_h2(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> RawAnswer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .header("authorization", admin_authorization().to_str().unwrap())
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    collect(response).await
}

/// Sends one raw HTTP/1.1 request to `addr`.
pub async fn raw_h1(
    addr: SocketAddr,
    request: http::Request<http_body_util::Full<bytes::Bytes>>,
) -> RawAnswer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    collect(response).await
}

async fn collect(response: http::Response<hyper::body::Incoming>) -> RawAnswer {
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    RawAnswer { http: parts.status.as_u16(), headers: parts.headers, body: collected.to_bytes(), trailers }
}

/// A gRPC length-prefixed frame holding `message`.
pub fn frame(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&payload);
    out
}
