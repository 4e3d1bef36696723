//! Helpers for integration tests: a fresh PostgreSQL database per test,
//! the Redis URL, tokens signed with the local development key, and a
//! plain HTTP/1.1 client for `/metrics` and gRPC-web; in submodules, the
//! servers tests run against:
//!
//! - [`echo`]: the bench package's `EchoService`, with payloads that fail,
//!   sleep or wait for a gate, and optionally reporting what it saw.
//! - [`otlp`]: an OTLP trace collector on loopback that keeps what it receives.
//! - [`redis_server`]: a private `redis-server` to stop and restart.
//! - [`harness`]: what every crate's harness shares (clients with tokens,
//!   running servers, a service's test environment, polling with a
//!   deadline, reflection).
//!
//! Compiled only with the `testing` feature (dev-dependencies and the
//! bench), never into the release binary.
//!
//! Tests use the server at `DATABASE_URL` (default: the local one) and
//! create a database of their own on it, dropped when the test ends.

pub mod echo;
pub mod harness;
pub mod otlp;
pub mod postgres_server;
pub mod redis_server;
pub mod tls;

pub use harness::{
    Bearer, PATIENCE, Running, bearer, bearer_for, eventually, reflected_services, serve, service_env, within,
};

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;

use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::auth::{Role, mint_hs256};
use crate::db::DEFAULT_DATABASE_URL;
use crate::redis::DEFAULT_REDIS_URL;

pub use crate::auth::dev::{DEV_AUDIENCE, DEV_ISSUER, DEV_SECRET};

/// A database created for one test and dropped afterwards.
#[derive(Debug)]
pub struct TestDatabase {
    /// URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name.
    pub async fn create() -> anyhow::Result<TestDatabase> {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let name = format!("rapport_test_{}", uuid::Uuid::now_v7().simple());
        let mut admin = PgConnection::connect_with(&crate::db::connect_options(&admin_url)?).await?;
        let create = format!("CREATE DATABASE {name}");
        sqlx::query(&create).execute(&mut admin).await?;
        admin.close().await?;
        Ok(TestDatabase { url: with_database(&admin_url, &name), name, admin_url })
    }
}

/// Advisory lock class under which test templates are made ("tmpl").
const TEMPLATE_LOCK_CLASS: i32 = 0x746d_706c;

impl TestDatabase {
    /// A database with `schemas` (each a service schema and its migrations,
    /// kit's included) already migrated: cloned (`CREATE DATABASE …
    /// TEMPLATE`) from a template that is migrated once, the first time
    /// these exact migrations are asked for on this server, and kept for
    /// later runs (its name carries a digest of every migration, so a
    /// changed migration makes a new one).
    pub async fn migrated(schemas: &[(&str, &sqlx::migrate::Migrator)]) -> anyhow::Result<TestDatabase> {
        let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let template = template_name(schemas);
        let mut admin = PgConnection::connect_with(&crate::db::connect_options(&admin_url)?).await?;
        if !database_exists(&mut admin, &template).await? {
            // One process makes it; the others wait here, then find it.
            sqlx::query("SELECT pg_advisory_lock($1, 0)")
                .bind(TEMPLATE_LOCK_CLASS)
                .execute(&mut admin)
                .await?;
            let made = async {
                if !database_exists(&mut admin, &template).await? {
                    make_template(&mut admin, &admin_url, &template, schemas).await?;
                }
                anyhow::Ok(())
            }
            .await;
            sqlx::query("SELECT pg_advisory_unlock($1, 0)")
                .bind(TEMPLATE_LOCK_CLASS)
                .execute(&mut admin)
                .await?;
            made?;
        }
        let name = format!("rapport_test_{}", uuid::Uuid::now_v7().simple());
        let create = format!("CREATE DATABASE {name} TEMPLATE {template}");
        sqlx::query(&create).execute(&mut admin).await.with_context(|| format!("cloning {template}"))?;
        admin.close().await?;
        Ok(TestDatabase { url: with_database(&admin_url, &name), name, admin_url })
    }
}

/// `rapport_tpl_<schemas>_<digest of every migration>`.
fn template_name(schemas: &[(&str, &sqlx::migrate::Migrator)]) -> String {
    use sha2::Digest as _;
    let mut digest = sha2::Sha256::new();
    let mut names = Vec::new();
    for (schema, migrations) in schemas {
        names.push(*schema);
        digest.update(schema.as_bytes());
        for migration in crate::db::migrator(migrations).iter() {
            digest.update(migration.version.to_le_bytes());
            digest.update(&migration.checksum);
        }
    }
    let hex: String = digest.finalize().iter().take(8).map(|byte| format!("{byte:02x}")).collect();
    format!("rapport_tpl_{}_{hex}", names.join("_"))
}

async fn database_exists(admin: &mut PgConnection, name: &str) -> anyhow::Result<bool> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_optional(admin)
        .await?;
    Ok(found.is_some())
}

