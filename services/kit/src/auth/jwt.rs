//! JWT verification ([`Verifier`]) and HS256 minting ([`mint_hs256`]).

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value};

use super::jwks::{load_jwks, parse_jwks};
use super::remote::{Refreshed, RemoteJwks, RemoteJwksConfig};
use super::{ApiKeys, AuthError, Principal, Role};

/// Default name of the claim holding the caller's roles.
pub const DEFAULT_ROLES_CLAIM: &str = "roles";
/// The default claim holding the caller's team ids (an array of strings,
/// e.g. the OIDC groups an identity provider issues).
pub const DEFAULT_TEAMS_CLAIM: &str = "teams";
/// The most teams a principal is taken to belong to; more is refused.
pub const MAX_TEAMS: usize = 64;
/// Default clock skew tolerated for `exp` and `nbf`, in seconds.
pub const DEFAULT_LEEWAY_SECONDS: u64 = 60;
/// Largest accepted [`AuthConfig::leeway_seconds`] (one hour).
pub const MAX_LEEWAY_SECONDS: u64 = 3600;
/// Verified tokens remembered, so a client's every call does not pay for the signature
/// check and the claims' JSON again (the gateway and each service verify the same token).
const VERIFIED_CAPACITY: u64 = 10_000;
/// Longest a verified token is remembered; its `exp` is checked on every use regardless.
const VERIFIED_TTL: Duration = Duration::from_secs(300);

/// Where the token verification keys come from.
#[derive(Clone)]
pub enum KeySource {
    /// A shared HS256 secret (raw bytes). Tokens must use `alg: HS256`.
    Secret(Vec<u8>),
    /// A JSON Web Key Set file, read once by [`Verifier::new`]. RSA keys verify `RS256` and
    /// P-256 EC keys verify `ES256`; other keys (`use: enc`, other algorithms or curves,
    /// symmetric keys) are skipped. The token's `kid` picks the key; a token without `kid`
    /// is accepted only when the set holds exactly one usable key.
    JwksFile(PathBuf),
    /// A JSON Web Key Set fetched from the identity provider (its URL, or
    /// OpenID Connect discovery from the issuer), refreshed when it ages
    /// and when a token names a key id it lacks: rotating keys needs no
    /// restart. The same keys as [`KeySource::JwksFile`] are used.
    JwksUrl(RemoteJwksConfig),
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Secret(_) => f.write_str("Secret(<redacted>)"),
            KeySource::JwksFile(path) => f.debug_tuple("JwksFile").field(path).finish(),
            KeySource::JwksUrl(remote) => f.debug_tuple("JwksUrl").field(&remote.location).finish(),
        }
    }
}

/// Settings of a [`Verifier`].
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Required value of the `iss` claim.
    pub issuer: String,
    /// Value the `aud` claim (string or array) must contain.
    pub audience: String,
    /// Claim holding an array of role names ([`DEFAULT_ROLES_CLAIM`]); unknown names are ignored.
    pub roles_claim: String,
    /// Claim holding an array of team ids ([`DEFAULT_TEAMS_CLAIM`]).
    pub teams_claim: String,
    /// Verification keys.
    pub keys: KeySource,
    /// Clock skew tolerated for `exp` / `nbf`, at most [`MAX_LEEWAY_SECONDS`].
    pub leeway_seconds: u64,
    /// The API keys file ([`ApiKeys::from_file`]), read once by [`Verifier::new`]; `None`
    /// accepts no API keys.
    pub api_keys_file: Option<PathBuf>,
}

impl AuthConfig {
    /// A config with the default roles claim and leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>, keys: KeySource) -> Self {
        AuthConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            roles_claim: DEFAULT_ROLES_CLAIM.to_owned(),
            teams_claim: DEFAULT_TEAMS_CLAIM.to_owned(),
            keys,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            api_keys_file: None,
        }
    }
}

