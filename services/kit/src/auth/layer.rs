//! The tower layer enforcing authentication and policies in front of a tonic server.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::{Either, Ready, ready};
use http::HeaderMap;
use tower::{Layer, Service};

use super::{AuthError, Policy, Principal, REASON_PERMISSION_DENIED_ROLE, Role, Verifier, permission_denied};
use crate::metrics::{AuthFailures, Metrics, count_auth_failure};

/// Path prefixes served without credentials (health checks and server reflection).
const PUBLIC_PREFIXES: [&str; 2] = ["/grpc.health.v1.", "/grpc.reflection."];

/// The header carrying an API key.
const API_KEY_HEADER: &str = "x-api-key";

/// Tower layer authenticating every gRPC request with a bearer JWT or an API key and
/// authorizing it with the matching [`Policy`]; see [`AuthService`] for the exact behavior.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

#[derive(Debug, Clone)]
struct Shared {
    verifier: Verifier,
    policies: HashMap<&'static str, Policy>,
    /// Paths callable without credentials beyond the policies' own (a
    /// gateway in front of services it has no policies for).
    public_paths: Vec<String>,
    authenticate_unlisted: bool,
    failures: Option<AuthFailures>,
}

impl AuthLayer {
    /// A layer verifying tokens with `verifier` and authorizing with `policies` (one per
    /// service; if a service appears twice the first policy is kept and a warning logged).
    pub fn new(verifier: Verifier, policies: Vec<Policy>) -> AuthLayer {
        let mut by_service = HashMap::with_capacity(policies.len());
        for policy in policies {
            if by_service.contains_key(policy.service()) {
                tracing::warn!(service = policy.service(), "duplicate auth policy for service ignored");
                continue;
            }
            by_service.insert(policy.service(), policy);
        }
        AuthLayer {
            shared: Arc::new(Shared {
                verifier,
                policies: by_service,
                public_paths: Vec::new(),
                authenticate_unlisted: false,
                failures: None,
            }),
        }
    }

    /// Calls of services that have no [`Policy`] here are authenticated only: a principal
    /// holding at least one known role passes (others get `PERMISSION_DENIED`), and
    /// authorizing the method is left to the service behind (the gateway proxies such
    /// calls). Without this, such calls are denied. Methods missing from a listed service's
    /// policy stay denied either way.
    pub fn authenticate_unlisted(self) -> AuthLayer {
        self.update(|shared| shared.authenticate_unlisted = true)
    }

    /// Lets `paths` (`/<service>/<method>`) through without credentials, as
    /// the policies of the services behind declare them (see
    /// [`Policy::with_public`]).
    pub fn public_paths(self, paths: Vec<String>) -> AuthLayer {
        self.update(|shared| shared.public_paths = paths)
    }

    /// Counts every rejection in `rapport_auth_failures_total{reason}` of `metrics` (reason =
    /// the ErrorInfo reason). `kit::server::serve` does this with the server's metrics.
    pub fn with_metrics(self, metrics: &Metrics) -> AuthLayer {
        let failures = metrics.auth_failures();
        self.update(|shared| shared.failures = Some(failures))
    }

    fn update(self, change: impl FnOnce(&mut Shared)) -> AuthLayer {
        let mut shared = Arc::unwrap_or_clone(self.shared);
        change(&mut shared);
        AuthLayer { shared: Arc::new(shared) }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, shared: Arc::clone(&self.shared) }
    }
}

/// The service produced by [`AuthLayer`].
///
/// * Paths starting with `/grpc.health.v1.` or `/grpc.reflection.`, and the methods a
///   policy declares public ([`Policy::with_public`], [`AuthLayer::public_paths`]), pass
///   through untouched (no principal).
/// * Otherwise `authorization: Bearer <jwt>` or, when there is no `authorization` header,
///   `x-api-key: <key>` is required and verified; failures are answered `UNAUTHENTICATED`.
/// * The path `/<service>/<method>` must be listed in the service's [`Policy`] and the
///   principal must hold one of its roles, else `PERMISSION_DENIED` (deny by default; see
///   [`AuthLayer::authenticate_unlisted`] for services without a policy).
/// * Rejections are logged with the path and reason (never token or key material) and
///   counted when the layer has metrics ([`AuthLayer::with_metrics`]).
/// * On success the [`Principal`] is inserted into the request extensions and the request
///   goes to the inner service. Rejections never reach the inner service; they are
///   trailers-only gRPC responses built by `tonic::Status::into_http`.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// The future of a call whose token names a key id the verifier must fetch first.
type Refreshing<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for AuthService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Either<
        Ready<Result<http::Response<ResBody>, S::Error>>,
        Either<S::Future, Refreshing<http::Response<ResBody>, S::Error>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let path = request.uri().path();
        if PUBLIC_PREFIXES.iter().any(|prefix| path.starts_with(prefix)) || self.shared.is_public(path) {
            return Either::Right(Either::Left(self.inner.call(request)));
        }
        match self.shared.authorize(path, request.headers()) {
            Ok(principal) => {
                request.extensions_mut().insert(principal);
                Either::Right(Either::Left(self.inner.call(request)))
            }
            Err(Rejected::Status(status)) => Either::Left(ready(Ok(status.into_http()))),
            Err(Rejected::UnknownKey) => {
                // The service that was polled ready answers this call once
                // the keys are in; its clone takes its place for the next.
                let ready_inner = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, ready_inner);
                let shared = Arc::clone(&self.shared);
                Either::Right(Either::Right(Box::pin(async move {
                    let path = request.uri().path().to_owned();
                    match shared.authorize_refreshing(&path, request.headers()).await {
                        Ok(principal) => {
                            request.extensions_mut().insert(principal);
                            inner.call(request).await
                        }
                        Err(status) => Ok(status.into_http()),
                    }
                })))
            }
        }
    }
}

