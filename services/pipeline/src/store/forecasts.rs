//! Forecast and pipeline-summary sums, each in one SQL statement.
//!
//! Conversion happens per deal in SQL, exactly as `rapport_kit::money`
//! does it in Rust: the rates in force are decided in Rust (a
//! [`RateBook`]) for every (currency, day) of the range and bound as
//! arrays; the statement joins each deal to its (currency, day) row and
//! computes `converted = ⌊(amount × 2·num + den) / 2·den⌋` with exact
//! `numeric` integer division — `num/den` is `rate × 10^exp_to / 10^exp_from`
//! (or its inverse when only the opposite pair is set), so this is the
//! exact quotient rounded once, half away from zero (amounts are never
//! negative). Weighted amounts round `converted × probability / 100` the
//! same way, per deal, before summing. A deal whose currency has no rate in
//! force is reported (its earliest day and currency), never skipped.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use rapport_kit::money::{self, Currency};
use sqlx::{PgConnection, PgPool};

use crate::domain::forecast::{
    self, CategorySum, Conversion, ForecastError, ForecastQuery, Grouping, RateBook,
};
use crate::domain::ids::PipelineId;
use crate::error::{Error, forecast_failed, resource};
pub use crate::model::forecasts::{StageSum, Summary};
use crate::store::{quotas, rates};
use rapport_kit::auth::{ReadScope, ScopeColumns};

/// What a forecast is assembled from, read in one snapshot.
#[derive(Debug)]
pub struct ForecastData {
    /// The sums ([`sums`]).
    pub sums: Vec<CategorySum>,
    /// Per owner, the quotas of the range in the reporting currency.
    pub quotas: BTreeMap<String, i64>,
    /// STAGE and PIPELINE group keys (ids) to their names.
    pub labels: HashMap<String, String>,
}

/// Reads a forecast's sums, quotas and labels in one read-only snapshot.
/// A deal or quota without a rate in force is `EXCHANGE_RATE_MISSING`; a
/// sum beyond 64-bit minor units is `OUT_OF_RANGE`.
/// Only the deals and quotas the caller may read count (`scopes`).
pub async fn forecast(
    pool: &PgPool,
    query: &ForecastQuery,
    scopes: Scopes<'_>,
) -> Result<ForecastData, Error> {
    let mut tx = pool.begin().await?;
    read_only(&mut tx).await?;
    let book = rates::book(&mut tx, query.currency.code(), query.end).await?;
    let sums = sums(&mut tx, query, &book, scopes.deals).await?;
    let owners = quotas::of_months(&mut tx, &query.months(), &query.owner_ids, scopes.quotas).await?;
    let quotas = forecast::quota_totals(&owners, &book, query.currency).map_err(forecast_failed)?;
    let table = match query.grouping {
        Grouping::Stage => Some("stages"),
        Grouping::Pipeline => Some("pipelines"),
        _ => None,
    };
    let labels = match table {
        Some(table) => {
            let ids: Vec<uuid::Uuid> =
                sums.iter().filter_map(|sum| sum.key.as_deref()?.parse().ok()).collect();
            names(&mut tx, table, &ids).await?.into_iter().collect()
        }
        None => HashMap::new(),
    };
    tx.commit().await?;
    Ok(ForecastData { sums, quotas, labels })
}

/// What of deals and quotas a forecast's caller may read.
#[derive(Debug, Clone, Copy)]
pub struct Scopes<'a> {
    /// The deals.
    pub deals: &'a ReadScope,
    /// The quotas.
    pub quotas: &'a ReadScope,
}

/// The deal columns a read scope is checked against, as `d`.
const SCOPE_COLUMNS: ScopeColumns =
    ScopeColumns { owner: "d.owner_id", team: Some("d.team_id"), members: Some("d.team_member_ids") };

/// Reads a pipeline summary of the deals `scope` may read in one read-only
/// snapshot, converted at the rates in force today.
pub async fn summary(
    pool: &PgPool,
    pipeline_id: Option<PipelineId>,
    currency: Currency,
    scope: &ReadScope,
) -> Result<Summary, Error> {
    let mut tx = pool.begin().await?;
    read_only(&mut tx).await?;
    let id = live_pipeline(&mut tx, pipeline_id.map(|id| id.uuid())).await?.ok_or_else(|| {
        let id = pipeline_id.map(|id| id.to_string()).unwrap_or_else(|| "default".to_owned());
        Error::not_found("PIPELINE_NOT_FOUND", resource::PIPELINE, id)
    })?;
    let now = crate::store::now();
    let book = rates::book(&mut tx, currency.code(), now.date_naive()).await?;
    let stages = stage_sums(&mut tx, id, currency, &book, now, scope).await?;
    tx.commit().await?;
    check_missing(stages.iter().map(|stage| stage.missing.as_deref()), currency)?;
    Ok(Summary { pipeline_id: id, stages })
}

