//! One HTTP/2 connection to a backend endpoint, opened on first use and
//! opened again once it has closed.
//!
//! A tonic `Channel` would do this too, but it queues every call through a
//! buffer task of its own before the connection's task sees it: one more
//! task hand-off per call, on the hottest path of the gateway. Here a call
//! clones the connection's sender and goes straight to the connection.

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
    /// The open connection's sender, if one is open.
    sender: Mutex<Option<SendRequest<Body>>>,
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
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Sends `request` (its URI's path is kept, scheme and authority become
    /// the endpoint's) and returns the response head; the body streams.
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
        let mut sender = self.sender().await?;
        Ok(sender.send_request(request).await?)
    }

    /// The open connection's sender, connecting first if none is open.
    async fn sender(&self) -> Result<SendRequest<Body>, ConnectError> {
        if let Some(sender) = self.open_sender() {
            return Ok(sender);
        }
        let _connecting = self.inner.connecting.lock().await;
        // Another call may have connected while this one waited.
        if let Some(sender) = self.open_sender() {
            return Ok(sender);
        }
        let sender = self.connect().await?;
        *self.inner.sender.lock().unwrap_or_else(PoisonError::into_inner) = Some(sender.clone());
        Ok(sender)
    }

    fn open_sender(&self) -> Option<SendRequest<Body>> {
        let guard = self.inner.sender.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().filter(|sender| !sender.is_closed()).cloned()
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
