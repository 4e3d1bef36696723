//! Calling another service: one client per callee that every
//! service-to-service call goes through.
//!
//! A call is made [`OnBehalf`] of the inbound caller (its `authorization`
//! or `x-api-key` forwarded, so the callee applies the caller's own
//! permissions) or of the service itself (its [`Identity`]: an API key, or
//! a short-lived token it mints with the HS256 secret). Every call:
//! - carries a deadline: what remains of the inbound call's (`grpc-timeout`
//!   read on arrival), capped at [`PeerSettings::timeout`], which is also
//!   the deadline of a call with no inbound one;
//! - is a client span (`peer`, with the RPC attributes and
//!   `peer.service`), whose W3C `traceparent` goes along, so the callee's
//!   spans join the caller's trace;
//! - for reads ([`Peer::read`]), is retried on `UNAVAILABLE` with jittered
//!   back-off while the deadline leaves room (writes are never retried
//!   here: a retry of a write that reached the callee could apply it twice).

mod identity;
mod inbound;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::time::{Duration, Instant};

use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::Instrument as _;

pub use identity::{Identity, PeerSettings};
pub use inbound::{Inbound, OnBehalf};

/// Attempts of a read that finds the callee unavailable.
const READ_ATTEMPTS: u32 = 3;
/// The first back-off of a retried read (doubled each time, jittered).
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// A channel to a service of this process that starts later: requests
/// wait (within their deadlines) until `later` yields its address.
fn deferred(mut later: tokio::sync::watch::Receiver<Option<std::net::SocketAddr>>) -> Channel {
    let (channel, changes) = Channel::balance_channel::<usize>(1);
    tokio::spawn(async move {
        let Ok(addr) = later.wait_for(Option::is_some).await.map(|addr| *addr) else { return };
        let Some(addr) = addr else { return };
        let Ok(endpoint) = Endpoint::from_shared(format!("http://{addr}")) else { return };
        let endpoint = endpoint.connect_timeout(Duration::from_secs(3));
        let _ = changes.send(tonic::transport::channel::Change::Insert(0, endpoint)).await;
    });
    channel
}

/// The client of one callee (cheap to clone: the channel is shared).
pub struct Peer<C> {
    callee: &'static str,
    service: &'static str,
    client: C,
    identity: Option<std::sync::Arc<Identity>>,
    timeout: Duration,
}

impl<C: Clone> Clone for Peer<C> {
    fn clone(&self) -> Peer<C> {
        Peer {
            callee: self.callee,
            service: self.service,
            client: self.client.clone(),
            identity: self.identity.clone(),
            timeout: self.timeout,
        }
    }
}

impl<C: Clone> Peer<C> {
    /// A client of `callee` (a service name) and its gRPC service
    /// `service` (the fully-qualified name, for spans) as `settings` say,
    /// connecting on first use; `client` wraps the channel in the generated
    /// client.
    pub fn new(
        callee: &'static str,
        service: &'static str,
        settings: &PeerSettings,
        identity: Option<Identity>,
        client: impl FnOnce(Channel) -> C,
    ) -> anyhow::Result<Peer<C>> {
        let endpoint = Endpoint::from_shared(settings.addr.clone())
            .map_err(|err| {
                anyhow::anyhow!("the address of {callee} {:?} is not a URI: {err}", settings.addr)
            })?
            .connect_timeout(Duration::from_secs(3));
        let channel = match settings.later.clone() {
            None => endpoint.connect_lazy(),
            Some(later) => deferred(later),
        };
        Ok(Peer {
            callee,
            service,
            client: client(channel),
            identity: identity.map(std::sync::Arc::new),
            timeout: settings.timeout,
        })
    }

    /// The generated client (for streams: pair it with
    /// [`Peer::stream_request`]).
    pub fn client(&self) -> C {
        self.client.clone()
    }

    /// True when the service can call as itself.
    pub fn has_identity(&self) -> bool {
        self.identity.is_some()
    }

    /// `message` as a request of `on`'s authority with the trace context of
    /// the current span, without a deadline (for streams, which last).
    pub fn stream_request<T>(&self, on: &OnBehalf, message: T) -> Result<tonic::Request<T>, Status> {
        let mut request = tonic::Request::new(message);
        match on {
            OnBehalf::Caller(inbound) => {
                if let Some(value) = &inbound.authorization {
                    request.metadata_mut().insert("authorization", value.clone());
                }
                if let Some(value) = &inbound.api_key {
                    request.metadata_mut().insert("x-api-key", value.clone());
                }
            }
            OnBehalf::Service => match &self.identity {
                Some(identity) => identity.apply(request.metadata_mut())?,
                None => {
                    return Err(Status::failed_precondition(format!(
                        "this service has no credentials of its own for {}",
                        self.callee
                    )));
                }
            },
        }
        crate::telemetry::inject_trace(request.metadata_mut());
        Ok(request)
    }

    /// When a call made now on behalf of `on` must be done: the inbound
    /// deadline, capped at the timeout from now.
    fn deadline(&self, on: &OnBehalf) -> Instant {
        let capped = Instant::now() + self.timeout;
        match on {
            OnBehalf::Caller(Inbound { deadline: Some(deadline), .. }) => (*deadline).min(capped),
            _ => capped,
        }
    }

