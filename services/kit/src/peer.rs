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

use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tracing::Instrument as _;

use crate::auth::{AuthConfig, KeySource, Role, mint_hs256};
use crate::config::{ConfigError, Env};

/// Attempts of a read that finds the callee unavailable.
const READ_ATTEMPTS: u32 = 3;
/// The first back-off of a retried read (doubled each time, jittered).
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// How long a minted token is valid; a new one is minted at half of it.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// Where a callee is and how to reach it, read with the caller's prefix:
/// `<CALLER>_<CALLEE>_ADDR`, `<CALLER>_<CALLEE>_API_KEY`,
/// `<CALLER>_<CALLEE>_TIMEOUT`.
#[derive(Clone)]
pub struct PeerSettings {
    /// The callee's URI, e.g. `http://127.0.0.1:50051`.
    pub addr: String,
    /// The API key the service presents as itself (secret).
    pub api_key: Option<String>,
    /// The deadline of a call made without an inbound one, and the cap of
    /// a forwarded one (default 5s).
    pub timeout: Duration,
}

impl std::fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("addr", &self.addr)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl PeerSettings {
    /// Reads how `caller` (a service name) reaches `callee`, by default at
    /// `default_addr`.
    pub fn from_env(
        env: &Env,
        caller: &str,
        callee: &str,
        default_addr: &str,
    ) -> Result<PeerSettings, ConfigError> {
        let prefix = format!("{}_{}", caller.to_ascii_uppercase(), callee.to_ascii_uppercase());
        let timeout_name = format!("{prefix}_TIMEOUT");
        let timeout = env.duration_or(&timeout_name, Duration::from_secs(5))?;
        if timeout.is_zero() {
            return Err(ConfigError { name: timeout_name, problem: "must be longer than 0s".to_owned() });
        }
        Ok(PeerSettings {
            addr: env.or_default(&format!("{prefix}_ADDR"), default_addr.to_owned())?,
            api_key: env.optional(&format!("{prefix}_API_KEY"))?,
            timeout,
        })
    }

    /// These settings with the callee at `addr` (a service of this process).
    pub fn at(mut self, addr: std::net::SocketAddr) -> PeerSettings {
        self.addr = format!("http://{addr}");
        self
    }
}

/// How a service authenticates as itself.
pub struct Identity {
    source: IdentitySource,
    minted: Mutex<Option<(Instant, AsciiMetadataValue)>>,
}

enum IdentitySource {
    ApiKey(AsciiMetadataValue),
    Minted { secret: Vec<u8>, issuer: String, audience: String, subject: String, roles: Vec<Role> },
}

impl Identity {
    /// The service's identity toward a callee: its API key when
    /// `settings` has one, else tokens for `subject` with `roles` minted
    /// with the HS256 secret of `auth`; `None` when it has neither (tokens
    /// verified with a JWKS cannot be minted here).
    pub fn of(
        settings: &PeerSettings,
        auth: &AuthConfig,
        subject: &str,
        roles: &[Role],
    ) -> anyhow::Result<Option<Identity>> {
        let source = match (&settings.api_key, &auth.keys) {
            (Some(key), _) => {
                IdentitySource::ApiKey(AsciiMetadataValue::try_from(key.as_str()).map_err(|_| {
                    anyhow::anyhow!("the API key for {} is not a valid header value", settings.addr)
                })?)
            }
            (None, KeySource::Secret(secret)) => IdentitySource::Minted {
                secret: secret.clone(),
                issuer: auth.issuer.clone(),
                audience: auth.audience.clone(),
                subject: subject.to_owned(),
                roles: roles.to_vec(),
            },
            (None, KeySource::JwksFile(_)) => return Ok(None),
        };
        Ok(Some(Identity { source, minted: Mutex::new(None) }))
    }

    /// Puts the service's credentials on `metadata`.
    fn apply(&self, metadata: &mut MetadataMap) -> Result<(), Status> {
        match &self.source {
            IdentitySource::ApiKey(key) => {
                metadata.insert("x-api-key", key.clone());
            }
            IdentitySource::Minted { secret, issuer, audience, subject, roles } => {
                let mut minted = self.minted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let fresh = minted
                    .as_ref()
                    .filter(|(at, _)| at.elapsed() < TOKEN_TTL / 2)
                    .map(|(_, value)| value.clone());
                let value = match fresh {
                    Some(value) => value,
                    None => {
                        let token = mint_hs256(secret, issuer, audience, subject, roles, TOKEN_TTL)
                            .map_err(|err| Status::internal(format!("minting the service token: {err}")))?;
                        let value = AsciiMetadataValue::try_from(format!("Bearer {token}"))
                            .map_err(|_| Status::internal("the minted token is not a header value"))?;
                        *minted = Some((Instant::now(), value.clone()));
                        value
                    }
                };
                metadata.insert("authorization", value);
            }
        }
        Ok(())
    }
}

/// What an inbound call lends the calls it makes: its credentials and its
/// deadline. `Debug` shows neither credential.
#[derive(Clone, Default)]
pub struct Inbound {
    authorization: Option<AsciiMetadataValue>,
    api_key: Option<AsciiMetadataValue>,
    deadline: Option<Instant>,
}

