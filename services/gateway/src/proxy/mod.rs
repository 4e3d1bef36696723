//! The transparent proxy: every call the gateway does not serve itself.
//!
//! A call to `/rapport.<area>.v<N>.<Service>/<Method>` goes to the backend
//! of `<area>`, frames passed through undecoded, so a new RPC needs no
//! gateway change. Metadata, trailers (`grpc-status-details-bin`
//! included) and deadlines pass through; authentication and rate limits
//! ran before this point (kit's `AuthLayer`, the rate-limit layer).
//!
//! What the proxy adds, per call:
//! - content-type must be gRPC (HTTP 415 otherwise); an unknown service is
//!   UNIMPLEMENTED;
//! - unary calls (known from the contracts' descriptors) get a default
//!   deadline when the client set none and a cap on long ones; their body
//!   is read whole and must be exactly one well-formed message of at most
//!   the maximum size; if the first endpoint cannot be reached, the call is
//!   retried once on another, and if the endpoint refused it unprocessed
//!   (its connection closing), once more on a new connection;
//! - streaming calls have their framing checked as it passes; on shutdown
//!   they end cleanly between messages with UNAVAILABLE so clients
//!   reconnect to another replica;
//! - a concurrency limit per kind: beyond it, calls are shed at once with
//!   RESOURCE_EXHAUSTED and RetryInfo instead of queueing;
//! - a client span toward the backend and a `traceparent` naming it.
//!
//! [`body`] holds the request and response bodies around a call,
//! [`timeout`] the `grpc-timeout` header.

mod body;
pub mod resend;
mod timeout;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use prost::Message;
use rapport_kit::auth::split_path;
use rapport_kit::error::Problem;
use rapport_kit::shutdown::Shutdown;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;
use tracing::Instrument;

use crate::backend::{Backend, CallGuard, Endpoint};
use crate::frames::{self, FrameError};
use crate::metrics::GatewayMetrics;

use body::{CheckedRequestBody, RequestError, ResponseBody};
pub use timeout::{grpc_timeout_value, parse_grpc_timeout};

/// How close to its deadline a failed call counts as having missed it.
const DEADLINE_SLACK: Duration = Duration::from_millis(20);

/// How long a shed client is told to wait before retrying.
const SHED_RETRY_AFTER: Duration = Duration::from_millis(100);

/// The streaming shape of an RPC, from the contracts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    Bidirectional,
}

/// The kind of every RPC in an encoded `FileDescriptorSet`, by gRPC path.
pub fn method_kinds(descriptor_set: &[u8]) -> anyhow::Result<HashMap<String, MethodKind>> {
    let set = prost_types::FileDescriptorSet::decode(descriptor_set)?;
    let mut kinds = HashMap::new();
    for file in set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                let kind = match (method.client_streaming(), method.server_streaming()) {
                    (false, false) => MethodKind::Unary,
                    (false, true) => MethodKind::ServerStreaming,
                    (true, false) => MethodKind::ClientStreaming,
                    (true, true) => MethodKind::Bidirectional,
                };
                kinds.insert(format!("/{package}.{}/{}", service.name(), method.name()), kind);
            }
        }
    }
    Ok(kinds)
}

/// Limits the proxy applies.
#[derive(Debug, Clone, Copy)]
pub struct ProxySettings {
    /// Deadline of a unary call whose client set none.
    pub default_deadline: Duration,
    /// Longest deadline a unary call may have.
    pub max_deadline: Duration,
    /// Largest request message.
    pub max_message_bytes: usize,
    /// Unary calls in flight before shedding.
    pub max_concurrency: usize,
    /// Streaming calls open before shedding.
    pub max_streams: usize,
}

/// The proxy service (the gateway router's fallback). Cheap to clone.
#[derive(Clone)]
pub struct Proxy {
    shared: Arc<Shared>,
}