/// Why a call is not let through at once.
enum Rejected {
    /// Refused with this status.
    Status(tonic::Status),
    /// The token names a key id the verifier may fetch: decided after.
    UnknownKey,
}

impl Shared {
    /// Whether `path` is callable without credentials.
    fn is_public(&self, path: &str) -> bool {
        let declared = split_path(path)
            .and_then(|(service, method)| Some(self.policies.get(service)?.is_public(method)))
            .unwrap_or(false);
        declared || self.public_paths.iter().any(|public| public == path)
    }

    fn authorize(&self, path: &str, headers: &HeaderMap) -> Result<Principal, Rejected> {
        let principal = match self.authenticate(headers) {
            Ok(principal) => principal,
            Err(error) if self.verifier.may_refresh(&error) => return Err(Rejected::UnknownKey),
            Err(error) => {
                match error {
                    AuthError::MissingToken => {
                        tracing::debug!(path, reason = error.reason(), "authentication failed: {error}");
                    }
                    _ => {
                        tracing::info!(path, reason = error.reason(), "authentication failed: {error}");
                    }
                }
                self.count_failure(error.reason());
                return Err(Rejected::Status(error.to_status()));
            }
        };
        self.permit(path, principal).map_err(Rejected::Status)
    }

    /// [`Shared::authorize`] of a bearer token naming a key id the verifier
    /// fetches first.
    async fn authorize_refreshing(
        &self,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Principal, tonic::Status> {
        let token = bearer_token(headers).map_err(|error| error.to_status())?;
        let principal = self.verifier.verify_refreshing(token).await.inspect_err(|status| {
            let reason = match status.code() {
                tonic::Code::Unauthenticated => super::REASON_INVALID_TOKEN,
                _ => "IDENTITY_PROVIDER_UNAVAILABLE",
            };
            tracing::info!(path, reason, "authentication failed: {}", status.message());
            self.count_failure(reason);
        })?;
        self.permit(path, principal)
    }

    /// `principal` if a policy here lets it call `path`.
    fn permit(&self, path: &str, principal: Principal) -> Result<Principal, tonic::Status> {
        let parsed = split_path(path);
        let Some(policy) = parsed.and_then(|(service, _)| self.policies.get(service)) else {
            if self.authenticate_unlisted && !principal.roles.is_empty() {
                tracing::debug!(path, subject = %principal.subject, "request authenticated; authorization left to the service");
                return Ok(principal);
            }
            if self.authenticate_unlisted {
                tracing::info!(path, subject = %principal.subject, "permission denied: no known role");
                return Err(self.deny(path, &Role::ALL));
            }
            tracing::info!(path, subject = %principal.subject, "permission denied: method not in any policy");
            return Err(self.deny(path, &[]));
        };
        let method = parsed.map(|(_, method)| method).unwrap_or_default();
        let Some(allowed) = policy.allowed(method) else {
            tracing::info!(path, subject = %principal.subject, "permission denied: method not in any policy");
            return Err(self.deny(path, &[]));
        };
        if !principal.has_any(allowed) {
            tracing::info!(
                path,
                subject = %principal.subject,
                roles = ?principal.roles,
                required = ?allowed,
                "permission denied: missing role"
            );
            return Err(self.deny(path, allowed));
        }
        tracing::debug!(path, subject = %principal.subject, "request authorized");
        Ok(principal)
    }

    /// The bearer token's principal, or the API key's when there is no `authorization` header.
    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match bearer_token(headers) {
            Ok(token) => self.verifier.verify(token),
            Err(AuthError::MissingToken) => match api_key(headers)? {
                Some(key) => self.verifier.verify_api_key(key),
                None => Err(AuthError::MissingToken),
            },
            Err(error) => Err(error),
        }
    }

    fn deny(&self, path: &str, required: &[Role]) -> tonic::Status {
        self.count_failure(REASON_PERMISSION_DENIED_ROLE);
        permission_denied(path, required)
    }

    fn count_failure(&self, reason: &'static str) {
        if let Some(failures) = &self.failures {
            count_auth_failure(failures, reason);
        }
    }
}

/// The value of a single `x-api-key` header, `None` without one.
fn api_key(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(API_KEY_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidApiKey);
    }
    let key = value.to_str().map_err(|_| AuthError::InvalidApiKey)?.trim();
    if key.is_empty() {
        return Err(AuthError::InvalidApiKey);
    }
    Ok(Some(key))
}

/// Extracts the token of a single `authorization: Bearer <token>` header.
fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(AuthError::MissingToken);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedHeader("more than one authorization header"));
    }
    let value =
        value.to_str().map_err(|_| AuthError::MalformedHeader("authorization header is not ASCII"))?;
    let (scheme, token) =
        value.trim().split_once(' ').ok_or(AuthError::MalformedHeader("expected `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedHeader("expected the Bearer scheme"));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::MalformedHeader("empty bearer token"));
    }
    Ok(token)
}

pub use crate::rpc::split_path;
