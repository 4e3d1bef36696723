//! The Contacts service's typed configuration, read once from the
//! environment.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rapport_kit::auth::{AuthConfig, config_from_env};
use rapport_kit::config::{ConfigError, Env};
use rapport_kit::db::DbConfig;
use rapport_kit::redis::RedisConfig;
use rapport_kit::server::ServerConfig;

use crate::cache::CacheSettings;

/// The default address of the Contacts service.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The default address of the Contacts metrics endpoint.
pub const DEFAULT_METRICS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9151);

/// Everything the Contacts service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONTACTS_ADDR`: where to listen (port 0 picks a free one).
    pub listen: SocketAddr,
    /// `CONTACTS_METRICS_ADDR` (default 127.0.0.1:9151; port 0 picks a free
    /// one; `off` serves no metrics): where `/metrics` and `/healthz` are served.
    pub metrics_listen: Option<SocketAddr>,
    /// PostgreSQL (schema `contacts`).
    pub db: DbConfig,
    /// Redis.
    pub redis: RedisConfig,
    /// Transport settings.
    pub server: ServerConfig,
    /// Token and API key verification (`AUTH_*`, `API_KEYS_FILE`).
    pub auth: AuthConfig,
    /// Cache tiers.
    pub cache: CacheSettings,
    /// `CHANGE_LOG_RETENTION` (default 30d): how long events stay watchable.
    pub change_log_retention: Duration,
    /// `WATCH_HEARTBEAT` (default 10s): heartbeat interval of idle streams.
    pub watch_heartbeat: Duration,
    /// `RAPPORT_AUTO_MIGRATE` (default true): apply migrations at start.
    /// Kubernetes runs `rapport migrate` as a Job and sets it to false.
    pub auto_migrate: bool,
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config {
            listen: env.or_default("CONTACTS_ADDR", socket(DEFAULT_ADDR))?,
            metrics_listen: env.address_or_off("CONTACTS_METRICS_ADDR", DEFAULT_METRICS_ADDR)?,
            db: DbConfig::from_env(env, "contacts")?,
            redis: RedisConfig::from_env(env)?,
            server: ServerConfig::from_env(env)?,
            auth: config_from_env(env)?,
            cache: CacheSettings::from_env(env)?,
            change_log_retention: env
                .duration_or("CHANGE_LOG_RETENTION", Duration::from_secs(30 * 86_400))?,
            watch_heartbeat: env.duration_or("WATCH_HEARTBEAT", Duration::from_secs(10))?,
            auto_migrate: env.flag_or("RAPPORT_AUTO_MIGRATE", true)?,
        })
    }
}

fn socket(addr: &str) -> SocketAddr {
    addr.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051)))
}