/// Why a [`Verifier`] could not be built or a token could not be minted.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    /// A required setting is empty or out of range.
    #[error("invalid auth config: {0}")]
    InvalidConfig(String),
    /// The HS256 secret is empty.
    #[error("invalid auth config: the HS256 secret is empty")]
    EmptySecret,
    /// The JWKS file could not be read.
    #[error("cannot read JWKS file {}: {source}", path.display())]
    ReadJwks {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JWKS file is not a usable JSON Web Key Set.
    #[error("invalid JWKS file {}: {message}", path.display())]
    InvalidJwks {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The API keys file could not be read.
    #[error("cannot read API keys file {}: {source}", path.display())]
    ReadApiKeys {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The API keys file is not valid.
    #[error("invalid API keys file {}: {message}", path.display())]
    InvalidApiKeys {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (naming the entry).
        message: String,
    },
    /// Signing a token failed.
    #[error("cannot sign token: {0}")]
    Signing(String),
}

/// Verifies bearer tokens and API keys. Cheap to clone (shares its keys).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
    api_keys: ApiKeys,
}

struct Inner {
    roles_claim: String,
    teams_claim: String,
    keys: Keys,
    leeway_seconds: u64,
    /// Tokens that passed [`Verifier::verify`], by their full text (signature included, so
    /// a tampered token is a different entry), with what their verification found.
    verified: moka::sync::Cache<String, Verified>,
}

/// A token that passed verification.
#[derive(Clone)]
struct Verified {
    principal: Principal,
    /// The `exp` claim plus the leeway, in seconds since the epoch: from then on the token
    /// is expired.
    expires_at: u64,
}

enum Keys {
    Secret(Box<VerificationKey>),
    Jwks(Vec<VerificationKey>),
    Remote(Arc<RemoteJwks>),
}

/// A key tokens are verified with, and how.
pub(super) struct VerificationKey {
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// The rejection of a token naming a key id the verifier does not hold.
pub(super) const UNKNOWN_KID: AuthError = AuthError::Invalid("unknown key id (kid)");

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, count) = match &self.inner.keys {
            Keys::Secret(_) => ("hs256-secret", 1),
            Keys::Jwks(keys) => ("jwks", keys.len()),
            Keys::Remote(remote) => ("jwks-url", remote.held()),
        };
        f.debug_struct("Verifier")
            .field("keys", &kind)
            .field("key_count", &count)
            .field("roles_claim", &self.inner.roles_claim)
            .field("api_keys", &self.api_keys.len())
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Builds a verifier, reading and parsing the JWKS file and the API keys file (if any)
    /// once.
    pub fn new(config: AuthConfig) -> Result<Verifier, AuthSetupError> {
        for (name, value) in
            [("issuer", &config.issuer), ("audience", &config.audience), ("roles_claim", &config.roles_claim)]
        {
            if value.trim().is_empty() {
                return Err(AuthSetupError::InvalidConfig(format!("{name} is empty")));
            }
        }
        if config.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthSetupError::InvalidConfig(format!(
                "leeway_seconds {} exceeds {MAX_LEEWAY_SECONDS}",
                config.leeway_seconds
            )));
        }
        let validation = |alg| validation_for(&config, alg);
        let keys = match &config.keys {
            KeySource::Secret(secret) if secret.is_empty() => {
                return Err(AuthSetupError::EmptySecret);
            }
            KeySource::Secret(secret) => {
                if secret.len() < 32 {
                    tracing::warn!(
                        bytes = secret.len(),
                        "HS256 secret is shorter than 32 bytes; use a longer random secret"
                    );
                }
                Keys::Secret(Box::new(VerificationKey {
                    kid: None,
                    key: DecodingKey::from_secret(secret),
                    validation: validation(Algorithm::HS256),
                }))
            }
            KeySource::JwksFile(path) => {
                let keys = load_jwks(path)?
                    .into_iter()
                    .map(|(kid, alg, key)| VerificationKey { kid, key, validation: validation(alg) })
                    .collect();
                Keys::Jwks(keys)
            }
            KeySource::JwksUrl(remote) => {
                let settings = config.clone();
                let parse = Box::new(move |document: &str| {
                    Ok(parse_jwks(document, "the fetched key set", true)?
                        .into_iter()
                        .map(|(kid, alg, key)| VerificationKey {
                            kid,
                            key,
                            validation: validation_for(&settings, alg),
                        })
                        .collect())
                });
                Keys::Remote(Arc::new(RemoteJwks::new(remote.clone(), &config.issuer, parse)?))
            }
        };
        let api_keys = match &config.api_keys_file {
            Some(path) => ApiKeys::from_file(path)?,
            None => ApiKeys::none(),
        };
        let verified =
            moka::sync::Cache::builder().max_capacity(VERIFIED_CAPACITY).time_to_live(VERIFIED_TTL).build();
        let inner = Inner {
            roles_claim: config.roles_claim,
            teams_claim: config.teams_claim,
            keys,
            leeway_seconds: config.leeway_seconds,
            verified,
        };
        // Keys from the identity provider are fetched at once (when a
        // runtime runs), not by the first caller.
        if let Keys::Remote(remote) = &inner.keys {
            remote.current();
        }
        Ok(Verifier { inner: Arc::new(inner), api_keys })
    }

    /// This verifier accepting `api_keys` (instead of those of its config).
    pub fn with_api_keys(self, api_keys: ApiKeys) -> Verifier {
        Verifier { api_keys, ..self }
    }

    /// The principal of an API key (the `x-api-key` value), or [`AuthError::InvalidApiKey`].
    pub fn verify_api_key(&self, key: &str) -> Result<Principal, AuthError> {
        self.api_keys.verify(key)
    }

    /// Verifies `token` (without the `Bearer ` prefix) and returns its principal.
    ///
    /// Checks the signature with the key matching the header (`alg` must be the key's
    /// algorithm), requires `exp`, `iss`, `aud` and `sub`, and checks `nbf` when present.
    /// A token verified before (within minutes) is only checked for expiry again.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        self.verify_at(token, unix_now())
    }

    /// [`Verifier::verify`] with `now` (seconds since the epoch) as the time a remembered
    /// token's expiry is checked against; a token not remembered is checked in full.
    pub(crate) fn verify_at(&self, token: &str, now: u64) -> Result<Principal, AuthError> {
        if let Some(verified) = self.inner.verified.get(token) {
            if now > verified.expires_at {
                self.inner.verified.invalidate(token);
                return Err(AuthError::Expired);
            }
            return Ok(verified.principal);
        }
        self.verify_in_full(token)
    }

    /// [`Verifier::verify`], and when the token names a key id the keys
    /// fetched from the identity provider lack, fetches them again (at most
    /// once per cool-down) and verifies once more. `UNAVAILABLE` when the
    /// keys could not be fetched: the token may well be good.
    pub async fn verify_refreshing(&self, token: &str) -> Result<Principal, tonic::Status> {
        match self.verify(token) {
            Err(error) if error == UNKNOWN_KID => {}
            verified => return verified.map_err(|error| error.to_status()),
        }
        let Keys::Remote(remote) = &self.inner.keys else {
            return Err(UNKNOWN_KID.to_status());
        };
        match remote.refresh_for_unknown_kid().await {
            // Recently: keys a background refresh brought in meanwhile may
            // hold the key id after all.
            Ok(Refreshed::Yes | Refreshed::Recently) => self.verify(token).map_err(|error| error.to_status()),
            // The cause is logged where the fetch failed; the caller learns
            // only that it may retry.
            Err(_) => Err(crate::problem::Problem::unavailable(
                "IDENTITY_PROVIDER_UNAVAILABLE",
                "the identity provider's signing keys could not be fetched; retry shortly",
            )
            .into()),
        }
    }

    /// True when a token rejected with an unknown key id may be good after
    /// all: the keys come from the identity provider and can be refreshed.
    pub(super) fn may_refresh(&self, error: &AuthError) -> bool {
        *error == UNKNOWN_KID && matches!(self.inner.keys, Keys::Remote(_))
    }

    fn verify_in_full(&self, token: &str) -> Result<Principal, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token or unsupported algorithm"))?;
        let fetched;
        let key = match &self.inner.keys {
            Keys::Secret(key) => key,
            Keys::Jwks(keys) => select_key(keys, header.kid.as_deref())?,
            Keys::Remote(remote) => {
                fetched = remote.current();
                select_key(&fetched, header.kid.as_deref())?
            }
        };
        if !key.validation.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid("algorithm does not match the key"));
        }
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation)
            .map_err(|error| map_jwt_error(error.kind()))?
            .claims;
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(AuthError::Invalid("missing or empty sub claim")),
        };
        let roles = parse_roles(claims.get(&self.inner.roles_claim))?;
        let teams = parse_teams(claims.get(&self.inner.teams_claim))?;
        let principal = Principal { subject, roles, teams };
        // `exp` is required and was checked, so it is a number here.
        if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
            let expires_at = (exp as u64).saturating_add(self.inner.leeway_seconds);
            let verified = Verified { principal: principal.clone(), expires_at };
            self.inner.verified.insert(token.to_owned(), verified);
        }
        Ok(principal)
    }
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0)
}

