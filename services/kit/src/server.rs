//! The tonic server bootstrap every service uses: `grpc.health.v1` with real
//! readiness (and a `liveness` entry that ignores it), reflection (v1), keepalive, `max_connection_age` with its
//! grace, a tracing layer continuing the caller's trace and recording the
//! RPC metrics, authentication, optionally gRPC-web with CORS, the admin
//! endpoint serving `/metrics`, and graceful shutdown that drains in-flight
//! calls.

mod age;
mod detach;
mod trace;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context as _;
use http::{HeaderName, HeaderValue, Method};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tower::util::{Either, MapResponseLayer};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::AuthLayer;
use crate::config::{ConfigError, Env};
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;

pub use detach::{Detach, DetachLayer};
pub use trace::{TraceBody, TraceFuture, TraceLayer, TraceService};

/// Transport settings shared by every service.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request message (`GRPC_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    /// HTTP/2 ping interval on idle connections.
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    pub keepalive_timeout: Duration,
    /// Connections are closed (GOAWAY) after this age so clients rebalance
    /// across replicas.
    pub max_connection_age: Duration,
    /// How long in-flight calls of an aged connection may finish.
    pub max_connection_age_grace: Duration,
    /// How long shutdown waits for in-flight calls and streams.
    pub shutdown_grace: Duration,
    /// How often readiness is re-checked.
    pub readiness_interval: Duration,
}

impl ServerConfig {
    /// Reads `GRPC_MAX_MESSAGE_BYTES`, `GRPC_KEEPALIVE_INTERVAL`,
    /// `GRPC_KEEPALIVE_TIMEOUT`, `GRPC_MAX_CONNECTION_AGE`,
    /// `GRPC_MAX_CONNECTION_AGE_GRACE`, `SHUTDOWN_GRACE`.
    pub fn from_env(env: &Env) -> Result<ServerConfig, ConfigError> {
        Ok(ServerConfig {
            max_message_bytes: env.or_default("GRPC_MAX_MESSAGE_BYTES", 4 * 1024 * 1024)?,
            keepalive_interval: env.duration_or("GRPC_KEEPALIVE_INTERVAL", Duration::from_secs(30))?,
            keepalive_timeout: env.duration_or("GRPC_KEEPALIVE_TIMEOUT", Duration::from_secs(10))?,
            max_connection_age: env.duration_or("GRPC_MAX_CONNECTION_AGE", Duration::from_secs(300))?,
            max_connection_age_grace: env
                .duration_or("GRPC_MAX_CONNECTION_AGE_GRACE", Duration::from_secs(30))?,
            shutdown_grace: env.duration_or("SHUTDOWN_GRACE", Duration::from_secs(20))?,
            readiness_interval: Duration::from_secs(2),
        })
    }
}

/// The `grpc.health.v1` service name that answers SERVING for as long as
/// the process serves, whatever its readiness: what liveness probes ask for
/// (Kubernetes `grpc: {service: liveness}`), so a database outage takes a
/// pod out of the endpoints (readiness, the empty service name) without
/// getting it restarted.
pub const LIVENESS_SERVICE: &str = "liveness";

/// The gRPC health service's name.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";

/// The gRPC reflection service's name.
pub const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// Decides whether the service can take traffic (database reachable,
/// migrations applied).
pub type ReadinessCheck = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync + 'static>;

/// Binds `addr` (port 0 picks a free port; read it from the listener).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))
}

/// What to serve.
pub struct Served {
    /// Which component serves (a service's name, `gateway`): the
    /// `rapport.component` of its spans.
    pub component: &'static str,
    /// The service's own gRPC services.
    pub routes: Routes,
    /// Fully-qualified names of those services, for health: each reports
    /// the server's readiness; any other name is unknown (NOT_FOUND).
    pub service_names: Vec<&'static str>,
    /// The services reflection lists besides health and reflection itself:
    /// those this port answers (a service's own, or every public one for
    /// the gateway).
    pub advertised: Vec<&'static str>,
    /// Who may call what. Its rejections are counted in `metrics`.
    pub auth: AuthLayer,
    /// Readiness of the whole server.
    pub readiness: ReadinessCheck,
    /// Where every call is recorded (see [`crate::metrics`]).
    pub metrics: Metrics,
    /// Where to serve `/metrics` and `/healthz` (None = not served).
    pub admin_listener: Option<TcpListener>,
    /// Accept gRPC-web (HTTP/1.1 and HTTP/2) with CORS; None = plain gRPC
    /// over HTTP/2 only.
    pub web: Option<WebConfig>,
}

