//! The bench database: a fresh database, Contacts' migrations, and
//! set-based seeding (`INSERT … SELECT … FROM generate_series`) of
//! companies and contacts straight into the `contacts` schema.
//!
//! Every attribute but the id is a deterministic hash of the row number,
//! so two runs seed the same people; ids are UUIDv7-shaped (their time is
//! the row's `create_time`, the rest random).

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;

pub mod activities;
mod data;
pub mod pipeline;
pub mod support;

use data::{COMPANY_KINDS, COMPANY_STEMS, FREEMAIL, INDUSTRIES, LEGAL_FORMS, SOURCES, STAGES, TOP_LEVELS};
pub use data::{FAMILY_NAMES, GIVEN_NAMES, JOB_TITLES, TAGS};

/// Distinct company names the stems, kinds and legal forms can make.
const MAX_COMPANIES: u32 = (COMPANY_STEMS.len() * COMPANY_KINDS.len() * LEGAL_FORMS.len()) as u32;

/// What seeding produced.
pub struct Seeded {
    /// Contacts inserted.
    pub contacts: u32,
    /// Companies inserted.
    pub companies: u32,
    /// Time to insert both.
    pub insert_time: Duration,
    /// Time of the `VACUUM ANALYZE` and `CHECKPOINT` after it.
    pub vacuum_time: Duration,
    /// Random seeded contact ids GetContact uses.
    pub working_set: Vec<String>,
    /// Every seeded company id (CreateContact links some contacts).
    pub company_ids: Vec<String>,
}

/// Migrates Contacts into the database at `url` and seeds it.
pub async fn seed(url: &str, contacts: u32, working_set: u32) -> anyhow::Result<Seeded> {
    let env = crate::servers::base_env().with("DATABASE_URL", url);
    migrate(&env, "contacts").await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .context("connecting to the bench database")?;
    let companies = (contacts / 50).clamp(1, MAX_COMPANIES);

    let started = Instant::now();
    // A synchronous commit (one flush for the whole seed): after an
    // asynchronous one the VACUUM below could not set hint bits (the
    // commit record not yet flushed) and so marked no page all-visible,
    // which left the index-only scans reading the heap.
    let mut tx = pool.begin().await?;
    insert_companies(&mut tx, companies).await?;
    insert_contacts(&mut tx, contacts, companies).await?;
    tx.commit().await?;
    let insert_time = started.elapsed();

    let started = Instant::now();
    pool.execute("VACUUM ANALYZE contacts.companies, contacts.contacts").await.context("vacuum analyze")?;
    // Write the seed's dirty pages out now rather than during a scenario.
    // Needs superuser (or pg_checkpoint); without it a checkpoint may land
    // mid-run, which the report shows.
    if let Err(err) = pool.execute("CHECKPOINT").await {
        eprintln!("note: CHECKPOINT after seeding failed ({err}); continuing");
    }
    let vacuum_time = started.elapsed();

    let working_set: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM contacts.contacts ORDER BY random() LIMIT $1")
            .bind(i64::from(working_set))
            .fetch_all(&pool)
            .await?;
    let company_ids: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM contacts.companies ORDER BY id").fetch_all(&pool).await?;
    pool.close().await;
    Ok(Seeded { contacts, companies, insert_time, vacuum_time, working_set, company_ids })
}

