//! What a database error means to a client (`error::database_problem`),
//! checked against a real PostgreSQL: nothing a caller can provoke, and no
//! outage, is `INTERNAL`.

use crate::support;

use rapport_kit::error::{Error, database_problem};
use rapport_kit::fields::{self, MAX_VIOLATIONS, Violation};
use tonic::Code;

use support::database;

/// The code and reason `sql` (binding `text`) fails with.
async fn failure(pool: &sqlx::PgPool, sql: &str, text: &str) -> (Code, String) {
    let err = sqlx::query(sql).bind(text).execute(pool).await.expect_err(sql);
    let problem = database_problem(&err).unwrap_or_else(|| panic!("{sql}: {err} is internal"));
    (problem.code(), problem.reason().to_owned())
}

#[tokio::test]
async fn caller_provoked_and_outage_errors_are_clean_codes() {
    let database = database().await;
    let pool = &database.pool;
    let nul = failure(pool, "SELECT $1::text", "a\0b").await;
    assert_eq!(nul, (Code::InvalidArgument, "INVALID_TEXT".to_owned()));
    let overflow = failure(pool, "SELECT 9223372036854775807::bigint + length($1)", "x").await;
    assert_eq!(overflow, (Code::OutOfRange, "VALUE_OUT_OF_RANGE".to_owned()));
    // A statement cancelled by statement_timeout (57014).
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL statement_timeout = '20ms'").execute(&mut *tx).await.unwrap();
    let err = sqlx::query("SELECT pg_sleep(5)").execute(&mut *tx).await.unwrap_err();
    let problem = database_problem(&err).unwrap();
    assert_eq!((problem.code(), problem.reason()), (Code::Unavailable, "DATABASE_BUSY"));
    drop(tx);
    // The server ending the session (as a shutdown or restart does): 57P01.
    let mut connection = pool.acquire().await.unwrap();
    let err = sqlx::query("SELECT pg_terminate_backend(pg_backend_pid()), $1::text")
        .bind("")
        .execute(&mut *connection)
        .await
        .unwrap_err();
    let problem = database_problem(&err).unwrap_or_else(|| panic!("{err:?} is internal"));
    assert_eq!(problem.code(), Code::Unavailable, "{err:?}");
    connection.close_on_drop();
    // A lock wait past lock_timeout: ABORTED, retry the call.
    sqlx::query("CREATE TABLE locked (id int PRIMARY KEY)").execute(pool).await.unwrap();
    sqlx::query("INSERT INTO locked VALUES (1)").execute(pool).await.unwrap();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT * FROM locked FOR UPDATE").execute(&mut *holder).await.unwrap();
    let mut waiter = pool.begin().await.unwrap();
    sqlx::query("SET LOCAL lock_timeout = '20ms'").execute(&mut *waiter).await.unwrap();
    let err = sqlx::query("SELECT * FROM locked FOR UPDATE").execute(&mut *waiter).await.unwrap_err();
    let problem = database_problem(&err).unwrap();
    assert_eq!((problem.code(), problem.reason()), (Code::Aborted, "CONCURRENT_UPDATE"));
}

#[test]
fn at_most_fifty_violations_are_listed_and_the_rest_counted() {
    let violations: Vec<Violation> =
        (0..200_000).map(|index| Violation::new(format!("tags[{index}]"), "is bad")).collect();
    let status = fields::invalid(violations).into_status();
    let details = {
        use tonic_types::StatusExt as _;
        status.get_details_bad_request().unwrap()
    };
    assert_eq!(details.field_violations.len(), MAX_VIOLATIONS + 1);
    let last = details.field_violations.last().unwrap();
    assert!(last.description.contains("199950 more"), "{}", last.description);
    assert!(status.message().len() < 4096, "{}", status.message().len());
    // Through the kit's error too.
    let error: Error = Error::Invalid(vec![Violation::new("x", "y")]);
    assert_eq!(tonic::Status::from(error).code(), Code::InvalidArgument);
}

#[test]
fn lists_are_capped_before_any_per_item_work() {
    let huge = vec![String::new(); 300_000];
    let err = fields::cap("tags", &huge, 50).unwrap_err();
    assert_eq!(err.field, "tags");
    assert!(err.description.contains("at most 50"), "{}", err.description);
    assert!(fields::cap_mask(&huge).is_err());
    assert!(fields::cap("tags", &huge[..50], 50).is_ok());
}

#[tokio::test]
async fn every_pooled_connection_has_statement_and_lock_timeouts() {
    let database = database().await;
    let url: String =
        sqlx::query_scalar("SELECT current_database()").fetch_one(&database.pool).await.unwrap();
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| rapport_kit::db::DEFAULT_DATABASE_URL.into());
    let (prefix, _) = base.rsplit_once('/').unwrap();
    let config = rapport_kit::db::DbConfig {
        url: format!("{prefix}/{url}"),
        schema: "kit_test".into(),
        statement_timeout: std::time::Duration::from_millis(50),
        lock_timeout: std::time::Duration::from_millis(40),
        ..Default::default()
    };
    let pool = rapport_kit::db::pool(&config).unwrap();
    let shown: (String, String) =
        sqlx::query_as("SELECT current_setting('statement_timeout'), current_setting('lock_timeout')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(shown, ("50ms".to_owned(), "40ms".to_owned()));
    let err = sqlx::query("SELECT pg_sleep(2)").execute(&pool).await.unwrap_err();
    let problem = database_problem(&err).unwrap();
    assert_eq!((problem.code(), problem.reason()), (Code::Unavailable, "DATABASE_BUSY"));
    let unbounded = rapport_kit::db::pool(&config.without_timeouts()).unwrap();
    let shown: String = sqlx::query_scalar("SELECT current_setting('statement_timeout')")
        .fetch_one(&unbounded)
        .await
        .unwrap();
    assert_eq!(shown, "0");
}