fn select_key<'a>(keys: &'a [VerificationKey], kid: Option<&str>) -> Result<&'a VerificationKey, AuthError> {
    match (kid, keys) {
        (Some(kid), _) => keys.iter().find(|key| key.kid.as_deref() == Some(kid)).ok_or(UNKNOWN_KID),
        (None, []) => Err(UNKNOWN_KID),
        (None, [only]) => Ok(only),
        (None, _) => Err(AuthError::Invalid("token has no key id (kid)")),
    }
}

/// Team ids: non-empty strings of at most 200 characters without control
/// characters, at most [`MAX_TEAMS`]; anything else makes the token invalid.
fn parse_teams(value: Option<&Value>) -> Result<Vec<String>, AuthError> {
    let names = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(names)) => names,
        Some(_) => return Err(AuthError::Invalid("teams claim is not an array")),
    };
    if names.len() > MAX_TEAMS {
        return Err(AuthError::Invalid("teams claim names too many teams"));
    }
    let mut teams: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let team = name
            .as_str()
            .filter(|team| is_team_id(team))
            .ok_or(AuthError::Invalid("teams claim holds an invalid team id"))?;
        if !teams.iter().any(|held| held == team) {
            teams.push(team.to_owned());
        }
    }
    Ok(teams)
}

/// A team id as tokens, keys and records carry it.
pub fn is_team_id(team: &str) -> bool {
    !team.trim().is_empty() && team.chars().count() <= 200 && !team.chars().any(char::is_control)
}

