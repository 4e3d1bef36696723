//! What every crate's test harness and the benchmark share: authenticated
//! clients ([`Bearer`]), a running server and its stop switch
//! ([`Running`], [`serve`]), the environment of a service under test
//! ([`service_env`]), polling with a deadline ([`eventually`]), and what a
//! port's reflection lists ([`reflected_services`]).

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::Channel;

use crate::auth::Role;
use crate::config::Env;
use crate::service::{App, Spec};
use crate::shutdown::{self, Shutdown, Trigger};

/// How long a test waits for something that should happen soon.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(pub MetadataValue<Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A [`Bearer`] of a development token for `subject` with `roles`.
pub fn bearer(subject: &str, roles: &[Role]) -> Bearer {
    bearer_for(&crate::auth::Principal::new(subject, roles.to_vec()))
}

/// [`bearer`] for `principal`, its teams included.
pub fn bearer_for(principal: &crate::auth::Principal) -> Bearer {
    let header = format!("Bearer {}", super::token_for(principal));
    Bearer(header.parse().unwrap_or_else(|_| MetadataValue::from_static("Bearer invalid")))
}

/// A lazily connecting channel to `addr`.
pub fn channel(addr: SocketAddr) -> Channel {
    match Channel::from_shared(format!("http://{addr}")) {
        Ok(endpoint) => endpoint.connect_lazy(),
        // A socket address always makes a valid URI.
        Err(_) => Channel::from_static("http://127.0.0.1:1").connect_lazy(),
    }
}

/// One running server task and its stop switch.
pub struct Running {
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its `/metrics` address, when served.
    pub metrics_addr: Option<SocketAddr>,
    trigger: Trigger,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Running {
    /// Runs `serve` (until the shutdown it is given) as a task.
    pub fn spawn<F, Fut>(addr: SocketAddr, metrics_addr: Option<SocketAddr>, serve: F) -> Running
    where
        F: FnOnce(Shutdown) -> Fut,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let (trigger, shutdown) = shutdown::channel();
        Running { addr, metrics_addr, trigger, task: tokio::spawn(serve(shutdown)) }
    }

    /// A channel to it.
    pub fn channel(&self) -> Channel {
        channel(self.addr)
    }

    /// Stops it and waits for it to drain; panics if it failed.
    pub async fn stop(self) {
        self.trigger.fire();
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => panic!("the server failed: {err:#}"),
            Err(err) => panic!("the server task failed: {err}"),
        }
    }

    /// Fires shutdown without waiting.
    pub fn begin_stop(&self) {
        self.trigger.fire();
    }

    /// Waits for the server task to end on its own (or after
    /// [`Running::begin_stop`]).
    pub async fn stopped(self) -> anyhow::Result<()> {
        self.task.await.map_err(|err| anyhow::anyhow!("the server task failed: {err}"))?
    }
}

/// Serves `app` as a task; what it exposes (its `extra`) comes back beside.
pub fn serve<X: Clone + Send + 'static>(app: App<X>) -> (Running, X) {
    let extra = app.extra().clone();
    let running =
        Running::spawn(app.local_addr(), app.metrics_addr(), move |shutdown| app.run_until(shutdown));
    (running, extra)
}

/// The environment of `spec`'s service under test over `database_url`:
/// the test Redis, a free port, no metrics endpoint, a small pool, quick
/// heartbeats and a short drain. Add or override with [`Env::with`].
pub fn service_env(spec: &Spec, database_url: &str) -> Env {
    let prefix = spec.prefix();
    Env::from_pairs([(crate::auth::DEV_MODE, "true")])
        .with("DATABASE_URL", database_url)
        .with("DATABASE_MAX_CONNECTIONS", "8")
        .with("REDIS_URL", super::redis_url())
        .with(&format!("{prefix}_ADDR"), "127.0.0.1:0")
        .with(&format!("{prefix}_METRICS_ADDR"), "off")
        .with("WATCH_HEARTBEAT", "200ms")
        .with("SHUTDOWN_GRACE", "2s")
}

/// Awaits `future`, failing the test if it takes longer than [`PATIENCE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Polls `condition` until it holds, failing the test after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The services the reflection of the server behind `channel` lists,
/// sorted (no credentials needed).
pub async fn reflected_services(channel: Channel) -> anyhow::Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut client = ServerReflectionClient::new(channel);
    let mut responses = client.server_reflection_info(futures::stream::iter([request])).await?.into_inner();
    let response = responses.next().await.ok_or_else(|| anyhow::anyhow!("reflection answered nothing"))??;
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        anyhow::bail!("unexpected reflection response: {response:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    names.sort();
    Ok(names)
}
