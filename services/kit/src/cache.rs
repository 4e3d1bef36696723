//! The two-tier cache for hot records: in-process (moka, bounded, short
//! TTL, concurrent misses coalesced into one load) over Redis (shared by
//! replicas; protobuf bytes of the record, which carries its etag).
//!
//! Freshness rules:
//! - Writers commit first, then call [`TwoTier::invalidate`]: it drops the
//!   local copy, bumps the key's generation and deletes it in Redis, and
//!   publishes the id so every replica drops its local copy.
//! - A reader fills Redis only if the key's generation is unchanged since
//!   before it read the database (a Lua check-and-set), so a slow reader
//!   never puts back a value a writer has just invalidated.
//! - Locally, an entry loaded before the key's latest invalidation is never
//!   served, even if the load finished after it.
//! - The local tier is used only while the invalidation subscription is
//!   live; while it is down, the local tier is cleared and bypassed.
//! - A write's invalidation is sent even while reads skip Redis after a
//!   failure, and sent again once if it fails (the first command after
//!   Redis returns fails on the dead connection): other replicas serve their
//!   local copy until it arrives.
//! - Invalidations that could not reach Redis are kept and retried before
//!   Redis is read again; until then reads skip Redis.
//! - Redis failures are misses: the record comes from PostgreSQL.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::redis::{Redis, Unavailable};
use crate::shutdown::Shutdown;

/// Tunables of one cached record type.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// Key prefix in Redis and pub/sub channel stem, e.g. `rapport:contacts:contact`.
    pub namespace: String,
    /// Use the in-process tier.
    pub local_enabled: bool,
    /// Maximum entries in the in-process tier.
    pub local_capacity: u64,
    /// Time to live in the in-process tier.
    pub local_ttl: Duration,
    /// Serve reads from Redis (when Redis is configured). Invalidations go
    /// through Redis pub/sub either way.
    pub redis_enabled: bool,
    /// Time to live in Redis.
    pub redis_ttl: Duration,
}

/// A service's cache tiers, read with its prefix (`<PREFIX>_CACHE_*`);
/// [`CacheSettings::config`] gives each of its caches its settings.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// `<PREFIX>_CACHE_LOCAL` (default true): the in-process tier.
    pub local: bool,
    /// `<PREFIX>_CACHE_REDIS` (default true): the Redis tier.
    pub redis: bool,
    /// `<PREFIX>_CACHE_LOCAL_CAPACITY` (default 100000 records per cache).
    pub local_capacity: u64,
    /// `<PREFIX>_CACHE_LOCAL_TTL` (default 30s).
    pub local_ttl: Duration,
    /// `<PREFIX>_CACHE_REDIS_TTL` (default 1h).
    pub redis_ttl: Duration,
}

impl CacheSettings {
    /// Reads the `<PREFIX>_CACHE_*` variables (`prefix` e.g. `contacts`).
    pub fn from_env(
        env: &crate::config::Env,
        prefix: &str,
    ) -> Result<CacheSettings, crate::config::ConfigError> {
        let prefix = prefix.to_ascii_uppercase();
        let name = |suffix: &str| format!("{prefix}_CACHE_{suffix}");
        Ok(CacheSettings {
            local: env.flag_or(&name("LOCAL"), true)?,
            redis: env.flag_or(&name("REDIS"), true)?,
            local_capacity: env.or_default(&name("LOCAL_CAPACITY"), 100_000)?,
            local_ttl: env.duration_or(&name("LOCAL_TTL"), Duration::from_secs(30))?,
            redis_ttl: env.duration_or(&name("REDIS_TTL"), Duration::from_secs(3600))?,
        })
    }

    /// The settings of one cache, keyed in Redis under `namespace` (e.g.
    /// `rapport:contacts:contact`).
    pub fn config(&self, namespace: &str) -> CacheConfig {
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

/// Counters of one cache.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Served from the in-process tier.
    pub local_hits: AtomicU64,
    /// Served from Redis.
    pub redis_hits: AtomicU64,
    /// Loaded from the database.
    pub misses: AtomicU64,
    /// Redis was unavailable and the database answered instead.
    pub redis_fallbacks: AtomicU64,
    /// Invalidations that could not reach Redis when written (queued and
    /// retried before Redis is read again).
    pub missed_invalidations: AtomicU64,
}

/// A point-in-time copy of [`CacheStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheCounts {
    /// Served from the in-process tier.
    pub local_hits: u64,
    /// Served from Redis.
    pub redis_hits: u64,
    /// Loaded from the database.
    pub misses: u64,
    /// Redis unavailable; served from the database.
    pub redis_fallbacks: u64,
    /// Invalidations that could not reach Redis when written.
    pub missed_invalidations: u64,
}

