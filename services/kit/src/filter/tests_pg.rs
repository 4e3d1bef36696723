//! PostgreSQL-backed tests: the generated SQL runs and selects the right rows.
//!
//! Uses `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`) to create
//! a throw-away database `filter_scratch_<uuid>`, which is dropped afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::str::FromStr;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::tests::FIELDS;
use super::*;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const ALL: [i32; 6] = [1, 2, 3, 4, 5, 6];

fn uuid_of(n: i32) -> String {
    format!("0190f3c4-1d2e-7a3b-8c4d-00000000000{n}")
}

const SCHEMA: &str = r#"
CREATE TABLE contacts (
    id uuid PRIMARY KEY,
    n integer NOT NULL,
    name text COLLATE "C",
    age integer,
    active boolean,
    created_at timestamptz,
    stage text,
    tags text[]
)"#;

const ROWS: &str = r#"
INSERT INTO contacts (id, n, name, age, active, created_at, stage, tags) VALUES
 ('0190f3c4-1d2e-7a3b-8c4d-000000000001', 1, 'Ada Lovelace', 36, true, '2024-01-01T00:00:00Z', 'CUSTOMER', '{vip,math}'),
 ('0190f3c4-1d2e-7a3b-8c4d-000000000002', 2, 'Alan Turing', 41, false, '2024-06-01T12:00:00Z', 'LEAD', '{math}'),
 ('0190f3c4-1d2e-7a3b-8c4d-000000000003', 3, 'ada_50%', NULL, NULL, NULL, NULL, NULL),
 ('0190f3c4-1d2e-7a3b-8c4d-000000000004', 4, NULL, 10, true, '2023-12-31T23:59:59Z', 'CHURNED', '{}'),
 ('0190f3c4-1d2e-7a3b-8c4d-000000000005', 5, '', -5, false, '2025-01-01T00:00:00Z', 'CUSTOMER', '{VIP}'),
 ('0190f3c4-1d2e-7a3b-8c4d-000000000006', 6, 'Grace O''Hopper', 85, true, '2024-01-01T00:00:00.5Z', 'LEAD',
  ARRAY['x''); DROP TABLE contacts; --'])
"#;

/// Runs `filter` with `$1` taken by the caller, through `query_scalar` + `bind_scalar`.
async fn rows(pool: &PgPool, filter: &str) -> Vec<i32> {
    let f = parse(filter, FIELDS, 2).unwrap().unwrap();
    let sql = format!("SELECT c.n FROM contacts c WHERE c.n > $1 AND {} ORDER BY c.n", f.sql);
    let mut q = sqlx::query_scalar::<_, i32>(&sql).bind(0_i32);
    for p in f.params {
        q = bind_scalar(q, p);
    }
    q.fetch_all(pool).await.unwrap_or_else(|e| panic!("{filter:?} -> {sql}: {e}"))
}

