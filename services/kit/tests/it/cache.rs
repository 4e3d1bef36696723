//! `TwoTier` over a real Redis: coalesced loads, the tier counters,
//! invalidation here and across replicas, and Redis being down.

use crate::support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rapport_kit::cache::{CacheConfig, CacheCounts, TwoTier};
use rapport_kit::redis::{Redis, RedisConfig};
use rapport_kit::shutdown::Shutdown;
use rapport_kit::testing::redis_url;
use rapport_proto::common::v1::Money;

use support::{eventually, within};

/// A namespace no other test (or earlier run) uses.
fn namespace() -> String {
    format!("rapport:kit-test:{}", uuid::Uuid::now_v7().simple())
}

fn config(namespace: &str) -> CacheConfig {
    CacheConfig {
        namespace: namespace.to_owned(),
        local_enabled: true,
        local_capacity: 100,
        local_ttl: Duration::from_secs(60),
        redis_enabled: true,
        redis_ttl: Duration::from_secs(60),
    }
}

fn redis(url: &str) -> Option<Redis> {
    let config = RedisConfig {
        url: Some(url.to_owned()),
        ca_file: None,
        client_cert: None,
        command_timeout: Duration::from_secs(1),
        backoff: Duration::from_millis(500),
    };
    Redis::connect(&config).unwrap()
}

/// A cache over the test Redis whose invalidation subscription is live.
async fn live_cache(namespace: &str) -> TwoTier<Money> {
    let cache = TwoTier::new(config(namespace), redis(&redis_url()), Shutdown::never());
    eventually("the invalidation subscription", || {
        let live = cache.local_tier_live();
        async move { live }
    })
    .await;
    cache
}

fn money(minor_units: i64) -> Money {
    Money { currency_code: "EUR".into(), minor_units }
}

/// The database stand-in: counts its loads and returns `minor_units`.
#[derive(Clone, Default)]
struct Source {
    loads: Arc<AtomicUsize>,
}

impl Source {
    async fn get(&self, cache: &TwoTier<Money>, id: &str, minor_units: i64) -> i64 {
        let loads = self.loads.clone();
        let found = cache
            .get_or_load(id, || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Some(money(minor_units)))
            })
            .await
            .unwrap();
        found.unwrap().minor_units
    }

    fn loads(&self) -> usize {
        self.loads.load(Ordering::SeqCst)
    }
}

fn counts(local_hits: u64, redis_hits: u64, misses: u64) -> CacheCounts {
    CacheCounts { local_hits, redis_hits, misses, ..CacheCounts::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_of_one_id_share_one_load() {
    let cache = live_cache(&namespace()).await;
    let loads = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(AtomicUsize::new(0));
    // The load finishes only once every reader has asked: until then, a
    // reader that started a load of its own would count a second load.
    let (release, released) = tokio::sync::watch::channel(false);
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let (cache, loads, asked) = (cache.clone(), loads.clone(), asked.clone());
            let mut released = released.clone();
            tokio::spawn(async move {
                asked.fetch_add(1, Ordering::SeqCst);
                let found = cache
                    .get_or_load("hot", || async move {
                        loads.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|open| *open).await;
                        Ok::<_, Infallible>(Some(money(7)))
                    })
                    .await
                    .unwrap();
                found.unwrap().minor_units
            })
        })
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while asked.load(Ordering::SeqCst) < 50 || loads.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "the readers never all asked");
        tokio::task::yield_now().await;
    }
    release.send_replace(true);
    for reader in readers {
        assert_eq!(reader.await.unwrap(), 7);
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    let counts = cache.counts();
    assert_eq!((counts.misses, counts.redis_hits), (1, 0));
}

#[tokio::test]
async fn reads_go_local_then_redis_then_the_source() {
    let namespace = namespace();
    let source = Source::default();
    let first = live_cache(&namespace).await;
    assert_eq!(source.get(&first, "a", 1).await, 1);
    assert_eq!(first.counts(), counts(0, 0, 1));
    assert_eq!(source.get(&first, "a", 99).await, 1);
    assert_eq!(first.counts(), counts(1, 0, 1));

    // Another replica: its local tier is empty, Redis has it.
    let second = live_cache(&namespace).await;
    assert_eq!(source.get(&second, "a", 99).await, 1);
    assert_eq!(second.counts(), counts(0, 1, 0));
    assert_eq!(source.get(&second, "a", 99).await, 1);
    assert_eq!(second.counts(), counts(1, 1, 0));
    assert_eq!(source.loads(), 1);

    // A missing record is not cached.
    let missing = || async { Ok::<Option<Money>, Infallible>(None) };
    assert!(first.get_or_load("none", missing).await.unwrap().is_none());
    assert!(first.get_or_load("none", missing).await.unwrap().is_none());
    assert_eq!(first.counts(), counts(1, 0, 3));
}

