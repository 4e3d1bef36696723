//! A test backend with every call shape (the bench package's EchoService),
//! served through kit's bootstrap like a real service.
//!
//! `Echo` answers its payload and reports what it saw in response headers
//! (`x-seen-grpc-timeout`, `x-seen-traceparent`, `x-seen-test`) and who it
//! is (`x-echo-addr`). Special
//! payloads: `fail` answers INVALID_ARGUMENT with a field violation and a
//! custom trailer; `sleep:<ms>` waits first.

use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use rapport_kit::auth::{AuthLayer, Policy, Role, Verifier, config_from_env};
use rapport_kit::server::{self, Served, ServerConfig};
use rapport_kit::shutdown;
use rapport_proto::bench::v1::echo_service_server::{EchoService, EchoServiceServer};
use rapport_proto::bench::v1::{EchoRequest, EchoResponse};
use tonic::{Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt};

use super::{Running, base_env};

/// The echo service's name.
pub const SERVICE: &str = "rapport.bench.v1.EchoService";

const RULES: &[(&str, &[Role])] = &[("Echo", &Role::ALL), ("Collect", &Role::ALL), ("Chat", &Role::ALL)];

struct Echo {
    addr: String,
}

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let seen = |name: &str| {
            request.metadata().get(name).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned()
        };
        let (timeout, traceparent, test) = (seen("grpc-timeout"), seen("traceparent"), seen("x-test"));
        let payload = request.into_inner().payload;
        if payload == b"fail" {
            let mut details = ErrorDetails::new();
            details.add_bad_request_violation("payload", "must not be fail");
            let mut status =
                Status::with_error_details(tonic::Code::InvalidArgument, "payload: bad", details);
            status.metadata_mut().insert("x-echo-trailer", "yes".parse().unwrap());
            return Err(status);
        }
        if let Some(millis) = payload.strip_prefix(b"sleep:") {
            let millis: u64 = String::from_utf8_lossy(millis).parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        let mut response = Response::new(EchoResponse { payload });
        response.metadata_mut().insert("x-echo-addr", self.addr.parse().unwrap());
        for (name, value) in
            [("x-seen-grpc-timeout", timeout), ("x-seen-traceparent", traceparent), ("x-seen-test", test)]
        {
            if let Ok(value) = value.parse() {
                response.metadata_mut().insert(name, value);
            }
        }
        Ok(response)
    }

    async fn collect(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<EchoResponse>, Status> {
        let mut stream = request.into_inner();
        let mut payload = Vec::new();
        while let Some(message) = stream.message().await? {
            payload.extend_from_slice(&message.payload);
        }
        Ok(Response::new(EchoResponse { payload }))
    }

    type ChatStream = Pin<Box<dyn Stream<Item = Result<EchoResponse, Status>> + Send + 'static>>;

    async fn chat(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let stream = request.into_inner().map(|message| message.map(|m| EchoResponse { payload: m.payload }));
        Ok(Response::new(Box::pin(stream)))
    }
}

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
        routes: tonic::service::Routes::new(EchoServiceServer::new(Echo { addr: addr.to_string() })),
        service_names: vec![SERVICE],
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