/// gRPC-web settings.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Allowed origins exactly as browsers send them
    /// (`"http://localhost:8080"`), or with any port (`"http://localhost:*"`);
    /// a single `"*"` allows any.
    pub allowed_origins: Vec<String>,
}

/// Request headers a browser may send cross-origin (gRPC-web, Connect,
/// credentials, trace context).
const CORS_ALLOW_HEADERS: [&str; 13] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
    "grpc-encoding",
    "authorization",
    "x-api-key",
    "traceparent",
    "tracestate",
    "connect-protocol-version",
    "connect-timeout-ms",
    "x-request-id",
];

/// Response headers a browser script may read: the gRPC status and its details.
const CORS_EXPOSE_HEADERS: [&str; 4] =
    ["grpc-status", "grpc-message", "grpc-status-details-bin", "grpc-encoding"];

/// How long browsers may cache a preflight answer (Chromium caps it at 2 h).
const CORS_MAX_AGE: Duration = Duration::from_secs(2 * 3600);

impl WebConfig {
    /// The CORS layer for these origins.
    fn cors(&self) -> anyhow::Result<CorsLayer> {
        let origins = if self.allowed_origins.iter().any(|origin| origin.trim() == "*") {
            AllowOrigin::any()
        } else if self.allowed_origins.iter().any(|origin| origin.trim().ends_with(":*")) {
            let patterns: Vec<String> =
                self.allowed_origins.iter().map(|origin| origin.trim().to_owned()).collect();
            AllowOrigin::predicate(move |origin, _| {
                origin
                    .to_str()
                    .is_ok_and(|origin| patterns.iter().any(|pattern| origin_matches(pattern, origin)))
            })
        } else {
            let origins = self
                .allowed_origins
                .iter()
                .map(|origin| {
                    HeaderValue::from_str(origin.trim()).with_context(|| format!("allowed origin {origin:?}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            AllowOrigin::list(origins)
        };
        Ok(CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::POST, Method::OPTIONS])
            .allow_headers(CORS_ALLOW_HEADERS.map(HeaderName::from_static))
            .expose_headers(CORS_EXPOSE_HEADERS.map(HeaderName::from_static))
            .max_age(CORS_MAX_AGE))
    }
}

/// True when `origin` is `pattern`, or `pattern` ends in `:*` and `origin`
/// is its scheme and host with any port.
fn origin_matches(pattern: &str, origin: &str) -> bool {
    match pattern.strip_suffix(":*") {
        Some(base) => origin.strip_prefix(base).and_then(|rest| rest.strip_prefix(':')).is_some_and(|port| {
            !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
        }),
        None => pattern == origin,
    }
}

/// The plain-gRPC branch's response as tonic's body, the type the gRPC-web
/// branch answers with, so both branches are one service type.
fn into_tonic_body(
    response: http::Response<TraceBody<tonic::body::Body>>,
) -> http::Response<tonic::body::Body> {
    response.map(tonic::body::Body::new)
}

/// Serves `served` on `listener` until `shutdown`, then reports NOT_SERVING,
/// stops accepting, and lets in-flight calls finish for up to
/// `config.shutdown_grace`. The admin endpoint, when given a listener,
/// serves until `shutdown`.
///
/// Layers, outermost first: CORS and gRPC-web (only with `served.web`),
/// [`TraceLayer`], [`AuthLayer`], [`DetachLayer`], then the routes.
pub async fn serve(
    listener: TcpListener,
    config: &ServerConfig,
    served: Served,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let web = match &served.web {
        Some(web) => Either::Left(
            tower::ServiceBuilder::new()
                .layer(web.cors().context("gRPC-web settings")?)
                .layer(tonic_web::GrpcWebLayer::new())
                .into_inner(),
        ),
        None => Either::Right(MapResponseLayer::new(into_tonic_body)),
    };
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = served
        .advertised
        .iter()
        .chain(&[HEALTH_SERVICE, REFLECTION_SERVICE])
        .fold(tonic_reflection::server::Builder::configure(), |builder, name| {
            builder.with_service_name(*name)
        })
        .register_encoded_file_descriptor_set(rapport_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    reporter.set_service_status(LIVENESS_SERVICE, ServingStatus::Serving).await;
    let names = served.service_names.clone();
    let readiness = served.readiness;
    let interval = config.readiness_interval;
    let mut readiness_shutdown = shutdown.clone();
    // The first verdict is in place before the first connection is served.
    let first = readiness().await;
    set_status(&reporter, &names, first).await;
    let readiness_task = tokio::spawn({
        let reporter = reporter.clone();
        async move {
            let mut last = first;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(interval) => {}
                    () = readiness_shutdown.wait() => break,
                }
                let ready = readiness().await;
                if last != ready {
                    tracing::info!(ready, "readiness changed");
                    set_status(&reporter, &names, ready).await;
                    last = ready;
                }
            }
            set_status(&reporter, &names, false).await;
        }
    });

    let admin = served.admin_listener.map(|listener| {
        let addr = listener.local_addr().ok();
        tracing::info!(addr = ?addr, "metrics served at /metrics");
        tokio::spawn(crate::metrics::serve_admin(listener, served.metrics.clone(), shutdown.clone()))
    });

    // tonic drains a connection at its age (GOAWAY); `Aged` closes it at
    // age + grace (see `age`: tonic's own grace would skip the drain).
    let lifetime = config.max_connection_age.saturating_add(config.max_connection_age_grace);
    let incoming = tokio_stream::StreamExt::map(
        TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(config.keepalive_interval)),
        move |accepted| accepted.map(|stream| age::Aged::new(stream, lifetime)),
    );
    let mut stop = shutdown.clone();
    let router = tonic::transport::Server::builder()
        .accept_http1(served.web.is_some())
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_connection_age(config.max_connection_age)
        .layer(web)
        .layer(TraceLayer::new(served.metrics.clone(), served.component))
        .layer(served.auth.with_metrics(&served.metrics))
        .layer(DetachLayer)
        .add_routes(served.routes)
        .add_service(health)
        .add_service(reflection);
    let server = router.serve_with_incoming_shutdown(incoming, async move { stop.wait().await });

