//! The two caches of hot records (contacts and companies), configured from
//! [`CacheSettings`]; the mechanism is `rapport_kit::cache::TwoTier`.

use std::time::Duration;

use rapport_kit::cache::{CacheConfig, TwoTier};
use rapport_kit::config::{ConfigError, Env};
use rapport_kit::redis::Redis;
use rapport_kit::shutdown::Shutdown;
use rapport_proto::contacts::v1::{Company, Contact};

/// Which tiers serve reads.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `CONTACTS_CACHE_LOCAL` (default true): the in-process tier.
    pub local: bool,
    /// `CONTACTS_CACHE_REDIS` (default true): the Redis tier.
    pub redis: bool,
    /// `CONTACTS_CACHE_LOCAL_CAPACITY` (default 100000 records per type).
    pub local_capacity: u64,
    /// `CONTACTS_CACHE_LOCAL_TTL` (default 30s).
    pub local_ttl: Duration,
    /// `CONTACTS_CACHE_REDIS_TTL` (default 1h).
    pub redis_ttl: Duration,
}

impl CacheSettings {
    /// Reads the `CONTACTS_CACHE_*` variables.
    pub fn from_env(env: &Env) -> Result<CacheSettings, ConfigError> {
        Ok(CacheSettings {
            local: env.flag_or("CONTACTS_CACHE_LOCAL", true)?,
            redis: env.flag_or("CONTACTS_CACHE_REDIS", true)?,
            local_capacity: env.or_default("CONTACTS_CACHE_LOCAL_CAPACITY", 100_000)?,
            local_ttl: env.duration_or("CONTACTS_CACHE_LOCAL_TTL", Duration::from_secs(30))?,
            redis_ttl: env.duration_or("CONTACTS_CACHE_REDIS_TTL", Duration::from_secs(3600))?,
        })
    }

    fn config(&self, namespace: &str) -> CacheConfig {
        CacheConfig {
            namespace: namespace.to_owned(),
            local_enabled: self.local,
            local_capacity: self.local_capacity,
            local_ttl: self.local_ttl,
            redis_enabled: self.redis,
            redis_ttl: self.redis_ttl,
        }
    }
}

/// The caches of one Contacts process.
#[derive(Clone)]
pub struct Caches {
    /// Contacts by id.
    pub contacts: TwoTier<Contact>,
    /// Companies by id.
    pub companies: TwoTier<Company>,
}

impl Caches {
    /// Both caches over `redis`, following invalidations until `shutdown`.
    pub fn new(settings: &CacheSettings, redis: Option<Redis>, shutdown: &Shutdown) -> Caches {
        Caches {
            contacts: TwoTier::new(
                settings.config("rapport:contacts:contact"),
                redis.clone(),
                shutdown.clone(),
            ),
            companies: TwoTier::new(settings.config("rapport:contacts:company"), redis, shutdown.clone()),
        }
    }
}