fn parse_roles(value: Option<&Value>) -> Result<Vec<Role>, AuthError> {
    let names = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(names)) => names,
        Some(_) => return Err(AuthError::Invalid("roles claim is not an array")),
    };
    let mut roles = Vec::new();
    for role in names.iter().filter_map(Value::as_str).filter_map(Role::parse) {
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    Ok(roles)
}

fn map_jwt_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::InvalidSignature => AuthError::Invalid("signature mismatch"),
        ErrorKind::InvalidIssuer => AuthError::Invalid("issuer not accepted"),
        ErrorKind::InvalidAudience => AuthError::Invalid("audience not accepted"),
        ErrorKind::ImmatureSignature => AuthError::Invalid("token not yet valid (nbf)"),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::Invalid("algorithm does not match the key")
        }
        ErrorKind::MissingRequiredClaim(claim) => AuthError::Invalid(match claim.as_str() {
            "exp" => "missing exp claim",
            "iss" => "missing iss claim",
            "aud" => "missing aud claim",
            "sub" => "missing or empty sub claim",
            _ => "missing required claim",
        }),
        ErrorKind::InvalidClaimFormat(_) => AuthError::Invalid("claim has an invalid format"),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            tracing::warn!("configured JWT verification key is unusable");
            AuthError::Invalid("verification key unusable")
        }
        _ => AuthError::Invalid("malformed token"),
    }
}

/// How tokens signed with `alg` are checked under `config`.
fn validation_for(config: &AuthConfig, alg: Algorithm) -> Validation {
    let mut validation = Validation::new(alg);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.leeway = config.leeway_seconds;
    validation
}

/// Mints an HS256 token (for `rapport dev-token` and tests) with `iss`, `aud`, `sub`, `iat`,
/// `nbf`, `exp = now + ttl` and the roles under [`DEFAULT_ROLES_CLAIM`].
pub fn mint_hs256(
    secret: &[u8],
    issuer: &str,
    audience: &str,
    subject: &str,
    roles: &[Role],
    ttl: Duration,
) -> Result<String, AuthSetupError> {
    mint_hs256_for(secret, (issuer, audience), &Principal::new(subject, roles.to_vec()), ttl)
}

/// [`mint_hs256`] for `principal`: its subject, roles and teams (in the
/// default claims).
pub fn mint_hs256_for(
    secret: &[u8],
    (issuer, audience): (&str, &str),
    principal: &Principal,
    ttl: Duration,
) -> Result<String, AuthSetupError> {
    let (subject, roles) = (principal.subject.as_str(), principal.roles.as_slice());
    if secret.is_empty() {
        return Err(AuthSetupError::EmptySecret);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| AuthSetupError::Signing("system clock is before 1970".to_owned()))?
        .as_secs();
    let exp = now
        .checked_add(ttl.as_secs())
        .ok_or_else(|| AuthSetupError::InvalidConfig("ttl is too large".to_owned()))?;
    let claims = serde_json::json!({
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": now,
        "nbf": now,
        "exp": exp,
        DEFAULT_ROLES_CLAIM: roles.iter().map(|role| role.as_str()).collect::<Vec<_>>(),
        DEFAULT_TEAMS_CLAIM: principal.teams,
    });
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret))
        .map_err(|error| AuthSetupError::Signing(error.to_string()))
}
