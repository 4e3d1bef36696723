//! Authentication settings from the environment.

use std::path::PathBuf;

use super::dev::{DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET};
use super::jwt::{AuthConfig, DEFAULT_LEEWAY_SECONDS, DEFAULT_ROLES_CLAIM, DEFAULT_TEAMS_CLAIM, KeySource};
use super::remote::{
    DEFAULT_FETCH_TIMEOUT, DEFAULT_MIN_REFRESH_INTERVAL, DEFAULT_REFRESH_INTERVAL, JwksLocation,
    RemoteJwksConfig,
};
use crate::config::{ConfigError, Env};

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: a key of
/// at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The setting that turns the development mode on.
pub const DEV_MODE: &str = "RAPPORT_DEV_MODE";

/// Reads `AUTH_ISSUER`, `AUTH_AUDIENCE`, `AUTH_ROLES_CLAIM`, `AUTH_TEAMS_CLAIM`,
/// `AUTH_LEEWAY_SECONDS`, the keys — one of `AUTH_JWKS_FILE` (RS256/ES256),
/// `AUTH_JWKS_URL` or `AUTH_OIDC_DISCOVERY=true` (the identity provider's
/// keys fetched, with `AUTH_JWKS_CA_FILE`, `AUTH_JWKS_REFRESH_INTERVAL`,
/// `AUTH_JWKS_MIN_REFRESH_INTERVAL` and `AUTH_JWKS_TIMEOUT`) or
/// `AUTH_JWT_SECRET` (HS256, at least [`MIN_SECRET_BYTES`] bytes) — and
/// `API_KEYS_FILE` (optional; no API keys without it). With neither token
/// key the service refuses to start, unless `RAPPORT_DEV_MODE=true` (which
/// `make run` and the tests set): then the public development secret is
/// used and a warning logged.
pub fn config_from_env(env: &Env) -> Result<AuthConfig, ConfigError> {
    let jwks: Option<PathBuf> = env.optional("AUTH_JWKS_FILE")?;
    let secret: Option<String> = env.optional("AUTH_JWT_SECRET")?;
    let remote = remote_from_env(env)?;
    let sources = [jwks.is_some(), secret.is_some(), remote.is_some()];
    if sources.iter().filter(|set| **set).count() > 1 {
        return Err(ConfigError {
            name: "AUTH_JWKS_FILE".into(),
            problem:
                "set one of AUTH_JWKS_FILE, AUTH_JWKS_URL (or AUTH_OIDC_DISCOVERY) and AUTH_JWT_SECRET, \
                      not several"
                    .into(),
        });
    }
    let keys = match (jwks, secret, remote) {
        (_, _, Some(remote)) => KeySource::JwksUrl(remote),
        (Some(path), _, None) => KeySource::JwksFile(path),
        (None, Some(secret), None) if secret.len() < MIN_SECRET_BYTES => {
            return Err(ConfigError {
                name: "AUTH_JWT_SECRET".into(),
                problem: format!(
                    "is {} bytes; an HS256 secret needs at least {MIN_SECRET_BYTES} random bytes",
                    secret.len()
                ),
            });
        }
        (None, Some(secret), None) => KeySource::Secret(secret.into_bytes()),
        (None, None, None) if env.or_default(DEV_MODE, false)? => {
            tracing::warn!(
                "RAPPORT_DEV_MODE=true and no AUTH_JWT_SECRET or AUTH_JWKS_FILE: using the public \
                 development key; never do this in production"
            );
            KeySource::Secret(DEV_SECRET.as_bytes().to_vec())
        }
        (None, None, None) => {
            return Err(ConfigError {
                name: "AUTH_JWT_SECRET".into(),
                problem: format!(
                    "no token key is configured: set AUTH_JWT_SECRET (HS256, at least {MIN_SECRET_BYTES} \
                     random bytes), AUTH_JWKS_FILE or AUTH_JWKS_URL (your identity provider's keys) or \
                     AUTH_OIDC_DISCOVERY=true (its keys found from AUTH_ISSUER); for local \
                     development only, {DEV_MODE}=true uses the public development key"
                ),
            });
        }
    };
    Ok(AuthConfig {
        issuer: env.or_default("AUTH_ISSUER", DEV_ISSUER.to_owned())?,
        audience: env.or_default("AUTH_AUDIENCE", DEV_AUDIENCE.to_owned())?,
        roles_claim: env.or_default("AUTH_ROLES_CLAIM", DEFAULT_ROLES_CLAIM.to_owned())?,
        teams_claim: env.or_default("AUTH_TEAMS_CLAIM", DEFAULT_TEAMS_CLAIM.to_owned())?,
        keys,
        leeway_seconds: env.or_default("AUTH_LEEWAY_SECONDS", DEFAULT_LEEWAY_SECONDS)?,
        api_keys_file: env.optional("API_KEYS_FILE")?,
    })
}

