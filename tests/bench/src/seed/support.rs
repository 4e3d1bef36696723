//! The Support seed: the service's migrations (with their default
//! calendar and policy), then set-based inserts straight into the
//! `support` schema:
//!
//! - `cases` cases over 20 team queues, half RESOLVED or CLOSED, the rest
//!   NEW, OPEN, PENDING_CUSTOMER or ON_HOLD; each open case has its
//!   first-response clock, due at a minute spread over the 100 days from
//!   the seed (`warn_at` an hour before), so a sweep a day later finds
//!   about 1 % of them newly breached and as many warnings due;
//! - `articles` published knowledge-base articles: titles of three words of
//!   the support vocabulary the cases' subjects use, bodies of forty words,
//!   mostly everyday ones (3,000 of them), one in 25 from that vocabulary.
//!
//! Attributes are deterministic hashes of the row number.

use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;

/// Words of subjects, descriptions and articles.
pub const VOCABULARY: &[&str] = &[
    "printer",
    "login",
    "password",
    "vpn",
    "email",
    "invoice",
    "refund",
    "shipping",
    "laptop",
    "battery",
    "screen",
    "crash",
    "error",
    "update",
    "install",
    "license",
    "account",
    "billing",
    "sync",
    "backup",
    "network",
    "wifi",
    "slow",
    "timeout",
    "export",
    "import",
    "report",
    "dashboard",
    "api",
    "token",
    "permission",
    "calendar",
    "mobile",
    "app",
    "upload",
    "download",
    "certificate",
    "firewall",
    "server",
    "database",
    "storage",
    "quota",
    "payment",
    "card",
    "subscription",
    "cancel",
    "upgrade",
    "renewal",
    "contract",
    "delivery",
    "warranty",
    "replacement",
    "keyboard",
    "mouse",
    "monitor",
    "driver",
    "bluetooth",
    "scanner",
    "toner",
    "paper",
];

/// What seeding Support produced.
pub struct SupportSeeded {
    /// Cases inserted.
    pub cases: u32,
    /// Of them open (not RESOLVED or CLOSED).
    pub open: i64,
    /// Articles inserted.
    pub articles: u32,
    /// Open cases SuggestArticles asks for.
    pub suggest_cases: Vec<String>,
    /// When the seed's clocks start: a sweep at this plus a day finds ~1 % due.
    pub start: DateTime<Utc>,
    /// Time of every insert.
    pub insert_time: Duration,
    /// Time of the `VACUUM ANALYZE` and `CHECKPOINT` after them.
    pub vacuum_time: Duration,
}

/// `h(n, salt)`: a deterministic non-negative 31-bit hash of `n`.
fn h(salt: u32) -> String {
    format!("(hashint8(n * 64 + {salt})::bigint & 2147483647)")
}

/// A word of the vocabulary picked by `hash`.
fn word(hash: &str) -> String {
    let words: Vec<String> = VOCABULARY.iter().map(|word| format!("'{word}'")).collect();
    format!("(ARRAY[{}])[{hash} % {} + 1]", words.join(","), VOCABULARY.len())
}

