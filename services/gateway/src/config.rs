//! The gateway's typed configuration, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use rapport_kit::auth::{AuthConfig, config_from_env};
use rapport_kit::config::{ConfigError, Env};
use rapport_kit::ratelimit::RateLimitSettings;
use rapport_kit::redis::RedisConfig;
use rapport_kit::server::ServerConfig;

use crate::backend::Target;

/// The gateway's default local ports (gRPC and gRPC-web; `/metrics`).
pub const PORTS: rapport_kit::service::Ports = rapport_kit::service::Ports { grpc: 50050, metrics: 9150 };
/// The default address of the gateway.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50050";
/// The default address of the gateway's `/metrics`.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9150";

/// The variable prefix naming one area's backend: `GATEWAY_BACKEND_<AREA>`.
pub const BACKEND_PREFIX: &str = "GATEWAY_BACKEND_";

/// The service areas whose contracts this build knows (`contacts` for
/// `rapport.contacts.v1`), read from the descriptor set: every package but
/// the gateway's own and the bench's. An area it does not know (a service
/// newer than this gateway) is routed all the same when its
/// `GATEWAY_BACKEND_<AREA>` is set.
pub fn known_areas() -> Vec<&'static str> {
    let mut areas: Vec<&'static str> = rapport_proto::SERVICES
        .iter()
        .filter_map(|(name, _)| name.split('.').nth(1))
        .filter(|area| !matches!(*area, "gateway" | "bench"))
        .collect();
    areas.dedup();
    areas
}

/// One routed service area and where its replicas are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendConfig {
    /// The area name (`contacts`), the second part of the proto package.
    pub area: String,
    /// Where its endpoints are; `None` when turned `off`.
    pub target: Option<Target>,
}

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// `GATEWAY_ADDR`: where to listen for gRPC and gRPC-web.
    pub listen: SocketAddr,
    /// `GATEWAY_METRICS_ADDR`: where to serve `/metrics` (`off` disables).
    pub metrics_listen: Option<SocketAddr>,
    /// `GATEWAY_BACKEND_<AREA>` (`off` routes nothing): the backends, one
    /// per routed area; an area without one is routed to its default local
    /// address when the binary gives one ([`Config::with_default_backends`]).
    pub backends: Vec<BackendConfig>,
    /// `GATEWAY_CORS_ORIGINS`: browser origins allowed to call (comma
    /// separated; `*` allows any). Empty: no cross-origin browser calls.
    pub cors_origins: Vec<String>,
    /// `GATEWAY_DEFAULT_DEADLINE` (30s): the deadline of a unary call whose
    /// client set none.
    pub default_deadline: Duration,
    /// `GATEWAY_MAX_DEADLINE` (5m): longer unary deadlines are shortened.
    pub max_deadline: Duration,
    /// `GATEWAY_MAX_CONCURRENCY` (512): unary calls in flight before new
    /// ones are shed with RESOURCE_EXHAUSTED.
    pub max_concurrency: usize,
    /// `GATEWAY_MAX_STREAMS` (10000): open streaming calls before new ones
    /// are shed.
    pub max_streams: usize,
    /// `GATEWAY_HEALTH_INTERVAL` (2s): how often each backend endpoint's
    /// health service is asked.
    pub health_interval: Duration,
    /// `GATEWAY_CONNECT_TIMEOUT` (1s): connecting to a backend endpoint.
    pub connect_timeout: Duration,
    /// `GATEWAY_DNS_REFRESH` (10s): how often `dns:` backends are resolved.
    pub dns_refresh: Duration,
    /// Transport settings (message size, keepalive, shutdown grace).
    pub server: ServerConfig,
    /// Token and API key verification.
    pub auth: AuthConfig,
    /// Redis, for the shared rate limits.
    pub redis: RedisConfig,
    /// Per-principal rate limits.
    pub rate_limit: RateLimitSettings,
    /// Paths (`/<service>/<method>`) the services behind let through
    /// without credentials (their token is in the message, e.g. a survey's);
    /// set by the binary from the services' role tables
    /// ([`Config::with_public_paths`]).
    pub public_paths: Vec<String>,
}