impl std::fmt::Debug for Inbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |present: bool| if present { "<redacted>" } else { "none" };
        f.debug_struct("Inbound")
            .field("authorization", &shown(self.authorization.is_some()))
            .field("api_key", &shown(self.api_key.is_some()))
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Inbound {
    /// The credentials and deadline of `request`, as it arrives.
    pub fn of<T>(request: &tonic::Request<T>) -> Inbound {
        let metadata = request.metadata();
        let deadline = metadata
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout)
            .and_then(|timeout| Instant::now().checked_add(timeout));
        Inbound {
            authorization: metadata.get("authorization").cloned(),
            api_key: metadata.get("x-api-key").cloned(),
            deadline,
        }
    }
}

/// Whose authority a call carries.
#[derive(Debug, Clone)]
pub enum OnBehalf {
    /// The inbound caller's: the callee applies the caller's permissions.
    Caller(Inbound),
    /// The service's own ([`Identity`]): feed consumers and workers.
    Service,
}

impl OnBehalf {
    /// On behalf of the caller of `request`.
    pub fn caller<T>(request: &tonic::Request<T>) -> OnBehalf {
        OnBehalf::Caller(Inbound::of(request))
    }
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
        Ok(Peer {
            callee,
            service,
            client: client(endpoint.connect_lazy()),
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

/// A `grpc-timeout` header value (`<digits><unit>`, unit one of H M S m u n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit() {
        assert_eq!(parse_grpc_timeout("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_grpc_timeout("3M"), Some(Duration::from_secs(180)));
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(parse_grpc_timeout("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(parse_grpc_timeout("5"), None);
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("99999999999999999999H"), None);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let delay = jittered(Duration::from_millis(100));
            assert!(delay >= Duration::from_millis(75) && delay <= Duration::from_millis(125), "{delay:?}");
        }
    }

    #[test]
    fn settings_are_read_with_the_callers_prefix() {
        let env =
            Env::from_pairs([("PIPELINE_CONTACTS_API_KEY", "rk_x"), ("PIPELINE_CONTACTS_TIMEOUT", "2s")]);
        let settings =
            PeerSettings::from_env(&env, "pipeline", "contacts", "http://127.0.0.1:50051").unwrap();
        assert_eq!(settings.addr, "http://127.0.0.1:50051");
        assert_eq!(settings.api_key.as_deref(), Some("rk_x"));
        assert_eq!(settings.timeout, Duration::from_secs(2));
        assert!(!format!("{settings:?}").contains("rk_x"));
        let env = Env::from_pairs([("PIPELINE_CONTACTS_TIMEOUT", "0s")]);
        let err = PeerSettings::from_env(&env, "pipeline", "contacts", "http://x").unwrap_err();
        assert_eq!(err.name, "PIPELINE_CONTACTS_TIMEOUT");
    }

    fn metadata_of(peer: &Peer<()>, on: &OnBehalf) -> MetadataMap {
        peer.stream_request(on, ()).unwrap().metadata().clone()
    }

    #[tokio::test]
    async fn calls_carry_the_callers_credentials_or_the_services_own() {
        let settings = PeerSettings {
            addr: "http://127.0.0.1:1".into(),
            api_key: None,
            timeout: Duration::from_secs(5),
        };
        let auth = crate::auth::config_from_env(&Env::from_pairs([("AUTH_JWT_SECRET", "s3cret")])).unwrap();
        let identity = Identity::of(&settings, &auth, "pipeline", &[Role::Integration]).unwrap();
        let peer = Peer::new("contacts", "test.v1.Contacts", &settings, identity, |_| ()).unwrap();
        let mut inbound = tonic::Request::new(());
        inbound.metadata_mut().insert("authorization", "Bearer caller".parse().unwrap());
        inbound.metadata_mut().insert("grpc-timeout", "100m".parse().unwrap());
        let as_caller = metadata_of(&peer, &OnBehalf::caller(&inbound));
        assert_eq!(as_caller.get("authorization").unwrap(), "Bearer caller");
        let as_service = metadata_of(&peer, &OnBehalf::Service);
        let token = as_service.get("authorization").unwrap().to_str().unwrap().to_owned();
        let verifier = crate::auth::Verifier::new(auth).unwrap();
        let principal = verifier.verify(token.trim_start_matches("Bearer ")).unwrap();
        assert_eq!(
            (principal.subject.as_str(), principal.roles.as_slice()),
            ("pipeline", &[Role::Integration][..])
        );
        // The same token until it is half-way to expiring.
        assert_eq!(metadata_of(&peer, &OnBehalf::Service).get("authorization").unwrap(), token.as_str());
        // The inbound deadline is forwarded, capped at the timeout.
        let left = Peer::<()>::remaining(peer.deadline(&OnBehalf::caller(&inbound))).unwrap();
        assert!(left <= Duration::from_millis(100), "{left:?}");
        let own = Peer::<()>::remaining(peer.deadline(&OnBehalf::Service)).unwrap();
        assert!(own <= Duration::from_secs(5) && own > Duration::from_secs(4), "{own:?}");
        assert!(!format!("{:?}", OnBehalf::caller(&inbound)).contains("caller"), "no credential in Debug");

        let jwks =
            crate::auth::config_from_env(&Env::from_pairs([("AUTH_JWKS_FILE", "/jwks.json")])).unwrap();
        assert!(Identity::of(&settings, &jwks, "pipeline", &[Role::Integration]).unwrap().is_none());
        let keyed = PeerSettings { api_key: Some("rk_key".into()), ..settings };
        let identity = Identity::of(&keyed, &jwks, "pipeline", &[Role::Integration]).unwrap();
        let peer = Peer::new("contacts", "test.v1.Contacts", &keyed, identity, |_| ()).unwrap();
        assert_eq!(metadata_of(&peer, &OnBehalf::Service).get("x-api-key").unwrap(), "rk_key");
        let without = Peer::new("contacts", "test.v1.Contacts", &keyed, None, |_| ()).unwrap();
        assert_eq!(
            without.stream_request(&OnBehalf::Service, ()).unwrap_err().code(),
            Code::FailedPrecondition
        );
    }

    fn unavailable_then_ok(
        failures: usize,
        attempts: &std::sync::atomic::AtomicUsize,
    ) -> Result<tonic::Response<u8>, Status> {
        let attempt = attempts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if attempt < failures { Err(Status::unavailable("not yet")) } else { Ok(tonic::Response::new(7)) }
    }

    fn test_peer(timeout: Duration) -> Peer<()> {
        let settings =
            PeerSettings { addr: "http://127.0.0.1:1".into(), api_key: Some("rk_k".into()), timeout };
        let auth = crate::auth::config_from_env(&Env::from_pairs([])).unwrap();
        let identity = Identity::of(&settings, &auth, "test", &[Role::Integration]).unwrap();
        Peer::new("test", "test.v1.Test", &settings, identity, |_| ()).unwrap()
    }

    #[tokio::test]
    async fn reads_are_retried_while_the_callee_is_unavailable_and_writes_are_not() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let peer = test_peer(Duration::from_secs(5));
        let attempts = AtomicUsize::new(0);
        let read =
            peer.read(&OnBehalf::Service, "Get", (), |_, _| async { unavailable_then_ok(2, &attempts) });
        assert_eq!(read.await.unwrap(), 7);
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "two retries, then the answer");

        let attempts = AtomicUsize::new(0);
        let read =
            peer.read(&OnBehalf::Service, "Get", (), |_, _| async { unavailable_then_ok(5, &attempts) });
        assert_eq!(read.await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(attempts.load(Ordering::SeqCst), 3, "at most three attempts");

        let attempts = AtomicUsize::new(0);
        let write =
            peer.call(&OnBehalf::Service, "Create", (), |_, _| async { unavailable_then_ok(1, &attempts) });
        assert_eq!(write.await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(attempts.load(Ordering::SeqCst), 1, "a write is never retried here");

        // No retry once the deadline leaves no room for the back-off.
        let short = test_peer(Duration::from_millis(30));
        let attempts = AtomicUsize::new(0);
        let read =
            short.read(&OnBehalf::Service, "Get", (), |_, _| async { unavailable_then_ok(1, &attempts) });
        assert_eq!(read.await.unwrap_err().code(), Code::Unavailable);
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn each_attempt_carries_the_remaining_deadline() {
        let peer = test_peer(Duration::from_secs(5));
        let mut inbound = tonic::Request::new(());
        inbound.metadata_mut().insert("grpc-timeout", "2S".parse().unwrap());
        let seen = std::sync::Mutex::new(None);
        let on = OnBehalf::caller(&inbound);
        let call = peer.call(&on, "Get", (), |_, request: tonic::Request<()>| {
            *seen.lock().unwrap() = request.metadata().get("grpc-timeout").cloned();
            async { Ok(tonic::Response::new(1u8)) }
        });
        call.await.unwrap();
        let timeout = seen.lock().unwrap().clone().unwrap();
        let timeout = parse_grpc_timeout(timeout.to_str().unwrap()).unwrap();
        assert!(timeout <= Duration::from_secs(2) && timeout > Duration::from_secs(1), "{timeout:?}");
    }

    #[tokio::test]
    async fn a_callee_slower_than_the_deadline_is_deadline_exceeded_and_retries_share_one_budget() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let peer = test_peer(Duration::from_millis(200));
        let started = Instant::now();
        let slow = peer.call(&OnBehalf::Service, "Get", (), |_, _| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(tonic::Response::new(1u8))
        });
        assert_eq!(slow.await.unwrap_err().code(), Code::DeadlineExceeded);
        // Attempts that each take most of the budget: no second fresh one.
        let attempts = AtomicUsize::new(0);
        let read = peer.read(&OnBehalf::Service, "Get", (), |_, _| async {
            attempts.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(150)).await;
            Err::<tonic::Response<u8>, _>(Status::unavailable("down"))
        });
        assert!(read.await.is_err());
        assert!(attempts.load(Ordering::SeqCst) <= 2, "the budget is the call's, not each attempt's");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
