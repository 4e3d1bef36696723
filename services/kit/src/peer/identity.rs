//! Where a callee is ([`PeerSettings`]) and how a service presents itself
//! to it ([`Identity`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tonic::Status;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use crate::auth::{AuthConfig, KeySource, Role, mint_hs256};
use crate::config::{ConfigError, Env};

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
    /// Set when the callee runs in this process but starts later (a feed
    /// followed both ways): its address, once bound. Calls wait for it
    /// instead of going to `addr`.
    pub later: Option<tokio::sync::watch::Receiver<Option<std::net::SocketAddr>>>,
}

impl std::fmt::Debug for PeerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerSettings")
            .field("addr", &self.addr)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("later", &self.later.is_some())
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
            later: None,
        })
    }

    /// These settings with the callee at `addr` (a service of this process).
    pub fn at(mut self, addr: std::net::SocketAddr) -> PeerSettings {
        self.addr = format!("http://{addr}");
        self
    }

    /// These settings with the callee a service of this process that
    /// starts later: calls wait until `addr` yields its address.
    pub fn at_later(
        mut self,
        addr: tokio::sync::watch::Receiver<Option<std::net::SocketAddr>>,
    ) -> PeerSettings {
        self.later = Some(addr);
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
            (None, KeySource::JwksFile(_) | KeySource::JwksUrl(_)) => return Ok(None),
        };
        Ok(Some(Identity { source, minted: Mutex::new(None) }))
    }

    /// Puts the service's credentials on `metadata`.
    pub(super) fn apply(&self, metadata: &mut MetadataMap) -> Result<(), Status> {
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