/// The fetched key set's settings, when `AUTH_JWKS_URL` or
/// `AUTH_OIDC_DISCOVERY=true` asks for one.
fn remote_from_env(env: &Env) -> Result<Option<RemoteJwksConfig>, ConfigError> {
    let url: Option<String> = env.optional("AUTH_JWKS_URL")?;
    let discovery = env.or_default("AUTH_OIDC_DISCOVERY", false)?;
    let location = match (url, discovery) {
        (Some(_), true) => {
            return Err(ConfigError {
                name: "AUTH_JWKS_URL".into(),
                problem: "set AUTH_JWKS_URL or AUTH_OIDC_DISCOVERY=true, not both".into(),
            });
        }
        (Some(url), false) => JwksLocation::Url(url),
        (None, true) => JwksLocation::Discovery,
        (None, false) => return Ok(None),
    };
    Ok(Some(RemoteJwksConfig {
        location,
        ca_file: env.optional("AUTH_JWKS_CA_FILE")?,
        refresh_interval: env.duration_or("AUTH_JWKS_REFRESH_INTERVAL", DEFAULT_REFRESH_INTERVAL)?,
        min_refresh_interval: env
            .duration_or("AUTH_JWKS_MIN_REFRESH_INTERVAL", DEFAULT_MIN_REFRESH_INTERVAL)?,
        timeout: env.duration_or("AUTH_JWKS_TIMEOUT", DEFAULT_FETCH_TIMEOUT)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_exactly_one_source() {
        let both = Env::from_pairs([("AUTH_JWKS_FILE", "/k.json"), ("AUTH_JWT_SECRET", "s")]);
        assert_eq!(config_from_env(&both).unwrap_err().name, "AUTH_JWKS_FILE");
        let url_and_secret = Env::from_pairs([
            ("AUTH_JWKS_URL", "https://idp/keys"),
            ("AUTH_JWT_SECRET", "s".repeat(40).as_str()),
        ]);
        assert_eq!(config_from_env(&url_and_secret).unwrap_err().name, "AUTH_JWKS_FILE");
        let url_and_discovery =
            Env::from_pairs([("AUTH_JWKS_URL", "https://idp/keys"), ("AUTH_OIDC_DISCOVERY", "true")]);
        assert_eq!(config_from_env(&url_and_discovery).unwrap_err().name, "AUTH_JWKS_URL");
        let url = config_from_env(&Env::from_pairs([
            ("AUTH_JWKS_URL", "https://idp/keys"),
            ("AUTH_JWKS_MIN_REFRESH_INTERVAL", "5s"),
        ]))
        .unwrap();
        assert!(matches!(url.keys, KeySource::JwksUrl(ref remote)
            if remote.location == JwksLocation::Url("https://idp/keys".into())
                && remote.min_refresh_interval == std::time::Duration::from_secs(5)
                && remote.refresh_interval == DEFAULT_REFRESH_INTERVAL));
        let discovery = config_from_env(&Env::from_pairs([("AUTH_OIDC_DISCOVERY", "true")])).unwrap();
        assert!(
            matches!(discovery.keys, KeySource::JwksUrl(ref remote) if remote.location == JwksLocation::Discovery)
        );
        let jwks = config_from_env(&Env::from_pairs([("AUTH_JWKS_FILE", "/k.json")])).unwrap();
        assert!(matches!(jwks.keys, KeySource::JwksFile(_)));
        let unconfigured = config_from_env(&Env::from_pairs([])).unwrap_err();
        assert_eq!(unconfigured.name, "AUTH_JWT_SECRET");
        assert!(unconfigured.problem.contains("AUTH_JWKS_FILE"), "{}", unconfigured.problem);
        let local = config_from_env(&Env::from_pairs([(DEV_MODE, "true")])).unwrap();
        assert_eq!(local.issuer, DEV_ISSUER);
        assert!(matches!(local.keys, KeySource::Secret(ref s) if s == DEV_SECRET.as_bytes()));
        assert_eq!(local.api_keys_file, None);
        let short = config_from_env(&Env::from_pairs([("AUTH_JWT_SECRET", "s3cret")])).unwrap_err();
        assert!(short.problem.contains("at least 32"), "{}", short.problem);
        let long = "0123456789abcdef0123456789abcdef";
        assert!(config_from_env(&Env::from_pairs([("AUTH_JWT_SECRET", long)])).is_ok());
        let keys =
            config_from_env(&Env::from_pairs([(DEV_MODE, "true"), ("API_KEYS_FILE", "/keys.json")])).unwrap();
        assert_eq!(keys.api_keys_file, Some(PathBuf::from("/keys.json")));
    }
}
