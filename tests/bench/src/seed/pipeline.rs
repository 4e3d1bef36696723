//! The Pipeline seed: the service's own migrations and default pipeline
//! ("Sales", created exactly as `App::build` creates it), then set-based
//! inserts straight into the `pipeline` schema:
//!
//! - the forecast's deals: `deals` of them over ~2 years of expected close
//!   dates, 50 owners, mostly EUR (some USD, GBP, JPY, with rates to EUR
//!   in `exchange_rates` from four effective dates), mostly OPEN with some
//!   WON and LOST, one open stage visit each in `deal_stage_history`;
//! - for Customer 360: per chosen contact, open deals naming it on the
//!   buying committee (and its company); per company of those contacts a
//!   won deal with an acknowledged order and three invoices (one open, one
//!   overdue, one paid).
//!
//! Attributes are deterministic hashes of the row number, like the
//! Contacts seed; ids are UUIDv7-shaped.

use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::Executor;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

/// `h(n, salt)` over the SQL variable `var`: a deterministic non-negative
/// 31-bit hash.
fn h(var: &str, salt: u32) -> String {
    format!("(hashint8({var} * 64 + {salt})::bigint & 2147483647)")
}

/// A UUIDv7-shaped id whose time is `created` (a timestamptz expression),
/// the rest random.
fn v7(created: &str, salt: &str) -> String {
    format!(
        "(lpad(to_hex((extract(epoch FROM {created}) * 1000)::bigint), 12, '0') || '7' \
         || substr(md5(random()::text || ({salt})::text), 1, 3) || '8' \
         || substr(md5(random()::text || ({salt})::text), 4, 15))::uuid"
    )
}

/// What seeding the Pipeline produced.
pub struct PipelineSeeded {
    /// Forecast deals inserted.
    pub deals: u32,
    /// Of them: open, won, lost.
    pub by_status: (i64, i64, i64),
    /// Of them: not in EUR.
    pub foreign_currency: i64,
    /// Exchange-rate rows.
    pub exchange_rates: i64,
    /// Customer 360: contacts, their companies, open deals, invoices.
    pub customer360: (usize, usize, i64, i64),
    /// Time of every insert.
    pub insert_time: Duration,
    /// Time of the `VACUUM ANALYZE` and `CHECKPOINT` after them.
    pub vacuum_time: Duration,
    /// The default pipeline's OPEN stages, in order.
    pub open_stages: Vec<String>,
    /// Open deals MoveDealStage moves, each with the index (in
    /// `open_stages`) of the stage it is in.
    pub move_deals: Vec<(String, usize)>,
    /// Contacts Customer 360 asks for.
    pub customer360_contacts: Vec<String>,
}

/// Forecast categories of open deals, by weight.
const OPEN_CATEGORIES: &[(&str, usize)] = &[("PIPELINE", 5), ("BEST_CASE", 3), ("COMMIT", 2), ("OMITTED", 1)];

/// Deal kinds for titles.
const DEAL_KINDS: &[&str] =
    &["New business", "Renewal", "Expansion", "Upsell", "Pilot", "Migration", "Support plan", "Training"];