/// `h(n, salt)`: a deterministic, non-negative 31-bit hash of row `n`.
/// The SQL below spells it `(hashint8(n * 64 + salt)::bigint & 2147483647)`.
async fn insert_companies(tx: &mut sqlx::PgConnection, companies: u32) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO contacts.companies (id, name, domain, industry, employee_count, \
           annual_revenue_currency, annual_revenue_minor, owner_id, create_time, update_time) \
         SELECT \
           (lpad(to_hex((extract(epoch FROM s.created) * 1000)::bigint), 12, '0') \
             || '7' || substr(s.r, 1, 3) || '8' || substr(s.r, 4, 15))::uuid, \
           s.stem || ' ' || s.kind || s.legal, \
           CASE WHEN s.h1 % 10 <> 0 \
             THEN lower(regexp_replace(s.stem || s.kind, '[^A-Za-z]', '', 'g')) || s.tld END, \
           ($4::text[])[1 + s.h2 % cardinality($4::text[])], \
           (5 + s.h3 % 20000)::int, \
           CASE WHEN s.h1 % 3 <> 0 THEN ($5::text[])[1 + s.h2 % 3] END, \
           CASE WHEN s.h1 % 3 <> 0 THEN (100000 + s.h3 % 1000000) * 10000::bigint END, \
           'user-' || (1 + s.h2 % 25), \
           s.created, \
           least(now(), s.created + (s.h3 % 300) * interval '1 day') \
         FROM ( \
           SELECT n, \
             md5(random()::text || n::text) AS r, \
             now() - (hashint8(n * 64 + 1)::bigint & 2147483647) % (3 * 365 * 86400) * interval '1 second' AS created, \
             ($2::text[])[1 + (n - 1) % cardinality($2::text[])] AS stem, \
             ($3::text[])[1 + ((n - 1) / cardinality($2::text[])) % cardinality($3::text[])] AS kind, \
             ($6::text[])[1 + ((n - 1) / (cardinality($2::text[]) * cardinality($3::text[]))) % cardinality($6::text[])] AS legal, \
             ($7::text[])[1 + ((n - 1) / (cardinality($2::text[]) * cardinality($3::text[]))) % cardinality($6::text[])] AS tld, \
             (hashint8(n * 64 + 2)::bigint & 2147483647) AS h1, \
             (hashint8(n * 64 + 3)::bigint & 2147483647) AS h2, \
             (hashint8(n * 64 + 4)::bigint & 2147483647) AS h3 \
           FROM generate_series(1::bigint, $1) AS n \
         ) s",
    )
    .bind(i64::from(companies))
    .bind(COMPANY_STEMS)
    .bind(COMPANY_KINDS)
    .bind(INDUSTRIES)
    .bind(["USD", "EUR", "GBP"].as_slice())
    .bind(LEGAL_FORMS)
    .bind(TOP_LEVELS)
    .execute(&mut *tx)
    .await
    .context("seeding companies")?;
    Ok(())
}

