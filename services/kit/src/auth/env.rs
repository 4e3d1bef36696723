//! Authentication settings from the environment.

use std::path::PathBuf;

use super::dev::{DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET};
use super::jwt::{AuthConfig, DEFAULT_LEEWAY_SECONDS, DEFAULT_ROLES_CLAIM, KeySource};
use crate::config::{ConfigError, Env};

/// Reads `AUTH_ISSUER`, `AUTH_AUDIENCE`, `AUTH_ROLES_CLAIM`,
/// `AUTH_LEEWAY_SECONDS`, the keys: `AUTH_JWKS_FILE` (RS256/ES256) or
/// `AUTH_JWT_SECRET` (HS256), and `API_KEYS_FILE` (optional; no API keys
/// without it). With neither token key, the local development secret is
/// used and a warning logged, so `rapport serve all` works unconfigured.
pub fn config_from_env(env: &Env) -> Result<AuthConfig, ConfigError> {
    let jwks: Option<PathBuf> = env.optional("AUTH_JWKS_FILE")?;
    let secret: Option<String> = env.optional("AUTH_JWT_SECRET")?;
    let keys = match (jwks, secret) {
        (Some(_), Some(_)) => {
            return Err(ConfigError {
                name: "AUTH_JWKS_FILE".into(),
                problem: "set either AUTH_JWKS_FILE or AUTH_JWT_SECRET, not both".into(),
            });
        }
        (Some(path), None) => KeySource::JwksFile(path),
        (None, Some(secret)) => KeySource::Secret(secret.into_bytes()),
        (None, None) => {
            tracing::warn!(
                "AUTH_JWT_SECRET and AUTH_JWKS_FILE are unset: using the local development key; \
                 never do this in production"
            );
            KeySource::Secret(DEV_SECRET.as_bytes().to_vec())
        }
    };
    Ok(AuthConfig {
        issuer: env.or_default("AUTH_ISSUER", DEV_ISSUER.to_owned())?,
        audience: env.or_default("AUTH_AUDIENCE", DEV_AUDIENCE.to_owned())?,
        roles_claim: env.or_default("AUTH_ROLES_CLAIM", DEFAULT_ROLES_CLAIM.to_owned())?,
        keys,
        leeway_seconds: env.or_default("AUTH_LEEWAY_SECONDS", DEFAULT_LEEWAY_SECONDS)?,
        api_keys_file: env.optional("API_KEYS_FILE")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_exactly_one_source() {
        let both = Env::from_pairs([("AUTH_JWKS_FILE", "/k.json"), ("AUTH_JWT_SECRET", "s")]);
        assert_eq!(config_from_env(&both).unwrap_err().name, "AUTH_JWKS_FILE");
        let jwks = config_from_env(&Env::from_pairs([("AUTH_JWKS_FILE", "/k.json")])).unwrap();
        assert!(matches!(jwks.keys, KeySource::JwksFile(_)));
        let local = config_from_env(&Env::from_pairs([])).unwrap();
        assert_eq!(local.issuer, DEV_ISSUER);
        assert!(matches!(local.keys, KeySource::Secret(ref s) if s == DEV_SECRET.as_bytes()));
        assert_eq!(local.api_keys_file, None);
        let keys = config_from_env(&Env::from_pairs([("API_KEYS_FILE", "/keys.json")])).unwrap();
        assert_eq!(keys.api_keys_file, Some(PathBuf::from("/keys.json")));
    }
}
