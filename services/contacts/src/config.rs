//! The Contacts service's configuration, read once from the environment:
//! the kit's common settings with the `CONTACTS` prefix (`CONTACTS_ADDR`,
//! `CONTACTS_METRICS_ADDR`, `CONTACTS_CACHE_*`, …; see
//! `rapport_kit::service::Settings`).

use rapport_kit::config::{ConfigError, Env};
use rapport_kit::service::Settings;

/// The default address of the Contacts service.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// Everything the Contacts service needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// The common settings.
    pub service: Settings,
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        Ok(Config { service: Settings::from_env(env, &crate::SPEC)? })
    }
}