/// The earliest `YYYY-MM-DD CUR` "no rate in force" marker among
/// `markers`, as `EXCHANGE_RATE_MISSING`.
fn check_missing<'a>(markers: impl Iterator<Item = Option<&'a str>>, to: Currency) -> Result<(), Error> {
    let Some(marker) = markers.flatten().min() else { return Ok(()) };
    let (day, from) = marker.split_once(' ').unwrap_or((marker, ""));
    let day = NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|_| Error::undecodable("missing-rate marker", marker))?;
    let from = Currency::parse("currency_code", from)
        .map_err(|_| Error::undecodable("missing-rate marker", marker))?;
    Err(forecast_failed(ForecastError::RateMissing { from, to, day }))
}

/// A sum beyond `int8` (SQLSTATE 22003 from a `::bigint` cast) is
/// `OUT_OF_RANGE`; other errors pass.
fn out_of_range(err: sqlx::Error) -> Error {
    match &err {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("22003") => {
            forecast_failed(ForecastError::OutOfRange("amount"))
        }
        _ => Error::from(err),
    }
}

/// One sum row as the statement returns it.
#[derive(sqlx::FromRow)]
struct SumRow {
    key: Option<String>,
    category: String,
    count: i64,
    amount: i64,
    weighted: i64,
    /// `YYYY-MM-DD CUR` of the earliest deal without a rate in force.
    missing: Option<String>,
}

type Query<'q, O> = sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

/// The conversion rows bound to a statement: per currency and day, the
/// factor `num/den` of the rate in force (see `money::conversion_factor`)
/// as `int8` when `amount × 2·num + den` fits for amounts up to
/// `max_amount` (the fast path), and as `numeric` for the rest.
struct Factors {
    currencies: Vec<String>,
    days: Vec<NaiveDate>,
    num2: Vec<i64>,
    den: Vec<i64>,
    max_amount: Vec<i64>,
    num2_exact: Vec<String>,
    den_exact: Vec<String>,
}

impl Factors {
    fn new(book: &RateBook, to: Currency, days: impl Iterator<Item = NaiveDate> + Clone) -> Factors {
        let mut factors = Factors {
            currencies: Vec::new(),
            days: Vec::new(),
            num2: Vec::new(),
            den: Vec::new(),
            max_amount: Vec::new(),
            num2_exact: Vec::new(),
            den_exact: Vec::new(),
        };
        for from in book.currencies(to) {
            for day in days.clone() {
                let (num, den) = match book.in_force(from, to, day) {
                    Some(Conversion::Direct(rate)) => money::conversion_factor(from, to, rate, false),
                    Some(Conversion::Inverse(rate)) => money::conversion_factor(from, to, rate, true),
                    Some(Conversion::Same) | None => continue,
                };
                let num2 = num * 2;
                let (num2_fast, den_fast, max_amount) =
                    match (i64::try_from(num2), i64::try_from(den), i64::try_from(den * 2)) {
                        (Ok(num2), Ok(den), Ok(_)) => (num2, den, (i64::MAX - den) / num2.max(1)),
                        _ => (0, 0, -1),
                    };
                factors.currencies.push(from.code().to_owned());
                factors.days.push(day);
                factors.num2.push(num2_fast);
                factors.den.push(den_fast);
                factors.max_amount.push(max_amount);
                factors.num2_exact.push(num2.to_string());
                factors.den_exact.push(den.to_string());
            }
        }
        factors
    }

    /// Binds $2 to $8 (after the reporting currency, $1).
    fn bind<'q, O>(&'q self, query: Query<'q, O>) -> Query<'q, O> {
        query
            .bind(&self.currencies)
            .bind(&self.days)
            .bind(&self.num2)
            .bind(&self.den)
            .bind(&self.max_amount)
            .bind(&self.num2_exact)
            .bind(&self.den_exact)
    }
}

/// `WITH factors …, priced …` over `scope` (a SELECT with at least
/// `currency_code, amount_minor, probability, day`): `priced` adds
/// `converted`, `weighted` and `missing`. Parameters $1 (reporting
/// currency) to $8 are the factors'; `scope` numbers its own from $9.
/// `int8` arithmetic where it cannot overflow, exact `numeric` beyond;
/// both floor `(x + d) / 2d`, i.e. round half up (amounts are not negative).
fn priced(scope: &str) -> String {
    format!(
        "WITH factors AS ( \
           SELECT * FROM unnest($2::text[], $3::date[], $4::int8[], $5::int8[], $6::int8[], \
             $7::text[]::numeric[], $8::text[]::numeric[]) \
             AS f(currency_code, day, num2, den, max_amount, num2_exact, den_exact)), \
         scope AS ({scope}), \
         converted AS ( \
           SELECT s.*, CASE WHEN s.currency_code = $1 THEN s.amount_minor \
               WHEN s.amount_minor <= f.max_amount THEN (s.amount_minor * f.num2 + f.den) / (2 * f.den) \
               ELSE div(s.amount_minor * f.num2_exact + f.den_exact, 2 * f.den_exact)::bigint END AS converted, \
             s.currency_code <> $1 AND f.num2 IS NULL AS missing \
           FROM scope s LEFT JOIN factors f ON f.currency_code = s.currency_code AND f.day = s.day), \
         priced AS ( \
           SELECT c.*, CASE WHEN c.converted <= {WEIGHT_FAST} \
               THEN (c.converted * (2 * c.probability) + 100) / 200 \
               ELSE div(c.converted::numeric * (2 * c.probability) + 100, 200)::bigint END AS weighted \
           FROM converted c)"
    )
}

