//! Migrations: replicas (or services) migrating one database at the same
//! moment all succeed, and the schema ends up migrated once.

use std::time::Duration;

use rapport_kit::db::{self, DbConfig};
use rapport_kit::testing::TestDatabase;
use sqlx::migrate::Migrator;

#[tokio::test]
async fn concurrent_migrations_of_a_fresh_database_all_succeed() {
    let database = TestDatabase::create().await.unwrap();
    // Eight "replicas" of two "services", each with its own pool, at once.
    let runs = (0..8).map(|replica| {
        let schema = if replica % 2 == 0 { "first_service" } else { "second_service" };
        let config = DbConfig {
            url: database.url.clone(),
            schema: schema.into(),
            max_connections: 2,
            acquire_timeout: Duration::from_secs(30),
            ..DbConfig::default()
        };
        async move {
            let pool = db::pool(&config).unwrap();
            let result = db::migrate(&pool, schema, &Migrator::DEFAULT).await;
            let ready = db::is_ready(&pool, &Migrator::DEFAULT).await;
            pool.close().await;
            (result.map_err(|err| format!("{err:#}")), ready)
        }
    });
    for (result, ready) in futures::future::join_all(runs).await {
        assert_eq!(result, Ok(()));
        assert!(ready);
    }
}