    /// What remains until `deadline`; `None` when it has passed.
    fn remaining(deadline: Instant) -> Option<Duration> {
        deadline.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())
    }

    /// One call of `method` (its name, for the span) with `message`; never
    /// retried.
    pub async fn call<T, R, F, Fut>(
        &self,
        on: &OnBehalf,
        method: &'static str,
        message: T,
        call: F,
    ) -> Result<R, Status>
    where
        F: FnOnce(C, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        self.call_until(self.deadline(on), on, method, message, call).await
    }

    /// One attempt that must be done by `deadline`. The client gives up at
    /// the deadline with CANCELLED; that is DEADLINE_EXCEEDED here, so the
    /// caller sees a call that ran out of time, not a bug.
    async fn call_until<T, R, F, Fut>(
        &self,
        deadline: Instant,
        on: &OnBehalf,
        method: &'static str,
        message: T,
        call: F,
    ) -> Result<R, Status>
    where
        F: FnOnce(C, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        let span = self.span(method);
        async {
            let Some(timeout) = Self::remaining(deadline) else {
                return Err(deadline_passed(self.callee));
            };
            let mut request = self.stream_request(on, message)?;
            request.set_timeout(timeout);
            let outcome = match tokio::time::timeout(timeout, call(self.client.clone(), request)).await {
                Ok(Ok(response)) => Ok(response.into_inner()),
                Ok(Err(status))
                    if status.code() == Code::Cancelled && Self::remaining(deadline).is_none() =>
                {
                    Err(deadline_passed(self.callee))
                }
                Ok(Err(status)) => Err(status),
                Err(_) => Err(deadline_passed(self.callee)),
            };
            record(&outcome);
            outcome
        }
        .instrument(span)
        .await
    }

    /// A read of `method`: like [`Peer::call`], retried on `UNAVAILABLE`
    /// (up to three attempts, jittered back-off) while the deadline leaves
    /// room.
    pub async fn read<T, R, F, Fut>(
        &self,
        on: &OnBehalf,
        method: &'static str,
        message: T,
        call: F,
    ) -> Result<R, Status>
    where
        T: Clone,
        F: Fn(C, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, Status>>,
    {
        // One budget for every attempt and back-off.
        let deadline = self.deadline(on);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.call_until(deadline, on, method, message.clone(), &call).await;
            let backoff = jittered(FIRST_BACKOFF * 2u32.pow(attempt - 1));
            let room = Self::remaining(deadline).is_some_and(|left| left > backoff);
            match outcome {
                Err(status) if status.code() == Code::Unavailable && attempt < READ_ATTEMPTS && room => {
                    tracing::debug!(callee = self.callee, method, attempt, "callee unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                }
                outcome => return outcome,
            }
        }
    }

    fn span(&self, method: &'static str) -> tracing::Span {
        let service = self.service;
        tracing::info_span!(
            "peer",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = method,
            peer.service = self.callee,
            rpc.grpc.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        )
    }
}

/// What a failed call means to the caller.
#[derive(Debug)]
pub enum Failure {
    /// The callee has no such record.
    NotFound,
    /// The callee could not be reached or answered too late: the caller's
    /// client may retry.
    Unavailable,
    /// The callee refused the credentials or the permission: the caller's
    /// own denial, passed on as a problem with the same code.
    Denied(crate::error::Problem),
    /// Anything else: a bug on one side.
    Other(Status),
}

impl Failure {
    /// The caller's error for a failure other than NOT_FOUND: unreachable
    /// is UNAVAILABLE with `reason` and `message` (the client may retry);
    /// the caller's own denial passes through; anything else (NOT_FOUND
    /// included, which the caller should have handled) is internal.
    pub fn into_error<E: crate::error::OwnError>(
        self,
        reason: &str,
        message: &str,
    ) -> crate::error::Error<E> {
        use crate::error::{Error, Problem};
        match self {
            Failure::Unavailable => Error::Problem(Problem::unavailable(reason, message)),
            Failure::Denied(problem) => Error::Problem(problem),
            Failure::NotFound => Error::Internal(anyhow::anyhow!("{reason}: an unexpected NOT_FOUND")),
            Failure::Other(status) => Error::Internal(anyhow::anyhow!("{reason}: {status}")),
        }
    }

    /// The meaning of `status` from `callee`; a denial gets `reason`.
    pub fn of(status: Status, callee: &str, reason: &str) -> Failure {
        match status.code() {
            Code::NotFound => Failure::NotFound,
            Code::Unavailable | Code::DeadlineExceeded => Failure::Unavailable,
            Code::PermissionDenied | Code::Unauthenticated => Failure::Denied(crate::error::Problem::new(
                status.code(),
                reason,
                format!("the {callee} service refused: {}", status.message()),
            )),
            _ => Failure::Other(status),
        }
    }
}

/// Records the outcome's status on the current (client) span.
fn record<R>(outcome: &Result<R, Status>) {
    let code = match outcome {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    };
    let span = tracing::Span::current();
    span.record("rpc.grpc.status_code", code as i32);
    if code != Code::Ok {
        span.record("otel.status_code", "ERROR");
    }
}

fn deadline_passed(callee: &str) -> Status {
    Status::deadline_exceeded(format!("the call's deadline passed before {callee} answered"))
}

/// `base` give or take a quarter, so retrying callers spread out.
fn jittered(base: Duration) -> Duration {
    let quarter = base / 4;
    let offset = rand::random_range(0..=quarter.as_micros() as u64 * 2);
    base - quarter + Duration::from_micros(offset)
}