/// The largest converted amount weighted in `int8` (`× 200` fits).
const WEIGHT_FAST: i64 = i64::MAX / 200;

/// The sums per row of the final aggregate.
const SUMS: &str = "count(*) AS count, coalesce(sum(converted), 0)::bigint AS amount, \
    coalesce(sum(weighted), 0)::bigint AS weighted, \
    min(day::text || ' ' || currency_code) FILTER (WHERE missing) AS missing";

/// The deals of a forecast: open deals expected to close in the range and
/// won deals closed in it (the UTC date of `close_time`); lost deals are
/// left out. A won deal counts as CLOSED at 100 %. `key` is the group key
/// of an open deal, `won_key` of a won one.
///
/// Two branches, so that each is an index-only scan of its covering index
/// (`deals_forecast_open`, `deals_forecast_won`): on 200,000 deals that
/// reads a year's ~93,000 in about a fifth of the time of a scan of the
/// table (whose wide rows are deformed column by column up to the last one
/// filtered on).
fn forecast_scope(key: &str, won_key: &str, readable: &str) -> String {
    let filters = format!(
        "AND ($11::uuid IS NULL OR d.pipeline_id = $11) \
         AND (cardinality($12::text[]) = 0 OR d.owner_id = ANY($12)) AND {readable}"
    );
    format!(
        "SELECT {key} AS key, d.currency_code, d.amount_minor, d.forecast_category AS category, \
           coalesce(d.probability_override, st.probability)::int AS probability, d.expected_close_date AS day \
         FROM deals d JOIN stages st ON st.id = d.stage_id \
         WHERE d.status = 'OPEN' AND d.delete_time IS NULL AND d.expected_close_date BETWEEN $9 AND $10 {filters} \
         UNION ALL \
         SELECT {won_key}, d.currency_code, d.amount_minor, 'CLOSED', 100, (d.close_time AT TIME ZONE 'UTC')::date \
         FROM deals d \
         WHERE d.status = 'WON' AND d.delete_time IS NULL AND d.close_time >= ($9::timestamp AT TIME ZONE 'UTC') \
           AND d.close_time < (($10 + 1)::timestamp AT TIME ZONE 'UTC') {filters}"
    )
}

/// The forecast sums of `query`: rows per (group, category) — MONTH
/// groups per day (`YYYY-MM-DD`), for the caller to add up — and, for TEAM
/// groups only, per category over all deals (`key` `None`; other
/// groupings hold each deal in exactly one group).
async fn sums(
    db: &mut PgConnection,
    query: &ForecastQuery,
    book: &RateBook,
    scope: &ReadScope,
) -> Result<Vec<CategorySum>, Error> {
    // Bound always ($13 to $15); with custom plans (`read_only`) a scope
    // that reads everything folds away at planning.
    let readable = scope.condition(SCOPE_COLUMNS, 13);
    let days = query.start.iter_days().take_while(|day| *day <= query.end);
    let factors = Factors::new(book, query.currency, days);
    let sql = match query.grouping {
        Grouping::Team => {
            const TEAM: &str = "array_prepend(d.owner_id, d.team_member_ids)";
            format!(
                "{} SELECT t.key, category, {SUMS} FROM priced \
               CROSS JOIN LATERAL (SELECT DISTINCT k FROM unnest(priced.key) k WHERE k <> '') t(key) \
               GROUP BY t.key, category \
             UNION ALL SELECT NULL, category, {SUMS} FROM priced GROUP BY category",
                priced(&forecast_scope(TEAM, TEAM, &readable.sql))
            )
        }
        grouping => {
            // Grouped by the typed value; text only once per group.
            let (key, won_key) = match grouping {
                Grouping::Month => ("d.expected_close_date", "(d.close_time AT TIME ZONE 'UTC')::date"),
                Grouping::Stage => ("d.stage_id", "d.stage_id"),
                Grouping::Pipeline => ("d.pipeline_id", "d.pipeline_id"),
                _ => ("d.owner_id", "d.owner_id"),
            };
            format!(
                "{} SELECT key::text AS key, category, {SUMS} FROM priced GROUP BY key, category",
                priced(&forecast_scope(key, won_key, &readable.sql))
            )
        }
    };
    let statement = readable.bind_to(
        factors
            .bind(sqlx::query_as(&sql).bind(query.currency.code()))
            .bind(query.start)
            .bind(query.end)
            .bind(query.pipeline_id.map(|id| id.uuid()))
            .bind(&query.owner_ids),
    );
    let rows: Vec<SumRow> = statement.fetch_all(&mut *db).await.map_err(out_of_range)?;
    check_missing(rows.iter().map(|row| row.missing.as_deref()), query.currency)?;
    Ok(rows
        .into_iter()
        .map(|row| CategorySum {
            key: row.key,
            category: row.category,
            count: row.count,
            amount: row.amount,
            weighted: row.weighted,
        })
        .collect())
}