/// Migrates Pipeline into the database at `url`, creates its default
/// pipeline, and seeds it. `working_set`: contact ids Customer 360 picks
/// its contacts from (those with a company).
pub async fn seed(
    url: &str,
    deals: u32,
    move_deals: u32,
    working_set: &[String],
    customer360_contacts: u32,
) -> anyhow::Result<PipelineSeeded> {
    let env = crate::servers::base_env().with("DATABASE_URL", url);
    let config = rapport_pipeline::Config::from_env(&env)?;
    super::migrate(&env, "pipeline").await?;
    let service_pool = rapport_kit::db::pool(&config.service.db)?;
    rapport_pipeline::store::pipelines::ensure_defaults(&service_pool)
        .await
        .map_err(|err| anyhow::anyhow!("creating the default pipeline: {err:?}"))?;
    service_pool.close().await;

    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(url)
        .await
        .context("connecting to the bench database")?;
    let pipeline_id: Uuid =
        sqlx::query_scalar("SELECT id FROM pipeline.pipelines WHERE is_default AND delete_time IS NULL")
            .fetch_one(&pool)
            .await
            .context("reading the default pipeline")?;
    let stages: Vec<(Uuid, String)> = sqlx::query_as(
        "SELECT id, kind FROM pipeline.stages WHERE pipeline_id = $1 AND NOT retired ORDER BY position",
    )
    .bind(pipeline_id)
    .fetch_all(&pool)
    .await?;
    let of_kind =
        |kind: &str| stages.iter().filter(|(_, k)| k == kind).map(|(id, _)| *id).collect::<Vec<_>>();
    let (open, won, lost) = (of_kind("OPEN"), of_kind("WON"), of_kind("LOST"));
    anyhow::ensure!(
        open.len() >= 2 && !won.is_empty() && !lost.is_empty(),
        "the default pipeline needs 2 OPEN stages, a WON and a LOST one; it has {stages:?}"
    );
    let lost_reasons: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM pipeline.lost_reasons WHERE NOT retired ORDER BY label")
            .fetch_all(&pool)
            .await?;
    anyhow::ensure!(!lost_reasons.is_empty(), "no lost reasons");

    // Customer 360's contacts: from the working set, those with a company.
    let chosen: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, company_id FROM contacts.contacts \
         WHERE id = ANY($1::uuid[]) AND company_id IS NOT NULL AND delete_time IS NULL \
         ORDER BY id LIMIT $2",
    )
    .bind(working_set)
    .bind(i64::from(customer360_contacts))
    .fetch_all(&pool)
    .await
    .context("choosing Customer 360 contacts")?;
    let c360_contacts: Vec<Uuid> = chosen.iter().map(|(contact, _)| *contact).collect();
    let c360_companies: Vec<Uuid> = chosen.iter().map(|(_, company)| *company).collect();
    // The forecast's deals belong to the other companies, so the Customer
    // 360 companies keep a few open deals each.
    let other_companies: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM contacts.companies WHERE NOT id = ANY($1::uuid[]) ORDER BY id")
            .bind(&c360_companies)
            .fetch_all(&pool)
            .await?;

    let started = Instant::now();
    // A synchronous commit (one flush for the whole seed): after an
    // asynchronous one the VACUUM below could not set hint bits (the
    // commit record not yet flushed) and so marked no page all-visible,
    // which left the index-only scans reading the heap.
    let mut tx = pool.begin().await?;
    insert_exchange_rates(&mut tx).await?;
    insert_forecast_deals(
        &mut tx,
        deals,
        pipeline_id,
        (&open, won[0], lost[0]),
        &lost_reasons,
        &other_companies,
    )
    .await?;
    // Counted before the Customer 360 rows join them.
    let by_status: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'OPEN'), count(*) FILTER (WHERE status = 'WON'), \
           count(*) FILTER (WHERE status = 'LOST'), count(*) FILTER (WHERE currency_code <> 'EUR') \
         FROM pipeline.deals",
    )
    .fetch_one(&mut *tx)
    .await?;
    let (c360_deals, c360_invoices) =
        insert_customer360(&mut tx, pipeline_id, &open, won[0], &c360_contacts, &c360_companies).await?;
    // Every deal's current stage visit, as MoveDealStage expects to close.
    sqlx::query(
        "INSERT INTO pipeline.deal_stage_history (deal_id, stage_id, enter_time, actor) \
         SELECT id, stage_id, stage_enter_time, owner_id FROM pipeline.deals",
    )
    .execute(&mut *tx)
    .await
    .context("seeding stage history")?;
    tx.commit().await?;
    let insert_time = started.elapsed();

    let started = Instant::now();
    pool.execute(
        "VACUUM ANALYZE pipeline.deals, pipeline.deal_stage_history, pipeline.orders, \
         pipeline.invoices, pipeline.exchange_rates",
    )
    .await
    .context("vacuum analyze")?;
    if let Err(err) = pool.execute("CHECKPOINT").await {
        eprintln!("note: CHECKPOINT after seeding the pipeline failed ({err}); continuing");
    }
    let vacuum_time = started.elapsed();

    let exchange_rates: i64 =
        sqlx::query_scalar("SELECT count(*) FROM pipeline.exchange_rates").fetch_one(&pool).await?;
    let moving: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT id, stage_id FROM pipeline.deals \
         WHERE status = 'OPEN' AND cardinality(contact_ids) = 0 AND delete_time IS NULL \
         ORDER BY random() LIMIT $1",
    )
    .bind(i64::from(move_deals))
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    let move_deals = moving
        .into_iter()
        .filter_map(|(id, stage)| {
            open.iter().position(|open| *open == stage).map(|index| (id.to_string(), index))
        })
        .collect();
    let mut distinct_companies = c360_companies.clone();
    distinct_companies.sort();
    distinct_companies.dedup();
    Ok(PipelineSeeded {
        deals,
        by_status: (by_status.0, by_status.1, by_status.2),
        foreign_currency: by_status.3,
        exchange_rates,
        customer360: (c360_contacts.len(), distinct_companies.len(), c360_deals, c360_invoices),
        insert_time,
        vacuum_time,
        open_stages: open.iter().map(Uuid::to_string).collect(),
        move_deals,
        customer360_contacts: c360_contacts.iter().map(Uuid::to_string).collect(),
    })
}