/// Migrates a database under a temporary name and renames it to
/// `template` once complete, so a half-made template is never cloned.
async fn make_template(
    admin: &mut PgConnection,
    admin_url: &str,
    template: &str,
    schemas: &[(&str, &sqlx::migrate::Migrator)],
) -> anyhow::Result<()> {
    let building = format!("rapport_tplnew_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {building}")).execute(&mut *admin).await?;
    let migrated = async {
        for (schema, migrations) in schemas {
            let config = crate::db::DbConfig {
                url: with_database(admin_url, &building),
                schema: (*schema).to_owned(),
                max_connections: 1,
                acquire_timeout: Duration::from_secs(30),
                ..crate::db::DbConfig::default()
            };
            let pool = crate::db::pool(&config)?;
            crate::db::migrate(&pool, schema, migrations).await?;
            pool.close().await;
        }
        anyhow::Ok(())
    }
    .await;
    let published = match migrated {
        Ok(()) => sqlx::query(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .execute(&mut *admin)
            .await
            .map(|_| ())
            .map_err(anyhow::Error::from),
        Err(err) => Err(err),
    };
    if published.is_err() {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut *admin)
            .await;
    }
    published.with_context(|| format!("making the test template {template}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop runs outside any runtime guarantee: use a thread of its own.
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                let Ok(options) = crate::db::connect_options(&admin_url) else {
                    return;
                };
                if let Ok(mut admin) = PgConnection::connect_with(&options).await {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(10), sqlx::query(&drop).execute(&mut admin))
                            .await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// `url` with its database path replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |at| at + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |at| at + authority_start);
    let mut out = format!("{}/{database}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The Redis tests use (`REDIS_URL`, default the local one).
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// A one-hour token for `subject` with `roles`, signed with [`DEV_SECRET`].
pub fn token(subject: &str, roles: &[Role]) -> String {
    mint_hs256(DEV_SECRET.as_bytes(), DEV_ISSUER, DEV_AUDIENCE, subject, roles, Duration::from_secs(3600))
        .unwrap_or_default()
}

/// A one-hour token for `principal` (its teams included), signed with [`DEV_SECRET`].
pub fn token_for(principal: &crate::auth::Principal) -> String {
    crate::auth::mint_hs256_for(
        DEV_SECRET.as_bytes(),
        (DEV_ISSUER, DEV_AUDIENCE),
        principal,
        Duration::from_secs(3600),
    )
    .unwrap_or_default()
}

/// Sends `request` over a new HTTP/1.1 connection to `addr` and reads the
/// whole response (the URI's path and query are sent; scheme and host are
/// ignored). For `/metrics` scrapes and gRPC-web calls in tests.
pub async fn http1(addr: SocketAddr, request: http::Request<Bytes>) -> anyhow::Result<http::Response<Bytes>> {
    let stream =
        tokio::net::TcpStream::connect(addr).await.with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    let driver = tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    if !parts.headers.contains_key(http::header::HOST) {
        parts.headers.insert(http::header::HOST, http::HeaderValue::from_str(&addr.to_string())?);
    }
    let response = sender.send_request(http::Request::from_parts(parts, Full::new(body))).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    driver.abort();
    Ok(http::Response::from_parts(parts, body))
}

/// `GET path` from `addr` over HTTP/1.1: the status and the body as text.
pub async fn http_get(addr: SocketAddr, path: &str) -> anyhow::Result<(http::StatusCode, String)> {
    let request = http::Request::get(path).body(Bytes::new())?;
    let response = http1(addr, request).await?;
    let status = response.status();
    Ok((status, String::from_utf8(response.into_body().to_vec())?))
}

/// The value of the sample `series` (name and labels exactly as exposed,
/// e.g. `rpc_server_requests_total{service="s",method="m",code="OK"}`) in
/// a text exposition; `None` when absent.
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_exact_series() {
        let text = "a_total{x=\"1\"} 3\na_total{x=\"12\"} 4\nb 1.5\n";
        assert_eq!(sample(text, "a_total{x=\"1\"}"), Some(3.0));
        assert_eq!(sample(text, "b"), Some(1.5));
        assert_eq!(sample(text, "a_total"), None);
    }

    #[test]
    fn database_urls_are_rewritten() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(
            with_database("postgres://h:1/db?sslmode=disable", "t2"),
            "postgres://h:1/t2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "t3"), "postgres://h/t3");
    }

    #[tokio::test]
    async fn migrated_databases_are_clones_of_one_template() {
        static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;
        let first = TestDatabase::migrated(&[("template_check", &MIGRATIONS)]).await.unwrap();
        let second = TestDatabase::migrated(&[("template_check", &MIGRATIONS)]).await.unwrap();
        assert_ne!(first.url, second.url);
        for database in [&first, &second] {
            let mut connection = PgConnection::connect(&database.url).await.unwrap();
            // Kit's tables are there already, in the schema.
            let tables: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'template_check' AND tablename = 'change_log'",
            )
            .fetch_one(&mut connection)
            .await
            .unwrap();
            assert_eq!(tables, 1);
            connection.close().await.unwrap();
        }
    }

    #[tokio::test]
    async fn test_databases_exist_until_dropped() {
        let database = TestDatabase::create().await.unwrap();
        let mut connection = PgConnection::connect(&database.url).await.unwrap();
        let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&mut connection).await.unwrap();
        assert_eq!(one, 1);
        connection.close().await.unwrap();
        let name = database.name.clone();
        let admin_url = database.admin_url.clone();
        drop(database);
        let mut admin = PgConnection::connect(&admin_url).await.unwrap();
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_one(&mut admin)
            .await
            .unwrap();
        assert_eq!(left, 0);
    }
}
