//! Setup shared by kit's integration tests: a fresh database per test with
//! kit's own tables (change log, horizon, idempotency keys) migrated into
//! the `kit_test` schema and small bounded-wait helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod consumer;
pub mod echo;

use std::time::Duration;

use rapport_kit::changelog::Change;
use rapport_kit::db::{self, DbConfig};
use rapport_kit::testing::TestDatabase;
use rapport_proto::common::v1::{ChangeKind, Money};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

/// The schema kit's tables live in during these tests.
pub const SCHEMA: &str = "kit_test";

/// The resource type used for test changes.
pub const MONEY: &str = "rapport.common.v1.Money";

pub use rapport_kit::testing::{PATIENCE, eventually, within};

/// A migrated test database; dropped (with its connections) at the end.
pub struct Database {
    /// A pool pinned to [`SCHEMA`].
    pub pool: PgPool,
    // Declared after `pool`, so the pool goes first.
    _database: TestDatabase,
}

impl Database {
    /// The database's URL.
    pub fn url(&self) -> &str {
        &self._database.url
    }
}

/// A fresh database with kit's tables and no service migrations.
pub async fn database() -> Database {
    let database = TestDatabase::migrated(&[(SCHEMA, &Migrator::DEFAULT)]).await.unwrap();
    let config = DbConfig {
        url: database.url.clone(),
        schema: SCHEMA.into(),
        max_connections: 20,
        acquire_timeout: Duration::from_secs(10),
        ..DbConfig::default()
    };
    let pool = db::pool(&config).unwrap();
    assert!(db::is_ready(&pool, &Migrator::DEFAULT).await);
    Database { pool, _database: database }
}

/// A change to resource `id` of type `resource_type`, carrying a `Money`.
pub fn change_of(resource_type: &'static str, id: &str, kind: ChangeKind) -> Change {
    let money = Money { currency_code: "EUR".into(), minor_units: 1234 };
    Change::of(resource_type, &money, id, kind, "tester", Vec::new())
}

/// A created `Money` change of resource `id`.
pub fn change(id: &str) -> Change {
    change_of(MONEY, id, ChangeKind::Created)
}

/// Another pool on the database at `url`, in [`SCHEMA`] (a second replica).
pub fn pool_on(url: &str) -> PgPool {
    let config = DbConfig {
        url: url.to_owned(),
        schema: SCHEMA.into(),
        max_connections: 4,
        acquire_timeout: Duration::from_secs(10),
        ..DbConfig::default()
    };
    db::pool(&config).unwrap()
}

/// How many lock requests in this test's database are waiting, by
/// `pg_locks.locktype` (e.g. `advisory`, `transactionid`).
pub async fn waiting_locks(pool: &PgPool, locktype: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE NOT l.granted AND l.locktype = $1 AND a.datname = current_database()",
    )
    .bind(locktype)
    .fetch_one(pool)
    .await
    .unwrap()
}
