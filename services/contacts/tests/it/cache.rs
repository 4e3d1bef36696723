//! The two-tier cache seen through the API: which tier answers, that a
//! read after a write is never stale (also on another replica), and that
//! Redis going away and coming back costs speed, never correctness.

use crate::common;

use common::{
    Client, Options, TestApp, contact, create, create_company, get, get_company, mask, unique_email,
};
use rapport_kit::cache::CacheCounts;
use rapport_kit::testing::eventually;
use rapport_kit::testing::redis_server::RedisServer;
use rapport_proto::contacts::v1::{
    Company, Contact, DeleteCompanyRequest, DeleteContactRequest, UndeleteContactRequest,
    UpdateCompanyRequest, UpdateContactRequest,
};

/// Reads `id` through `app` and asserts the answer's etag and how the
/// contact cache's counters moved.
async fn check(app: &TestApp, client: &mut Client, id: &str, etag: &str, moved: CacheCounts) {
    let before = app.caches.contacts.counts();
    let read = get(client, id).await;
    assert_eq!(read.etag, etag, "stale read of {id}");
    let after = app.caches.contacts.counts();
    let actual = after.since(before);
    assert_eq!(actual, moved);
}

const LOCAL_HIT: CacheCounts =
    CacheCounts { local_hits: 1, redis_hits: 0, misses: 0, redis_fallbacks: 0, missed_invalidations: 0 };
const REDIS_HIT: CacheCounts =
    CacheCounts { local_hits: 0, redis_hits: 1, misses: 0, redis_fallbacks: 0, missed_invalidations: 0 };
const MISS: CacheCounts =
    CacheCounts { local_hits: 0, redis_hits: 0, misses: 1, redis_fallbacks: 0, missed_invalidations: 0 };
const FALLBACK: CacheCounts =
    CacheCounts { local_hits: 0, redis_hits: 0, misses: 1, redis_fallbacks: 1, missed_invalidations: 0 };

/// Polls `condition` until it holds ([`eventually`]).
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    eventually(what, || std::future::ready(condition())).await;
}

async fn retitle(client: &mut Client, contact: &Contact, job_title: &str) -> Contact {
    client
        .update_contact(UpdateContactRequest {
            contact: Some(Contact {
                id: contact.id.clone(),
                job_title: job_title.into(),
                ..Default::default()
            }),
            update_mask: mask(&["job_title"]),
        })
        .await
        .unwrap()
        .into_inner()
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

#[tokio::test]
async fn repeat_reads_come_from_the_local_tier_until_a_write() {
    let app = TestApp::spawn().await;
    let mut client = app.client().await;
    let contacts = app.caches.contacts.clone();
    wait_until("the local tier is live", || contacts.local_tier_live()).await;
    let created = create(&mut client, contact("Ada", &unique_email("ada"))).await;

    check(&app, &mut client, &created.id, &created.etag, MISS).await;
    check(&app, &mut client, &created.id, &created.etag, LOCAL_HIT).await;
    check(&app, &mut client, &created.id, &created.etag, LOCAL_HIT).await;
    let updated = retitle(&mut client, &created, "Countess").await;
    check(&app, &mut client, &created.id, &updated.etag, MISS).await;
}

#[tokio::test]
async fn without_the_local_tier_repeat_reads_come_from_redis() {
    let app =
        TestApp::spawn_with(Options { env: env(&[("CONTACTS_CACHE_LOCAL", "false")]), ..Options::default() })
            .await;
    let mut client = app.client().await;
    let created = create(&mut client, contact("Ada", &unique_email("ada"))).await;

    check(&app, &mut client, &created.id, &created.etag, MISS).await;
    check(&app, &mut client, &created.id, &created.etag, REDIS_HIT).await;
    let updated = retitle(&mut client, &created, "Countess").await;
    check(&app, &mut client, &created.id, &updated.etag, MISS).await;
    check(&app, &mut client, &created.id, &updated.etag, REDIS_HIT).await;
    assert!(!app.caches.contacts.local_tier_live());
}

#[tokio::test]
async fn another_replica_never_serves_a_stale_read_after_a_write() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_with(Options { database_url: Some(a.database_url.clone()), ..Options::default() })
        .await;
    let (mut on_a, mut on_b) = (a.client().await, b.client().await);
    let (caches_a, caches_b) = (a.caches.contacts.clone(), b.caches.contacts.clone());
    wait_until("both local tiers are live", || caches_a.local_tier_live() && caches_b.local_tier_live())
        .await;
    let created = create(&mut on_a, contact("Ada", &unique_email("ada"))).await;

    let mut current = created.clone();
    let local_hits = caches_b.counts().local_hits;
    for i in 0..50 {
        assert_eq!(get(&mut on_b, &created.id).await.etag, current.etag);
        current = retitle(&mut on_a, &created, &format!("Title {i}")).await;
        let read = get(&mut on_b, &created.id).await;
        assert_eq!(read, current, "iteration {i}");
    }
    // B answered the first read of every round from its local tier.
    assert!(caches_b.counts().local_hits - local_hits >= 49);
}

