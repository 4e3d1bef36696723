//! JSON Web Key Sets fetched from the identity provider: from a URL
//! (`AUTH_JWKS_URL`) or found by OpenID Connect discovery from the issuer
//! (`{issuer}/.well-known/openid-configuration`'s `jwks_uri`).
//!
//! Keys are fetched on first use, refreshed in the background once they are
//! older than the refresh interval, and fetched at once when a token names a
//! key id the set does not hold (the provider rotated its keys): at most once
//! per cool-down, one fetch at a time, so tokens with invented key ids cannot
//! make the service hammer the provider. Verification stays synchronous on
//! the keys in hand; only the unknown-key path waits for a fetch.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use super::jwt::{AuthSetupError, VerificationKey};

/// The largest key set or discovery document accepted.
const MAX_DOCUMENT_BYTES: usize = 1 << 20;
/// Default age after which keys are refreshed in the background.
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);
/// Default shortest time between two fetches caused by unknown key ids.
pub const DEFAULT_MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
/// Default limit of one fetch (connect, request and body).
pub const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the keys are published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksLocation {
    /// The key set's own URL.
    Url(String),
    /// OpenID Connect discovery from the configured issuer.
    Discovery,
}

/// Settings of keys fetched over HTTP(S).
#[derive(Debug, Clone)]
pub struct RemoteJwksConfig {
    /// Where the keys are.
    pub location: JwksLocation,
    /// A PEM file of the CA certificates to trust for the provider (instead
    /// of the system's), for a provider behind a private CA.
    pub ca_file: Option<PathBuf>,
    /// Keys older than this are refreshed in the background.
    pub refresh_interval: Duration,
    /// A token naming an unknown key id causes at most one fetch per this
    /// interval.
    pub min_refresh_interval: Duration,
    /// Limit of one fetch.
    pub timeout: Duration,
}

impl RemoteJwksConfig {
    /// Keys at `location` with the default intervals and the system's CAs.
    pub fn new(location: JwksLocation) -> RemoteJwksConfig {
        RemoteJwksConfig {
            location,
            ca_file: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
            min_refresh_interval: DEFAULT_MIN_REFRESH_INTERVAL,
            timeout: DEFAULT_FETCH_TIMEOUT,
        }
    }
}

/// The keys could not be fetched; the caller is told to retry.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the identity provider's keys could not be fetched: {0}")]
pub struct FetchError(pub String);

/// Turns a fetched key set document into verification keys.
pub(super) type ParseKeys = Box<dyn Fn(&str) -> Result<Vec<VerificationKey>, String> + Send + Sync>;

/// Keys fetched from the provider, shared by every clone of a verifier.
pub(super) struct RemoteJwks {
    config: RemoteJwksConfig,
    issuer: String,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    parse: ParseKeys,
    keys: RwLock<Arc<Vec<VerificationKey>>>,
    /// Successful fetches so far: a waiter that sees it change knows the
    /// keys it waited for are in.
    generation: AtomicU64,
    refreshing: AtomicBool,
    /// One fetch at a time; holds when the last one was tried and whether it
    /// worked.
    gate: tokio::sync::Mutex<Attempt>,
    /// When the keys in hand were fetched.
    fetched: RwLock<Option<Instant>>,
    /// The discovered `jwks_uri`, once known.
    jwks_uri: RwLock<Option<String>>,
}

#[derive(Default)]
struct Attempt {
    last: Option<Instant>,
    failed: Option<FetchError>,
}

/// What [`RemoteJwks::refresh_for_unknown_kid`] did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refreshed {
    /// New keys are in (by this call or one it waited for): verify again.
    Yes,
    /// The keys were fetched within the cool-down and the key id is still
    /// unknown: the token is refused.
    Recently,
}