/// USD, GBP and JPY to EUR, each from four effective dates (the oldest
/// before any seeded close date).
async fn insert_exchange_rates(tx: &mut sqlx::PgConnection) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO pipeline.exchange_rates (from_currency, to_currency, effective_date, rate, actor, update_time) \
         SELECT c.code, 'EUR', current_date - e.days, round(c.rate * e.factor, 10), 'rapport-bench', now() \
         FROM (VALUES ('USD', 0.92::numeric), ('GBP', 1.17::numeric), ('JPY', 0.0061::numeric)) AS c(code, rate) \
         CROSS JOIN (VALUES (800, 1.00::numeric), (365, 1.02::numeric), (180, 0.99::numeric), (60, 1.01::numeric)) \
           AS e(days, factor)",
    )
    .execute(&mut *tx)
    .await
    .context("seeding exchange rates")?;
    Ok(())
}

/// The forecast's deals: row `n` of `count`.
async fn insert_forecast_deals(
    tx: &mut sqlx::PgConnection,
    count: u32,
    pipeline_id: Uuid,
    (open, won, lost): (&[Uuid], Uuid, Uuid),
    lost_reasons: &[Uuid],
    companies: &[Uuid],
) -> anyhow::Result<()> {
    let categories = super::weighted(OPEN_CATEGORIES);
    let sources = super::source_names();
    let sql = format!(
        "INSERT INTO pipeline.deals (id, title, pipeline_id, stage_id, currency_code, amount_minor, \
           amount_derived, expected_close_date, probability_override, forecast_category, owner_id, \
           team_member_ids, company_id, contact_ids, contact_roles, lead_source, source_campaign_id, \
           next_step, status, lost_reason_id, lost_reason_detail, close_time, reopen_stage_id, \
           stage_enter_time, last_activity_time, order_id, create_time, update_time, delete_time, version) \
         SELECT {id}, \
           ($9::text[])[1 + d.h13 % cardinality($9::text[])] || ' ' || d.n, \
           $2, \
           CASE d.status WHEN 'OPEN' THEN d.open_stage WHEN 'WON' THEN $4 ELSE $5 END, \
           d.currency, \
           CASE d.currency WHEN 'JPY' THEN d.base * 160 ELSE d.base * 100 END, \
           false, \
           d.close_date, \
           CASE WHEN d.status = 'OPEN' AND d.h6 % 10 = 0 THEN ((d.h6 / 10) % 101)::smallint END, \
           CASE d.status WHEN 'OPEN' THEN ($8::text[])[1 + d.h14 % cardinality($8::text[])] \
             WHEN 'WON' THEN 'CLOSED' ELSE 'OMITTED' END, \
           'user-' || (1 + d.owner), \
           CASE d.h8 % 10 \
             WHEN 0 THEN ARRAY['user-' || (1 + (d.owner + 1 + (d.h8 / 10) % 49) % 50), \
                               'user-' || (1 + (d.owner + 1 + (d.h8 / 500) % 49) % 50)] \
             WHEN 1 THEN ARRAY['user-' || (1 + (d.owner + 1 + (d.h8 / 10) % 49) % 50)] \
             WHEN 2 THEN ARRAY['user-' || (1 + (d.owner + 1 + (d.h8 / 10) % 49) % 50)] \
             ELSE '{{}}'::text[] END, \
           CASE WHEN cardinality($7::uuid[]) > 0 AND d.h9 % 5 <> 0 \
             THEN ($7::uuid[])[1 + d.h9 % cardinality($7::uuid[])] END, \
           '{{}}'::uuid[], \
           '{{}}'::text[], \
           ($10::text[])[1 + d.h15 % cardinality($10::text[])], \
           '', \
           CASE WHEN d.status = 'OPEN' AND d.h13 % 3 = 0 THEN 'Follow-up call' ELSE '' END, \
           d.status, \
           CASE WHEN d.status = 'LOST' THEN ($6::uuid[])[1 + d.h10 % cardinality($6::uuid[])] END, \
           '', \
           d.close_time, \
           CASE WHEN d.status <> 'OPEN' THEN d.open_stage END, \
           d.stage_enter, \
           d.activity, \
           NULL, \
           d.created, \
           d.activity, \
           NULL, \
           1 + d.h12 % 5 \
         FROM ( \
           SELECT e.*, \
             CASE WHEN e.status = 'OPEN' \
               THEN e.stage_enter + ((e.h12 % 1000) / 1000.0)::float8 * (now() - e.stage_enter) \
               ELSE e.anchor END AS activity \
           FROM ( \
           SELECT c.*, \
             CASE WHEN c.status = 'OPEN' \
               THEN c.created + ((c.h11 % 1000) / 1000.0)::float8 * (c.anchor - c.created) \
               ELSE c.anchor END AS stage_enter \
           FROM ( \
             SELECT b.*, \
               coalesce(b.close_time, now()) - (10 + b.h11 % 300) * interval '1 day' - (b.h12 % 86400) * interval '1 second' AS created, \
               coalesce(b.close_time, now()) AS anchor \
             FROM ( \
               SELECT a.*, \
                 CASE WHEN a.status = 'OPEN' THEN current_date - 365 + (a.h4 % 730)::int \
                   ELSE current_date - 1 - (a.h4 % 365)::int END AS close_date, \
                 CASE WHEN a.status <> 'OPEN' THEN least(now(), \
                   (current_date - 1 - (a.h4 % 365)::int) + (a.h5 % 86400) * interval '1 second') END AS close_time \
               FROM ( \
                 SELECT n, \
                   CASE WHEN {h1} % 100 < 75 THEN 'OPEN' WHEN {h1} % 100 < 90 THEN 'WON' ELSE 'LOST' END AS status, \
                   CASE WHEN {h2} % 100 < 70 THEN 'EUR' WHEN {h2} % 100 < 85 THEN 'USD' \
                     WHEN {h2} % 100 < 95 THEN 'GBP' ELSE 'JPY' END AS currency, \
                   (500 + {h3} % 249500) AS base, \
                   ($3::uuid[])[1 + {h10} % cardinality($3::uuid[])] AS open_stage, \
                   {h7} % 50 AS owner, \
                   {h4} AS h4, {h5} AS h5, {h6} AS h6, {h8} AS h8, {h9} AS h9, {h10} AS h10, \
                   {h11} AS h11, {h12} AS h12, {h13} AS h13, {h14} AS h14, {h15} AS h15 \
                 FROM generate_series(1::bigint, $1) AS n \
               ) a \
             ) b \
           ) c \
           ) e \
         ) d",
        id = v7("d.created", "d.n"),
        h1 = h("n", 1),
        h2 = h("n", 2),
        h3 = h("n", 3),
        h4 = h("n", 4),
        h5 = h("n", 5),
        h6 = h("n", 6),
        h7 = h("n", 7),
        h8 = h("n", 8),
        h9 = h("n", 9),
        h10 = h("n", 10),
        h11 = h("n", 11),
        h12 = h("n", 12),
        h13 = h("n", 13),
        h14 = h("n", 14),
        h15 = h("n", 15),
    );
    sqlx::query(&sql)
        .bind(i64::from(count))
        .bind(pipeline_id)
        .bind(open)
        .bind(won)
        .bind(lost)
        .bind(lost_reasons)
        .bind(companies)
        .bind(categories)
        .bind(DEAL_KINDS)
        .bind(sources)
        .execute(&mut *tx)
        .await
        .context("seeding the forecast's deals")?;
    Ok(())
}

