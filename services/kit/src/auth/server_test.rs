//! End-to-end: a real tonic server built with `Server::builder().layer(AuthLayer)` and a
//! real tonic client, to prove the layer's bounds and extension propagation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::uri::PathAndQuery;
use tonic::Code;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::transport::{Channel, Server};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt;

use super::test_support::*;
use super::*;

/// A hand-written unary service `test.v1.Ping/Ping` taking and returning `()`, replying
/// with the caller's subject in the `x-subject` response metadata.
#[derive(Clone)]
struct PingServer;

impl NamedService for PingServer {
    const NAME: &'static str = "test.v1.Ping";
}

impl tower::Service<http::Request<Body>> for PingServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let handler = tower::service_fn(|request: tonic::Request<()>| async move {
            let subject = principal(&request)?.subject.clone();
            let mut response = tonic::Response::new(());
            response.metadata_mut().insert("x-subject", subject.parse().unwrap());
            Ok::<_, tonic::Status>(response)
        });
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(handler, request).await)
        })
    }
}

async fn call(
    channel: &Channel,
    path: &'static str,
    authorization: Option<String>,
) -> Result<tonic::Response<()>, tonic::Status> {
    let headers: Vec<(&str, String)> =
        authorization.map(|value| ("authorization", value)).into_iter().collect();
    call_with(channel, path, headers).await
}

async fn call_with(
    channel: &Channel,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
) -> Result<tonic::Response<()>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(());
    for (name, value) in headers {
        request.metadata_mut().insert(name, value.parse().unwrap());
    }
    grpc.unary(request, PathAndQuery::from_static(path), ProstCodec::<(), ()>::default()).await
}

#[tokio::test]
async fn real_tonic_server_with_auth_layer() {
    const PING: &[(&str, &[Role])] = &[("Ping", &[Role::Integration])];
    let key = generate_key();
    let keys = ApiKeys::from_entries(vec![ApiKeyEntry::new(&key, "erp-sync", &[Role::Integration])]).unwrap();
    let layer = AuthLayer::new(hs_verifier().with_api_keys(keys), vec![Policy::new("test.v1.Ping", PING)]);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(Server::builder().layer(layer).add_service(PingServer).serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            async {
                let _ = stopped.await;
            },
        ));

    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    let token = |roles: &[Role]| {
        let t = mint_hs256(SECRET, ISSUER, AUDIENCE, "svc-1", roles, Duration::from_secs(60));
        Some(format!("Bearer {}", t.unwrap()))
    };

    let ok = call(&channel, "/test.v1.Ping/Ping", token(&[Role::Integration])).await.unwrap();
    assert_eq!(ok.metadata().get("x-subject").unwrap(), "svc-1");

    let ok = call_with(&channel, "/test.v1.Ping/Ping", vec![("x-api-key", key)]).await.unwrap();
    assert_eq!(ok.metadata().get("x-subject").unwrap(), "erp-sync");
    let err =
        call_with(&channel, "/test.v1.Ping/Ping", vec![("x-api-key", generate_key())]).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.get_details_error_info().unwrap().reason, REASON_INVALID_API_KEY);

    let err = call(&channel, "/test.v1.Ping/Ping", None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert_eq!(err.get_details_error_info().unwrap().reason, REASON_MISSING_TOKEN);

    let err = call(&channel, "/test.v1.Ping/Ping", token(&[Role::Admin])).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let info = err.get_details_error_info().unwrap();
    assert_eq!(info.reason, REASON_PERMISSION_DENIED_ROLE);
    assert_eq!(info.metadata["required_roles"], "integration");

    // Health is not served here, but the layer lets it through to the router (UNIMPLEMENTED).
    let err = call(&channel, "/grpc.health.v1.Health/Check", None).await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
