//! The settings every service has, read with the service's prefix.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::auth::{AuthConfig, config_from_env};
use crate::cache::CacheSettings;
use crate::config::{ConfigError, Env};
use crate::db::DbConfig;
use crate::redis::RedisConfig;
use crate::server::ServerConfig;

use super::Spec;

/// Everything the kit needs to start and run a service. `<PREFIX>` is the
/// service's name in capitals (`CONTACTS`); a variable read "with the
/// prefix" is `<PREFIX>_NAME` when set, else `NAME` (see
/// [`Env::prefixed`]), so services sharing a process can differ.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<PREFIX>_ADDR` (default 127.0.0.1 and the service's port; port 0
    /// picks a free one): where gRPC is served.
    pub listen: SocketAddr,
    /// `<PREFIX>_METRICS_ADDR` (default 127.0.0.1 and the service's metrics
    /// port; `off` serves none): where `/metrics` and `/healthz` are served.
    pub metrics_listen: Option<SocketAddr>,
    /// PostgreSQL, with the prefix (`DATABASE_URL`,
    /// `DATABASE_MAX_CONNECTIONS`, `DATABASE_ACQUIRE_TIMEOUT`); the schema is
    /// the service's name.
    pub db: DbConfig,
    /// Redis, with the prefix (`REDIS_URL`, `REDIS_COMMAND_TIMEOUT`, `REDIS_BACKOFF`).
    pub redis: RedisConfig,
    /// Transport settings, with the prefix (`GRPC_MAX_MESSAGE_BYTES`,
    /// `GRPC_KEEPALIVE_*`, `GRPC_MAX_CONNECTION_AGE*`, `SHUTDOWN_GRACE`).
    pub server: ServerConfig,
    /// Token and API key verification (`AUTH_*`, `API_KEYS_FILE`), the same
    /// for every service.
    pub auth: AuthConfig,
    /// The cache tiers (`<PREFIX>_CACHE_*`), for services that cache.
    pub cache: CacheSettings,
    /// `CHANGE_LOG_RETENTION` with the prefix (default 30d): how long events
    /// stay watchable.
    pub change_log_retention: Duration,
    /// `WATCH_HEARTBEAT` with the prefix (default 10s): heartbeat interval
    /// of idle `WatchChanges` streams.
    pub watch_heartbeat: Duration,
    /// `RAPPORT_AUTO_MIGRATE` (default true): apply migrations at start.
    /// Kubernetes runs `rapport migrate` as a Job and sets it to false.
    pub auto_migrate: bool,
    /// `PAGE_TOKEN_KEYS`: secrets page tokens are signed with, comma
    /// separated (the first signs, each verifies: add a new one first,
    /// drop the old one later). Default: one derived from the HS256 token
    /// secret, so it rotates with it; with JWKS keys and no setting, a
    /// random key per process (tokens then work on one replica only).
    pub page_token_keys: Vec<Vec<u8>>,
}

impl Settings {
    /// Reads the settings of `spec`'s service; errors name the variable.
    pub fn from_env(env: &Env, spec: &Spec) -> Result<Settings, ConfigError> {
        let prefix = spec.prefix();
        let own = env.prefixed(&prefix);
        let localhost = |port| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        Ok(Settings {
            listen: env.or_default(&format!("{prefix}_ADDR"), localhost(spec.ports.grpc))?,
            metrics_listen: env
                .address_or_off(&format!("{prefix}_METRICS_ADDR"), localhost(spec.ports.metrics))?,
            db: DbConfig::from_env(&own, spec.name)?,
            redis: RedisConfig::from_env(&own)?,
            server: ServerConfig::from_env(&own)?,
            auth: config_from_env(env)?,
            cache: CacheSettings::from_env(env, spec.name)?,
            change_log_retention: own
                .duration_or("CHANGE_LOG_RETENTION", Duration::from_secs(30 * 86_400))?,
            watch_heartbeat: own.duration_or("WATCH_HEARTBEAT", Duration::from_secs(10))?,
            auto_migrate: env.flag_or("RAPPORT_AUTO_MIGRATE", true)?,
            page_token_keys: page_token_keys(env)?,
        })
    }
}

/// `PAGE_TOKEN_KEYS`, else a key derived from the HS256 secret, else none.
fn page_token_keys(env: &Env) -> Result<Vec<Vec<u8>>, ConfigError> {
    use hmac::Mac as _;
    if let Some(keys) = env.optional::<String>("PAGE_TOKEN_KEYS")? {
        let keys: Vec<Vec<u8>> = keys
            .split(',')
            .map(str::trim)
            .filter(|key| !key.is_empty())
            .map(|key| key.as_bytes().to_vec())
            .collect();
        if keys.iter().any(|key| key.len() < crate::auth::MIN_SECRET_BYTES) {
            return Err(ConfigError {
                name: "PAGE_TOKEN_KEYS".into(),
                problem: format!("each key needs at least {} bytes", crate::auth::MIN_SECRET_BYTES),
            });
        }
        return Ok(keys);
    }
    let Some(secret) = env.optional::<String>("AUTH_JWT_SECRET")?.or_else(|| {
        env.or_default(crate::auth::DEV_MODE, false)
            .ok()
            .filter(|dev| *dev)
            .map(|_| crate::auth::dev::DEV_SECRET.to_owned())
    }) else {
        return Ok(Vec::new());
    };
    let mut mac = <hmac::Hmac<sha2::Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes())
        .map_err(|_| ConfigError { name: "AUTH_JWT_SECRET".into(), problem: "unusable as a key".into() })?;
    mac.update(b"rapport page tokens");
    Ok(vec![mac.finalize().into_bytes().to_vec()])
}
