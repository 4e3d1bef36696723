//! A real kit server for the server, metrics and gRPC-web tests: the bench
//! echo service of `kit::testing` (payload `slow` waits until released,
//! `fail` is refused with INVALID_ARGUMENT, a trailers-only response) and
//! `test.v1.Items/List`, a server stream that sends one message and then
//! ends with NOT_FOUND in the trailers.

use rapport_kit::testing::otlp::Traced;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use rapport_kit::auth::{AuthLayer, Policy, Role, Verifier, config_from_env};
use rapport_kit::config::Env;
use rapport_kit::metrics::Metrics;
use rapport_kit::server::{self, ReadinessCheck, Served, ServerConfig, WebConfig};
use rapport_kit::shutdown;
use rapport_kit::testing;
use rapport_kit::testing::echo::{Echo, Gate};
use rapport_proto::bench::v1::EchoRequest;
use rapport_proto::bench::v1::echo_service_client::EchoServiceClient;
use rapport_proto::bench::v1::echo_service_server::EchoServiceServer;
use tokio::sync::{Notify, mpsc};
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};
use tonic_prost::ProstCodec;

/// The echo service's name.
pub const ECHO: &str = rapport_kit::testing::echo::SERVICE;
/// The stream service's name.
pub const ITEMS: &str = "test.v1.Items";

const ECHO_RULES: &[(&str, &[Role])] = &[("Echo", &[Role::Admin])];
const ITEMS_RULES: &[(&str, &[Role])] = &[("List", &[Role::Admin])];

/// `test.v1.Items/List`: one empty message, then NOT_FOUND in the trailers.
#[derive(Clone)]
struct Items;

impl NamedService for Items {
    const NAME: &'static str = ITEMS;
}

impl tower::Service<http::Request<Body>> for Items {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let handler = tower::service_fn(|_request: tonic::Request<()>| async move {
            let items = futures::stream::iter([Ok(()), Err(Status::not_found("no more items"))]);
            Ok::<_, Status>(Response::new(items))
        });
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.server_streaming(handler, request).await)
        })
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub trigger: shutdown::Trigger,
    pub server: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// One message per `slow` call that has started.
    pub started: mpsc::UnboundedReceiver<()>,
    /// Releases one waiting `slow` call.
    pub release: Arc<Notify>,
}

impl Running {
    /// Stops the server and waits for it.
    pub async fn stop(self) {
        self.trigger.fire();
        self.server.await.unwrap().unwrap();
    }

    /// The current `/metrics` text.
    pub async fn scrape(&self) -> String {
        let (status, text) = testing::http_get(self.metrics_addr, "/metrics").await.unwrap();
        assert_eq!(status, http::StatusCode::OK);
        text
    }
}

/// Serves both services (admin only for both) with metrics on a port of its
/// own, and gRPC-web when `web` is given.
pub async fn start(web: Option<WebConfig>) -> Running {
    start_with_readiness(web, Box::new(|| Box::pin(async { true }))).await
}

/// Like [`start`], with the server's readiness decided by `readiness`.
pub async fn start_with_readiness(web: Option<WebConfig>, readiness: ReadinessCheck) -> Running {
    let env = Env::from_pairs([("SHUTDOWN_GRACE", "10s"), (rapport_kit::auth::DEV_MODE, "true")]);
    let config = ServerConfig::from_env(&env).unwrap();
    let verifier = Verifier::new(config_from_env(&env).unwrap()).unwrap();
    let auth = AuthLayer::new(verifier, vec![Policy::new(ECHO, ECHO_RULES), Policy::new(ITEMS, ITEMS_RULES)]);
    let (echo, Gate { started, release }) = Echo::default().gated();
    let admin_listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let metrics_addr = admin_listener.local_addr().unwrap();
    let served = Served {
        component: "echo",
        routes: tonic::service::Routes::new(EchoServiceServer::new(echo)).add_service(Items),
        service_names: vec![ECHO, ITEMS],
        advertised: vec![ECHO, ITEMS],
        auth,
        readiness,
        metrics: Metrics::new(),
        admin_listener: Some(admin_listener),
        web,
    };
    let listener = server::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (trigger, shutdown) = shutdown::channel();
    let server = tokio::spawn(async move { server::serve(listener, &config, served, shutdown).await });
    Running { addr, metrics_addr, trigger, server, started, release }
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// `Bearer <token>` for a development token of `tester` with `roles`.
pub fn bearer(roles: &[Role]) -> String {
    format!("Bearer {}", testing::token("tester", roles))
}

/// An echo client acting as `tester` with `roles`.
pub fn client(addr: SocketAddr, roles: &[Role]) -> EchoServiceClient<InterceptedService<Channel, Bearer>> {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    EchoServiceClient::with_interceptor(channel, Bearer(bearer(roles).parse().unwrap()))
}

/// An echo request.
pub fn echo(payload: &[u8]) -> EchoRequest {
    EchoRequest { payload: payload.to_vec() }
}

/// Calls `test.v1.Items/List` as an admin; the messages before the error,
/// and the error.
pub async fn list_items(addr: SocketAddr, traced: Option<&Traced>) -> (usize, Status) {
    let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect_lazy();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let mut request = Request::new(());
    request.metadata_mut().insert("authorization", bearer(&[Role::Admin]).parse().unwrap());
    if let Some(traced) = traced {
        traced.inject(request.metadata_mut());
    }
    let path = PathAndQuery::from_static("/test.v1.Items/List");
    let mut stream =
        grpc.server_streaming(request, path, ProstCodec::<(), ()>::default()).await.unwrap().into_inner();
    let mut received = 0;
    loop {
        match stream.message().await {
            Ok(Some(())) => received += 1,
            Ok(None) => panic!("the stream ended without an error"),
            Err(status) => return (received, status),
        }
    }
}
