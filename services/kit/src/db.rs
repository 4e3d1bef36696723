//! PostgreSQL: one pool per service, pinned to the service's own schema,
//! and migrations (kit's tables plus the service's own) applied into it;
//! and what every store shares: etags, the stored time, unique violations.

use std::borrow::Cow;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};

use crate::config::{ConfigError, Env};
use crate::error::Problem;

/// Kit's own tables (change log, idempotency keys, feed consumer cursors),
/// created in every service's schema.
static KIT_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// Where and how a service connects.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// `postgres://` URL of the database.
    pub url: String,
    /// The service's schema, e.g. `contacts`; lower-case letters and `_`.
    pub schema: String,
    /// Pool size.
    pub max_connections: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// `statement_timeout` of every connection: a statement running longer
    /// is cancelled (the call answers UNAVAILABLE). Zero: none.
    pub statement_timeout: Duration,
    /// `lock_timeout` of every connection: a lock waited for longer is
    /// given up (the call answers ABORTED). Zero: none.
    pub lock_timeout: Duration,
}

impl Default for DbConfig {
    fn default() -> DbConfig {
        DbConfig {
            url: DEFAULT_DATABASE_URL.to_owned(),
            schema: "public".to_owned(),
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30),
            lock_timeout: Duration::from_secs(10),
        }
    }
}

/// The default local database, as `make run` provides it.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl DbConfig {
    /// Reads `DATABASE_URL`, `DATABASE_MAX_CONNECTIONS`,
    /// `DATABASE_ACQUIRE_TIMEOUT`, `DATABASE_STATEMENT_TIMEOUT` and
    /// `DATABASE_LOCK_TIMEOUT` (defaults in [`DbConfig::default`]).
    pub fn from_env(env: &Env, schema: &str) -> Result<DbConfig, ConfigError> {
        let defaults = DbConfig::default();
        Ok(DbConfig {
            url: env.or_default("DATABASE_URL", defaults.url)?,
            schema: schema.to_owned(),
            max_connections: env.or_default("DATABASE_MAX_CONNECTIONS", defaults.max_connections)?,
            acquire_timeout: env.duration_or("DATABASE_ACQUIRE_TIMEOUT", defaults.acquire_timeout)?,
            statement_timeout: env.duration_or("DATABASE_STATEMENT_TIMEOUT", defaults.statement_timeout)?,
            lock_timeout: env.duration_or("DATABASE_LOCK_TIMEOUT", defaults.lock_timeout)?,
        })
    }

    /// The same settings without statement and lock timeouts: for
    /// migrations, whose index builds may rightly take long.
    pub fn without_timeouts(&self) -> DbConfig {
        DbConfig { statement_timeout: Duration::ZERO, lock_timeout: Duration::ZERO, ..self.clone() }
    }
}

fn is_identifier(schema: &str) -> bool {
    !schema.is_empty() && schema.len() < 64 && schema.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// A pool whose connections use the service's schema first. Lazy: the
/// service starts even while PostgreSQL is down, and reports not ready.
pub fn pool(config: &DbConfig) -> anyhow::Result<PgPool> {
    pool_with_settings(config, &[])
}

/// Like [`pool`], with extra run-time parameters set on every connection at
/// start-up (no extra round trip), e.g. `pg_trgm.word_similarity_threshold`.
/// Every connection gets the config's `statement_timeout` and
/// `lock_timeout` too.
pub fn pool_with_settings(config: &DbConfig, settings: &[(&str, &str)]) -> anyhow::Result<PgPool> {
    anyhow::ensure!(is_identifier(&config.schema), "invalid schema name {:?}", config.schema);
    let search_path = format!("{},public", config.schema);
    let statement_timeout = config.statement_timeout.as_millis().to_string();
    let lock_timeout = config.lock_timeout.as_millis().to_string();
    let parameters = [
        ("search_path", search_path.as_str()),
        ("statement_timeout", statement_timeout.as_str()),
        ("lock_timeout", lock_timeout.as_str()),
    ]
    .into_iter()
    .chain(settings.iter().copied());
    let options = connect_options(&config.url)?
        .options(parameters)
        .application_name(&format!("rapport-{}", config.schema));
    Ok(PgPoolOptions::new()
        .max_connections(config.max_connections)
        .min_connections(0)
        .acquire_timeout(config.acquire_timeout)
        .connect_lazy_with(options))
}

/// The options of `url`, with the TLS default this project chooses: the URL's
/// `sslmode` (or `PGSSLMODE`) when given, as libpq reads them (`verify-full`
/// with `sslrootcert=<CA file>` is what a managed database needs, and
/// `sslcert`/`sslkey` add a client certificate); else no TLS to this
/// machine (it protects nothing on loopback and costs every connection a
/// handshake) and libpq's `prefer` elsewhere, with a warning that the
/// server's identity is not checked.
pub fn connect_options(url: &str) -> anyhow::Result<PgConnectOptions> {
    let options = PgConnectOptions::from_str(url).context("DATABASE_URL is not a valid postgres:// URL")?;
    let mode = url_parameter(url, "sslmode").or_else(|| std::env::var("PGSSLMODE").ok());
    let host = options.get_host().to_owned();
    let local = host.starts_with('/')
        || host == "localhost"
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Ok(match mode.as_deref() {
        None if local => options.ssl_mode(PgSslMode::Disable),
        Some("verify-full" | "verify-ca") => options,
        _ if local => options,
        _ => {
            tracing::warn!(
                host,
                "DATABASE_URL does not ask for sslmode=verify-full: the connection to PostgreSQL may be \
                 unencrypted and the server's identity is not checked"
            );
            options
        }
    })
}

/// The value of query parameter `name` of `url`, if given.
fn url_parameter(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| value.to_owned())
    })
}

