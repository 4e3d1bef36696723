//! Authentication settings from the environment.

use std::path::PathBuf;

use super::dev::{DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET};
use super::jwt::{AuthConfig, DEFAULT_LEEWAY_SECONDS, DEFAULT_ROLES_CLAIM, DEFAULT_TEAMS_CLAIM, KeySource};
use crate::config::{ConfigError, Env};

/// The shortest HS256 secret accepted, in bytes (RFC 7518 §3.2: a key of
/// at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// The setting that turns the development mode on.
pub const DEV_MODE: &str = "RAPPORT_DEV_MODE";

/// Reads `AUTH_ISSUER`, `AUTH_AUDIENCE`, `AUTH_ROLES_CLAIM`, `AUTH_TEAMS_CLAIM`,
/// `AUTH_LEEWAY_SECONDS`, the keys: `AUTH_JWKS_FILE` (RS256/ES256) or
/// `AUTH_JWT_SECRET` (HS256, at least [`MIN_SECRET_BYTES`] bytes), and
/// `API_KEYS_FILE` (optional; no API keys without it). With neither token
/// key the service refuses to start, unless `RAPPORT_DEV_MODE=true` (which
/// `make run` and the tests set): then the public development secret is
/// used and a warning logged.
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
        (None, Some(secret)) if secret.len() < MIN_SECRET_BYTES => {
            return Err(ConfigError {
                name: "AUTH_JWT_SECRET".into(),
                problem: format!(
                    "is {} bytes; an HS256 secret needs at least {MIN_SECRET_BYTES} random bytes",
                    secret.len()
                ),
            });
        }
        (None, Some(secret)) => KeySource::Secret(secret.into_bytes()),
        (None, None) if env.or_default(DEV_MODE, false)? => {
            tracing::warn!(
                "RAPPORT_DEV_MODE=true and no AUTH_JWT_SECRET or AUTH_JWKS_FILE: using the public \
                 development key; never do this in production"
            );
            KeySource::Secret(DEV_SECRET.as_bytes().to_vec())
        }
        (None, None) => {
            return Err(ConfigError {
                name: "AUTH_JWT_SECRET".into(),
                problem: format!(
                    "no token key is configured: set AUTH_JWT_SECRET (HS256, at least {MIN_SECRET_BYTES} \
                     random bytes) or AUTH_JWKS_FILE (your identity provider's keys); for local \
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_exactly_one_source() {
        let both = Env::from_pairs([("AUTH_JWKS_FILE", "/k.json"), ("AUTH_JWT_SECRET", "s")]);
        assert_eq!(config_from_env(&both).unwrap_err().name, "AUTH_JWKS_FILE");
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
