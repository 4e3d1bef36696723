//! A test backend with every call shape: `kit::testing`'s echo service,
//! served through kit's bootstrap like a real service and reporting what it
//! saw (`x-seen-grpc-timeout`, `x-seen-traceparent`, `x-seen-test`) and who
//! it is (`x-echo-addr`). Special payloads: `fail` answers INVALID_ARGUMENT
//! with a field violation and a custom trailer; `sleep:<ms>` waits first.

use std::net::SocketAddr;

use rapport_kit::auth::{AuthLayer, Policy, Role, Verifier, config_from_env};
use rapport_kit::server::{self, Served, ServerConfig};
use rapport_kit::shutdown;
use rapport_kit::testing::echo::Echo;
use rapport_proto::bench::v1::echo_service_server::EchoServiceServer;

use super::{Running, base_env};

/// The echo service's name.
pub const SERVICE: &str = rapport_kit::testing::echo::SERVICE;

const RULES: &[(&str, &[Role])] = &[("Echo", &Role::ALL), ("Collect", &Role::ALL), ("Chat", &Role::ALL)];

/// Serves the echo backend on a free port.
pub async fn start() -> Running {
    start_with(SocketAddr::from(([127, 0, 0, 1], 0)), &[]).await
}

/// Serves the echo backend on `addr` (to bring one back on its old port).
pub async fn start_on(addr: SocketAddr) -> Running {
    start_with(addr, &[]).await
}

/// Serves the echo backend on `addr` with `extra` environment pairs.
pub async fn start_with(addr: SocketAddr, extra: &[(&'static str, String)]) -> Running {
    let mut env = base_env();
    for (name, value) in extra {
        env = env.with(name, value.clone());
    }
    let config = ServerConfig::from_env(&env).unwrap();
    let verifier = Verifier::new(config_from_env(&env).unwrap()).unwrap();
    let auth = AuthLayer::new(verifier, vec![Policy::new(SERVICE, RULES)]);
    let listener = server::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Served {
        component: "echo",
        routes: tonic::service::Routes::new(EchoServiceServer::new(Echo::default().reporting(addr))),
        service_names: vec![SERVICE],
        advertised: vec![SERVICE],
        auth,
        readiness: Box::new(|| Box::pin(async { true })),
        metrics: rapport_kit::metrics::Metrics::new(),
        admin_listener: None,
        web: None,
    };
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(async move { server::serve(listener, &config, served, shutdown).await });
    Running { addr, trigger, task }
}