/// Makes the transaction a consistent read-only snapshot, and turns JIT
/// compilation off for it: on 200,000 deals compiling the expressions
/// cost more than it saved. Merge joins are off too: the planner
/// estimates the bound factors at ~1,000 rows and joins them by sorting
/// every deal on (currency text, day), which took half the statement on
/// 200,000 deals (a hash join on the factors is ~2× faster). And custom
/// plans, against the service's generic default (`DB_SETTINGS`): the
/// range decides whether the covering indexes are worth reading.
async fn read_only(db: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *db).await?;
    // The settings in one round trip (SET LOCAL is one statement each).
    sqlx::query(
        "SELECT set_config('jit', 'off', true), set_config('enable_mergejoin', 'off', true), \
           set_config('plan_cache_mode', 'force_custom_plan', true)",
    )
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Names of stages or pipelines (`table`) by id, for labels.
async fn names(
    db: &mut PgConnection,
    table: &str,
    ids: &[uuid::Uuid],
) -> Result<Vec<(String, String)>, Error> {
    let table = if table == "stages" { "stages" } else { "pipelines" };
    Ok(sqlx::query_as(&format!("SELECT id::text, name FROM {table} WHERE id = ANY($1)"))
        .bind(ids)
        .fetch_all(&mut *db)
        .await?)
}

/// The default pipeline when `pipeline_id` is `None`; `None` when the
/// pipeline is not live.
async fn live_pipeline(
    db: &mut PgConnection,
    pipeline_id: Option<uuid::Uuid>,
) -> Result<Option<uuid::Uuid>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM pipelines WHERE delete_time IS NULL AND (CASE WHEN $1::uuid IS NULL THEN is_default ELSE id = $1 END)",
    )
    .bind(pipeline_id)
    .fetch_optional(&mut *db)
    .await?)
}

/// Per live OPEN stage of `pipeline_id`, in position order: its open
/// deals, converted at the rates in force `now`'s UTC date.
async fn stage_sums(
    db: &mut PgConnection,
    pipeline_id: uuid::Uuid,
    currency: Currency,
    book: &RateBook,
    now: DateTime<Utc>,
    readable: &ReadScope,
) -> Result<Vec<StageSum>, Error> {
    let today = now.date_naive();
    let factors = Factors::new(book, currency, std::iter::once(today));
    let readable = readable.condition(SCOPE_COLUMNS, 12);
    let scope = format!(
        "SELECT d.stage_id, d.currency_code, d.amount_minor, d.stage_enter_time, $9::date AS day, \
           coalesce(d.probability_override, st.probability)::int AS probability \
         FROM deals d JOIN stages st ON st.id = d.stage_id \
         WHERE d.pipeline_id = $10 AND d.status = 'OPEN' AND d.delete_time IS NULL AND {}",
        readable.sql
    );
    let sql = format!(
        "{} SELECT st.id AS stage_id, st.name, count(p.stage_id) AS count, \
           coalesce(sum(p.converted), 0)::bigint AS amount, coalesce(sum(p.weighted), 0)::bigint AS weighted, \
           coalesce(round(avg(extract(epoch FROM ($11 - p.stage_enter_time)) * 1000000)), 0)::bigint \
             AS average_age_micros, \
           min(p.day::text || ' ' || p.currency_code) FILTER (WHERE p.missing) AS missing \
         FROM stages st LEFT JOIN priced p ON p.stage_id = st.id \
         WHERE st.pipeline_id = $10 AND st.kind = 'OPEN' AND NOT st.retired \
         GROUP BY st.id, st.name, st.position ORDER BY st.position",
        priced(&scope)
    );
    let query = sqlx::query_as(&sql).bind(currency.code());
    let query = factors.bind(query);
    readable
        .bind_to(query.bind(today).bind(pipeline_id).bind(now))
        .fetch_all(&mut *db)
        .await
        .map_err(out_of_range)
}
