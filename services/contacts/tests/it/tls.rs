//! The service over TLS to both of its stores, as a managed PostgreSQL and
//! Redis require: `sslmode=verify-full` with the test CA, `rediss://` with
//! a client certificate. Writes land, and a second replica reads what the
//! first cached in Redis.

use crate::common;

use common::{Options, TestApp, contact, create, get, unique_email};
use rapport_kit::cache::CacheCounts;
use rapport_kit::testing::postgres_server::PostgresServer;
use rapport_kit::testing::redis_server::RedisServer;
use rapport_kit::testing::tls::TestCertificates;

#[tokio::test]
async fn the_service_runs_over_verified_tls_to_postgres_and_redis() {
    let certificates = TestCertificates::generate().unwrap();
    let database = PostgresServer::start_with_tls(&certificates).await.unwrap();
    let redis = RedisServer::start_with_tls(&certificates).await.unwrap();
    let database_url = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        database.port(),
        certificates.ca.display()
    );
    let env = vec![
        ("REDIS_URL".to_owned(), redis.url()),
        ("REDIS_CA_FILE".to_owned(), certificates.ca.display().to_string()),
        ("REDIS_CLIENT_CERT_FILE".to_owned(), certificates.client_cert.display().to_string()),
        ("REDIS_CLIENT_KEY_FILE".to_owned(), certificates.client_key.display().to_string()),
    ];
    let options =
        || Options { database_url: Some(database_url.clone()), env: env.clone(), ..Options::default() };
    let first = TestApp::spawn_with(options()).await;
    let second = TestApp::spawn_with(options()).await;

    let mut client = first.client().await;
    let created = create(&mut client, contact("Tls", &unique_email("tls"))).await;
    assert_eq!(get(&mut client, &created.id).await.etag, created.etag);

    let before = second.caches.contacts.counts();
    let read = get(&mut second.client().await, &created.id).await;
    assert_eq!(read.etag, created.etag);
    let redis_hit =
        CacheCounts { local_hits: 0, redis_hits: 1, misses: 0, redis_fallbacks: 0, missed_invalidations: 0 };
    assert_eq!(second.caches.contacts.counts().since(before), redis_hit, "Redis over TLS served the read");

    let encrypted: bool = sqlx::query_scalar("SELECT bool_and(ssl) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) WHERE application_name = 'rapport-contacts'")
        .fetch_one(&first.pool())
        .await
        .unwrap();
    assert!(encrypted, "the service's connections are not all encrypted");
    second.stop().await;
    first.stop().await;
}
