//! One HTTP/2 connection to a backend endpoint, opened on first use and
//! opened again once it has closed.
//!
//! A tonic `Channel` would do this too, but it queues every call through a
//! buffer task of its own before the connection's task sees it: one more
//! task hand-off per call, on the hottest path of the gateway. Here a call
//! clones the connection's sender and goes straight to the connection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tonic::body::Body;

/// HTTP/2 PING interval on an idle connection, and how long a PING may go
/// unanswered before the connection counts as dead.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connecting to the endpoint failed: nothing was sent, so the call may go
/// elsewhere.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {address}: {reason}")]
pub struct ConnectError {
    address: String,
    reason: String,
}

/// The connection to one endpoint. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Conn {
    inner: Arc<Inner>,
}

struct Inner {
    address: String,
    authority: Authority,
    connect_timeout: Duration,
    /// The open connection's sender and its generation, if one is open.
    sender: Mutex<Option<(u64, SendRequest<Body>)>>,
    /// The next connection's generation.
    generations: AtomicU64,
    /// Held while connecting, so concurrent calls wait for one connection
    /// instead of each opening their own.
    connecting: tokio::sync::Mutex<()>,
}

impl Conn {
    /// A connection to `address` (`host:port`), not opened yet.
    pub fn new(address: &str, connect_timeout: Duration) -> anyhow::Result<Conn> {
        let authority = Authority::try_from(address)
            .map_err(|err| anyhow::anyhow!("{address:?} is not a host:port address: {err}"))?;
        Ok(Conn {
            inner: Arc::new(Inner {
                address: address.to_owned(),
                authority,
                connect_timeout,
                sender: Mutex::new(None),
                generations: AtomicU64::new(0),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Sends `request` (its URI's path is kept, scheme and authority become
    /// the endpoint's) and returns the response head; the body streams.
    ///
    /// A connection the endpoint is closing (GOAWAY: a restart, or its
    /// `GRPC_MAX_CONNECTION_AGE`) is let go; a request it gave back unsent
    /// goes once more, on a new connection. A request it refused after it
    /// was sent fails with an error [`is_refused`] recognises; a caller that
    /// still holds the request may send it again.
    pub async fn send(
        &self,
        mut request: Request<Body>,
    ) -> Result<Response<Incoming>, tonic::codegen::StdError> {
        let mut parts = std::mem::take(request.uri_mut()).into_parts();
        parts.scheme = Some(Scheme::HTTP);
        parts.authority = Some(self.inner.authority.clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
        *request.uri_mut() = Uri::from_parts(parts)?;
        let (generation, mut sender) = self.sender().await?;
        match sender.try_send_request(request).await {
            Ok(response) => Ok(response),
            Err(mut failed) => {
                if is_refused(failed.error()) || failed.error().is_canceled() || failed.error().is_closed() {
                    self.forget(generation);
                }
                let Some(request) = failed.take_message() else {
                    return Err(failed.into_error().into());
                };
                tracing::debug!(endpoint = %self.inner.address, "connection closing; sending on a new one");
                let (_, mut sender) = self.sender().await?;
                Ok(sender.send_request(request).await?)
            }
        }
    }

    /// The open connection's sender and its generation, connecting first if
    /// none is open.
    async fn sender(&self) -> Result<(u64, SendRequest<Body>), ConnectError> {
        if let Some(open) = self.open_sender() {
            return Ok(open);
        }
        let _connecting = self.inner.connecting.lock().await;
        // Another call may have connected while this one waited.
        if let Some(open) = self.open_sender() {
            return Ok(open);
        }
        let sender = self.connect().await?;
        let generation = self.inner.generations.fetch_add(1, Ordering::Relaxed);
        *self.inner.sender.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, sender.clone()));
        Ok((generation, sender))
    }

    fn open_sender(&self) -> Option<(u64, SendRequest<Body>)> {
        let slot = self.inner.sender.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|(_, sender)| !sender.is_closed())
            .map(|(generation, sender)| (*generation, sender.clone()))
    }

    /// Lets go of connection `generation` (if it is still the current one),
    /// so the next call opens a new one; calls in flight on it finish.
    fn forget(&self, generation: u64) {
        let mut slot = self.inner.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|(current, _)| *current == generation) {
            *slot = None;
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, ConnectError> {
        let failed = |reason: String| ConnectError { address: self.inner.address.clone(), reason };
        let stream = tokio::time::timeout(
            self.inner.connect_timeout,
            tokio::net::TcpStream::connect(&self.inner.address),
        )
        .await
        .map_err(|_| failed(format!("no connection within {:?}", self.inner.connect_timeout)))?
        .map_err(|err| failed(err.to_string()))?;
        stream.set_nodelay(true).map_err(|err| failed(err.to_string()))?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|err| failed(format!("HTTP/2 handshake: {err}")))?;
        let address = self.inner.address.clone();
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(endpoint = %address, error = %err, "backend connection closed");
            }
        });
        Ok(sender)
    }
}

/// True when `err` (or a cause) says the endpoint did not process the
/// request ([`is_unprocessed`]) or the connection broke under it
/// ([`is_reset`]): either way this connection is done.
pub fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    is_unprocessed(err) || is_reset(err)
}

/// True when `err` (or a cause) proves the endpoint did not start the
/// request, so sending it again is safe whatever it is:
/// - an HTTP/2 REFUSED_STREAM;
/// - a stream beyond the last one a graceful GOAWAY promised to process.
pub fn is_unprocessed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.get_io().is_none()
                && (h2.reason() == Some(h2::Reason::REFUSED_STREAM)
                    || (h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR)));
        }
        current = err.source();
    }
    false
}

/// True when the connection ended or was reset while the request was in
/// flight (h2's "broken pipe", ECONNRESET). Ambiguous: a closing
/// endpoint's GOAWAY race looks like this when it closes the socket with
/// the request unread, but so does a backend that crashed mid-call — the
/// request may have run. Only reads and writes carrying a `request_id` go
/// again (see `proxy::resend`).
pub fn is_reset(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(h2) = err.downcast_ref::<h2::Error>() {
            return h2.get_io().is_some_and(is_closed_under);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return is_closed_under(io);
        }
        current = err.source();
    }
    false
}

fn is_closed_under(io: &std::io::Error) -> bool {
    matches!(io.kind(), std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset)
}

/// A tower service, so generated tonic clients (health checks, Customer
/// 360) call through the same connection.
impl tower::Service<Request<Body>> for Conn {
    type Response = Response<Body>;
    type Error = tonic::codegen::StdError;
    type Future = BoxFuture<'static, Result<Response<Body>, tonic::codegen::StdError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let conn = self.clone();
        Box::pin(async move { Ok(conn.send(request).await?.map(Body::new)) })
    }
}

/// True when `err` (or a cause) is a failure to connect: nothing was sent,
/// so the call may go to another endpoint.
pub fn is_connect_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if err.is::<ConnectError>() {
            return true;
        }
        current = err.source();
    }
    false
}