struct Shared {
    backends: HashMap<String, Backend>,
    methods: HashMap<String, MethodKind>,
    resend: HashMap<String, resend::Resend>,
    settings: ProxySettings,
    unary_slots: Arc<Semaphore>,
    stream_slots: Arc<Semaphore>,
    metrics: GatewayMetrics,
    shutdown: Shutdown,
}

impl Proxy {
    /// A proxy over `backends` (by area).
    pub fn new(
        backends: HashMap<String, Backend>,
        (methods, resend): (HashMap<String, MethodKind>, HashMap<String, resend::Resend>),
        settings: ProxySettings,
        metrics: GatewayMetrics,
        shutdown: Shutdown,
    ) -> Proxy {
        Proxy {
            shared: Arc::new(Shared {
                backends,
                methods,
                resend,
                unary_slots: Arc::new(Semaphore::new(settings.max_concurrency)),
                stream_slots: Arc::new(Semaphore::new(settings.max_streams)),
                settings,
                metrics,
                shutdown,
            }),
        }
    }
}

impl<B> tower::Service<Request<B>> for Proxy
where
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { Ok(shared.handle(request).await) })
    }
}

/// The area of a gRPC path: `contacts` for `/rapport.contacts.v1.X/Y`.
fn area_of(path: &str) -> Option<&str> {
    let (service, _) = split_path(path)?;
    let mut parts = service.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("rapport"), Some(area), Some(version), Some(name))
            if !area.is_empty() && version.starts_with('v') && !name.is_empty() =>
        {
            Some(area)
        }
        _ => None,
    }
}

impl Shared {
    async fn handle<B>(self: Arc<Self>, request: Request<B>) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let (parts, body) = request.into_parts();
        let is_grpc = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc"));
        if !is_grpc {
            self.metrics.rejected("content_type");
            return plain_http(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected content-type application/grpc");
        }
        let uri = parts.uri;
        let path = uri.path();
        let Some(backend) = area_of(path).and_then(|area| self.backends.get(area)).cloned() else {
            self.metrics.rejected("unknown_service");
            let problem = Problem::new(
                tonic::Code::Unimplemented,
                "UNKNOWN_SERVICE",
                format!("no service answers {path} at this gateway"),
            );
            return status_response(problem.into_status());
        };
        // Methods missing from the contracts (added to a backend after this
        // gateway was built) are treated as streaming: never buffered, never
        // given a default deadline.
        let kind = self.methods.get(path).copied();
        let unary = kind == Some(MethodKind::Unary);
        let slots = if unary { &self.unary_slots } else { &self.stream_slots };
        let Ok(permit) = Arc::clone(slots).try_acquire_owned() else {
            self.metrics.shed(unary);
            let problem = Problem::new(
                tonic::Code::ResourceExhausted,
                "GATEWAY_OVERLOADED",
                "the gateway is at its concurrency limit; retry shortly",
            )
            .retry_after(SHED_RETRY_AFTER);
            return status_response(problem.into_status());
        };

        let mut headers = forwarded_headers(parts.headers);
        let client_deadline = headers.get("grpc-timeout").and_then(parse_grpc_timeout);
        let deadline = if unary {
            let deadline =
                client_deadline.unwrap_or(self.settings.default_deadline).min(self.settings.max_deadline);
            headers.insert("grpc-timeout", grpc_timeout_value(deadline));
            Some(deadline)
        } else {
            client_deadline
        };

        let (service, method) = split_path(path).unwrap_or((path.trim_start_matches('/'), ""));
        let span = tracing::info_span!(
            "forward",
            otel.name = %path.trim_start_matches('/'),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            server.address = tracing::field::Empty,
        );
        let expires = deadline.map(|deadline| Instant::now() + deadline);
        let call = async {
            let response = if unary {
                self.forward_unary(&backend, &uri, headers, body, permit).await
            } else {
                self.forward_stream(&backend, &uri, headers, body, permit).await
            };
            // A backend that gave up at the same deadline (it was forwarded
            // with the call) resets the stream: that is the deadline too.
            let expired = expires.is_some_and(|expires| Instant::now() + DEADLINE_SLACK >= expires);
            if expired && response.headers().get("grpc-status").is_some_and(|code| code == "14") {
                self.metrics.forward_failed("deadline");
                return deadline_exceeded(&backend, deadline.unwrap_or_default());
            }
            response
        }
        .instrument(span);
        match deadline {
            None => call.await,
            Some(deadline) => match tokio::time::timeout(deadline, call).await {
                Ok(response) => response,
                Err(_) => {
                    self.metrics.forward_failed("deadline");
                    deadline_exceeded(&backend, deadline)
                }
            },
        }
    }

