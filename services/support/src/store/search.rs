//! SearchCases: ranked full text over subjects (A), descriptions (B) and
//! public replies (C) of live cases, through the `cases_search` index.
//! Internal notes never reach the searched text.

use rapport_kit::paging;
use rapport_kit::search::{self, SearchQuery};
use rapport_proto::support::v1::Case;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::Ctx;
use super::cases::{COLUMNS, with_clocks};
use super::sla;
use crate::convert::{View, case_to_proto};
use crate::error::Error;
use crate::model::CaseRow;

/// Most characters of public replies kept searchable per case.
const MAX_PUBLIC_TEXT: i32 = 200_000;

/// Adds a public reply's text to its case's searchable text.
pub async fn add_public_text(tx: &mut PgConnection, case_id: Uuid, body: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE cases SET public_text = left(public_text || E'\\n' || $2, $3) WHERE id = $1")
        .bind(case_id)
        .bind(body)
        .bind(MAX_PUBLIC_TEXT)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Ranked {
    #[sqlx(flatten)]
    case: CaseRow,
    rank: f32,
}

/// One page of matches, best first, and the next page's token.
pub async fn cases(
    pool: &PgPool,
    query: &SearchQuery,
    open_only: bool,
    (page_size, page_token): (i32, &str),
    ctx: Ctx<'_>,
    cache: &sla::SlaCache,
) -> Result<(Vec<Case>, String), Error> {
    let tsquery = query.tsquery();
    let fingerprint = paging::fingerprint(&["cases", &tsquery, if open_only { "open" } else { "all" }]);
    let after = search::after(page_token, &fingerprint)?;
    let page_size = paging::page_size(page_size, 20, 100)?;
    let sql = format!(
        "SELECT {COLUMNS}, rank FROM ( \
           SELECT c.*, ts_rank(c.search, q) AS rank FROM cases c, to_tsquery('simple', $1) q \
           WHERE c.search @@ q AND c.delete_time IS NULL \
             AND (NOT $2 OR c.status NOT IN ('RESOLVED', 'CLOSED'))) ranked \
         WHERE $3::real IS NULL OR rank < $3 OR (rank = $3 AND id > $4) \
         ORDER BY rank DESC, id LIMIT {}",
        u64::from(page_size) + 1
    );
    let mut conn = pool.acquire().await?;
    let mut rows: Vec<Ranked> = sqlx::query_as(&sql)
        .bind(&tsquery)
        .bind(open_only)
        .bind(after.map(|(rank, _)| rank))
        .bind(after.map_or(Uuid::nil(), |(_, id)| id))
        .fetch_all(&mut *conn)
        .await?;
    let more = rows.len() > page_size as usize;
    rows.truncate(page_size as usize);
    let next = search::next_token(&fingerprint, rows.last().map(|last| (last.rank, last.case.id)), more);
    let records = with_clocks(&mut conn, rows.into_iter().map(|row| row.case).collect()).await?;
    let sla = cache.get(&mut conn).await?;
    let view = View { prefix: ctx.prefix, now: ctx.now, calendars: sla.as_ref() };
    let cases = records.iter().map(|record| case_to_proto(record, view)).collect::<Result<_, _>>()?;
    Ok((cases, next))
}