#[tokio::test]
async fn deletes_and_company_writes_are_fresh_on_another_replica() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_with(Options { database_url: Some(a.database_url.clone()), ..Options::default() })
        .await;
    let (mut on_a, mut on_b) = (a.client().await, b.client().await);
    let (caches_a, caches_b) = (a.caches.clone(), b.caches.clone());
    wait_until("every local tier is live", || {
        [&caches_a, &caches_b]
            .iter()
            .all(|caches| caches.contacts.local_tier_live() && caches.companies.local_tier_live())
    })
    .await;

    let person = create(&mut on_a, contact("Ada", &unique_email("ada"))).await;
    assert_eq!(get(&mut on_b, &person.id).await, person);
    let deleted = on_a
        .delete_contact(DeleteContactRequest { id: person.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(get(&mut on_b, &person.id).await, deleted);
    let restored = on_a
        .undelete_contact(UndeleteContactRequest { id: person.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(get(&mut on_b, &person.id).await, restored);

    let company = create_company(&mut on_a, "Acme", "").await;
    let mut current = company.clone();
    for i in 0..20 {
        assert_eq!(get_company(&mut on_b, &company.id).await, current);
        current = on_a
            .update_company(UpdateCompanyRequest {
                company: Some(Company { id: company.id.clone(), employee_count: i, ..Default::default() }),
                update_mask: mask(&["employee_count"]),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(get_company(&mut on_b, &company.id).await, current, "round {i}");
    }
    let deleted = on_a
        .delete_company(DeleteCompanyRequest { id: company.id.clone(), etag: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(get_company(&mut on_b, &company.id).await, deleted);
    assert!(caches_b.companies.counts().local_hits >= 19);
}

#[tokio::test]
async fn reads_and_writes_go_on_while_redis_is_down() {
    let mut redis = RedisServer::start().await.unwrap();
    let app = TestApp::spawn_with(Options {
        env: env(&[("REDIS_URL", redis.url().as_str()), ("CONTACTS_CACHE_LOCAL", "false")]),
        ..Options::default()
    })
    .await;
    let mut client = app.client().await;
    let first = create(&mut client, contact("Ada", &unique_email("ada"))).await;
    check(&app, &mut client, &first.id, &first.etag, MISS).await;
    check(&app, &mut client, &first.id, &first.etag, REDIS_HIT).await;

    redis.stop().await.unwrap();
    check(&app, &mut client, &first.id, &first.etag, FALLBACK).await;
    let updated = retitle(&mut client, &first, "While down").await;
    check(&app, &mut client, &first.id, &updated.etag, FALLBACK).await;
    let second = create(&mut client, contact("Grace", &unique_email("grace"))).await;
    check(&app, &mut client, &second.id, &second.etag, FALLBACK).await;
    let latest = retitle(&mut client, &first, "Still down").await;

    redis.restart().await.unwrap();
    // Reads stay fresh while the service finds Redis again, then Redis
    // serves repeat reads once more.
    let hits = app.caches.contacts.counts().redis_hits;
    eventually("redis serves a read again", || {
        let (mut client, latest, app) = (client.clone(), latest.clone(), &app);
        let id = first.id.clone();
        async move {
            assert_eq!(get(&mut client, &id).await, latest);
            app.caches.contacts.counts().redis_hits != hits
        }
    })
    .await;
    let after = retitle(&mut client, &first, "Back up").await;
    check(&app, &mut client, &first.id, &after.etag, MISS).await;
    check(&app, &mut client, &first.id, &after.etag, REDIS_HIT).await;
}

#[tokio::test]
async fn replicas_stay_fresh_across_a_redis_restart() {
    let mut redis = RedisServer::start().await.unwrap();
    let options = |database_url: Option<String>| Options {
        env: env(&[("REDIS_URL", redis.url().as_str())]),
        database_url,
        ..Options::default()
    };
    let a = TestApp::spawn_with(options(None)).await;
    let b = TestApp::spawn_with(options(Some(a.database_url.clone()))).await;
    let (mut on_a, mut on_b) = (a.client().await, b.client().await);
    let (caches_a, caches_b) = (a.caches.contacts.clone(), b.caches.contacts.clone());
    let both_live = || caches_a.local_tier_live() && caches_b.local_tier_live();
    wait_until("both local tiers are live", both_live).await;
    let created = create(&mut on_a, contact("Ada", &unique_email("ada"))).await;
    check(&b, &mut on_b, &created.id, &created.etag, MISS).await;
    check(&b, &mut on_b, &created.id, &created.etag, LOCAL_HIT).await;

    redis.stop().await.unwrap();
    // The outage spans two writes whose invalidations each failed on the
    // writer's connection (two attempts each, with a reconnect between), so
    // that connection is a dead one when Redis returns.
    let missed = caches_a.counts().missed_invalidations;
    retitle(&mut on_a, &created, "While down").await;
    let updated = retitle(&mut on_a, &created, "Still down").await;
    assert_eq!(caches_a.counts().missed_invalidations, missed + 2);
    assert_eq!(get(&mut on_b, &created.id).await, updated);

    redis.restart().await.unwrap();
    wait_until("both local tiers are live again", both_live).await;
    let mut current = updated;
    for i in 0..10 {
        assert_eq!(get(&mut on_b, &created.id).await, current);
        current = retitle(&mut on_a, &created, &format!("After restart {i}")).await;
        assert_eq!(get(&mut on_b, &created.id).await, current, "round {i}");
    }
    check(&b, &mut on_b, &created.id, &current.etag, LOCAL_HIT).await;
}
