//! The tonic server bootstrap every service uses: `grpc.health.v1` with real
//! readiness, reflection (v1), keepalive, `max_connection_age` with its
//! grace, a tracing layer continuing the caller's trace, authentication,
//! and graceful shutdown that drains in-flight calls.

mod trace;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::auth::AuthLayer;
use crate::config::{ConfigError, Env};
use crate::shutdown::Shutdown;

pub use trace::{TraceLayer, TraceService};

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

/// Decides whether the service can take traffic (database reachable,
/// migrations applied).
pub type ReadinessCheck = Box<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync + 'static>;

/// Binds `addr` (port 0 picks a free port; read it from the listener).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|err| anyhow::anyhow!("cannot listen on {addr}: {err}"))
}

/// What to serve.
pub struct Served {
    /// The service's own gRPC services.
    pub routes: Routes,
    /// Fully-qualified names of those services, for health.
    pub service_names: Vec<&'static str>,
    /// Who may call what.
    pub auth: AuthLayer,
    /// Readiness of the whole server.
    pub readiness: ReadinessCheck,
}

/// Serves `served` on `listener` until `shutdown`, then reports NOT_SERVING,
/// stops accepting, and lets in-flight calls finish for up to
/// `config.shutdown_grace`.
pub async fn serve(
    listener: TcpListener,
    config: &ServerConfig,
    served: Served,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let (reporter, health) = tonic_health::server::health_reporter();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(rapport_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

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

    let incoming =
        TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(config.keepalive_interval));
    let mut stop = shutdown.clone();
    let router = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(config.keepalive_interval))
        .http2_keepalive_timeout(Some(config.keepalive_timeout))
        .max_connection_age(config.max_connection_age)
        .max_connection_age_grace(config.max_connection_age_grace)
        .layer(TraceLayer)
        .layer(served.auth)
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
    outcome
}

async fn set_status(reporter: &tonic_health::server::HealthReporter, names: &[&'static str], ready: bool) {
    let status = if ready { ServingStatus::Serving } else { ServingStatus::NotServing };
    reporter.set_service_status("", status).await;
    for name in names {
        reporter.set_service_status(*name, status).await;
    }
}
