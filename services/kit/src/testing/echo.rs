//! The bench package's `EchoService` as tests and the benchmark serve it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use rapport_proto::bench::v1::echo_service_server::EchoService;
use rapport_proto::bench::v1::{EchoRequest, EchoResponse};
use tokio::sync::{Notify, mpsc};
use tonic::metadata::{Ascii, MetadataMap, MetadataValue};
use tonic::{Code, Request, Response, Status, Streaming};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The echo service's fully-qualified name, for policies.
pub const SERVICE: &str = "rapport.bench.v1.EchoService";

/// Request headers a reporting echo answers back, and the response header
/// each comes back in.
const REPORTED: [(&str, &str); 3] = [
    ("grpc-timeout", "x-seen-grpc-timeout"),
    ("traceparent", "x-seen-traceparent"),
    ("x-test", "x-seen-test"),
];

/// `EchoService`: `Echo` answers the request's payload, `Collect` the
/// concatenation of every payload, `Chat` each payload as it arrives.
///
/// Payloads that ask `Echo` for more:
/// - `fail`: refused with INVALID_ARGUMENT, a `BadRequest` violation on
///   `payload` and the custom trailer `x-echo-trailer: yes`;
/// - `sleep:<ms>`: answered after that many milliseconds;
/// - `slow`: answered once the [`Gate`] of [`Echo::gated`] releases it (at
///   once without one).
#[derive(Debug, Default)]
pub struct Echo {
    addr: Option<MetadataValue<Ascii>>,
    hold: Option<Hold>,
}

/// Holds `slow` calls until released; from [`Echo::gated`].
#[derive(Debug)]
pub struct Gate {
    /// One message per `slow` call that has started.
    pub started: mpsc::UnboundedReceiver<()>,
    /// Releases one waiting `slow` call (`notify_one`).
    pub release: Arc<Notify>,
}

/// The echo's side of a [`Gate`].
#[derive(Debug)]
struct Hold {
    started: mpsc::UnboundedSender<()>,
    release: Arc<Notify>,
}

impl Echo {
    /// This echo, also answering `Echo` with `x-echo-addr: <addr>` (which
    /// replica answered) and what the call carried: `x-seen-grpc-timeout`,
    /// `x-seen-traceparent` and `x-seen-test` (from `x-test`), empty when
    /// it carried none.
    pub fn reporting(self, addr: SocketAddr) -> Echo {
        Echo { addr: MetadataValue::try_from(addr.to_string()).ok(), ..self }
    }

    /// This echo, holding `slow` calls until the returned gate releases
    /// them.
    pub fn gated(self) -> (Echo, Gate) {
        let (started_tx, started) = mpsc::unbounded_channel();
        let release = Arc::new(Notify::new());
        let hold = Hold { started: started_tx, release: release.clone() };
        (Echo { hold: Some(hold), ..self }, Gate { started, release })
    }

    /// The response headers reporting `metadata`, when this echo reports.
    fn report(&self, metadata: &MetadataMap) -> Vec<(&'static str, MetadataValue<Ascii>)> {
        let Some(addr) = &self.addr else {
            return Vec::new();
        };
        let seen = REPORTED.iter().map(|(heard, reported)| {
            (*reported, metadata.get(*heard).cloned().unwrap_or_else(|| MetadataValue::from_static("")))
        });
        std::iter::once(("x-echo-addr", addr.clone())).chain(seen).collect()
    }
}

/// The refusal a `fail` payload asks for.
fn refusal() -> Status {
    let mut details = ErrorDetails::new();
    details.add_bad_request_violation("payload", "must not be fail");
    let mut status = Status::with_error_details(Code::InvalidArgument, "payload: bad", details);
    status.metadata_mut().insert("x-echo-trailer", MetadataValue::from_static("yes"));
    status
}

#[tonic::async_trait]
impl EchoService for Echo {
    async fn echo(&self, request: Request<EchoRequest>) -> Result<Response<EchoResponse>, Status> {
        let report = self.report(request.metadata());
        let payload = request.into_inner().payload;
        if payload == b"fail" {
            return Err(refusal());
        }
        if let Some(millis) = payload.strip_prefix(b"sleep:") {
            let millis: u64 = String::from_utf8_lossy(millis).parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        if payload == b"slow"
            && let Some(hold) = &self.hold
        {
            let _ = hold.started.send(());
            hold.release.notified().await;
        }
        let mut response = Response::new(EchoResponse { payload });
        for (name, value) in report {
            response.metadata_mut().insert(name, value);
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

    type ChatStream = BoxStream<'static, Result<EchoResponse, Status>>;

    async fn chat(
        &self,
        request: Request<Streaming<EchoRequest>>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let stream = request.into_inner().map(|message| message.map(|m| EchoResponse { payload: m.payload }));
        Ok(Response::new(stream.boxed()))
    }
}

/// Every role may call every echo method.
const RULES: &[(&str, &[crate::auth::Role])] = &[
    ("Echo", &crate::auth::Role::ALL),
    ("Collect", &crate::auth::Role::ALL),
    ("Chat", &crate::auth::Role::ALL),
];

/// Serves `echo` on `listener` through the kit's server bootstrap, like a
/// real service: authentication and transport settings from `env`, always
/// ready.
pub fn serve(
    listener: tokio::net::TcpListener,
    env: &crate::config::Env,
    echo: Echo,
) -> anyhow::Result<super::Running> {
    use crate::server::{self, Served, ServerConfig};
    let config = ServerConfig::from_env(env)?;
    let verifier = crate::auth::Verifier::new(crate::auth::config_from_env(env)?)?;
    let auth = crate::auth::AuthLayer::new(verifier, vec![crate::auth::Policy::new(SERVICE, RULES)]);
    let addr = listener.local_addr()?;
    let served = Served {
        component: "echo",
        routes: tonic::service::Routes::new(
            rapport_proto::bench::v1::echo_service_server::EchoServiceServer::new(echo),
        ),
        service_names: vec![SERVICE],
        advertised: vec![SERVICE],
        auth,
        readiness: Box::new(|| Box::pin(async { true })),
        metrics: crate::metrics::Metrics::new(),
        admin_listener: None,
        web: None,
    };
    Ok(super::Running::spawn(addr, None, move |shutdown| async move {
        server::serve(listener, &config, served, shutdown).await
    }))
}