impl CacheCounts {
    /// How the counters moved from `before` to these.
    pub fn since(self, before: CacheCounts) -> CacheCounts {
        CacheCounts {
            local_hits: self.local_hits.saturating_sub(before.local_hits),
            redis_hits: self.redis_hits.saturating_sub(before.redis_hits),
            misses: self.misses.saturating_sub(before.misses),
            redis_fallbacks: self.redis_fallbacks.saturating_sub(before.redis_fallbacks),
            missed_invalidations: self.missed_invalidations.saturating_sub(before.missed_invalidations),
        }
    }
}

struct Entry<V> {
    value: Arc<V>,
    loaded_at_epoch: u64,
}

impl<V> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Entry { value: self.value.clone(), loaded_at_epoch: self.loaded_at_epoch }
    }
}

/// A two-tier cache of protobuf records keyed by id. Cheap to clone.
pub struct TwoTier<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for TwoTier<V> {
    fn clone(&self) -> Self {
        TwoTier { inner: self.inner.clone() }
    }
}

struct Inner<V> {
    config: CacheConfig,
    local: moka::future::Cache<String, Entry<V>>,
    /// Epoch of each key's latest local invalidation.
    invalidated_at: moka::sync::Cache<String, u64>,
    epoch: AtomicU64,
    /// Epoch of the last subscription change: entries loaded before it are stale.
    cleared_at: AtomicU64,
    /// The invalidation subscription is live, so the local tier may be used.
    local_live: AtomicBool,
    redis: Option<Redis>,
    /// Invalidations that did not reach Redis yet.
    pending: std::sync::Mutex<HashSet<String>>,
    stats: CacheStats,
}

/// The check-and-set that fills Redis only if no writer has bumped the
/// key's generation since the reader looked.
const FILL_SCRIPT: &str = r"
local current = redis.call('GET', KEYS[2]) or ''
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0";

/// How long a generation counter outlives its last write: longer than any
/// read can take.
const GENERATION_TTL_MS: u64 = 86_400_000;