/// Migrates Support into the database at `url` and seeds it.
pub async fn seed(url: &str, cases: u32, articles: u32) -> anyhow::Result<SupportSeeded> {
    let env = crate::servers::base_env().with("DATABASE_URL", url);
    super::migrate(&env, "support").await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .context("connecting to the bench database")?;
    let start: DateTime<Utc> =
        sqlx::query_scalar("SELECT date_trunc('minute', now())").fetch_one(&pool).await?;
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let subject = format!("{} || ' ' || {} || ' ' || {}", word(&h(1)), word(&h(2)), word(&h(3)));
    let description = (4..16).map(|salt| word(&h(salt))).collect::<Vec<_>>().join(" || ' ' || ");
    let status = format!(
        "CASE WHEN {} % 2 = 0 THEN (ARRAY['RESOLVED','CLOSED'])[{} % 2 + 1] \
         ELSE (ARRAY['NEW','OPEN','PENDING_CUSTOMER','ON_HOLD'])[{} % 4 + 1] END",
        h(20),
        h(21),
        h(22)
    );
    let due = format!("($1::timestamptz + make_interval(mins => ({} % 144000)::int))", h(23));
    let sql = format!(
        "INSERT INTO support.cases (id, number, subject, description, requester_contact_id, status, priority, channel, \
           team_id, assignee_id, sla_policy_id, sla_policy_version, next_due_time, create_time, update_time) \
         SELECT gen_random_uuid(), 1000 + n, {subject}, {description}, gen_random_uuid(), s.status, \
           (ARRAY['LOW','NORMAL','HIGH','URGENT'])[{p} % 4 + 1], 'EMAIL', 't-' || (n % 20), \
           CASE WHEN {a} % 3 = 0 THEN '' ELSE 'agent-' || ({a} % 100) END, \
           '00000000-0000-7000-8000-000000000002', 1, \
           CASE WHEN s.status IN ('RESOLVED', 'CLOSED') THEN NULL ELSE {due} END, $1, $1 \
         FROM generate_series(1, $2) n, LATERAL (SELECT {status} AS status) s",
        p = h(24),
        a = h(25),
    );
    sqlx::query(&sql)
        .bind(start)
        .bind(i64::from(cases))
        .execute(&mut *tx)
        .await
        .context("inserting cases")?;
    sqlx::query("UPDATE support.case_number_counter SET last = 1000 + $1")
        .bind(i64::from(cases))
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO support.case_sla_clocks (case_id, metric, cycle, current, goal_seconds, business_hours, \
           calendar_id, pause_statuses, elapsed_micros, running_since, due_at, warn_at, segments) \
         SELECT id, 'FIRST_RESPONSE', 0, true, 28800, false, '00000000-0000-7000-8000-000000000001', \
           ARRAY['PENDING_CUSTOMER','ON_HOLD'], 0, create_time, next_due_time, next_due_time - interval '1 hour', \
           jsonb_build_array(jsonb_build_object('start', create_time, 'end', NULL, 'running', true)) \
         FROM support.cases WHERE next_due_time IS NOT NULL",
    )
    .execute(&mut *tx)
    .await
    .context("inserting clocks")?;
    let title = format!("{} || ' ' || {} || ' ' || {} || ' guide'", word(&h(31)), word(&h(32)), word(&h(33)));
    // Bodies: mostly everyday words (3,000 of them), one word in 25 from
    // the support vocabulary, as in an article about one topic.
    let body = (34..74)
        .map(|salt| {
            format!(
                "CASE WHEN {} % 25 = 0 THEN {} ELSE 'w' || ({} % 3000) END",
                h(salt + 100),
                word(&h(salt)),
                h(salt + 200)
            )
        })
        .collect::<Vec<_>>()
        .join(" || ' ' || ");
    let sql = format!(
        "INSERT INTO support.kb_articles (id, title, body, tags, status, author_id, create_time, update_time, publish_time) \
         SELECT gen_random_uuid(), {title}, {body}, ARRAY[{tag}], 'PUBLISHED', 'agent-' || (n % 100), $1, $1, $1 \
         FROM generate_series(1, $2) n",
        tag = word(&h(75))
    );
    sqlx::query(&sql)
        .bind(start)
        .bind(i64::from(articles))
        .execute(&mut *tx)
        .await
        .context("inserting articles")?;
    tx.commit().await?;
    let insert_time = started.elapsed();
    let started = Instant::now();
    pool.execute("VACUUM ANALYZE support.cases, support.case_sla_clocks, support.kb_articles").await?;
    if let Err(err) = pool.execute("CHECKPOINT").await {
        eprintln!("note: CHECKPOINT after seeding failed ({err}); continuing");
    }
    let vacuum_time = started.elapsed();
    let open: i64 =
        sqlx::query_scalar("SELECT count(*) FROM support.cases WHERE status NOT IN ('RESOLVED', 'CLOSED')")
            .fetch_one(&pool)
            .await?;
    let suggest_cases: Vec<String> = sqlx::query_scalar(
        "SELECT id::text FROM support.cases WHERE status NOT IN ('RESOLVED', 'CLOSED') ORDER BY random() LIMIT 1000",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(SupportSeeded { cases, open, articles, suggest_cases, start, insert_time, vacuum_time })
}

/// One full SLA sweep a day after the seed, as the sweeper runs it (one
/// transaction); returns how long it took and how many alerts it made.
pub async fn sweep_once(url: &str, start: DateTime<Utc>) -> anyhow::Result<(Duration, u64)> {
    let env = crate::servers::base_env().with("DATABASE_URL", url);
    let config = rapport_support::Config::from_env(&env)?;
    let pool = rapport_kit::db::pool(&config.service.db)?;
    let ctx = rapport_support::store::Ctx {
        prefix: "CASE-",
        now: start + chrono::Duration::days(1),
        mail: None,
        survey_ttl: chrono::Duration::zero(),
    };
    let started = Instant::now();
    let mut tx = pool.begin().await?;
    let alerts = rapport_support::store::sweep::sweep(
        &mut tx,
        rapport_kit::idempotency::Write::service(rapport_support::workers::SWEEPER),
        ctx,
    )
    .await
    .map_err(|err| anyhow::anyhow!("the sweep failed: {err:?}"))?;
    tx.commit().await?;
    let took = started.elapsed();
    pool.close().await;
    Ok((took, alerts))
}