#[tokio::test]
async fn after_an_invalidation_the_next_read_loads_and_then_is_cached_again() {
    let source = Source::default();
    let cache = live_cache(&namespace()).await;
    assert_eq!(source.get(&cache, "a", 1).await, 1);
    assert_eq!(source.get(&cache, "a", 99).await, 1);

    cache.invalidate("a").await;
    assert_eq!(source.get(&cache, "a", 2).await, 2);
    assert_eq!(source.loads(), 2);

    // The invalidation also comes back through pub/sub, which may drop the
    // fresh local copy once more; the record must soon be served locally
    // again, without another load (Redis holds it meanwhile).
    let before = cache.counts().local_hits;
    eventually("a local hit after the invalidation", || {
        let (source, cache) = (source.clone(), cache.clone());
        async move {
            assert_eq!(source.get(&cache, "a", 99).await, 2);
            cache.counts().local_hits > before
        }
    })
    .await;
    assert_eq!(source.loads(), 2);
}

#[tokio::test]
async fn without_redis_an_invalidated_record_is_cached_again_on_its_next_load() {
    let source = Source::default();
    let cache: TwoTier<Money> = TwoTier::new(config(&namespace()), None, Shutdown::never());
    assert!(cache.local_tier_live());
    assert_eq!(source.get(&cache, "a", 1).await, 1);
    assert_eq!(source.get(&cache, "a", 99).await, 1);

    cache.invalidate("a").await;
    assert_eq!(source.get(&cache, "a", 2).await, 2);
    assert_eq!(source.get(&cache, "a", 99).await, 2);
    assert_eq!(source.get(&cache, "a", 99).await, 2);
    assert_eq!(source.loads(), 2);
    assert_eq!(cache.counts(), counts(3, 0, 2));
}

#[tokio::test]
async fn a_read_that_starts_after_an_invalidation_does_not_join_an_older_load() {
    let cache: TwoTier<Money> = TwoTier::new(config(&namespace()), None, Shutdown::never());
    // A read of version 1 that is slow to come back from the database.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let loading = Arc::new(tokio::sync::Notify::new());
    let slow = tokio::spawn({
        let (cache, loading) = (cache.clone(), loading.clone());
        async move {
            let found = cache
                .get_or_load("a", || async move {
                    loading.notify_one();
                    released.await.unwrap();
                    Ok::<_, Infallible>(Some(money(1)))
                })
                .await
                .unwrap();
            found.unwrap().minor_units
        }
    });
    within("the slow load to start", loading.notified()).await;

    // Version 2 commits and is invalidated; only then does a reader ask.
    cache.invalidate("a").await;
    let source = Source::default();
    let mut after = std::pin::pin!(source.get(&cache, "a", 2));
    assert!(futures::poll!(&mut after).is_pending(), "it waits on the slow load");
    release.send(()).unwrap();

    assert_eq!(within("the later read", after).await, 2);
    assert_eq!(source.loads(), 1);
    // The slow read itself was concurrent with the write: either is fine,
    // but version 1 must not stay in the local tier.
    assert_eq!(within("the slow read", slow).await.unwrap(), 1);
    assert_eq!(source.get(&cache, "a", 3).await, 3);
}

#[tokio::test]
async fn an_invalidation_on_one_replica_reaches_the_others() {
    let namespace = namespace();
    let source = Source::default();
    let writer = live_cache(&namespace).await;
    let reader = live_cache(&namespace).await;
    assert_eq!(source.get(&reader, "a", 1).await, 1);
    assert_eq!(source.get(&reader, "a", 99).await, 1);
    assert_eq!(reader.counts(), counts(1, 0, 1));

    // The writer commits version 2, then invalidates. Pub/sub is
    // asynchronous: the reader's copy goes within a bounded time, and it
    // then reads version 2 from the source (Redis no longer has version 1).
    writer.invalidate("a").await;
    eventually("the reader to see version 2", || {
        let (source, reader) = (source.clone(), reader.clone());
        async move { source.get(&reader, "a", 2).await == 2 }
    })
    .await;
    assert_eq!(source.loads(), 2);
    assert_eq!(reader.counts().misses, 2);
    assert_eq!(reader.counts().redis_hits, 0);

    // And the writer, which never had it, gets version 2 from Redis.
    assert_eq!(source.get(&writer, "a", 99).await, 2);
    assert_eq!(writer.counts(), counts(0, 1, 0));
}

#[tokio::test]
async fn with_redis_down_reads_come_from_the_source_without_errors() {
    let source = Source::default();
    let cache = TwoTier::new(config(&namespace()), redis("redis://127.0.0.1:1"), Shutdown::never());
    for minor_units in 1..=3 {
        assert_eq!(source.get(&cache, "a", minor_units).await, minor_units);
    }
    // Without a live subscription nothing is kept locally either.
    assert!(!cache.local_tier_live());
    assert_eq!(source.loads(), 3);
    let counts = cache.counts();
    assert_eq!((counts.local_hits, counts.redis_hits, counts.misses), (0, 0, 3));
    assert_eq!(counts.redis_fallbacks, 3, "one per read");

    // Invalidating while Redis is down does not fail either.
    cache.invalidate("a").await;
    assert_eq!(source.get(&cache, "a", 4).await, 4);
}