    async fn forward_unary<B>(
        &self,
        backend: &Backend,
        uri: &Uri,
        headers: HeaderMap,
        body: B,
        permit: OwnedSemaphorePermit,
    ) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let limit = self.settings.max_message_bytes.saturating_add(5);
        let bytes = match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                let error = if err.is::<http_body_util::LengthLimitError>() {
                    FrameError::TooLarge { len: limit, max: self.settings.max_message_bytes }
                } else {
                    FrameError::Truncated
                };
                self.metrics.rejected(error_label(&error));
                return status_response(error.to_status());
            }
        };
        if let Err(error) = frames::check_unary(&bytes, self.settings.max_message_bytes) {
            self.metrics.rejected(error_label(&error));
            return status_response(error.to_status());
        }
        // One retry: on another endpoint when this one could not be
        // connected, on any when it provably did not start the call (it is
        // closing that connection; the next call opens a new one), and after
        // an ambiguous reset only a read or a write with a request_id.
        let resend = self.resend.get(uri.path()).copied().unwrap_or(resend::Resend::Never);
        let mut retried = false;
        let mut unreachable: Option<Arc<Endpoint>> = None;
        loop {
            let Some(endpoint) = backend.pick(unreachable.as_deref()) else {
                return self.no_endpoint(backend);
            };
            let request = backend_request(
                uri.clone(),
                headers.clone(),
                Body::new(http_body_util::Full::new(bytes.clone())),
            );
            match self.send(backend, &endpoint, request).await {
                Ok((response, guard)) => {
                    return response.map(|inner| Body::new(ResponseBody::unary(inner, guard, permit)));
                }
                Err(err) if !retried && crate::conn::is_connect_error(err.as_ref()) => {
                    tracing::debug!(endpoint = endpoint.address(), error = %err, "retrying on another endpoint");
                    unreachable = Some(endpoint);
                }
                Err(err) if !retried && crate::conn::is_unprocessed(err.as_ref()) => {
                    tracing::debug!(endpoint = endpoint.address(), error = %err, "refused unprocessed; retrying");
                }
                Err(err) if !retried && crate::conn::is_reset(err.as_ref()) && resend.allows(&bytes) => {
                    tracing::debug!(endpoint = endpoint.address(), error = %err, "reset; retrying a safe call");
                }
                Err(err) => return self.unreachable(backend, &endpoint, err.as_ref()),
            }
            retried = true;
        }
    }

    async fn forward_stream<B>(
        &self,
        backend: &Backend,
        uri: &Uri,
        headers: HeaderMap,
        body: B,
        permit: OwnedSemaphorePermit,
    ) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        let Some(endpoint) = backend.pick(None) else {
            return self.no_endpoint(backend);
        };
        let request_error = RequestError::default();
        let checked = CheckedRequestBody::new(body, self.settings.max_message_bytes, request_error.clone());
        let request = backend_request(uri.clone(), headers, Body::new(checked));
        match self.send(backend, &endpoint, request).await {
            Ok((response, guard)) => response.map(|inner| {
                let shutdown = self.shutdown.clone();
                Body::new(ResponseBody::stream(inner, guard, permit, shutdown, request_error.clone()))
            }),
            Err(err) => {
                if let Some(error) = request_error.take() {
                    self.metrics.rejected(error_label(&error));
                    return status_response(error.to_status());
                }
                self.unreachable(backend, &endpoint, err.as_ref())
            }
        }
    }

    async fn send(
        &self,
        backend: &Backend,
        endpoint: &Arc<Endpoint>,
        mut request: Request<Body>,
    ) -> Result<(Response<Body>, CallGuard), tonic::codegen::StdError> {
        tracing::Span::current().record("server.address", endpoint.address());
        rapport_kit::telemetry::inject_trace_headers(request.headers_mut());
        let guard = endpoint.start_call();
        match endpoint.conn().send(request).await {
            Ok(response) => Ok((response.map(Body::new), guard)),
            Err(err) => {
                if crate::conn::is_connect_error(err.as_ref()) {
                    backend.eject(endpoint, "connect failed");
                }
                Err(err)
            }
        }
    }

    fn no_endpoint(&self, backend: &Backend) -> Response<Body> {
        self.metrics.forward_failed("no_endpoint");
        status_response(crate::backend::unavailable(backend.area(), "no healthy endpoint").into_status())
    }

    fn unreachable(
        &self,
        backend: &Backend,
        endpoint: &Endpoint,
        err: &(dyn std::error::Error + 'static),
    ) -> Response<Body> {
        self.metrics.forward_failed("unreachable");
        tracing::warn!(backend = backend.area(), endpoint = endpoint.address(), error = %err, "backend call failed");
        status_response(crate::backend::unavailable(backend.area(), "could not be reached").into_status())
    }
}