impl RemoteJwks {
    pub(super) fn new(
        config: RemoteJwksConfig,
        issuer: &str,
        parse: ParseKeys,
    ) -> Result<RemoteJwks, AuthSetupError> {
        let invalid = |message: String| AuthSetupError::InvalidConfig(message);
        match &config.location {
            JwksLocation::Url(url) => check_url("AUTH_JWKS_URL", url).map_err(invalid)?,
            JwksLocation::Discovery => {
                check_url("AUTH_ISSUER (for OIDC discovery)", issuer).map_err(invalid)?
            }
        }
        let tls = tls_config(config.ca_file.as_deref())?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(config.timeout));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(RemoteJwks {
            config,
            issuer: issuer.to_owned(),
            client,
            parse,
            keys: RwLock::new(Arc::new(Vec::new())),
            generation: AtomicU64::new(0),
            refreshing: AtomicBool::new(false),
            gate: tokio::sync::Mutex::new(Attempt::default()),
            fetched: RwLock::new(None),
            jwks_uri: RwLock::new(None),
        })
    }

    /// The keys in hand. Starts a background refresh when there are none
    /// yet or they are older than the refresh interval (and a runtime is
    /// there to run it); after a failed fetch, not again within the
    /// cool-down, so a provider that is down is not hammered.
    pub(super) fn current(self: &Arc<Self>) -> Arc<Vec<VerificationKey>> {
        if self.is_stale()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            let this = Arc::clone(self);
            runtime.spawn(async move {
                // Cleared however the task ends (a panic, a runtime shutting down).
                let _refreshing = Flag(&this.refreshing);
                let mut attempt = this.gate.lock().await;
                // After a failure, wait out the cool-down before trying again.
                let cooling = attempt.failed.is_some()
                    && attempt.last.is_some_and(|last| last.elapsed() < this.config.min_refresh_interval);
                if this.is_stale() && !cooling {
                    this.fetch_into(&mut attempt).await;
                }
            });
        }
        Arc::clone(&read(&self.keys))
    }

    /// How many keys are in hand (no refresh started).
    pub(super) fn held(&self) -> usize {
        read(&self.keys).len()
    }

    fn is_stale(&self) -> bool {
        read(&self.fetched).is_none_or(|at| at.elapsed() >= self.config.refresh_interval)
    }

    /// Fetches the keys because a token named a key id they lack, unless
    /// they were fetched within the cool-down. Concurrent callers share one
    /// fetch, which runs in a task of its own: a caller that goes away
    /// (a deadline, a reset stream) does not abort it half-way, which would
    /// leave the cool-down started and nothing fetched.
    pub(super) async fn refresh_for_unknown_kid(self: &Arc<Self>) -> Result<Refreshed, FetchError> {
        let seen = self.generation.load(Ordering::Acquire);
        let this = Arc::clone(self);
        let refresh = tokio::spawn(async move {
            let mut attempt = this.gate.lock().await;
            if this.generation.load(Ordering::Acquire) != seen {
                return Ok(Refreshed::Yes);
            }
            if let Some(last) = attempt.last
                && last.elapsed() < this.config.min_refresh_interval
            {
                return match &attempt.failed {
                    Some(error) => Err(error.clone()),
                    None => Ok(Refreshed::Recently),
                };
            }
            this.fetch_into(&mut attempt).await;
            match &attempt.failed {
                Some(error) => Err(error.clone()),
                None => Ok(Refreshed::Yes),
            }
        });
        refresh.await.unwrap_or_else(|_| Err(FetchError("the fetch was interrupted".to_owned())))
    }

    /// One fetch, its outcome recorded in `attempt` (the gate's guard).
    async fn fetch_into(&self, attempt: &mut Attempt) {
        attempt.last = Some(Instant::now());
        match tokio::time::timeout(self.config.timeout, self.fetch()).await {
            Ok(Ok(keys)) => {
                tracing::info!(keys = keys.len(), "fetched the identity provider's signing keys");
                *write(&self.keys) = Arc::new(keys);
                *write(&self.fetched) = Some(Instant::now());
                self.generation.fetch_add(1, Ordering::AcqRel);
                attempt.failed = None;
            }
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "fetching the identity provider's signing keys failed");
                attempt.failed = Some(error);
            }
            Err(_) => {
                tracing::warn!("fetching the identity provider's signing keys timed out");
                attempt.failed = Some(FetchError("timed out".to_owned()));
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<VerificationKey>, FetchError> {
        let url = self.jwks_url().await?;
        let document = self.get(&url).await?;
        (self.parse)(&document).map_err(|message| FetchError(format!("{url}: {message}")))
    }

    async fn jwks_url(&self) -> Result<String, FetchError> {
        match &self.config.location {
            JwksLocation::Url(url) => Ok(url.clone()),
            JwksLocation::Discovery => {
                if let Some(url) = read(&self.jwks_uri).clone() {
                    return Ok(url);
                }
                let url = discover(self, &self.issuer).await?;
                *write(&self.jwks_uri) = Some(url.clone());
                Ok(url)
            }
        }
    }

    async fn get(&self, url: &str) -> Result<String, FetchError> {
        let fail = |what: String| FetchError(format!("{url}: {what}"));
        let uri: http::Uri = url.parse().map_err(|_| fail("not a valid URL".to_owned()))?;
        let request = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|error| fail(error.to_string()))?;
        let response = self.client.request(request).await.map_err(|error| fail(error.to_string()))?;
        if response.status() != http::StatusCode::OK {
            return Err(fail(format!("answered HTTP {}", response.status())));
        }
        let body = Limited::new(response.into_body(), MAX_DOCUMENT_BYTES)
            .collect()
            .await
            .map_err(|error| fail(format!("reading the body: {error}")))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| fail("the body is not UTF-8".to_owned()))
    }
}