impl<V> TwoTier<V>
where
    V: prost::Message + Default + Send + Sync + 'static,
{
    /// A cache over `redis` (if any) that follows invalidations from other
    /// replicas until `shutdown`.
    pub fn new(config: CacheConfig, redis: Option<Redis>, shutdown: Shutdown) -> TwoTier<V> {
        let local = moka::future::Cache::builder()
            .max_capacity(config.local_capacity)
            .time_to_live(config.local_ttl)
            .build();
        let invalidated_at = moka::sync::Cache::builder()
            .max_capacity(config.local_capacity.saturating_mul(2).max(1024))
            .time_to_live(config.local_ttl.saturating_mul(2))
            .build();
        // Redis carries invalidations between replicas even when its data
        // tier is off; only with no Redis at all is the local tier trusted
        // without a subscription (a single process).
        let cache = TwoTier {
            inner: Arc::new(Inner {
                local_live: AtomicBool::new(redis.is_none()),
                config,
                local,
                invalidated_at,
                epoch: AtomicU64::new(1),
                cleared_at: AtomicU64::new(0),
                redis,
                pending: std::sync::Mutex::new(HashSet::new()),
                stats: CacheStats::default(),
            }),
        };
        if let Some(redis) = &cache.inner.redis {
            let on_message = {
                let weak = Arc::downgrade(&cache.inner);
                move |payload: &[u8]| {
                    if let (Some(inner), Ok(id)) = (weak.upgrade(), std::str::from_utf8(payload)) {
                        // The marker makes the entry stale at once; removing it
                        // too means freshness never rests on the (bounded)
                        // marker cache alone.
                        inner.invalidate_local(id);
                        let local = inner.local.clone();
                        let id = id.to_owned();
                        tokio::spawn(async move { local.invalidate(&id).await });
                    }
                }
            };
            let on_connected = {
                let weak = Arc::downgrade(&cache.inner);
                move |connected: bool| {
                    if let Some(inner) = weak.upgrade() {
                        // Whatever was cached may have missed invalidations.
                        // Loads that began before now may also have missed
                        // one, even if they finish after the reconnect.
                        let epoch = inner.epoch.fetch_add(1, Ordering::SeqCst) + 1;
                        inner.cleared_at.store(epoch, Ordering::SeqCst);
                        inner.local.invalidate_all();
                        inner.local_live.store(connected, Ordering::SeqCst);
                    }
                }
            };
            redis.subscribe(cache.inner.channel(), on_message, on_connected, shutdown);
        }
        cache
    }

    /// The record with `id`: from the in-process tier, else Redis, else
    /// `load` (the database). `Ok(None)` when `load` finds nothing; nothing
    /// is cached then. Concurrent misses for one id share one load.
    pub async fn get_or_load<E, F, Fut>(&self, id: &str, load: F) -> Result<Option<Arc<V>>, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let inner = &self.inner;
        let use_local = inner.config.local_enabled && inner.local_live.load(Ordering::SeqCst);
        if !use_local {
            return match inner.load_through_redis(id, load).await {
                Ok(found) => Ok(found.map(Arc::new)),
                Err(err) => Err(Arc::new(err)),
            };
        }

        if let Some(entry) = inner.local.get(id).await {
            if inner.is_fresh(id, &entry) {
                inner.stats.local_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Some(entry.value));
            }
            inner.local.invalidate(id).await;
        }

        let epoch = inner.epoch.load(Ordering::SeqCst);
        // Still `Some` afterwards when this caller joined another's load.
        let mut load = Some(load);
        let loaded = inner
            .local
            .try_get_with_by_ref(id, async {
                // Moka runs this future at most once, so `load` is there.
                let found = match load.take() {
                    Some(load) => inner.load_through_redis(id, load).await,
                    None => Ok(None),
                };
                match found {
                    Ok(Some(value)) => Ok(Entry { value: Arc::new(value), loaded_at_epoch: epoch }),
                    Ok(None) => Err(LoadError::Missing),
                    Err(err) => Err(LoadError::Failed(Arc::new(err))),
                }
            })
            .await;
        match loaded {
            Ok(entry) if inner.is_fresh(id, &entry) => Ok(Some(entry.value)),
            Ok(entry) => {
                // A write landed after this value began loading: keep it out
                // of the local tier.
                inner.local.invalidate(id).await;
                match load {
                    // This caller's own read was concurrent with the write:
                    // it may use the value.
                    None => Ok(Some(entry.value)),
                    // This caller joined an older load and may have asked
                    // after the write: it reads for itself.
                    Some(load) => match inner.load_through_redis(id, load).await {
                        Ok(found) => Ok(found.map(Arc::new)),
                        Err(err) => Err(Arc::new(err)),
                    },
                }
            }
            Err(shared) => match shared.as_ref() {
                LoadError::Missing => Ok(None),
                LoadError::Failed(err) => Err(err.clone()),
            },
        }
    }

    /// Call after committing a change to `id`: drops it here, in Redis and,
    /// through pub/sub, in every other replica.
    pub async fn invalidate(&self, id: &str) {
        self.inner.invalidate_local(id);
        self.inner.local.invalidate(id).await;
        let Some(redis) = &self.inner.redis else {
            return;
        };
        if self.inner.invalidate_everywhere(redis, id).await.is_err() {
            self.inner.stats.missed_invalidations.fetch_add(1, Ordering::Relaxed);
            self.inner.pending_insert(id);
        }
        // Loads that began before Redis dropped the key (or before it was
        // queued as pending) may hold the old value from Redis: stale too.
        self.inner.invalidate_local(id);
    }

    /// Current counters.
    pub fn counts(&self) -> CacheCounts {
        let stats = &self.inner.stats;
        CacheCounts {
            local_hits: stats.local_hits.load(Ordering::Relaxed),
            redis_hits: stats.redis_hits.load(Ordering::Relaxed),
            misses: stats.misses.load(Ordering::Relaxed),
            redis_fallbacks: stats.redis_fallbacks.load(Ordering::Relaxed),
            missed_invalidations: stats.missed_invalidations.load(Ordering::Relaxed),
        }
    }

    /// True while the in-process tier is in use (enabled and following
    /// invalidations).
    pub fn local_tier_live(&self) -> bool {
        self.inner.config.local_enabled && self.inner.local_live.load(Ordering::SeqCst)
    }
}

enum LoadError<E> {
    Missing,
    Failed(Arc<E>),
}