impl Config {
    /// Reads the configuration; errors name the variable.
    pub fn from_env(env: &Env) -> Result<Config, ConfigError> {
        let mut backends = Vec::new();
        for name in env.names_with_prefix(BACKEND_PREFIX) {
            let area = name[BACKEND_PREFIX.len()..].to_ascii_lowercase();
            let Some(raw) = env.optional::<String>(&name)? else { continue };
            if area.is_empty() || !area.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()) {
                return Err(ConfigError {
                    name,
                    problem: "names no area (GATEWAY_BACKEND_<AREA>)".to_owned(),
                });
            }
            let target = match raw.as_str() {
                "off" => None,
                raw => {
                    Some(Target::parse(raw).map_err(|problem| ConfigError { name: name.clone(), problem })?)
                }
            };
            backends.push(BackendConfig { area, target });
        }
        let origins: String = env.or_default("GATEWAY_CORS_ORIGINS", String::new())?;
        let cors_origins = origins
            .split(',')
            .map(|origin| origin.trim().trim_end_matches('/').to_owned())
            .filter(|origin| !origin.is_empty())
            .collect();
        let metrics: String = env.or_default("GATEWAY_METRICS_ADDR", DEFAULT_METRICS_ADDR.to_owned())?;
        let metrics_listen = match metrics.as_str() {
            "off" => None,
            raw => Some(raw.parse().map_err(|err| ConfigError {
                name: "GATEWAY_METRICS_ADDR".to_owned(),
                problem: format!("{raw:?} is not a socket address: {err}"),
            })?),
        };
        let config = Config {
            listen: env.or_default("GATEWAY_ADDR", socket(DEFAULT_ADDR))?,
            metrics_listen,
            backends,
            cors_origins,
            default_deadline: env.duration_or("GATEWAY_DEFAULT_DEADLINE", Duration::from_secs(30))?,
            max_deadline: env.duration_or("GATEWAY_MAX_DEADLINE", Duration::from_secs(300))?,
            max_concurrency: env.or_default("GATEWAY_MAX_CONCURRENCY", 512)?,
            max_streams: env.or_default("GATEWAY_MAX_STREAMS", 10_000)?,
            health_interval: env.duration_or("GATEWAY_HEALTH_INTERVAL", Duration::from_secs(2))?,
            connect_timeout: env.duration_or("GATEWAY_CONNECT_TIMEOUT", Duration::from_secs(1))?,
            dns_refresh: env.duration_or("GATEWAY_DNS_REFRESH", Duration::from_secs(10))?,
            server: ServerConfig::from_env(env)?,
            auth: config_from_env(env)?,
            redis: RedisConfig::from_env(env)?,
            rate_limit: RateLimitSettings::from_env(env)?,
            public_paths: Vec::new(),
        };
        if config.default_deadline > config.max_deadline {
            return Err(ConfigError {
                name: "GATEWAY_DEFAULT_DEADLINE".to_owned(),
                problem: "is longer than GATEWAY_MAX_DEADLINE".to_owned(),
            });
        }
        for (name, value) in
            [("GATEWAY_MAX_CONCURRENCY", config.max_concurrency), ("GATEWAY_MAX_STREAMS", config.max_streams)]
        {
            if value == 0 {
                return Err(ConfigError { name: name.to_owned(), problem: "must be at least 1".to_owned() });
            }
        }
        Ok(config)
    }

    /// This configuration with `area` routed to `target` (used by `serve
    /// all` to point the gateway at the services it just started, unless the
    /// environment names them).
    pub fn with_backend(mut self, area: &str, target: Target) -> Config {
        self.backends.retain(|backend| backend.area != area);
        self.backends.push(BackendConfig { area: area.to_owned(), target: Some(target) });
        self
    }

    /// This configuration with each of `defaults` (area, address) routed
    /// unless the environment named a backend for it (or turned it `off`).
    pub fn with_default_backends<'a>(
        mut self,
        defaults: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Config {
        for (area, addr) in defaults {
            if !self.backends.iter().any(|backend| backend.area == area) {
                self.backends
                    .push(BackendConfig { area: area.to_owned(), target: Some(Target::Static(vec![addr])) });
            }
        }
        self
    }

    /// This configuration letting `paths` through without credentials.
    pub fn with_public_paths(mut self, paths: impl IntoIterator<Item = String>) -> Config {
        self.public_paths = paths.into_iter().collect();
        self
    }

    /// The routed areas and their targets (those turned `off` left out).
    pub fn routed(&self) -> impl Iterator<Item = (&str, &Target)> {
        self.backends.iter().filter_map(|backend| Some((backend.area.as_str(), backend.target.as_ref()?)))
    }
}

