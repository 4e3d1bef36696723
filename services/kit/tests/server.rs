//! The server bootstrap: authentication on every call, open health and
//! reflection, and graceful shutdown that lets in-flight calls finish.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use rapport_kit::auth::{AuthLayer, Policy, Role, Verifier, config_from_env};
use rapport_kit::config::Env;
use rapport_kit::server::{self, ReadinessCheck, Served, ServerConfig};
use rapport_kit::shutdown;
use rapport_kit::testing;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use rapport_proto::bench::v1::echo_service_server::{EchoService, EchoServiceServer};
use rapport_proto::bench::v1::{EchoRequest, EchoResponse};
use tokio::sync::{Notify, mpsc};
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Echoes; a payload of "slow" holds the call until released.
struct SlowEcho {
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

#[tonic::async_trait]
impl EchoService for SlowEcho {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let payload = request.into_inner().payload;
        if payload == b"slow" {
            let _ = self.started.send(());
            self.release.notified().await;
        }
        Ok(Response::new(EchoResponse { payload }))
    }
}

const RULES: &[(&str, &[Role])] = &[("Echo", &[Role::Admin])];

struct Running {
    addr: std::net::SocketAddr,
    trigger: shutdown::Trigger,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    started: mpsc::UnboundedReceiver<()>,
    release: Arc<Notify>,
}

async fn start() -> Running {
    let env = Env::from_pairs([("SHUTDOWN_GRACE", "10s")]);
    let config = ServerConfig::from_env(&env).unwrap();
    let verifier = Verifier::new(config_from_env(&env).unwrap()).unwrap();
    let auth = AuthLayer::new(verifier, vec![Policy::new("rapport.bench.v1.EchoService", RULES)]);
    let (started_tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let echo = SlowEcho { started: started_tx, release: release.clone() };
    let readiness: ReadinessCheck = Box::new(|| Box::pin(async { true }));
    let served = Served {
        routes: tonic::service::Routes::new(EchoServiceServer::new(echo)),
        service_names: vec!["rapport.bench.v1.EchoService"],
        auth,
        readiness,
    };
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown) = shutdown::channel();
    let server = tokio::spawn(async move { server::serve(listener, &config, served, shutdown).await });
    Running { addr, trigger, server, started, release }
}

fn client(
    addr: std::net::SocketAddr,
    roles: &[Role],
) -> EchoServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, impl tonic::service::Interceptor>,
> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    let header: tonic::metadata::MetadataValue<_> =
        format!("Bearer {}", testing::token("tester", roles)).parse().unwrap();
    EchoServiceClient::with_interceptor(channel, move |mut request: Request<()>| {
        request.metadata_mut().insert("authorization", header.clone());
        Ok(request)
    })
}

fn echo(payload: &[u8]) -> EchoRequest {
    EchoRequest { payload: payload.to_vec() }
}

#[tokio::test]
async fn calls_need_a_token_with_an_allowed_role() {
    let running = start().await;
    let mut admin = client(running.addr, &[Role::Admin]);
    assert_eq!(admin.echo(echo(b"hi")).await.unwrap().into_inner().payload, b"hi");

    let mut viewer = client(running.addr, &[Role::Viewer]);
    let denied = viewer.echo(echo(b"hi")).await.unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let channel = Channel::from_shared(format!("http://{}", running.addr)).unwrap().connect_lazy();
    let anonymous = EchoServiceClient::new(channel.clone()).echo(echo(b"hi")).await.unwrap_err();
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    running.trigger.fire();
    running.server.await.unwrap().unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_calls_finish_then_stops_accepting() {
    let mut running = start().await;
    let mut admin = client(running.addr, &[Role::Admin]);
    let in_flight = tokio::spawn(async move { admin.echo(echo(b"slow")).await });
    running.started.recv().await.unwrap();

    running.trigger.fire();
    // The server keeps running while the call is in flight.
    let still_running = tokio::time::timeout(Duration::from_millis(300), &mut running.server).await.is_err();
    assert!(still_running, "the server stopped before its in-flight call finished");

    running.release.notify_one();
    let answer = in_flight.await.unwrap().unwrap().into_inner();
    assert_eq!(answer.payload, b"slow");
    tokio::time::timeout(Duration::from_secs(10), running.server).await.unwrap().unwrap().unwrap();

    let mut late = client(running.addr, &[Role::Admin]);
    let refused = late.echo(echo(b"late")).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unavailable);
}
