//! The two caches of hot records (contacts and companies), configured from
//! the kit's `CacheSettings` (`CONTACTS_CACHE_*`); the mechanism is
//! `rapport_kit::cache::TwoTier`.

use rapport_kit::cache::{CacheSettings, TwoTier};
use rapport_kit::redis::Redis;
use rapport_kit::shutdown::Shutdown;
use rapport_proto::contacts::v1::{Company, Contact};

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