/// Kit's migrations followed by the service's, in version order. Service
/// migrations are numbered from 20000000000000 (a date), kit's below 1000.
pub fn migrator(service: &Migrator) -> Migrator {
    let mut migrations: Vec<_> =
        KIT_MIGRATIONS.migrations.iter().chain(service.migrations.iter()).cloned().collect();
    migrations.sort_by_key(|migration| migration.version);
    Migrator { migrations: Cow::Owned(migrations), ..Migrator::DEFAULT }
}

/// Creates the schema if needed and applies every pending migration. Safe
/// to run from several processes at once (sqlx takes an advisory lock).
pub async fn migrate(pool: &PgPool, schema: &str, service: &Migrator) -> anyhow::Result<()> {
    anyhow::ensure!(is_identifier(schema), "invalid schema name {schema:?}");
    // One migration at a time per database, whatever the service: replicas
    // starting together would otherwise race on CREATE SCHEMA IF NOT EXISTS
    // and on extensions every service creates in `public` (both fail with a
    // unique violation when two sessions create the same name at once).
    // Detached from the pool: if this future is dropped half-way, the
    // connection closes and the session lock goes with it, instead of going
    // back to the pool still held.
    let mut conn = pool.acquire().await.context("connecting to migrate")?.detach();
    sqlx::query("SELECT pg_advisory_lock($1, 0)")
        .bind(MIGRATION_LOCK_CLASS)
        .execute(&mut conn)
        .await
        .context("waiting for other migrations")?;
    let result = async {
        let create = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
        sqlx::query(&create).execute(&mut conn).await.with_context(|| format!("creating schema {schema}"))?;
        migrator(service)
            .run(&mut conn)
            .await
            .with_context(|| format!("applying migrations to schema {schema}"))?;
        anyhow::Ok(())
    }
    .await;
    // A failed unlock (the connection broke) released the lock anyway.
    let _ =
        sqlx::query("SELECT pg_advisory_unlock($1, 0)").bind(MIGRATION_LOCK_CLASS).execute(&mut conn).await;
    result
}

/// Advisory lock class under which migrations run, one at a time ("migr").
pub const MIGRATION_LOCK_CLASS: i32 = 0x6d69_6772;

/// The readiness check of a service with migrations: [`is_ready`] on `pool`.
pub fn readiness(pool: &PgPool, service: &'static Migrator) -> crate::server::ReadinessCheck {
    let pool = pool.clone();
    Box::new(move || {
        let pool = pool.clone();
        Box::pin(async move { is_ready(&pool, service).await })
    })
}

/// True when the database answers and every migration the binary knows is
/// applied in the service's schema (the readiness check).
pub async fn is_ready(pool: &PgPool, service: &Migrator) -> bool {
    let applied: Result<Vec<i64>, _> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success").fetch_all(pool).await;
    match applied {
        Ok(applied) => {
            migrator(service).migrations.iter().all(|migration| applied.contains(&migration.version))
        }
        Err(err) => {
            tracing::debug!(error = %err, "readiness check failed");
            false
        }
    }
}

/// A stored enum value, its name without `prefix` (`WON` for
/// `DEAL_STATUS_WON`), decoded with `parse` (a generated `from_str_name`).
/// A name this build does not know is a decode error — internal, logged
/// where it becomes a status — never a silent default.
pub fn stored_enum<E>(
    column: &str,
    prefix: &str,
    name: &str,
    parse: fn(&str) -> Option<E>,
) -> Result<E, sqlx::Error> {
    parse(&format!("{prefix}{name}")).ok_or_else(|| {
        sqlx::Error::Decode(format!("{column}: stored value {name:?} is not a known {prefix}*").into())
    })
}

/// The decode error of a stored `value` of `column` this build cannot read.
pub fn undecodable(column: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("{column}: stored value {value:?} cannot be decoded").into())
}

/// The opaque etag of a stored version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// `ETAG_MISMATCH` unless `expected` is empty or the etag of `version`.
pub fn check_etag(resource_type: &str, id: &str, expected: &str, version: i64) -> Result<(), Problem> {
    let current = etag(version);
    if expected.is_empty() || expected == current {
        Ok(())
    } else {
        Err(Problem::etag_mismatch(resource_type, id, &current))
    }
}

/// True when `err` is a unique violation of `constraint`.
pub fn violates(err: &sqlx::Error, constraint: &str) -> bool {
    crate::error::constraint_violated(err, crate::error::sqlstate::UNIQUE_VIOLATION) == Some(constraint)
}

/// The current time, truncated to PostgreSQL's microsecond precision so
/// what is returned equals what is stored.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