impl<V> Inner<V>
where
    V: prost::Message + Default + Send + Sync + 'static,
{
    fn channel(&self) -> String {
        format!("{}:invalidate", self.config.namespace)
    }

    fn data_key(&self, id: &str) -> String {
        format!("{}:{id}", self.config.namespace)
    }

    fn generation_key(&self, id: &str) -> String {
        format!("{}:{id}:gen", self.config.namespace)
    }

    /// An entry is stale if the key was invalidated after its load began:
    /// `invalidate_local` stores the epoch it moved to, and a load that read
    /// that epoch (or a later one) began after the invalidation.
    fn is_fresh(&self, id: &str, entry: &Entry<V>) -> bool {
        entry.loaded_at_epoch >= self.cleared_at.load(Ordering::SeqCst)
            && self.invalidated_at.get(id).is_none_or(|at| at <= entry.loaded_at_epoch)
    }

    fn invalidate_local(&self, id: &str) {
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        // Entries loaded before this epoch are stale from now on; `get_or_load`
        // drops them when it meets them.
        self.invalidated_at.insert(id.to_owned(), epoch);
    }

    /// Bumps the key's generation, drops it and tells every replica.
    fn invalidation(&self, id: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .incr(self.generation_key(id), 1)
            .ignore()
            .pexpire(self.generation_key(id), GENERATION_TTL_MS as i64)
            .ignore()
            .del(self.data_key(id))
            .ignore()
            .publish(self.channel(), id)
            .ignore();
        pipe
    }

    async fn invalidate_in_redis(&self, redis: &Redis, id: &str) -> Result<(), Unavailable> {
        let pipe = self.invalidation(id);
        redis.run(async move |mut conn| pipe.query_async::<()>(&mut conn).await).await
    }

    /// The invalidation of a write. Other replicas serve their local copy
    /// until it reaches Redis, so it does not wait out the read back-off,
    /// and it is sent twice if need be: the first command after Redis comes
    /// back fails on the connection that died with it.
    async fn invalidate_everywhere(&self, redis: &Redis, id: &str) -> Result<(), Unavailable> {
        let mut outcome = Err(Unavailable);
        for _ in 0..2 {
            let pipe = self.invalidation(id);
            outcome = redis.run_now(async move |mut conn| pipe.query_async::<()>(&mut conn).await).await;
            if outcome.is_ok() {
                break;
            }
        }
        outcome
    }

    fn pending_insert(&self, id: &str) {
        if let Ok(mut pending) = self.pending.lock() {
            pending.insert(id.to_owned());
        }
    }

    /// Retries invalidations that missed Redis; Redis may be read only
    /// when none is left.
    async fn flush_pending(&self, redis: &Redis) -> Result<(), Unavailable> {
        let ids: Vec<String> = match self.pending.lock() {
            Ok(pending) if pending.is_empty() => return Ok(()),
            Ok(pending) => pending.iter().cloned().collect(),
            Err(_) => return Err(Unavailable),
        };
        for id in ids {
            self.invalidate_in_redis(redis, &id).await?;
            if let Ok(mut pending) = self.pending.lock() {
                pending.remove(&id);
            }
        }
        Ok(())
    }

    async fn load_through_redis<E, F, Fut>(&self, id: &str, load: F) -> Result<Option<V>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<V>, E>>,
    {
        let Some(redis) = self.redis.as_ref().filter(|_| self.config.redis_enabled) else {
            self.stats.misses.fetch_add(1, Ordering::Relaxed);
            return load().await;
        };
        let looked_up = match self.flush_pending(redis).await {
            Ok(()) => {
                let keys = [self.data_key(id), self.generation_key(id)];
                redis
                    .run(async move |mut conn| {
                        redis::cmd("MGET")
                            .arg(&keys)
                            .query_async::<(Option<Vec<u8>>, Option<String>)>(&mut conn)
                            .await
                    })
                    .await
            }
            Err(unavailable) => Err(unavailable),
        };
        let generation = match looked_up {
            Ok((Some(bytes), _)) => match V::decode(bytes.as_slice()) {
                Ok(value) => {
                    self.stats.redis_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(Some(value));
                }
                Err(err) => {
                    tracing::warn!(error = %err, key = %self.data_key(id), "undecodable cache entry");
                    None
                }
            },
            Ok((None, generation)) => Some(generation.unwrap_or_default()),
            Err(Unavailable) => {
                self.stats.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
                None
            }
        };
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        let found = load().await?;
        if let (Some(value), Some(generation)) = (&found, generation) {
            let keys = [self.data_key(id), self.generation_key(id)];
            let bytes = value.encode_to_vec();
            let ttl = u64::try_from(self.config.redis_ttl.as_millis()).unwrap_or(u64::MAX);
            let filled = redis
                .run(async move |mut conn| {
                    redis::Script::new(FILL_SCRIPT)
                        .key(&keys[0])
                        .key(&keys[1])
                        .arg(generation)
                        .arg(bytes)
                        .arg(ttl)
                        .invoke_async::<i64>(&mut conn)
                        .await
                })
                .await;
            if filled.is_err() {
                self.stats.redis_fallbacks.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(found)
    }
}