fn deadline_exceeded(backend: &Backend, deadline: Duration) -> Response<Body> {
    status_response(tonic::Status::deadline_exceeded(format!(
        "{} did not answer within the deadline of {deadline:?}",
        backend.area()
    )))
}

fn error_label(error: &FrameError) -> &'static str {
    match error {
        FrameError::TooLarge { .. } => "message_too_large",
        FrameError::Truncated => "truncated_frame",
        FrameError::BadFlags(_) => "malformed_frame",
        FrameError::MessageCount(_) => "message_count",
    }
}

/// Headers that belong to one hop and are not forwarded.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

fn forwarded_headers(mut headers: HeaderMap) -> HeaderMap {
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    // The gateway's own span becomes the parent (set in `send`).
    headers.remove("traceparent");
    headers
}

/// The call toward the backend: the client's URI (the connection puts the
/// endpoint's scheme and authority in), forwarded headers, `body`.
fn backend_request(uri: Uri, headers: HeaderMap, body: Body) -> Request<Body> {
    let mut request = Request::new(body);
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    request
}

/// A trailers-only gRPC response carrying `status`.
pub fn status_response(status: tonic::Status) -> Response<Body> {
    status.into_http()
}

fn plain_http(code: StatusCode, message: &'static str) -> Response<Body> {
    let mut response =
        Response::new(Body::new(http_body_util::Full::new(Bytes::from_static(message.as_bytes()))));
    *response.status_mut() = code;
    response.headers_mut().insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_by_area() {
        assert_eq!(area_of("/rapport.contacts.v1.ContactService/GetContact"), Some("contacts"));
        assert_eq!(area_of("/rapport.contacts.v2.ContactService/GetContact"), Some("contacts"));
        for path in ["/", "/foo", "/rapport.contacts.v1.ContactService/", "/other.pkg.v1.S/M", "/rapport.x/M"]
        {
            assert_eq!(area_of(path), None, "{path}");
        }
    }

    #[test]
    fn method_kinds_come_from_the_contracts() {
        let kinds = method_kinds(rapport_proto::FILE_DESCRIPTOR_SET).unwrap();
        assert_eq!(kinds["/rapport.contacts.v1.ContactService/GetContact"], MethodKind::Unary);
        assert_eq!(kinds["/rapport.contacts.v1.ContactService/WatchChanges"], MethodKind::ServerStreaming);
    }
}
