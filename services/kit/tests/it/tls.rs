//! TLS to PostgreSQL and Redis as managed databases require: the server's
//! certificate checked against a CA file (`sslmode=verify-full`,
//! `REDIS_CA_FILE`), a client certificate where the server asks for one,
//! and a server the CA did not sign refused.

use std::time::Duration;

use rapport_kit::config::Env;
use rapport_kit::db::{self, DbConfig};
use rapport_kit::redis::{Redis, RedisConfig};
use rapport_kit::testing::postgres_server::PostgresServer;
use rapport_kit::testing::redis_server::RedisServer;
use rapport_kit::testing::tls::TestCertificates;

fn pool(url: String) -> sqlx::PgPool {
    db::pool(&DbConfig {
        url,
        schema: "public".into(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(3),
        ..DbConfig::default()
    })
    .unwrap()
}

#[tokio::test]
async fn postgres_over_tls_checks_the_servers_certificate() {
    let certificates = TestCertificates::generate().unwrap();
    let server = PostgresServer::start_with_tls(&certificates).await.unwrap();
    let base = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());

    let verified = pool(format!("{base}?sslmode=verify-full&sslrootcert={}", certificates.ca.display()));
    let encrypted: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&verified)
        .await
        .unwrap();
    assert!(encrypted, "the connection is not encrypted");

    // Without sslmode a loopback connection goes without TLS (the default
    // for this machine), which this server refuses.
    let plain = sqlx::query("SELECT 1").execute(&pool(base.clone())).await.unwrap_err();
    assert!(plain.to_string().contains("no encryption") || plain.to_string().contains("rejects"), "{plain}");

    // A server whose certificate the trusted CA did not sign is refused.
    let other = pool(format!("{base}?sslmode=verify-full&sslrootcert={}", certificates.other_ca.display()));
    let refused = sqlx::query("SELECT 1").execute(&other).await.unwrap_err();
    assert!(format!("{refused:?}").contains("UnknownIssuer"), "{refused:?}");
}

fn redis(url: String, ca: Option<&std::path::Path>, client: Option<&TestCertificates>) -> Redis {
    let config = RedisConfig {
        url: Some(url),
        ca_file: ca.map(ToOwned::to_owned),
        client_cert: client.map(|c| (c.client_cert.clone(), c.client_key.clone())),
        command_timeout: Duration::from_secs(2),
        backoff: Duration::from_millis(1),
    };
    Redis::connect(&config).unwrap().unwrap()
}

async fn round_trip(redis: &Redis) -> Result<String, rapport_kit::redis::Unavailable> {
    redis
        .run(|mut connection| async move {
            redis::cmd("SET").arg("tls-key").arg("over tls").query_async::<()>(&mut connection).await?;
            redis::cmd("GET").arg("tls-key").query_async::<String>(&mut connection).await
        })
        .await
}

#[tokio::test]
async fn redis_over_tls_checks_the_servers_certificate_and_presents_the_clients() {
    let certificates = TestCertificates::generate().unwrap();
    let server = RedisServer::start_with_tls(&certificates).await.unwrap();
    assert!(server.url().starts_with("rediss://"));

    let verified = redis(server.url(), Some(&certificates.ca), Some(&certificates));
    assert_eq!(round_trip(&verified).await.unwrap(), "over tls");

    let other_ca = redis(server.url(), Some(&certificates.other_ca), Some(&certificates));
    assert!(round_trip(&other_ca).await.is_err(), "a server the trusted CA did not sign was accepted");
    let no_client_certificate = redis(server.url(), Some(&certificates.ca), None);
    assert!(round_trip(&no_client_certificate).await.is_err(), "the server requires a client certificate");
    let system_roots = redis(server.url(), None, Some(&certificates));
    assert!(round_trip(&system_roots).await.is_err(), "the test CA is not among the system's");

    // The settings: a CA file is for TLS URLs only, and a client certificate
    // comes with its key.
    let ca = certificates.ca.display().to_string();
    let plain_with_ca =
        Env::from_pairs([("REDIS_URL", "redis://127.0.0.1:6379"), ("REDIS_CA_FILE", ca.as_str())]);
    assert_eq!(RedisConfig::from_env(&plain_with_ca).unwrap_err().name, "REDIS_URL");
    let half =
        Env::from_pairs([("REDIS_URL", "rediss://127.0.0.1:6379"), ("REDIS_CLIENT_CERT_FILE", ca.as_str())]);
    assert_eq!(RedisConfig::from_env(&half).unwrap_err().name, "REDIS_CLIENT_CERT_FILE");
    let not_a_ca =
        Env::from_pairs([("REDIS_URL", "rediss://127.0.0.1:6379"), ("REDIS_CA_FILE", "/dev/null")]);
    let config = RedisConfig::from_env(&not_a_ca).unwrap();
    let Err(error) = Redis::connect(&config) else { panic!("a CA file without certificates was accepted") };
    assert!(error.to_string().contains("REDIS_CA_FILE"), "{error}");
}