fn socket(addr: &str) -> SocketAddr {
    addr.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50050)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_come_from_the_contracts_and_defaults_from_the_binary() {
        let areas = known_areas();
        assert!(areas.contains(&"contacts") && areas.contains(&"pipeline"), "{areas:?}");
        assert!(!areas.contains(&"bench") && !areas.contains(&"gateway"), "{areas:?}");
        let config = Config::from_env(&Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true")])).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_ADDR);
        assert_eq!(config.routed().count(), 0, "nothing is routed without a backend or a default");
        let env =
            Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("GATEWAY_BACKEND_PIPELINE", "off")]);
        let config = Config::from_env(&env).unwrap().with_default_backends([
            ("contacts", "127.0.0.1:50051".to_owned()),
            ("pipeline", "127.0.0.1:50052".to_owned()),
        ]);
        let routed: Vec<_> = config.routed().collect();
        assert_eq!(routed, [("contacts", &Target::parse("127.0.0.1:50051").unwrap())]);
    }

    #[test]
    fn an_area_the_build_does_not_know_is_routed_when_configured() {
        let env = Env::from_pairs([
            (rapport_kit::auth::DEV_MODE, "true"),
            ("GATEWAY_BACKEND_WAREHOUSE", "10.0.0.9:50060"),
        ]);
        let config = Config::from_env(&env).unwrap();
        let routed: Vec<_> = config.routed().collect();
        assert_eq!(routed, [("warehouse", &Target::parse("10.0.0.9:50060").unwrap())]);
        let env =
            Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("GATEWAY_BACKEND_", "10.0.0.9:50060")]);
        assert_eq!(Config::from_env(&env).unwrap_err().name, "GATEWAY_BACKEND_");
    }

    #[test]
    fn backends_origins_and_limits_are_read_and_checked_by_name() {
        let env = Env::from_pairs([
            (rapport_kit::auth::DEV_MODE, "true"),
            ("GATEWAY_BACKEND_CONTACTS", "dns:contacts-headless:50051"),
            ("GATEWAY_BACKEND_PIPELINE", "10.0.0.1:50052, 10.0.0.2:50052"),
            ("GATEWAY_CORS_ORIGINS", "https://app.example.com/, http://localhost:3000"),
            ("GATEWAY_METRICS_ADDR", "off"),
        ]);
        let config = Config::from_env(&env).unwrap();
        let areas: Vec<_> = config.backends.iter().map(|backend| backend.area.as_str()).collect();
        assert_eq!(areas, ["contacts", "pipeline"]);
        assert_eq!(config.cors_origins, ["https://app.example.com", "http://localhost:3000"]);
        assert_eq!(config.metrics_listen, None);

        let env =
            Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("GATEWAY_BACKEND_CONTACTS", "dns:")]);
        assert_eq!(Config::from_env(&env).unwrap_err().name, "GATEWAY_BACKEND_CONTACTS");
        let env =
            Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("GATEWAY_DEFAULT_DEADLINE", "10m")]);
        assert_eq!(Config::from_env(&env).unwrap_err().name, "GATEWAY_DEFAULT_DEADLINE");
        let env = Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true"), ("GATEWAY_MAX_CONCURRENCY", "0")]);
        assert_eq!(Config::from_env(&env).unwrap_err().name, "GATEWAY_MAX_CONCURRENCY");
        let env = Env::from_pairs([
            (rapport_kit::auth::DEV_MODE, "true"),
            ("GATEWAY_BACKEND_CONTACTS", "off"),
            ("GATEWAY_BACKEND_PIPELINE", "off"),
        ]);
        assert_eq!(Config::from_env(&env).unwrap().routed().count(), 0);
    }
}
