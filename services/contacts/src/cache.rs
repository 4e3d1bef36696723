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

impl Caches {
    /// Drops the cached copies of contacts `ids`.
    pub async fn drop_contacts(&self, ids: &[uuid::Uuid]) {
        for id in ids {
            self.contacts.invalidate(&id.to_string()).await;
        }
    }
}

/// Contacts a background transaction (a feed consumer's, the scorer's)
/// changed: once it commits their cached copies go and watchers wake.
#[derive(Default)]
pub struct AfterCommit(std::sync::Mutex<Vec<uuid::Uuid>>);

impl AfterCommit {
    /// Notes `ids` as changed by the running transaction.
    pub fn add(&self, ids: Vec<uuid::Uuid>) {
        if let Ok(mut changed) = self.0.lock() {
            changed.extend(ids);
        }
    }

    /// After the commit: drops the noted contacts' cached copies, then
    /// wakes `feed`'s watchers (in the background).
    pub fn flush(&self, caches: &Caches, feed: &rapport_kit::changelog::Feed) {
        let changed = self.0.lock().map(|mut ids| std::mem::take(&mut *ids)).unwrap_or_default();
        let (caches, feed) = (caches.clone(), feed.clone());
        tokio::spawn(async move {
            caches.drop_contacts(&changed).await;
            feed.announce();
        });
    }
}