fn cases() -> Vec<(String, Vec<i32>)> {
    let owned = |cases: &[(&str, &[i32])]| -> Vec<(String, Vec<i32>)> {
        cases.iter().map(|(f, r)| ((*f).to_owned(), r.to_vec())).collect()
    };
    let mut all = owned(&[
        // Text
        (r#"name = "Ada Lovelace""#, &[1]),
        (r#"name != "Ada Lovelace""#, &[2, 3, 4, 5, 6]),
        ("name = ada*", &[3]),
        ("name = Ada*", &[1]),
        ("name = \"ada_*\"", &[3]),
        ("name = \"Ad_*\"", &[]),
        ("name != \"Ada*\"", &[2, 3, 4, 5, 6]),
        ("name:ada", &[1, 3]),
        ("name:\"50%\"", &[3]),
        ("name:\"%\"", &[3]),
        ("name:_", &[3]),
        ("name:\"o'h\"", &[6]),
        ("name:*", &[1, 2, 3, 6]),
        ("-name:*", &[4, 5]),
        ("name < Alb", &[1, 2, 5]),
        ("name >= G", &[3, 6]),
        // Uuid
        ("id = 0190f3c4-1d2e-7a3b-8c4d-000000000001", &[1]),
        ("id != '0190f3c4-1d2e-7a3b-8c4d-000000000001'", &[2, 3, 4, 5, 6]),
        ("id:*", &ALL),
        // Integer (an int4 column compared with bigint parameters)
        ("age > 30", &[1, 2, 6]),
        ("age <= 10", &[4, 5]),
        ("age = -5", &[5]),
        ("age != 36", &[2, 3, 4, 5, 6]),
        ("age >= 41", &[2, 6]),
        ("age < 9223372036854775807", &[1, 2, 4, 5, 6]),
        ("age:*", &[1, 2, 4, 5, 6]),
        // Bool
        ("active = true", &[1, 4, 6]),
        ("active = false", &[2, 5]),
        ("active != true", &[2, 3, 5]),
        ("active:*", &[1, 2, 4, 5, 6]),
        // Timestamp
        ("create_time = 2024-01-01T00:00:00Z", &[1]),
        ("create_time != 2024-01-01T00:00:00Z", &[2, 3, 4, 5, 6]),
        ("create_time >= 2024-01-01T00:00:00Z", &[1, 2, 5, 6]),
        ("create_time > \"2024-01-01T01:00:00+01:00\"", &[2, 5, 6]),
        ("create_time < 2024-01-01T00:00:00Z", &[4]),
        ("create_time <= 2024-01-01T00:00:00.5Z", &[1, 4, 6]),
        // Enum
        ("stage = customer", &[1, 5]),
        ("stage = LIFECYCLE_STAGE_LEAD", &[2, 6]),
        ("stage != CUSTOMER", &[2, 3, 4, 6]),
        ("stage:*", &[1, 2, 4, 5, 6]),
        // Text array
        ("tags:vip", &[1]),
        ("tags:VIP", &[5]),
        ("tags:*", &[1, 2, 5, 6]),
        ("-tags:*", &[3, 4]),
        ("tags:math AND NOT tags:vip", &[2]),
        (r#"tags:"x'); DROP TABLE contacts; --""#, &[6]),
        // Composition and precedence
        ("active = true AND age > 50 OR stage = LEAD", &[6]),
        ("(active = true AND age > 50) OR stage = LEAD", &[2, 6]),
        ("age > 30 age < 50", &[1, 2]),
        ("NOT (age > 30 OR stage = CHURNED)", &[3, 5]),
        ("NOT age = 36", &[2, 3, 4, 5, 6]),
        ("-(name:a active = true)", &[2, 3, 4, 5]),
    ]);
    all.push((format!("id = {}", uuid_of(6)), vec![6]));
    all
}

async fn check_all(pool: PgPool) {
    for (filter, expected) in cases() {
        assert_eq!(rows(&pool, &filter).await, expected, "filter {filter:?}");
        // NOT selects exactly the complement, NULLs included.
        let complement: Vec<i32> = ALL.iter().copied().filter(|n| !expected.contains(n)).collect();
        let negated = format!("NOT ({filter})");
        assert_eq!(rows(&pool, &negated).await, complement, "filter {negated:?}");
    }
    // The table survived the injection-looking values.
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM contacts").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 6);

    // `bind` (query) and `bind_as` (query_as) work the same way.
    let f = parse("stage = CUSTOMER OR tags:math", FIELDS, 1).unwrap().unwrap();
    let sql = format!("SELECT c.n FROM contacts c WHERE {} ORDER BY c.n", f.sql);
    let mut q = sqlx::query(&sql);
    for p in f.params.clone() {
        q = bind(q, p);
    }
    let got: BTreeSet<i32> =
        q.fetch_all(&pool).await.unwrap().iter().map(|row| sqlx::Row::get::<i32, _>(row, "n")).collect();
    assert_eq!(got, BTreeSet::from([1, 2, 5]));
    let mut q = sqlx::query_as::<_, (i32,)>(&sql);
    for p in f.params {
        q = bind_as(q, p);
    }
    let got: Vec<i32> = q.fetch_all(&pool).await.unwrap().into_iter().map(|(n,)| n).collect();
    assert_eq!(got, vec![1, 2, 5]);
}

#[tokio::test]
async fn generated_sql_selects_the_right_rows() {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
    let admin_opts = PgConnectOptions::from_str(&url).expect("DATABASE_URL");
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(admin_opts.clone())
        .await
        .expect("PostgreSQL must be reachable at DATABASE_URL");
    let db = format!("filter_scratch_{}", uuid::Uuid::now_v7().simple());
    sqlx::query(&format!("CREATE DATABASE {db}")).execute(&admin).await.unwrap();

    let pool = PgPoolOptions::new().max_connections(2).connect_with(admin_opts.database(&db)).await.unwrap();
    sqlx::query(SCHEMA).execute(&pool).await.unwrap();
    sqlx::query(ROWS).execute(&pool).await.unwrap();

    // Run the checks in a task so the database is dropped even if one fails.
    let outcome = tokio::spawn(check_all(pool.clone())).await;
    pool.close().await;
    sqlx::query(&format!("DROP DATABASE {db} WITH (FORCE)")).execute(&admin).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