/// The `jwks_uri` of the issuer's OpenID Connect discovery document, whose
/// `issuer` must be the configured one (OpenID Connect Discovery §4.3).
async fn discover(remote: &RemoteJwks, issuer: &str) -> Result<String, FetchError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let document: Value = serde_json::from_str(&remote.get(&url).await?)
        .map_err(|error| FetchError(format!("{url}: not JSON: {error}")))?;
    if document.get("issuer").and_then(Value::as_str) != Some(issuer) {
        return Err(FetchError(format!("{url}: its issuer is not {issuer:?}")));
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| FetchError(format!("{url}: no jwks_uri")))?;
    check_url("jwks_uri", jwks_uri).map_err(FetchError)?;
    Ok(jwks_uri.to_owned())
}

/// `https://` anywhere, `http://` only to this machine (a sidecar or a
/// test): keys fetched in the clear could be replaced on the way.
pub(crate) fn check_url(name: &str, url: &str) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| format!("{name} {url:?} is not a valid URL"))?;
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if loopback => Ok(()),
        Some("http") => Err(format!("{name} {url:?} must use https (http only to localhost)")),
        _ => Err(format!("{name} {url:?} must be an https:// URL")),
    }
}

/// rustls trusting the CAs of `ca_file`, or the system's.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, AuthSetupError> {
    let roots = match ca_file {
        Some(path) => crate::tls::root_store(path).map_err(|error| {
            AuthSetupError::InvalidConfig(format!("AUTH_JWKS_CA_FILE {}: {error}", path.display()))
        })?,
        None => crate::tls::system_roots(),
    };
    Ok(rustls::ClientConfig::builder().with_root_certificates(roots).with_no_client_auth())
}

/// Clears a flag when dropped.
struct Flag<'a>(&'a AtomicBool);

impl Drop for Flag<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn keys_are_fetched_over_https_or_from_this_machine() {
        assert!(check_url("X", "https://idp.example.com/jwks").is_ok());
        assert!(check_url("X", "http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_url("X", "http://localhost/jwks").is_ok());
        assert!(check_url("X", "http://[::1]:9/jwks").is_ok());
        assert!(check_url("X", "http://idp.example.com/jwks").unwrap_err().contains("must use https"));
        assert!(check_url("X", "ftp://idp.example.com/jwks").is_err());
        assert!(check_url("X", "not a url").is_err());
    }
}