/// Contacts with their phones' E.164 keys already set (what Contacts'
/// phone-keys job would compute), so no scenario measures that catch-up.
async fn insert_contacts(tx: &mut sqlx::PgConnection, contacts: u32, companies: u32) -> anyhow::Result<()> {
    let stages = weighted(STAGES);
    let sources = weighted(SOURCES);
    sqlx::query(
        "WITH numbered AS ( \
           SELECT id, name, domain, row_number() OVER (ORDER BY id) AS n FROM contacts.companies \
         ) \
         INSERT INTO contacts.contacts (id, given_name, family_name, email, phone, job_title, \
           company_id, company_name, owner_id, lifecycle_stage, lead_source, lead_source_detail, \
           source_campaign_id, tags, email_opt_in, email_opt_in_time, create_time, update_time, score_version, \
           phone_e164) \
         SELECT \
           (lpad(to_hex((extract(epoch FROM p.created) * 1000)::bigint), 12, '0') \
             || '7' || substr(p.r, 1, 3) || '8' || substr(p.r, 4, 15))::uuid, \
           p.given, \
           p.family, \
           regexp_replace(lower(p.given || '.' || p.family), '[^a-z.]', '', 'g') || p.i \
             || '@' || coalesce(c.domain, p.freemail), \
           CASE WHEN p.h4 % 5 = 0 THEN '' \
             ELSE '+1 555 ' || lpad((p.h4 % 10000000)::text, 7, '0') END, \
           p.title, \
           c.id, \
           coalesce(c.name, ''), \
           'user-' || (1 + p.h5 % 25), \
           p.stage, \
           p.source, \
           CASE WHEN p.source = 'OTHER' THEN 'podcast mention' ELSE '' END, \
           CASE WHEN p.source = 'EMAIL_CAMPAIGN' THEN 'cmp-' || (1 + p.h5 % 40) ELSE '' END, \
           ARRAY(SELECT t FROM unnest($6::text[]) WITH ORDINALITY AS u(t, k) \
                 WHERE (hashint8(p.i * 64 + 32 + k)::bigint & 2147483647) % 9 = 0), \
           p.h6 % 3 <> 0, \
           CASE WHEN p.h6 % 3 <> 0 THEN least(now(), p.created + interval '1 day') END, \
           p.created, \
           least(now(), p.created + (p.h6 % 200) * interval '1 day'), \
           (SELECT rules_version FROM contacts.scoring_settings), \
           CASE WHEN p.h4 % 5 = 0 THEN '' ELSE '+1555' || lpad((p.h4 % 10000000)::text, 7, '0') END \
         FROM ( \
           SELECT i, \
             md5(random()::text || i::text) AS r, \
             now() - (hashint8(i * 64 + 1)::bigint & 2147483647) % (2 * 365 * 86400) * interval '1 second' AS created, \
             ($3::text[])[1 + (hashint8(i * 64 + 2)::bigint & 2147483647) % cardinality($3::text[])] AS given, \
             ($4::text[])[1 + (hashint8(i * 64 + 3)::bigint & 2147483647) % cardinality($4::text[])] AS family, \
             ($5::text[])[1 + (hashint8(i * 64 + 4)::bigint & 2147483647) % cardinality($5::text[])] AS title, \
             ($7::text[])[1 + (hashint8(i * 64 + 5)::bigint & 2147483647) % cardinality($7::text[])] AS stage, \
             ($8::text[])[1 + (hashint8(i * 64 + 6)::bigint & 2147483647) % cardinality($8::text[])] AS source, \
             ($9::text[])[1 + (hashint8(i * 64 + 7)::bigint & 2147483647) % cardinality($9::text[])] AS freemail, \
             (hashint8(i * 64 + 8)::bigint & 2147483647) AS company_pick, \
             (hashint8(i * 64 + 9)::bigint & 2147483647) AS h4, \
             (hashint8(i * 64 + 10)::bigint & 2147483647) AS h5, \
             (hashint8(i * 64 + 11)::bigint & 2147483647) AS h6 \
           FROM generate_series(1::bigint, $1) AS i \
         ) p \
         LEFT JOIN numbered c ON p.company_pick % 4 <> 0 AND c.n = 1 + p.company_pick % $2",
    )
    .bind(i64::from(contacts))
    .bind(i64::from(companies))
    .bind(GIVEN_NAMES)
    .bind(FAMILY_NAMES)
    .bind(JOB_TITLES)
    .bind(TAGS)
    .bind(stages)
    .bind(sources)
    .bind(FREEMAIL)
    .execute(&mut *tx)
    .await
    .context("seeding contacts")?;
    Ok(())
}

/// Each name repeated by its weight, for a uniform pick in SQL.
fn weighted(table: &[(&'static str, usize)]) -> Vec<&'static str> {
    table.iter().flat_map(|(name, weight)| std::iter::repeat_n(*name, *weight)).collect()
}

/// Lifecycle stages a created contact may get (stored names).
pub fn stage_names() -> Vec<&'static str> {
    weighted(STAGES)
}

/// Lead sources a created contact may get (stored names).
pub fn source_names() -> Vec<&'static str> {
    weighted(SOURCES)
}

/// Applies the migrations of the registry's service `name` (as
/// `rapport migrate name` does) to the database `env` names.
pub async fn migrate(env: &rapport_kit::config::Env, name: &str) -> anyhow::Result<()> {
    let service =
        rapport::registry::find(name).with_context(|| format!("no service {name} in the registry"))?;
    service.migrate(env).await.with_context(|| format!("migrating {name}"))?;
    Ok(())
}