    let mut grace_shutdown = shutdown;
    let grace = config.shutdown_grace;
    let outcome = tokio::select! {
        result = server => result.map_err(anyhow::Error::from),
        () = async {
            grace_shutdown.wait().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!(?grace, "shutdown grace expired; closing remaining connections");
            Ok(())
        }
    };
    let _ = readiness_task.await;
    if let Some(admin) = admin {
        // It stops at shutdown; a server that failed on its own stops it here.
        admin.abort();
        match admin.await {
            Ok(Err(err)) => tracing::warn!(error = %err, "admin endpoint failed"),
            Ok(Ok(())) => {}
            Err(err) if err.is_cancelled() => {}
            Err(err) => tracing::warn!(error = %err, "admin endpoint task failed"),
        }
    }
    outcome
}

async fn set_status(reporter: &tonic_health::server::HealthReporter, names: &[&'static str], ready: bool) {
    let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}

#[cfg(test)]
mod tests {
    use super::origin_matches;

    #[test]
    fn origins_match_exactly_or_on_any_port() {
        assert!(origin_matches("http://localhost:3000", "http://localhost:3000"));
        assert!(!origin_matches("http://localhost:3000", "http://localhost:3001"));
        assert!(origin_matches("http://localhost:*", "http://localhost:5173"));
        assert!(!origin_matches("http://localhost:*", "http://localhost"));
        assert!(!origin_matches("http://localhost:*", "http://localhost.evil.com:80"));
        assert!(!origin_matches("http://localhost:*", "http://localhost:80x"));
        assert!(!origin_matches("http://localhost:*", "https://localhost:443"));
    }
}