/// Per contact three open deals naming it (and its company); per company
/// a won deal, its acknowledged order, and three invoices: open, overdue,
/// paid. Returns the open deals and the unpaid invoices inserted.
async fn insert_customer360(
    tx: &mut sqlx::PgConnection,
    pipeline_id: Uuid,
    open: &[Uuid],
    won: Uuid,
    contacts: &[Uuid],
    companies: &[Uuid],
) -> anyhow::Result<(i64, i64)> {
    let open_deals = sqlx::query(&format!(
        "INSERT INTO pipeline.deals (id, title, pipeline_id, stage_id, currency_code, amount_minor, \
           expected_close_date, forecast_category, owner_id, company_id, contact_ids, contact_roles, \
           lead_source, next_step, status, stage_enter_time, last_activity_time, create_time, update_time) \
         SELECT {id}, \
           ($5::text[])[1 + (c.n + k) % cardinality($5::text[])] || ' for customer ' || c.n, \
           $3, \
           ($4::uuid[])[1 + (c.n + k) % cardinality($4::uuid[])], \
           'EUR', \
           (2000 + (c.n * 7 + k * 13) % 50000) * 100, \
           current_date + (k * 20 + c.n % 30)::int, \
           (ARRAY['PIPELINE', 'BEST_CASE', 'COMMIT'])[k], \
           'user-' || (1 + c.n % 50), \
           c.company, \
           ARRAY[c.contact], \
           ARRAY['DECISION_MAKER'], \
           'WEB', \
           'Send the proposal', \
           'OPEN', \
           now() - (k * 3) * interval '1 day', \
           now() - k * interval '1 day', \
           now() - (30 + k) * interval '1 day', \
           now() - k * interval '1 day' \
         FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS c(contact, company, n) \
         CROSS JOIN generate_series(1, 3) AS k",
        id = v7("now() - (30 + k) * interval '1 day'", "(c.n * 8 + k)"),
    ))
    .bind(contacts)
    .bind(companies)
    .bind(pipeline_id)
    .bind(open)
    .bind(DEAL_KINDS)
    .execute(&mut *tx)
    .await
    .context("seeding Customer 360 open deals")?
    .rows_affected();

    let created = "now() - interval '90 days'";
    tx.execute(
        "CREATE TEMPORARY TABLE bench_c360_companies \
           (company uuid, n bigint, deal_id uuid, order_id uuid) ON COMMIT DROP",
    )
    .await?;
    sqlx::query(&format!(
        "INSERT INTO bench_c360_companies (company, n, deal_id, order_id) \
         SELECT company, n, {deal}, {order} \
         FROM (SELECT company, row_number() OVER (ORDER BY company) AS n \
               FROM (SELECT DISTINCT unnest($1::uuid[]) AS company) x) y",
        deal = v7(created, "n * 2"),
        order = v7("now() - interval '60 days'", "n * 2 + 1"),
    ))
    .bind(companies)
    .execute(&mut *tx)
    .await
    .context("numbering Customer 360 companies")?;
    sqlx::query(
        "INSERT INTO pipeline.deals (id, title, pipeline_id, stage_id, currency_code, amount_minor, \
           expected_close_date, forecast_category, owner_id, company_id, status, close_time, reopen_stage_id, \
           stage_enter_time, last_activity_time, order_id, create_time, update_time, version) \
         SELECT c.deal_id, 'Won contract ' || c.n, $1, $2, 'EUR', 3000000 + (c.n % 50) * 10000, \
           (now() - interval '60 days')::date, 'CLOSED', 'user-' || (1 + c.n % 50), c.company, 'WON', \
           now() - interval '60 days', $3, now() - interval '60 days', now() - interval '60 days', \
           c.order_id, now() - interval '90 days', now() - interval '60 days', 4 \
         FROM bench_c360_companies c",
    )
    .bind(pipeline_id)
    .bind(won)
    .bind(open.last().copied())
    .execute(&mut *tx)
    .await
    .context("seeding Customer 360 won deals")?;
    sqlx::query(
        "INSERT INTO pipeline.orders (id, deal_id, company_id, owner_id, status, currency_code, total_minor, \
           external_ref, create_time, acknowledge_time, update_time, version) \
         SELECT c.order_id, c.deal_id, c.company, 'user-' || (1 + c.n % 50), 'ACKNOWLEDGED', 'EUR', \
           3000000 + (c.n % 50) * 10000, 'ERP-BENCH-' || c.n, now() - interval '60 days', \
           now() - interval '59 days', now() - interval '59 days', 2 \
         FROM bench_c360_companies c",
    )
    .execute(&mut *tx)
    .await
    .context("seeding Customer 360 orders")?;
    // Three invoices splitting the order total: k = 1 open (due in 20
    // days), 2 overdue (due 20 days ago), 3 paid.
    let invoices = sqlx::query(&format!(
        "INSERT INTO pipeline.invoices (id, order_id, company_id, number, currency_code, amount_minor, \
           paid_minor, issue_date, due_date, status, create_time, paid_time, update_time, version) \
         SELECT {id}, c.order_id, c.company, 'INV-BENCH-' || c.n || '-' || k, 'EUR', \
           CASE k WHEN 3 THEN (3000000 + (c.n % 50) * 10000) - 2 * 1000000 ELSE 1000000 END, \
           CASE k WHEN 3 THEN (3000000 + (c.n % 50) * 10000) - 2 * 1000000 ELSE 0 END, \
           CASE k WHEN 1 THEN current_date - 10 WHEN 2 THEN current_date - 50 ELSE current_date - 58 END, \
           CASE k WHEN 1 THEN current_date + 20 WHEN 2 THEN current_date - 20 ELSE current_date - 28 END, \
           CASE k WHEN 1 THEN 'OPEN' WHEN 2 THEN 'OVERDUE' ELSE 'PAID' END, \
           now() - interval '58 days', \
           CASE k WHEN 3 THEN now() - interval '30 days' END, \
           now() - interval '19 days', \
           CASE k WHEN 3 THEN 2 ELSE 1 END \
         FROM bench_c360_companies c CROSS JOIN generate_series(1, 3) AS k",
        id = v7("now() - interval '58 days'", "(c.n * 4 + k)"),
    ))
    .execute(&mut *tx)
    .await
    .context("seeding Customer 360 invoices")?
    .rows_affected();
    let unpaid = invoices * 2 / 3;
    Ok((i64::try_from(open_deals).unwrap_or(i64::MAX), i64::try_from(unpaid).unwrap_or(i64::MAX)))
}
